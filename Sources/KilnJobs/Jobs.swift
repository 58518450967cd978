import Foundation
import KilnCore
import KilnStore
import Logging
import SQLKit

/// A stored job: its id, who made it and when, and its settings (Databricks JobSettings, kept as sent).
public struct Job: Sendable, Equatable {
    public var jobID: Int64
    public var creator: String?
    public var createdTime: Int64
    public var settings: [String: JSONValue]
}

/// Jobs API definitions (create, get, list, update, reset, delete), checked before anything is stored: task keys,
/// dependencies (unknown keys, cycles), task types, run_if, and schedules (Quartz cron, time zone).
public final class JobsService: Sendable {
    let database: any KilnDatabase
    let clock: any KilnClock

    public static let migrations = [
        Migration("jobs_0001_definitions", [
            """
            CREATE TABLE jobs (
                job_id BIGINT PRIMARY KEY,
                name TEXT NOT NULL,
                creator VARCHAR(256),
                created_time BIGINT NOT NULL,
                settings TEXT NOT NULL
            )
            """,
        ]),
        // Job ids are never reused, also after deletes: runs of a deleted job keep naming it.
        Migration("jobs_0004_id_sequence", [
            "CREATE TABLE jobs_sequence (last_id BIGINT NOT NULL)",
            "INSERT INTO jobs_sequence (last_id) SELECT COALESCE(MAX(job_id), 0) FROM jobs",
        ]),
    ]

    init(database: any KilnDatabase, clock: any KilnClock) {
        self.database = database
        self.clock = clock
    }

    public static func make(database: any KilnDatabase, clock: any KilnClock, logger: Logger) async throws -> JobsService {
        try await Migrator.migrate(database, migrations, logger: logger)
        return JobsService(database: database, clock: clock)
    }

    /// Stores a new job after checking its settings.
    /// - Throws: `INVALID_PARAMETER_VALUE` naming what is wrong; nothing is stored then.
    public func create(settings: [String: JSONValue], creator: String?) async throws -> Int64 {
        try JobValidation.check(settings)
        let now = clock.nowMillis()
        let text = JSONValue.object(settings).json, name = Self.name(settings)
        return try await database.write { sql in
            try await sql.raw("UPDATE jobs_sequence SET last_id = last_id + 1").run()
            let next = try await sql.raw("SELECT last_id FROM jobs_sequence").first()?.decode(column: "last_id", as: Int64.self) ?? 1
            try await sql.raw("""
                INSERT INTO jobs (job_id, name, creator, created_time, settings) VALUES (\(bind: next), \(bind: name), \(bind: creator), \(bind: now), \(bind: text))
                """).run()
            return next
        }
    }

    public func get(id: Int64) async throws -> Job {
        let rows = try await database.read { sql in try await sql.raw("SELECT * FROM jobs WHERE job_id = \(bind: id)").all() }
        guard let row = rows.first else { throw KilnError.notFound("Job \(id) does not exist") }
        return try Self.job(row)
    }

    /// A page of jobs in id order, optionally those whose name equals `name`, and whether more follow.
    public func list(limit: Int, offset: Int, name: String? = nil, only visible: Set<Int64>? = nil) async throws -> (jobs: [Job], hasMore: Bool) {
        guard (1...100).contains(limit) else { throw KilnError.invalid("limit must be between 1 and 100") }
        guard offset >= 0 else { throw KilnError.invalid("offset must not be negative") }
        let rows = try await database.read { sql in
            var query = SQLQueryString("SELECT * FROM jobs WHERE 1 = 1")
            if let name { query = query + " AND name = \(bind: name)" }
            if let visible { query = query + (visible.isEmpty ? " AND 1 = 0" : " AND job_id IN (\(binds: Array(visible)))") }
            return try await sql.raw(query + " ORDER BY job_id LIMIT \(bind: limit + 1) OFFSET \(bind: offset)").all()
        }
        let jobs = try rows.prefix(limit).map(Self.job)
        return (jobs, rows.count > limit)
    }

    /// Every job, in id order (what the scheduler walks).
    public func all() async throws -> [Job] {
        let rows = try await database.read { sql in try await sql.raw("SELECT * FROM jobs ORDER BY job_id").all() }
        return try rows.map(Self.job)
    }

    /// Replaces a job's settings.
    public func reset(id: Int64, settings: [String: JSONValue]) async throws {
        _ = try await get(id: id)
        try JobValidation.check(settings)
        let text = JSONValue.object(settings).json, name = Self.name(settings)
        try await database.write { sql in
            try await sql.raw("UPDATE jobs SET settings = \(bind: text), name = \(bind: name) WHERE job_id = \(bind: id)").run()
        }
    }

    /// Changes some top-level settings (`new_settings`) and drops others (`fields_to_remove`); tasks in
    /// `new_settings.tasks` replace the tasks with the same keys and add new ones, as Databricks merges them.
    public func update(id: Int64, newSettings: [String: JSONValue], fieldsToRemove: [String]) async throws {
        var settings = try await get(id: id).settings
        for (key, value) in newSettings where key != "tasks" { settings[key] = value }
        if case .array(let updated)? = newSettings["tasks"] {
            var tasks: [JSONValue] = []
            if case .array(let existing)? = settings["tasks"] { tasks = existing }
            for task in updated {
                let key = JobValidation.taskKey(task)
                if let k = tasks.firstIndex(where: { JobValidation.taskKey($0) == key }) { tasks[k] = task } else { tasks.append(task) }
            }
            settings["tasks"] = .array(tasks)
        }
        for field in fieldsToRemove {
            if field.hasPrefix("tasks/"), case .array(let tasks)? = settings["tasks"] {
                let key = String(field.dropFirst("tasks/".count))
                settings["tasks"] = .array(tasks.filter { JobValidation.taskKey($0) != key })
            } else {
                settings.removeValue(forKey: field)
            }
        }
        try await reset(id: id, settings: settings)
    }

    public func delete(id: Int64) async throws {
        _ = try await get(id: id)
        try await database.write { sql in try await sql.raw("DELETE FROM jobs WHERE job_id = \(bind: id)").run() }
    }

    static func name(_ settings: [String: JSONValue]) -> String {
        if case .string(let name)? = settings["name"] { return name }
        return "Untitled"
    }

    static func job(_ row: any SQLRow) throws -> Job {
        let text = try row.decode(column: "settings", as: String.self)
        guard case .object(let settings) = try JSONValue.parse(Array(text.utf8)) else { throw KilnError(.internalError, "Stored job settings are not an object") }
        return Job(jobID: try row.decode(column: "job_id", as: Int64.self), creator: try row.decode(column: "creator", as: String?.self),
                   createdTime: try row.decode(column: "created_time", as: Int64.self), settings: settings)
    }
}

/// The checks a job definition passes before it is stored.
public enum JobValidation {
    static let taskTypes = ["notebook_task", "spark_python_task", "python_wheel_task", "condition_task", "run_job_task", "for_each_task",
                            "sql_task", "shell_command_task", "kiln_task", "spark_submit_task"]
    /// Databricks task types Kiln knows but cannot run: refused at create rather than failing every run.
    static let unsupported = ["spark_jar_task", "pipeline_task", "dbt_task", "dbt_cloud_task", "dashboard_task",
                              "power_bi_task", "clean_rooms_notebook_task", "gen_ai_compute_task"]
    static let conditionOps = ["EQUAL_TO", "NOT_EQUAL", "GREATER_THAN", "GREATER_THAN_OR_EQUAL", "LESS_THAN", "LESS_THAN_OR_EQUAL"]
    static let runIf = ["ALL_SUCCESS", "ALL_DONE", "NONE_FAILED", "AT_LEAST_ONE_SUCCESS", "ALL_FAILED", "AT_LEAST_ONE_FAILED"]

    static func taskKey(_ task: JSONValue) -> String? {
        if case .object(let o) = task, case .string(let key)? = o["task_key"] { return key }
        return nil
    }

    /// Databricks' documented limits: a job name of 4096 characters, a description of 27,700; tags as on clusters
    /// (key 127, value 255 characters), at most 25 of them.
    static let maxName = 4096, maxDescription = 27_700, maxTagKey = 127, maxTagValue = 255, maxTags = 25

    /// - Throws: `INVALID_PARAMETER_VALUE` with the first problem found.
    public static func check(_ settings: [String: JSONValue]) throws {
        for (field, limit) in [("name", maxName), ("description", maxDescription)] {
            switch settings[field] {
            case nil, .null?: break
            case .string(let text)?: try TextLimit.check(text, field, max: limit)
            default: throw KilnError.invalid("'\(field)' must be a string")
            }
        }
        if let value = settings["tags"], value != .null {
            guard case .object(let tags) = value else { throw KilnError.invalid("'tags' must be an object of key: value") }
            guard tags.count <= maxTags else { throw KilnError.invalid("'tags' has \(tags.count) entries; the limit is \(maxTags)") }
            for (key, tagValue) in tags {
                try TextLimit.check(key, "tags key", max: maxTagKey)
                guard case .string(let text) = tagValue else { throw KilnError.invalid("Tag '\(key.prefix(40))' must have a string value") }
                try TextLimit.check(text, "tags['\(key.prefix(40))']", max: maxTagValue)
            }
        }
        var tasks: [[String: JSONValue]] = []
        if let value = settings["tasks"] {
            guard case .array(let items) = value else { throw KilnError.invalid("tasks must be a list") }
            for item in items {
                guard case .object(let task) = item else { throw KilnError.invalid("Every task must be an object") }
                tasks.append(task)
            }
        }
        var keys: [String] = []
        for task in tasks {
            guard let key = taskKey(.object(task)), key.range(of: "^[A-Za-z0-9_-]{1,100}$", options: .regularExpression) != nil else {
                throw KilnError.invalid("Every task needs a task_key of 1–100 letters, digits, '-' or '_'")
            }
            guard !keys.contains(key) else { throw KilnError.invalid("Task key '\(key)' is used twice") }
            keys.append(key)
            try checkType(task, key)
            if let value = task["run_if"] {
                guard case .string(let rule) = value, runIf.contains(rule) else {
                    throw KilnError.invalid("Task '\(key)': run_if must be one of \(runIf.joined(separator: ", "))")
                }
            }
        }
        // Dependencies: known keys, no self-loops, no cycles.
        var edges: [String: [String]] = [:]
        for task in tasks {
            let key = taskKey(.object(task))!
            var parents: [String] = []
            if case .array(let deps)? = task["depends_on"] {
                for dep in deps {
                    guard let parent = taskKey(dep) else { throw KilnError.invalid("Task '\(key)': every depends_on entry needs a task_key") }
                    guard keys.contains(parent) else { throw KilnError.invalid("Task '\(key)' depends on unknown task '\(parent)'") }
                    guard parent != key else { throw KilnError.invalid("Task '\(key)' depends on itself") }
                    parents.append(parent)
                }
            }
            edges[key] = parents
        }
        if let cycle = findCycle(keys, edges) {
            throw KilnError.invalid("The tasks' dependencies form a cycle: \(cycle.joined(separator: " → "))")
        }
        for task in tasks {
            let key = taskKey(.object(task))!
            for ref in referencedTasks(.object(task)) where !keys.contains(ref) {
                throw KilnError.invalid("Task '\(key)' refers to unknown task '\(ref)' in a {{tasks.\(ref)…}} reference")
            }
        }
        if let value = settings["parameters"] {
            guard case .array(let params) = value, params.allSatisfy({ if case .object(let p) = $0, case .string? = p["name"] { return true } else { return false } }) else {
                throw KilnError.invalid("parameters must be a list of {name, default}")
            }
        }
        if let value = settings["max_concurrent_runs"] {
            guard case .number(let n) = value, let count = Int(n), count >= 1 else { throw KilnError.invalid("max_concurrent_runs must be at least 1") }
        }
        if let value = settings["schedule"] {
            guard case .object(let schedule) = value, case .string(let cron)? = schedule["quartz_cron_expression"] else {
                throw KilnError.invalid("schedule needs quartz_cron_expression")
            }
            try QuartzCron.check(cron)
            if case .string(let zone)? = schedule["timezone_id"], TimeZone(identifier: zone) == nil {
                throw KilnError.invalid("schedule.timezone_id '\(zone)' is not a time zone (use e.g. UTC or Europe/Amsterdam)")
            }
            if let status = schedule["pause_status"], status != .string("PAUSED"), status != .string("UNPAUSED") {
                throw KilnError.invalid("schedule.pause_status must be PAUSED or UNPAUSED")
            }
        }
    }

    static func checkType(_ task: [String: JSONValue], _ key: String) throws {
        if let other = unsupported.first(where: { task[$0] != nil }) {
            throw KilnError.invalid("Task '\(key)': Kiln does not run \(other) (it runs \(taskTypes.joined(separator: ", ")))")
        }
        let types = taskTypes.filter { task[$0] != nil }
        guard types.count == 1 else {
            throw KilnError.invalid(types.isEmpty ? "Task '\(key)' has no task type (one of \(taskTypes.joined(separator: ", ")))"
                                                  : "Task '\(key)' has several task types (\(types.joined(separator: ", "))); give one")
        }
        switch types[0] {
        case "condition_task":
            guard case .object(let c)? = task["condition_task"], case .string(let op)? = c["op"], conditionOps.contains(op) else {
                throw KilnError.invalid("Task '\(key)': condition_task.op must be one of \(conditionOps.joined(separator: ", "))")
            }
        case "python_wheel_task":
            guard case .object(let w)? = task["python_wheel_task"], w["package_name"] == .string("kiln") else {
                throw KilnError.invalid("Task '\(key)': Kiln runs python_wheel_task only for package_name \"kiln\" (its native tasks); run other wheels from a spark_python_task")
            }
            _ = try NativeTask.from(task)
        case "kiln_task":
            _ = try NativeTask.from(task)
        case "for_each_task":
            guard case .object(let f)? = task["for_each_task"], f["inputs"] != nil, case .object(let inner)? = f["task"] else {
                throw KilnError.invalid("Task '\(key)': for_each_task needs inputs and a task")
            }
            guard let innerKey = taskKey(.object(inner)) else { throw KilnError.invalid("Task '\(key)': the for_each_task's task needs a task_key") }
            guard inner["for_each_task"] == nil else { throw KilnError.invalid("Task '\(key)': for_each_task cannot nest another for_each_task") }
            try checkType(inner, innerKey)
        default: break
        }
    }

    /// Task keys that `{{tasks.<key>.…}}` references name in a task.
    static func referencedTasks(_ value: JSONValue) -> [String] {
        switch value {
        case .string(let s):
            var out: [String] = []
            var rest = Substring(s)
            while let r = rest.range(of: "{{") {
                rest = rest[r.upperBound...]
                let inner = rest.prefix { $0 != "}" }.trimmingCharacters(in: .whitespaces)
                let parts = inner.split(separator: ".")
                if parts.count >= 2, parts[0] == "tasks" { out.append(String(parts[1])) }
            }
            return out
        case .array(let items): return items.flatMap(referencedTasks)
        case .object(let o): return o.values.flatMap(referencedTasks)
        default: return []
        }
    }

    /// A dependency cycle (as task keys, first repeated at the end), if any: depth-first search in key order.
    static func findCycle(_ keys: [String], _ parents: [String: [String]]) -> [String]? {
        var state: [String: Int] = [:]  // 1: on the path, 2: done
        var path: [String] = []
        func visit(_ key: String) -> [String]? {
            state[key] = 1
            path.append(key)
            for parent in parents[key] ?? [] {
                if state[parent] == 1 { return Array(path[path.firstIndex(of: parent)!...]) + [parent] }
                if state[parent] == nil, let cycle = visit(parent) { return cycle }
            }
            path.removeLast()
            state[key] = 2
            return nil
        }
        for key in keys where state[key] == nil {
            if let cycle = visit(key) { return cycle }
        }
        return nil
    }
}

/// Quartz cron expressions as Databricks takes them: seconds minutes hours day-of-month month day-of-week [year].
public enum QuartzCron {
    static let months = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    static let days = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

    /// - Throws: `INVALID_PARAMETER_VALUE` naming the field that is wrong.
    public static func check(_ expression: String) throws {
        let fields = expression.split(separator: " ", omittingEmptySubsequences: true).map { String($0).uppercased() }
        guard fields.count == 6 || fields.count == 7 else {
            throw KilnError.invalid("Invalid Quartz cron expression '\(expression)': it needs 6 or 7 fields (seconds minutes hours day-of-month month day-of-week [year]), got \(fields.count)")
        }
        let names = ["seconds", "minutes", "hours", "day-of-month", "month", "day-of-week", "year"]
        let ranges = [0...59, 0...59, 0...23, 1...31, 1...12, 1...7, 1970...2099]
        for (k, field) in fields.enumerated() {
            guard valid(field, k, ranges[k]) else {
                throw KilnError.invalid("Invalid Quartz cron expression '\(expression)': bad \(names[k]) field '\(field)'")
            }
        }
        guard (fields[3] == "?") != (fields[5] == "?") else {
            throw KilnError.invalid("Invalid Quartz cron expression '\(expression)': exactly one of day-of-month and day-of-week must be '?'")
        }
    }

    static func valid(_ field: String, _ k: Int, _ range: ClosedRange<Int>) -> Bool {
        if field == "?" { return k == 3 || k == 5 }
        if k == 3, field == "L" || field == "LW" || field.range(of: "^L-[0-9]{1,2}$", options: .regularExpression) != nil { return true }
        if k == 3, field.hasSuffix("W"), let day = Int(field.dropLast()) { return range.contains(day) }
        if k == 5, field.hasSuffix("L"), field.count > 1 { return value(String(field.dropLast()), k).map(range.contains) ?? false }
        if k == 5, field.contains("#") {
            let parts = field.split(separator: "#").map(String.init)
            guard parts.count == 2, let day = value(parts[0], k), let nth = Int(parts[1]) else { return false }
            return range.contains(day) && (1...5).contains(nth)
        }
        return field.split(separator: ",", omittingEmptySubsequences: false).allSatisfy { item in
            let stepParts = item.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard stepParts.count <= 2 else { return false }
            if stepParts.count == 2 { guard let step = Int(stepParts[1]), step >= 1 else { return false } }
            let base = stepParts[0]
            if base == "*" { return true }
            let bounds = base.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            guard (1...2).contains(bounds.count) else { return false }
            let values = bounds.map { value($0, k) }
            guard values.allSatisfy({ $0.map(range.contains) ?? false }) else { return false }
            return values.count == 1 || values[0]! <= values[1]!
        }
    }

    static func value(_ text: String, _ k: Int) -> Int? {
        if let n = Int(text) { return n }
        if k == 4, let m = months.firstIndex(of: text) { return m + 1 }
        if k == 5, let d = days.firstIndex(of: text) { return d + 1 }
        return nil
    }
}

extension QuartzCron {
    /// A parsed expression that computes fire times in a time zone (what the scheduler will step through).
    public struct Schedule: Sendable {
        let seconds: Set<Int>, minutes: Set<Int>, hours: Set<Int>, months: Set<Int>, years: Set<Int>?
        let dayOfMonth: String, dayOfWeek: String
        let timeZone: TimeZone

        /// - Throws: `INVALID_PARAMETER_VALUE` as `check` does, or for an unknown time zone.
        public init(_ expression: String, timeZone identifier: String = "UTC") throws {
            try QuartzCron.check(expression)
            guard let zone = TimeZone(identifier: identifier) else { throw KilnError.invalid("'\(identifier)' is not a time zone") }
            let f = expression.split(separator: " ", omittingEmptySubsequences: true).map { String($0).uppercased() }
            seconds = QuartzCron.values(f[0], 0, 0...59)
            minutes = QuartzCron.values(f[1], 1, 0...59)
            hours = QuartzCron.values(f[2], 2, 0...23)
            months = QuartzCron.values(f[4], 4, 1...12)
            years = f.count == 7 ? QuartzCron.values(f[6], 6, 1970...2099) : nil
            dayOfMonth = f[3]
            dayOfWeek = f[5]
            timeZone = zone
        }

        /// The first fire time strictly after `date`, or nil when there is none (a past year).
        public func next(after date: Date) -> Date? {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = timeZone
            var t = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date.addingTimeInterval(1))
            func normalize() -> Bool {
                guard let d = calendar.date(from: t) else { return false }
                t = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: d)
                return true
            }
            for _ in 0..<200_000 {
                guard let year = t.year, let month = t.month, let day = t.day, let hour = t.hour, let minute = t.minute, let second = t.second else { return nil }
                if let years, !years.contains(year) {
                    guard let later = years.filter({ $0 > year }).min() else { return nil }
                    t = DateComponents(year: later, month: 1, day: 1, hour: 0, minute: 0, second: 0)
                    continue
                }
                if !months.contains(month) {
                    t = DateComponents(year: year, month: month + 1, day: 1, hour: 0, minute: 0, second: 0)
                    guard normalize() else { return nil }
                    continue
                }
                if !dayMatches(year, month, day, calendar) {
                    t = DateComponents(year: year, month: month, day: day + 1, hour: 0, minute: 0, second: 0)
                    guard normalize() else { return nil }
                    continue
                }
                if !hours.contains(hour) {
                    t = DateComponents(year: year, month: month, day: day, hour: hour + 1, minute: 0, second: 0)
                    guard normalize() else { return nil }
                    continue
                }
                if !minutes.contains(minute) {
                    t = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute + 1, second: 0)
                    guard normalize() else { return nil }
                    continue
                }
                if !seconds.contains(second) {
                    t = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second + 1)
                    guard normalize() else { return nil }
                    continue
                }
                guard let fire = calendar.date(from: t) else { return nil }
                // A wall time skipped by a daylight-saving jump maps elsewhere: take the next matching time instead.
                let back = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: fire)
                if back.hour == hour, back.minute == minute, back.day == day, fire > date { return fire }
                t = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second + 1)
                guard normalize() else { return nil }
            }
            return nil
        }

        func dayMatches(_ year: Int, _ month: Int, _ day: Int, _ calendar: Calendar) -> Bool {
            let first = calendar.date(from: DateComponents(year: year, month: month, day: 1))!
            let length = calendar.range(of: .day, in: .month, for: first)!.count
            let weekday = calendar.component(.weekday, from: calendar.date(from: DateComponents(year: year, month: month, day: day))!)  // 1 = Sunday
            if dayOfMonth != "?" {
                let f = dayOfMonth
                if f == "L" { return day == length }
                if f.hasPrefix("L-"), let offset = Int(f.dropFirst(2)) { return day == length - offset }
                if f == "LW" || f.hasSuffix("W") {
                    let target = f == "LW" ? length : Int(f.dropLast())!
                    return day == nearestWeekday(target, length, year, month, calendar)
                }
                return QuartzCron.values(f, 3, 1...31).contains(day)
            }
            let f = dayOfWeek
            if f.hasSuffix("L"), f.count > 1, let target = QuartzCron.value(String(f.dropLast()), 5) {
                return weekday == target && day + 7 > length
            }
            if f.contains("#") {
                let parts = f.split(separator: "#")
                guard let target = QuartzCron.value(String(parts[0]), 5), let nth = Int(parts[1]) else { return false }
                return weekday == target && (day - 1) / 7 + 1 == nth
            }
            return QuartzCron.values(f, 5, 1...7).contains(weekday)
        }

        /// Quartz's `W`: the weekday nearest to `target` within the month.
        func nearestWeekday(_ target: Int, _ length: Int, _ year: Int, _ month: Int, _ calendar: Calendar) -> Int {
            let day = min(target, length)
            let weekday = calendar.component(.weekday, from: calendar.date(from: DateComponents(year: year, month: month, day: day))!)
            switch weekday {
            case 7: return day == 1 ? 3 : day - 1           // Saturday → Friday (or Monday the 3rd)
            case 1: return day == length ? day - 2 : day + 1  // Sunday → Monday (or Friday before the month's end)
            default: return day
            }
        }
    }

    /// The numbers a plain field (lists, ranges, steps, names, `*`) allows.
    static func values(_ field: String, _ k: Int, _ range: ClosedRange<Int>) -> Set<Int> {
        if field == "*" || field == "?" { return Set(range) }
        var out = Set<Int>()
        for item in field.split(separator: ",") {
            let parts = item.split(separator: "/").map(String.init)
            let step = parts.count == 2 ? Int(parts[1]) ?? 1 : 1
            var low = range.lowerBound, high = range.upperBound
            if parts[0] != "*" {
                let bounds = parts[0].split(separator: "-").map { value(String($0), k) ?? range.lowerBound }
                low = bounds[0]
                high = bounds.count == 2 ? bounds[1] : (parts.count == 2 ? range.upperBound : bounds[0])
            }
            var v = low
            while v <= high { out.insert(v); v += step }
        }
        return out
    }
}
