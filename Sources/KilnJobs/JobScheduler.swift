import Foundation
import KilnCore
import KilnLake

/// Schedules and triggers: on every tick each job's Quartz schedule, file-arrival, table-update, periodic and
/// continuous triggers are checked against the clock and the state kept per job (`job_trigger_state`). After
/// downtime, missed cron slots run once (the latest), not in a burst; a slot is recorded on its run (unique per job),
/// so it never runs twice, even across restarts. A trigger's first look only records what is there.
extension JobRunner {
    /// Runs `tick` every `interval` seconds until the task is canceled.
    func schedulerLoop(interval: Double) async {
        while !Task.isCancelled, context != nil {
            do { try await tick() } catch { logger.error("Scheduler tick failed", metadata: ["error": "\(error)"]) }
            try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
        }
    }

    /// Checks every job's schedule and triggers once, starting the runs that are due. Returns their ids.
    @discardableResult
    public func tick() async throws -> [Int64] {
        var started: [Int64] = []
        for job in try await jobs.all() where ["schedule", "trigger", "continuous"].contains(where: { job.settings[$0] != nil }) {
            var state = try await store.triggerState(job.jobID) ?? [:]
            let before = state
            do {
                started += try await schedule(job, &state)
                started += try await fileArrival(job, &state)
                started += try await tableUpdate(job, &state)
                started += try await periodic(job, &state)
                started += try await continuous(job, &state)
            } catch {
                logger.warning("A job trigger failed", metadata: ["kiln.job_id": "\(job.jobID)", "error": "\(error)"])
            }
            if state != before { try await store.setTriggerState(job.jobID, state) }
        }
        return started
    }

    func start(_ job: Job, trigger: String, slot: Int64? = nil) async throws -> Int64? {
        var request = RunRequest(jobID: job.jobID)
        request.trigger = trigger
        request.scheduleSlot = slot
        do {
            return try await runNow(request).runID
        } catch let error as KilnError where error.code == .resourceAlreadyExists {
            return nil  // this slot already ran
        }
    }

    static func number(_ value: JSONValue?) -> Int64? {
        if case .number(let n)? = value { return Int64(n) ?? Double(n).map { Int64($0) } }
        return nil
    }

    static func paused(_ value: JSONValue?) -> Bool {
        if case .object(let o)? = value, o["pause_status"] == .string("PAUSED") { return true }
        return false
    }

    func schedule(_ job: Job, _ state: inout [String: JSONValue]) async throws -> [Int64] {
        guard case .object(let s)? = job.settings["schedule"], !Self.paused(job.settings["schedule"]),
              case .string(let expression)? = s["quartz_cron_expression"] else { return [] }
        var zone = "UTC"
        if case .string(let z)? = s["timezone_id"] { zone = z }
        let now = clock.nowMillis()
        let key = "\(expression)|\(zone)"
        guard state["cron"] == .string(key), let last = Self.number(state["cron_last"]) else {
            state["cron"] = .string(key)
            state["cron_last"] = .number(String(now))
            return []
        }
        let cron = try QuartzCron.Schedule(expression, timeZone: zone)
        let nowDate = Date(timeIntervalSince1970: Double(now) / 1000)
        guard var due = cron.next(after: Date(timeIntervalSince1970: Double(last) / 1000)), due <= nowDate else { return [] }
        // Missed slots collapse into the latest one.
        var steps = 0
        while steps < 100_000, let next = cron.next(after: due), next <= nowDate {
            due = next
            steps += 1
        }
        let slot = Int64((due.timeIntervalSince1970 * 1000).rounded())
        let id = try await start(job, trigger: "PERIODIC", slot: slot)
        state["cron_last"] = .number(String(slot))
        return id.map { [$0] } ?? []
    }

    func fileArrival(_ job: Job, _ state: inout [String: JSONValue]) async throws -> [Int64] {
        guard case .object(let trigger)? = job.settings["trigger"], !Self.paused(job.settings["trigger"]),
              case .object(let f)? = trigger["file_arrival"], case .string(var url)? = f["url"] else { return [] }
        if url.hasPrefix("file://") { url = String(url.dropFirst("file://".count)) }
        let now = clock.nowMillis()
        var files: [String: Int64] = [:]
        if let walker = FileManager.default.enumerator(at: URL(fileURLWithPath: url), includingPropertiesForKeys: [.contentModificationDateKey, .isRegularFileKey]) {
            for case let file as URL in walker where files.count < 10_000 {
                let values = try? file.resourceValues(forKeys: [.contentModificationDateKey, .isRegularFileKey])
                guard values?.isRegularFile == true, !file.lastPathComponent.hasPrefix(".") else { continue }
                files[file.path] = Int64(((values?.contentModificationDate ?? Date()).timeIntervalSince1970 * 1000).rounded())
            }
        }
        guard case .array(let seenList)? = state["files_seen"] else {
            state["files_seen"] = .array(files.keys.sorted().map(JSONValue.string))
            return []
        }
        let seen = Set(seenList.compactMap { if case .string(let s) = $0 { return s } else { return nil } })
        let fresh = files.filter { !seen.contains($0.key) }
        guard !fresh.isEmpty else { return [] }
        let minBetween = (Self.number(f["min_time_between_triggers_seconds"]) ?? 0) * 1000
        if let last = Self.number(state["files_last_trigger"]), now - last < minBetween { return [] }
        let quiet = (Self.number(f["wait_after_last_change_seconds"]) ?? 0) * 1000
        if let newest = fresh.values.max(), now - newest < quiet { return [] }
        let id = try await start(job, trigger: "FILE_ARRIVAL")
        state["files_seen"] = .array(Set(seen).union(files.keys).sorted().map(JSONValue.string))
        state["files_last_trigger"] = .number(String(now))
        return id.map { [$0] } ?? []
    }

    func tableUpdate(_ job: Job, _ state: inout [String: JSONValue]) async throws -> [Int64] {
        guard case .object(let trigger)? = job.settings["trigger"], !Self.paused(job.settings["trigger"]),
              case .object(let t)? = trigger["table_update"], let names = try JSONFields(t).strings("table_names"), !names.isEmpty else { return [] }
        guard let tablePath = context?.environment.tablePath else { return [] }
        var versions: [String: JSONValue] = [:]
        for name in names {
            let version = (try? DeltaTable.open(tablePath(name)).snapshot().version) ?? -1
            versions[name] = .number(String(version))
        }
        guard case .object(let seen)? = state["table_versions"] else {
            state["table_versions"] = .object(versions)
            return []
        }
        let updated = names.filter { versions[$0] != seen[$0] }
        let all = (try JSONFields(t).string("condition")) == "ALL_UPDATED"
        guard all ? updated.count == names.count : !updated.isEmpty else { return [] }
        let now = clock.nowMillis()
        let minBetween = (Self.number(t["min_time_between_triggers_seconds"]) ?? 0) * 1000
        if let last = Self.number(state["table_last_trigger"]), now - last < minBetween { return [] }
        let id = try await start(job, trigger: "TABLE")
        state["table_versions"] = .object(versions)
        state["table_last_trigger"] = .number(String(now))
        return id.map { [$0] } ?? []
    }

    func periodic(_ job: Job, _ state: inout [String: JSONValue]) async throws -> [Int64] {
        guard case .object(let trigger)? = job.settings["trigger"], !Self.paused(job.settings["trigger"]),
              case .object(let p)? = trigger["periodic"], let interval = Self.number(p["interval"]), interval > 0 else { return [] }
        let unit: Int64
        switch try JSONFields(p).string("unit") ?? "HOURS" {
        case "DAYS": unit = 86_400_000
        case "WEEKS": unit = 7 * 86_400_000
        default: unit = 3_600_000
        }
        let now = clock.nowMillis()
        guard let last = Self.number(state["periodic_last"]) else {
            state["periodic_last"] = .number(String(now))
            return []
        }
        guard now - last >= interval * unit else { return [] }
        let id = try await start(job, trigger: "PERIODIC")
        state["periodic_last"] = .number(String(now))
        return id.map { [$0] } ?? []
    }

    /// Continuous jobs keep one run going: a new one starts when none is active (30 s after a failed one).
    func continuous(_ job: Job, _ state: inout [String: JSONValue]) async throws -> [Int64] {
        guard job.settings["continuous"] != nil, !Self.paused(job.settings["continuous"]) else { return [] }
        let active = try await store.runs(jobID: job.jobID, activeOnly: true, completedOnly: false, runType: nil, from: nil, to: nil, limit: 1, offset: 0)
        guard active.isEmpty else { return [] }
        let now = clock.nowMillis()
        if let last = try await store.runs(jobID: job.jobID, activeOnly: false, completedOnly: true, runType: nil, from: nil, to: nil, limit: 1, offset: 0).first,
           last.result != .success, let end = last.endTime, now - end < 30_000 { return [] }
        let id = try await start(job, trigger: "CONTINUOUS")
        return id.map { [$0] } ?? []
    }
}
