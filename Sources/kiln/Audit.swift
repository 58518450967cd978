import ArgumentParser
import Foundation
import KilnAudit
import KilnPlatform
import KilnStoreSQLite
import Logging

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Check the audit log of a Kiln home (local; reads its store, the server may be running).",
        subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Walk the audit log's hash chain; exit 1 naming the first record that was changed, removed or reordered.")
        @Option(help: "Kiln home folder (env KILN_HOME, default ~/.kiln).") var home: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let base = home.map { URL(fileURLWithPath: $0) } ?? KilnConfiguration.defaultHome(environment: ProcessInfo.processInfo.environment)
            let file = base.appendingPathComponent("kiln.db").path
            guard FileManager.default.fileExists(atPath: file) else {
                throw CLIError("\(base.path) holds no Kiln store (kiln.db); pass --home with the server's home folder")
            }
            var logger = Logger(label: "kiln")
            logger.logLevel = .error
            let database = try await SQLiteKilnDatabase.open(path: file, logger: logger)
            let result: AuditLog.Verification
            do {
                result = try await database.read { sql in try await AuditLog.verify(sql) }
            } catch {
                await database.close()
                throw CLIError("Could not read the audit log: \(error)")
            }
            await database.close()
            if json {
                var object: [String: Any] = ["checked": result.checked, "intact": result.broken == nil]
                if let broken = result.broken {
                    object["first_broken"] = ["sequence": broken.sequence, "event_id": broken.eventID, "reason": broken.reason]
                }
                try printJSON(object)
            } else if let broken = result.broken {
                FileHandle.standardError.write(Data("""
                    Audit log broken at record \(broken.sequence) (event \(broken.eventID)): \(broken.reason).
                    \(result.checked) records before it hold.\n
                    """.utf8))
            } else {
                print("Audit log intact: \(result.checked) records, each linked to the one before it.")
            }
            if result.broken != nil { throw ExitCode(1) }
        }
    }
}
