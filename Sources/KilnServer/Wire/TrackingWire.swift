import KilnBlob
import KilnCore
import KilnTracking

/// Proto-JSON encodings of tracking entities, field names as MLflow's `service.proto` spells them.
extension JSONWriter {
    mutating func keyValues(_ name: String, _ pairs: [KeyValue]) {
        key(name)
        array { w in
            for pair in pairs {
                w.object { w in
                    w.field("key", pair.key)
                    w.field("value", pair.value)
                }
            }
        }
    }

    mutating func experiment(_ e: Experiment) {
        object { w in
            w.field("experiment_id", e.id)
            w.field("name", e.name)
            w.field("artifact_location", e.artifactLocation)
            w.field("lifecycle_stage", e.lifecycleStage.rawValue)
            w.field("last_update_time", e.lastUpdateTime)
            w.field("creation_time", e.creationTime)
            if !e.tags.isEmpty { w.keyValues("tags", e.tags) }
        }
    }

    mutating func runInfo(_ info: RunInfo) {
        object { w in
            w.field("run_id", info.runID)
            w.field("run_uuid", info.runID)
            w.field("run_name", info.runName)
            w.field("experiment_id", info.experimentID)
            w.field("user_id", info.userID)
            w.field("status", info.status.rawValue)
            w.field("start_time", info.startTime)
            w.field("end_time", info.endTime)
            w.field("artifact_uri", info.artifactURI)
            w.field("lifecycle_stage", info.lifecycleStage.rawValue)
        }
    }

    mutating func metric(_ m: Metric, runID: String? = nil) {
        object { w in
            w.field("key", m.key)
            w.field("value", m.value)
            w.field("timestamp", m.timestamp)
            w.field("step", m.step)
            w.field("dataset_name", m.datasetName)
            w.field("dataset_digest", m.datasetDigest)
            w.field("model_id", m.modelID)
            w.field("run_id", runID)
        }
    }

    mutating func run(_ run: Run) {
        object { w in
            w.key("info")
            w.runInfo(run.info)
            w.key("data")
            w.object { w in
                if !run.metrics.isEmpty {
                    w.key("metrics")
                    w.array { w in for m in run.metrics { w.metric(m) } }
                }
                if !run.params.isEmpty { w.keyValues("params", run.params) }
                if !run.tags.isEmpty { w.keyValues("tags", run.tags) }
            }
            w.key("inputs")
            w.object { w in
                if !run.datasetInputs.isEmpty {
                    w.key("dataset_inputs")
                    w.array { w in
                        for input in run.datasetInputs {
                            w.object { w in
                                w.keyValues("tags", input.tags)
                                w.key("dataset")
                                w.object { w in
                                    w.field("name", input.dataset.name)
                                    w.field("digest", input.dataset.digest)
                                    w.field("source_type", input.dataset.sourceType)
                                    w.field("source", input.dataset.source)
                                    w.field("schema", input.dataset.schema)
                                    w.field("profile", input.dataset.profile)
                                }
                            }
                        }
                    }
                }
                if !run.modelInputs.isEmpty {
                    w.key("model_inputs")
                    w.array { w in for id in run.modelInputs { w.object { w in w.field("model_id", id) } } }
                }
            }
            w.key("outputs")
            w.object { w in
                if !run.modelOutputs.isEmpty {
                    w.key("model_outputs")
                    w.array { w in
                        for output in run.modelOutputs {
                            w.object { w in
                                w.field("model_id", output.modelID)
                                w.field("step", output.step)
                            }
                        }
                    }
                }
            }
        }
    }

    mutating func loggedModel(_ m: LoggedModel) {
        object { w in
            w.key("info")
            w.object { w in
                w.field("model_id", m.modelID)
                w.field("experiment_id", m.experimentID)
                w.field("name", m.name)
                w.field("creation_timestamp_ms", m.creationTime)
                w.field("last_updated_timestamp_ms", m.lastUpdatedTime)
                w.field("artifact_uri", m.artifactLocation)
                w.field("status", m.status.rawValue)
                w.field("model_type", m.modelType)
                w.field("source_run_id", m.sourceRunID)
                w.field("status_message", m.statusMessage)
                if !m.tags.isEmpty { w.keyValues("tags", m.tags) }
            }
            w.key("data")
            w.object { w in
                if !m.params.isEmpty { w.keyValues("params", m.params) }
                if !m.metrics.isEmpty {
                    w.key("metrics")
                    w.array { w in for metric in m.metrics { w.metric(metric) } }
                }
            }
        }
    }

    /// `"files": [{path, is_dir, file_size}]` with each path under `folder` (relative to the listed root).
    mutating func files(_ entries: [BlobEntry], under folder: String) {
        let prefix = folder.isEmpty ? "" : (folder.hasSuffix("/") ? folder : folder + "/")
        key("files")
        array { w in
            for entry in entries {
                w.object { w in
                    w.field("path", prefix + entry.name)
                    w.field("is_dir", entry.isDirectory)
                    w.field("file_size", entry.size)
                }
            }
        }
    }
}
