import ArgumentParser
import WispCore

/// Runs a verb over several instance names as docker and multipass do: every name is tried,
/// each failure is printed as it happens, and the exit status is the failure's (1, or 64 for
/// a usage error) when any failed.
enum EachInstance {
    static func run(_ names: [String], _ body: (String) async throws -> Void) async throws {
        var failures: [any Error] = []
        for name in names {
            do {
                try await body(name)
            } catch {
                // One name: the error goes to the common handler as it is.
                if names.count == 1 { throw error }
                ErrorReport.print(error)
                failures.append(error)
            }
        }
        if let first = failures.first {
            throw ExitCode(ErrorReport.status(first))
        }
    }
}
