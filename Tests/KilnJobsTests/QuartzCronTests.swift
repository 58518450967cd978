import Foundation
import KilnCore
import KilnJobs
import Testing

@Suite("Quartz cron")
struct QuartzCronTests {
    func fires(_ expression: String, zone: String = "UTC", after: String, count: Int = 3) throws -> [String] {
        let schedule = try QuartzCron.Schedule(expression, timeZone: zone)
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: zone)
        var at = formatter.date(from: after)!
        var out: [String] = []
        for _ in 0..<count {
            guard let next = schedule.next(after: at) else { break }
            out.append(formatter.string(from: next))
            at = next
        }
        return out
    }

    @Test("fire times of common expressions")
    func common() throws {
        #expect(try fires("0 30 6 ? * MON-FRI", after: "2026-11-27T07:00:00Z") == ["2026-11-30T06:30:00Z", "2026-12-01T06:30:00Z", "2026-12-02T06:30:00Z"])
        #expect(try fires("0 0/15 * * * ?", after: "2026-11-29T05:07:00Z") == ["2026-11-29T05:15:00Z", "2026-11-29T05:30:00Z", "2026-11-29T05:45:00Z"])
        #expect(try fires("0 0 0 L * ?", after: "2026-01-15T00:00:00Z") == ["2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z"])
        #expect(try fires("0 0 9 ? * 2#1", after: "2026-11-29T00:00:00Z", count: 2) == ["2026-12-07T09:00:00Z", "2027-01-04T09:00:00Z"])
        #expect(try fires("0 0 12 ? * 6L", after: "2026-11-01T00:00:00Z", count: 2) == ["2026-11-27T12:00:00Z", "2026-12-25T12:00:00Z"])
        // 2026-11-15 is a Sunday: 15W fires Monday the 16th.
        #expect(try fires("0 0 8 15W * ?", after: "2026-11-01T00:00:00Z", count: 1) == ["2026-11-16T08:00:00Z"])
        #expect(try fires("0 0 0 1 1 ? 2027", after: "2026-11-29T00:00:00Z", count: 2) == ["2027-01-01T00:00:00Z"])
    }

    @Test("wall-clock times in a time zone, across a daylight-saving change")
    func zones() throws {
        // Amsterdam: 02:30 does not exist on 2027-03-28 (clocks jump 02:00 → 03:00); that day is skipped.
        #expect(try fires("0 30 2 * * ?", zone: "Europe/Amsterdam", after: "2027-03-27T00:00:00+01:00")
            == ["2027-03-27T02:30:00+01:00", "2027-03-29T02:30:00+02:00", "2027-03-30T02:30:00+02:00"])
        #expect(throws: KilnError.self) { try QuartzCron.Schedule("0 0 12 * * ?", timeZone: "Mars/Base") }
    }
}
