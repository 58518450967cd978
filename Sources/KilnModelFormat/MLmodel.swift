import Foundation
import KilnCore
import Yams

/// A YAML value in an `MLmodel` file, kept exactly so a file round-trips.
public indirect enum ModelValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([ModelValue])
    case map([String: ModelValue])

    init(any: Any?) {
        switch any {
        case nil, is NSNull: self = .null
        case let v as Bool: self = .bool(v)
        case let v as Int: self = .int(v)
        case let v as Double: self = .double(v)
        case let v as String: self = .string(v)
        case let v as [Any]: self = .list(v.map { ModelValue(any: $0) })
        case let v as [String: Any]: self = .map(v.mapValues { ModelValue(any: $0) })
        case let v as [AnyHashable: Any]:
            self = .map(Dictionary(uniqueKeysWithValues: v.map { ("\($0.key)", ModelValue(any: $0.value)) }))
        default: self = .string("\(any!)")
        }
    }

    var any: Any {
        switch self {
        case .null: return NSNull()
        case .bool(let v): return v
        case .int(let v): return v
        case .double(let v): return v
        case .string(let v): return v
        case .list(let v): return v.map(\.any)
        case .map(let v): return v.mapValues(\.any)
        }
    }

    /// The value as text, for scalars.
    public var text: String? {
        switch self {
        case .string(let v): return v
        case .int(let v): return String(v)
        case .double(let v): return String(v)
        case .bool(let v): return v ? "true" : "false"
        default: return nil
        }
    }

    /// A member of a map value.
    public subscript(key: String) -> ModelValue? {
        if case .map(let members) = self { return members[key] }
        return nil
    }
}

/// A model's signature: column or tensor specs as the JSON strings MLflow stores.
public struct ModelSignature: Sendable, Equatable {
    public var inputs: String?
    public var outputs: String?
    public var params: String?

    public init(inputs: String?, outputs: String?, params: String? = nil) {
        self.inputs = inputs
        self.outputs = outputs
        self.params = params
    }
}

/// An MLflow model directory's `MLmodel` file: flavors, signature, input example, identity and metadata.
///
/// ```swift
/// let model = try MLmodel.parse(yaml)
/// model.flavors.keys          // ["python_function", "sklearn"]
/// model.pythonLoaderModule    // "mlflow.sklearn"
/// ```
public struct MLmodel: Sendable, Equatable {
    public var artifactPath: String?
    /// Flavor name → its configuration (`loader_module`, `model_path`, versions…).
    public var flavors: [String: ModelValue]
    public var runID: String?
    public var modelID: String?
    public var modelUUID: String?
    public var mlflowVersion: String?
    public var utcTimeCreated: String?
    public var signature: ModelSignature?
    /// `saved_input_example_info`: where the input example is stored and its type.
    public var inputExample: ModelValue?
    public var metadata: ModelValue?
    public var modelSizeBytes: Int?
    /// Keys this type does not model, kept for round trips.
    public var other: [String: ModelValue]

    public init(flavors: [String: ModelValue], artifactPath: String? = nil, runID: String? = nil, modelID: String? = nil,
                modelUUID: String? = nil, mlflowVersion: String? = nil, utcTimeCreated: String? = nil,
                signature: ModelSignature? = nil, inputExample: ModelValue? = nil, metadata: ModelValue? = nil,
                modelSizeBytes: Int? = nil, other: [String: ModelValue] = [:]) {
        self.flavors = flavors
        self.artifactPath = artifactPath
        self.runID = runID
        self.modelID = modelID
        self.modelUUID = modelUUID
        self.mlflowVersion = mlflowVersion
        self.utcTimeCreated = utcTimeCreated
        self.signature = signature
        self.inputExample = inputExample
        self.metadata = metadata
        self.modelSizeBytes = modelSizeBytes
        self.other = other
    }

    static let knownKeys: Set<String> = [
        "artifact_path", "flavors", "run_id", "model_id", "model_uuid", "mlflow_version", "utc_time_created", "signature",
        "saved_input_example_info", "metadata", "model_size_bytes",
    ]

    /// Parses an `MLmodel` file.
    /// - Throws: `INVALID_PARAMETER_VALUE` when the YAML is malformed or has no `flavors` map.
    public static func parse(_ yaml: String) throws -> MLmodel {
        let root: Any?
        do {
            root = try Yams.load(yaml: yaml)
        } catch {
            throw KilnError.invalid("MLmodel is not valid YAML: \(error)")
        }
        guard case .map(let top) = ModelValue(any: root) else { throw KilnError.invalid("MLmodel must be a YAML mapping") }
        guard case .map(let flavors)? = top["flavors"] else { throw KilnError.invalid("MLmodel has no 'flavors' mapping") }
        var signature: ModelSignature?
        if let sig = top["signature"], case .map = sig {
            signature = ModelSignature(inputs: sig["inputs"]?.text, outputs: sig["outputs"]?.text, params: sig["params"]?.text)
        }
        var sizeBytes: Int?
        if case .int(let size)? = top["model_size_bytes"] { sizeBytes = size }
        return MLmodel(
            flavors: flavors, artifactPath: top["artifact_path"]?.text, runID: top["run_id"]?.text, modelID: top["model_id"]?.text,
            modelUUID: top["model_uuid"]?.text, mlflowVersion: top["mlflow_version"]?.text, utcTimeCreated: top["utc_time_created"]?.text,
            signature: signature, inputExample: top["saved_input_example_info"], metadata: top["metadata"], modelSizeBytes: sizeBytes,
            other: top.filter { !knownKeys.contains($0.key) })
    }

    /// The YAML text of this file, keys sorted.
    public func yaml() throws -> String {
        var top = other
        top["flavors"] = .map(flavors)
        func put(_ key: String, _ value: String?) { if let value { top[key] = .string(value) } }
        put("artifact_path", artifactPath)
        put("run_id", runID)
        put("model_id", modelID)
        put("model_uuid", modelUUID)
        put("mlflow_version", mlflowVersion)
        put("utc_time_created", utcTimeCreated)
        if let signature {
            var sig: [String: ModelValue] = [:]
            sig["inputs"] = signature.inputs.map(ModelValue.string) ?? .null
            sig["outputs"] = signature.outputs.map(ModelValue.string) ?? .null
            if let params = signature.params { sig["params"] = .string(params) }
            top["signature"] = .map(sig)
        }
        if let inputExample { top["saved_input_example_info"] = inputExample }
        if let metadata { top["metadata"] = metadata }
        if let modelSizeBytes { top["model_size_bytes"] = .int(modelSizeBytes) }
        return try Yams.dump(object: ModelValue.map(top).any, sortKeys: true)
    }

    /// The module `mlflow.pyfunc` loads the model with (`python_function.loader_module`).
    public var pythonLoaderModule: String? { flavors["python_function"]?["loader_module"]?.text }

    /// Parses a `requirements.txt`: one requirement a line, comments and blank lines dropped.
    public static func requirements(_ text: String) -> [String] {
        text.split(whereSeparator: \.isNewline).compactMap { line in
            let trimmed = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first?
                .trimmingCharacters(in: .whitespaces) ?? ""
            return trimmed.isEmpty ? nil : trimmed
        }
    }
}
