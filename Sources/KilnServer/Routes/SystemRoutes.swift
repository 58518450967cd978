import Hummingbird
import KilnCore
import Prometheus

/// Health, version, server-info (what the mlflow client asks before artifact calls) and Prometheus metrics.
struct SystemRoutes: Sendable {
    let registry: PrometheusCollectorRegistry
    let version: String

    func register(on router: Router<KilnRequestContext>) {
        router.get("/health") { _, _ in Response.json { w in w.field("status", "ok") } }
        // databricks-sdk asks for this before its first call; answering (with nothing to add) keeps it from warning.
        router.get("/.well-known/databricks-config") { _, _ in Response.json { _ in } }
        router.get("/version") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain"], body: ResponseBody(byteBuffer: ByteBuffer(string: version)))
        }
        for prefix in ["/api/3.0/mlflow", "/ajax-api/3.0/mlflow"] {
            router.get(RouterPath(prefix + "/server-info")) { _, _ in
                Response.json { w in
                    w.field("store_type", "SqlStore")
                    w.field("workspaces_enabled", false)
                    w.field("trace_archival_enabled", false)
                    w.field("multipart_uploads_enabled", false)
                    w.field("multipart_downloads_enabled", false)
                    w.field("presigned_upload_run_id_supported", false)
                    w.field("presigned_upload_model_id_supported", false)
                    w.key("features_enabled")
                    w.object { w in w.field("gateway", false) }
                }
            }
        }
        router.get("/metrics") { _, _ in
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: buffer)))
        }
    }
}
