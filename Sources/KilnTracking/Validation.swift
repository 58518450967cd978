import KilnCore

/// MLflow's limits on what a run may carry (`mlflow/utils/validation.py`).
public enum TrackingLimits {
    public static let maxEntityKeyLength = 250
    public static let maxParamValueLength = 6000
    public static let maxTagValueLength = 8000
    public static let maxExperimentNameLength = 500
    public static let maxExperimentTagValueLength = 20_000
    /// `runs.name` is `VARCHAR(250)` in mlflow's schema.
    public static let maxRunNameLength = 250
    public static let maxMetricsPerBatch = 1000
    public static let maxParamsTagsPerBatch = 100
    public static let maxEntitiesPerBatch = 1000
    public static let maxBatchRequestBytes = 1_000_000
    public static let maxRunsPerSearch = 50_000
    public static let defaultRunsPerSearch = 1000
    public static let maxHistoryPage = 25_000
}

enum Validate {
    /// Keys may hold letters, digits, `_ - . space : /`, and may not escape as a path (`..`, leading `/`).
    static func key(_ key: String, kind: String) throws {
        guard !key.isEmpty else { throw KilnError.invalid("Missing value for required parameter '\(kind) key'") }
        guard key.count <= TrackingLimits.maxEntityKeyLength else {
            throw KilnError.invalid("\(kind.capitalized) key '\(key.prefix(40))...' is \(key.count) characters; the limit is \(TrackingLimits.maxEntityKeyLength)")
        }
        for c in key.unicodeScalars where !(c.properties.isAlphabetic || c.properties.numericType != nil || "_-. :/".unicodeScalars.contains(c)) {
            throw KilnError.invalid("Invalid \(kind) name: '\(key)'. Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).")
        }
        let segments = key.split(separator: "/", omittingEmptySubsequences: false)
        if key.hasPrefix("/") || segments.contains("..") || segments.contains(".") {
            throw KilnError.invalid("Invalid \(kind) name: '\(key)'. Names may be treated as files in certain cases, and must not resolve to other names when treated as such.")
        }
    }

    static func paramValue(_ value: String, key: String) throws {
        guard value.count <= TrackingLimits.maxParamValueLength else {
            throw KilnError.invalid("Param value for key '\(key)' had length \(value.count), which exceeded length limit of \(TrackingLimits.maxParamValueLength)")
        }
    }

    static func tagValue(_ value: String, key: String) throws {
        guard value.count <= TrackingLimits.maxTagValueLength else {
            throw KilnError.invalid("Tag value for key '\(key)' had length \(value.count), which exceeded length limit of \(TrackingLimits.maxTagValueLength)")
        }
    }

    static func experimentTagValue(_ value: String, key: String) throws {
        guard value.count <= TrackingLimits.maxExperimentTagValueLength else {
            throw KilnError.invalid("Tag value for key '\(key)' had length \(value.count), which exceeded length limit of \(TrackingLimits.maxExperimentTagValueLength)")
        }
    }

    static func runName(_ name: String?) throws {
        try TextLimit.check(name, "run_name", max: TrackingLimits.maxRunNameLength)
    }

    static func experimentName(_ name: String) throws {
        guard !name.allSatisfy(\.isWhitespace) else { throw KilnError.invalid("Invalid experiment name: '\(name)'. Names may not be empty.") }
        guard name.count <= TrackingLimits.maxExperimentNameLength else {
            throw KilnError.invalid("Experiment name is \(name.count) characters; the limit is \(TrackingLimits.maxExperimentNameLength)")
        }
    }

    static func experimentID(_ id: String) throws -> Int64 {
        guard let value = Int64(id), value >= 0 else {
            throw KilnError.notFound("No Experiment with id=\(id) exists")
        }
        return value
    }
}
