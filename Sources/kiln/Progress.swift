import Foundation
import KilnLake
import KilnParquet

/// A one-line progress bar with a rate and an ETA on stderr; silent when stderr is not a terminal.
struct ProgressBar {
    let total: Int
    let unit: String
    let start = Date()
    let enabled = isatty(2) == 1
    private var lastDraw = Date.distantPast

    init(total: Int, unit: String) {
        self.total = total
        self.unit = unit
    }

    mutating func update(_ done: Int, force: Bool = false) {
        guard enabled, force || Date().timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = Date()
        let elapsed = Date().timeIntervalSince(start)
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
        let width = 30
        let filled = Int(fraction * Double(width))
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = fraction > 0 ? elapsed / fraction - elapsed : 0
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let line = String(format: "\r%@ %3d%%  %@/%@ %@  %@/s  ETA %@ ", bar, Int(fraction * 100), Self.short(done), Self.short(total), unit,
                          Self.short(Int(rate)), Self.duration(eta))
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }

    static func short(_ n: Int) -> String {
        switch n {
        case ..<10_000: String(n)
        case ..<10_000_000: String(format: "%.1fk", Double(n) / 1e3)
        default: String(format: "%.1fM", Double(n) / 1e6)
        }
    }

    static func duration(_ seconds: Double) -> String {
        seconds < 60 ? String(format: "%.0fs", seconds) : String(format: "%dm%02ds", Int(seconds) / 60, Int(seconds) % 60)
    }
}

extension InputSource {
    /// `batches`, with a progress bar (with an ETA) on a terminal.
    mutating func batchesWithProgress(_ emit: (ParquetSchema, [ColumnData]) throws -> Void) throws {
        let total = progressTotal
        var bar = ProgressBar(total: total.count, unit: total.unit)
        defer { bar.finish() }
        try batches(progress: { bar.update($0) }, emit)
    }
}
