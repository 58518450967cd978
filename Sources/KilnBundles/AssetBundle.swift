import Foundation
#if canImport(Glibc)
import Glibc
#endif
import KilnCore
import Yams

/// Jobs as code: a `kiln.yml` (the shape of a Databricks Asset Bundle's `databricks.yml`) read for one target, with
/// variables substituted and relative task paths made absolute. `kiln bundle validate|deploy|run|destroy` act on it.
///
/// ```yaml
/// bundle: {name: churn}
/// variables: {catalog: {default: main}}
/// targets:
///   dev: {default: true, mode: development}
///   prod: {variables: {catalog: prod}}
/// resources:
///   experiments: {churn: {name: "/churn-${bundle.target}"}}
///   registered_models: {churn: {name: "${var.catalog}_churn"}}
///   jobs: {retrain: {name: retrain, tasks: [{task_key: train, spark_python_task: {python_file: src/train.py}}]}}
///   model_serving_endpoints: {churn: {name: churn, config: {served_entities: [...]}}}
/// ```
public struct AssetBundle: Sendable {
    public var name: String
    public var target: String
    /// The folder holding kiln.yml.
    public var root: URL
    public var variables: [String: String]
    /// Resources by kind (`jobs`, `experiments`, `registered_models`, `model_serving_endpoints`), then by key.
    public var resources: [String: [String: [String: JSONValue]]]

    public static let kinds = ["experiments", "registered_models", "jobs", "model_serving_endpoints"]

    /// Reads `<directory>/kiln.yml` for `target` (default: the target marked `default: true`, else the only one).
    /// - Throws: `INVALID_PARAMETER_VALUE` naming what is wrong: YAML, unknown target, a variable without a value,
    ///   an unknown `${…}` reference, an unknown resource kind, or a job definition the server would refuse.
    /// `validateJob` checks each job definition as the server would (the CLI passes the Jobs API's validation), so a
    /// bad job stops the deploy before anything is created.
    public static func load(directory: URL, target requested: String? = nil, overrides: [String: String] = [:],
                            validateJob: ([String: JSONValue]) throws -> Void = { _ in }) throws -> AssetBundle {
        let file = directory.appendingPathComponent("kiln.yml")
        guard let text = try? String(contentsOf: file, encoding: .utf8) else {
            throw KilnError.invalid("No kiln.yml in \(directory.path); create one with `kiln bundle init`")
        }
        let parsed: Any?
        do { parsed = try Yams.load(yaml: text) } catch { throw KilnError.invalid("kiln.yml is not valid YAML: \(error)") }
        guard case .object(var top) = json(parsed) else { throw KilnError.invalid("kiln.yml must be a mapping with bundle, resources and targets") }
        top = try includes(top, directory: directory)
        guard case .object(let bundle)? = top["bundle"], case .string(let name)? = bundle["name"], !name.isEmpty else {
            throw KilnError.invalid("kiln.yml needs bundle.name")
        }
        for key in top.keys where !["bundle", "variables", "resources", "targets", "workspace"].contains(key) {
            throw KilnError.invalid("kiln.yml has an unknown top-level key '\(key)'")
        }
        // The target.
        var targets: [String: [String: JSONValue]] = [:]
        if case .object(let t)? = top["targets"] {
            for (k, v) in t { if case .object(let o) = v { targets[k] = o } else { targets[k] = [:] } }
        }
        let target: String
        if let requested {
            guard targets[requested] != nil || targets.isEmpty && requested == "default" else {
                throw KilnError.invalid("kiln.yml has no target '\(requested)' (it has: \(targets.keys.sorted().joined(separator: ", ")))")
            }
            target = requested
        } else if let marked = targets.first(where: { $0.value["default"] == .bool(true) })?.key {
            target = marked
        } else if targets.count == 1 {
            target = targets.keys.first!
        } else if targets.isEmpty {
            target = "default"
        } else {
            throw KilnError.invalid("kiln.yml has several targets and none is default: pick one with --target (\(targets.keys.sorted().joined(separator: ", ")))")
        }
        let chosen = targets[target] ?? [:]
        // Variables: declared defaults, then the target's values, then overrides.
        var variables: [String: String] = [:]
        var declared = Set<String>()
        if case .object(let vars)? = top["variables"] {
            for (k, v) in vars {
                declared.insert(k)
                if case .object(let spec) = v, let value = spec["default"] { variables[k] = JSONValue.text(value) }
                else if case .object = v {} else { variables[k] = JSONValue.text(v) }
            }
        }
        if case .object(let vars)? = chosen["variables"] {
            for (k, v) in vars {
                guard declared.contains(k) else { throw KilnError.invalid("Target '\(target)' sets variable '\(k)', which variables does not declare") }
                variables[k] = JSONValue.text(v)
            }
        }
        for (k, v) in overrides {
            guard declared.contains(k) else { throw KilnError.invalid("--var \(k): kiln.yml declares no variable '\(k)'") }
            variables[k] = v
        }
        for k in declared where variables[k] == nil {
            throw KilnError.invalid("Variable '\(k)' has no value: give it a default, set it in target '\(target)', or pass --var \(k)=…")
        }
        // Resources, with the target's resources merged over them.
        var merged: JSONValue = top["resources"] ?? .object([:])
        if let extra = chosen["resources"] { merged = deepMerge(merged, extra) }
        var jobKeys = Set<String>()
        if case .object(let kinds) = merged, case .object(let jobs)? = kinds["jobs"] { jobKeys = Set(jobs.keys) }
        let context = Substitution(variables: variables, bundle: name, target: target, root: directory.standardizedFileURL.path, jobKeys: jobKeys)
        guard case .object(let kinds) = try context.apply(merged) else { throw KilnError.invalid("resources must be a mapping") }
        var resources: [String: [String: [String: JSONValue]]] = [:]
        for (kind, value) in kinds {
            guard Self.kinds.contains(kind) else {
                throw KilnError.invalid("Unknown resource kind '\(kind)'; Kiln deploys \(Self.kinds.joined(separator: ", "))")
            }
            guard case .object(let items) = value else { throw KilnError.invalid("resources.\(kind) must be a mapping of key: definition") }
            var out: [String: [String: JSONValue]] = [:]
            for (key, item) in items {
                guard case .object(var o) = item else { throw KilnError.invalid("resources.\(kind).\(key) must be a mapping") }
                if kind == "jobs" {
                    o = absolutePaths(o, root: directory)
                    if chosen["mode"] == .string("development") { o = development(o) }
                    do { try validateJob(o) } catch let error as KilnError {
                        throw KilnError.invalid("resources.jobs.\(key): \(error.message)")
                    }
                }
                guard case .string(let n)? = o["name"], !n.isEmpty else { throw KilnError.invalid("resources.\(kind).\(key) needs a name") }
                out[key] = o
            }
            resources[kind] = out
        }
        return AssetBundle(name: name, target: target, root: directory.standardizedFileURL, variables: variables, resources: resources)
    }

    /// `${var.x}`, `${bundle.name}`, `${bundle.target}`, `${workspace.file_path}` / `${bundle.root}` (the bundle folder).
    struct Substitution {
        let variables: [String: String], bundle: String, target: String, root: String, jobKeys: Set<String>

        func apply(_ value: JSONValue) throws -> JSONValue { try value.mapStrings(apply) }

        func apply(_ text: String) throws -> String {
            var out = "", rest = Substring(text)
            while let open = rest.range(of: "${") {
                out += rest[..<open.lowerBound]
                guard let close = rest[open.upperBound...].firstIndex(of: "}") else { throw KilnError.invalid("Unclosed ${ in '\(text)'") }
                let name = String(rest[open.upperBound..<close])
                switch name {
                case "bundle.name": out += bundle
                case "bundle.target": out += target
                case "workspace.file_path", "bundle.root": out += root
                case let ref where ref.hasPrefix("resources.jobs.") && ref.hasSuffix(".id"):
                    let key = String(ref.dropFirst("resources.jobs.".count).dropLast(".id".count))
                    guard jobKeys.contains(key) else { throw KilnError.invalid("${\(ref)} names no job of the bundle (it has: \(jobKeys.sorted().joined(separator: ", ")))") }
                    out += "${\(ref)}"  // the id is known at deploy
                default:
                    guard name.hasPrefix("var."), let v = variables[String(name.dropFirst(4))] else {
                        throw KilnError.invalid("Unknown reference ${\(name)} in kiln.yml (use ${var.<name>}, ${bundle.name}, ${bundle.target}, ${workspace.file_path}, ${resources.jobs.<key>.id})")
                    }
                    out += v
                }
                rest = rest[rest.index(after: close)...]
            }
            return out + rest
        }
    }

    /// `include:` — YAML files (paths or `*` patterns in the last component, relative to the bundle folder) whose
    /// `resources`, `variables` and `targets` are merged into kiln.yml's.
    static func includes(_ top: [String: JSONValue], directory: URL) throws -> [String: JSONValue] {
        guard let value = top["include"] else { return top }
        guard case .array(let patterns) = value else { throw KilnError.invalid("include must be a list of paths or patterns such as resources/*.yml") }
        var merged = top
        merged["include"] = nil
        for case .string(let pattern) in patterns {
            let parent = (pattern as NSString).deletingLastPathComponent, leaf = (pattern as NSString).lastPathComponent
            guard !parent.contains("*") else { throw KilnError.invalid("include '\(pattern)': patterns may use * in the file name only") }
            let folder = directory.appendingPathComponent(parent)
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { fnmatch(leaf, $0, 0) == 0 }.sorted()
            guard !names.isEmpty else { throw KilnError.invalid("include '\(pattern)' matches no file") }
            for name in names {
                let file = folder.appendingPathComponent(name)
                let parsed: Any?
                do { parsed = try Yams.load(yaml: try String(contentsOf: file, encoding: .utf8)) } catch {
                    throw KilnError.invalid("\(parent.isEmpty ? name : parent + "/" + name) is not valid YAML: \(error)")
                }
                guard case .object(let part) = json(parsed) else { throw KilnError.invalid("\(name) must be a mapping") }
                for (key, v) in part {
                    guard ["resources", "variables", "targets"].contains(key) else {
                        throw KilnError.invalid("\(name): an included file holds resources, variables and targets, not '\(key)'")
                    }
                    merged[key] = merged[key].map { deepMerge($0, v) } ?? v
                }
            }
        }
        return merged
    }

    /// Task file paths relative to the bundle folder made absolute.
    static func absolutePaths(_ job: [String: JSONValue], root: URL) -> [String: JSONValue] {
        func fix(_ path: String) -> String {
            path.hasPrefix("/") || path.contains("://") ? path : root.appendingPathComponent(path).standardizedFileURL.path
        }
        func task(_ t: [String: JSONValue]) -> [String: JSONValue] {
            var t = t
            for (type, field) in [("spark_python_task", "python_file"), ("notebook_task", "notebook_path")] {
                if case .object(var o)? = t[type], case .string(let p)? = o[field] { o[field] = .string(fix(p)); t[type] = .object(o) }
            }
            if case .object(var sql)? = t["sql_task"], case .object(var file)? = sql["file"], case .string(let p)? = file["path"] {
                file["path"] = .string(fix(p))
                sql["file"] = .object(file)
                t["sql_task"] = .object(sql)
            }
            if case .array(let libraries)? = t["libraries"] {
                t["libraries"] = .array(libraries.map { library in
                    guard case .object(var l) = library else { return library }
                    for k in ["whl", "requirements"] { if case .string(let p)? = l[k] { l[k] = .string(fix(p)) } }
                    return .object(l)
                })
            }
            if case .object(var each)? = t["for_each_task"], case .object(let inner)? = each["task"] {
                each["task"] = .object(task(inner))
                t["for_each_task"] = .object(each)
            }
            return t
        }
        var job = job
        if case .array(let tasks)? = job["tasks"] {
            job["tasks"] = .array(tasks.map { if case .object(let o) = $0 { return .object(task(o)) } else { return $0 } })
        }
        if case .array(let envs)? = job["environments"] {
            job["environments"] = .array(envs.map { env in
                guard case .object(var e) = env, case .object(var spec)? = e["spec"], case .array(let deps)? = spec["dependencies"] else { return env }
                spec["dependencies"] = .array(deps.map { if case .string(let d) = $0, d.hasSuffix(".whl") { return .string(fix(d)) } else { return $0 } })
                e["spec"] = .object(spec)
                return .object(e)
            })
        }
        return job
    }

    /// `mode: development`: names prefixed with `[dev] `, schedules and triggers paused.
    static func development(_ job: [String: JSONValue]) -> [String: JSONValue] {
        var job = job
        if case .string(let n)? = job["name"], !n.hasPrefix("[dev] ") { job["name"] = .string("[dev] " + n) }
        for key in ["schedule", "trigger", "continuous"] {
            if case .object(var o)? = job[key] { o["pause_status"] = .string("PAUSED"); job[key] = .object(o) }
        }
        return job
    }

    static func deepMerge(_ base: JSONValue, _ over: JSONValue) -> JSONValue {
        guard case .object(var a) = base, case .object(let b) = over else { return over }
        for (k, v) in b { a[k] = a[k].map { deepMerge($0, v) } ?? v }
        return .object(a)
    }

    /// YAML as parsed by Yams → JSON values (numbers keep their text).
    static func json(_ value: Any?) -> JSONValue {
        switch value {
        case nil: return .null
        case let s as String: return .string(s)
        case let b as Bool: return .bool(b)
        case let i as Int: return .number(String(i))
        case let d as Double: return .number(String(d))
        case let a as [Any]: return .array(a.map(json))
        case let m as [String: Any]: return .object(m.mapValues(json))
        case let m as [AnyHashable: Any]: return .object(Dictionary(m.map { ("\($0.key)", json($0.value)) }, uniquingKeysWith: { a, _ in a }))
        default: return .string("\(value!)")
        }
    }
}
