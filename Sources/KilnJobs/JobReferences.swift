import Foundation
import KilnCore

/// Dynamic value references (`{{job.id}}`, `{{job.run_id}}`, `{{job.start_time.iso_date}}`,
/// `{{job.parameters.<name>}}`, `{{tasks.<key>.values.<name>}}`, `{{input}}`, …) substituted into a task's strings
/// before it runs. An unknown reference fails the task with its name.
struct JobReferences {
    let run: JobRun
    let taskKey: String
    let taskRunID: Int64
    let attempt: Int
    let upstream: [String: TaskRun]
    let input: JSONValue?

    /// The task with every string resolved, except the nested task of a for_each_task (resolved per iteration).
    func resolve(_ task: [String: JSONValue]) throws -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        for (key, value) in task {
            if key == "for_each_task", case .object(var f) = value {
                for (k, v) in f where k != "task" { f[k] = try resolve(v) }
                out[key] = .object(f)
            } else {
                out[key] = try resolve(value)
            }
        }
        return out
    }

    func resolve(_ value: JSONValue) throws -> JSONValue { try value.mapStrings(resolve) }

    func resolve(_ text: String) throws -> String {
        guard text.contains("{{") else { return text }
        var out = "", rest = Substring(text)
        while let open = rest.range(of: "{{") {
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "}}") else { out += rest[open.lowerBound...]; return out }
            let name = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            out += try value(name)
            rest = rest[close.upperBound...]
        }
        return out + rest
    }

    func value(_ name: String) throws -> String {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let start = Date(timeIntervalSince1970: Double(run.startTime) / 1000)
        func formatted(_ format: String) -> String {
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "UTC")
            f.dateFormat = format
            return f.string(from: start)
        }
        switch parts {
        case ["job", "id"], ["job_id"]: return run.jobID.map(String.init) ?? ""
        case ["job", "name"]: return run.runName
        case ["job", "run_id"], ["run_id"], ["parent_run_id"]: return String(run.runID)
        case ["job", "repair_count"]: return String(run.repairs.count)
        case ["job", "trigger", "type"]: return run.trigger
        case ["job", "start_time", "iso_date"], ["start_date"]: return formatted("yyyy-MM-dd")
        case ["job", "start_time", "iso_datetime"]: return formatted("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")
        case ["job", "start_time", "timestamp_ms"], ["start_time"]: return String(run.startTime)
        case ["job", "start_time", "year"]: return formatted("yyyy")
        case ["job", "start_time", "month"]: return formatted("M")
        case ["job", "start_time", "day"]: return formatted("d")
        case ["job", "start_time", "hour"]: return formatted("H")
        case ["job", "start_time", "minute"]: return formatted("m")
        case ["job", "start_time", "second"]: return formatted("s")
        case ["task", "name"], ["task_key"]: return taskKey
        case ["task", "run_id"]: return String(taskRunID)
        case ["task", "execution_count"]: return String(attempt + 1)
        case ["input"]:
            guard let input else { throw KilnError.invalid("{{input}} is only defined inside a for_each_task") }
            return JSONValue.text(input)
        default: break
        }
        if parts.count >= 3, parts[0] == "job", parts[1] == "parameters" {
            let key = parts[2...].joined(separator: ".")
            guard let v = run.parameters[key] else { throw KilnError.invalid("Unknown job parameter in {{\(name)}}") }
            return v
        }
        if parts.count >= 2, parts[0] == "input", let input, case .object(let o) = input {
            guard let v = o[parts[1...].joined(separator: ".")] else { throw KilnError.invalid("The for_each input has no field in {{\(name)}}") }
            return JSONValue.text(v)
        }
        if parts.count >= 3, parts[0] == "tasks" {
            guard let t = upstream[parts[1]] else { throw KilnError.invalid("{{\(name)}} refers to task '\(parts[1])', which has not run before this task") }
            switch parts[2] {
            case "values" where parts.count >= 4:
                let key = parts[3...].joined(separator: ".")
                guard let v = t.values[key] else { throw KilnError.invalid("Task '\(parts[1])' set no task value '\(key)' ({{\(name)}})") }
                return JSONValue.text(v)
            case "result_state": return t.result?.rawValue ?? ""
            case "run_id": return String(t.taskRunID)
            case "error_code": return t.result == .success ? "" : (t.result?.rawValue ?? "")
            case "execution_count": return String(t.attempt + 1)
            default: break
            }
        }
        throw KilnError.invalid("Unknown dynamic value reference {{\(name)}}")
    }
}
