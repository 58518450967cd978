import ArgumentParser
import Foundation
import KilnCore
import KilnFrame
import KilnLake

/// `kiln profile TABLE`: per-column statistics of a Delta table.
struct Profile: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile", abstract: "Profile a table's columns: count, nulls, distinct, min/max, mean/stddev, quantiles, histogram, top values (local only).")
    @OptionGroup var location: Table.Location
    @Option(help: "Comma-separated columns (default: every primitive column).") var columns: String?
    @Option(help: "Profile this version.") var version: Int64?
    @Flag(help: "Print JSON (with histograms and top values).") var json = false

    func run() throws {
        let table = try location.open()
        let profiles = try Table.run { () -> [ColumnProfile] in
            let plan = try table.plan(version: version)
            let wanted = columns.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
            return try Frame.read(table, plan: plan, columns: wanted).profile()
        }
        func text(_ v: Value) -> String { v == .null ? "" : v.text }
        func number(_ d: Double?) -> String { d.map { String(format: "%.6g", $0) } ?? "" }
        if json {
            var w = JSONWriter()
            w.array { w in
                for p in profiles {
                    w.object { w in
                        w.field("column", p.name)
                        w.field("type", p.type.description)
                        w.field("count", Int64(p.count))
                        w.field("nulls", Int64(p.nulls))
                        w.field("distinct", Int64(p.distinct))
                        w.key("min"); SQL.write(p.min, type: p.type, into: &w)
                        w.key("max"); SQL.write(p.max, type: p.type, into: &w)
                        w.field("mean", p.mean)
                        w.field("stddev", p.stddev)
                        w.key("quantiles"); w.array { w in p.quantiles.forEach { w.value($0) } }
                        w.key("histogram")
                        w.array { w in for bin in p.histogram { w.object { w in w.field("lower", bin.lower); w.field("count", Int64(bin.count)) } } }
                        w.key("top_values")
                        w.array { w in
                            for top in p.topValues {
                                w.object { w in
                                    w.key("value"); SQL.write(top.value, type: p.type, into: &w)
                                    w.field("count", Int64(top.count))
                                }
                            }
                        }
                    }
                }
            }
            FileHandle.standardOutput.write(Data(w.bytes + [0x0A]))
            return
        }
        printTable(["COLUMN", "TYPE", "COUNT", "NULLS", "DISTINCT", "MIN", "MAX", "MEAN", "STDDEV", "P25", "P50", "P75", "TOP"], profiles.map { p in
            [p.name, p.type.description, String(p.count), String(p.nulls), String(p.distinct), text(p.min), text(p.max), number(p.mean), number(p.stddev),
             number(p.quantiles.first), number(p.quantiles.count > 1 ? p.quantiles[1] : nil), number(p.quantiles.last),
             p.topValues.prefix(3).map { "\(text($0.value)) (\($0.count))" }.joined(separator: ", ")]
        })
    }
}
