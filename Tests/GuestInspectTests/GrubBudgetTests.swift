import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import GuestInspect

/// Issue 16, failures 5-7: a grub.cfg that makes GRUB's evaluator allocate without end. Each
/// case is Debian's grub-mkconfig output with one hostile change; each must end with an
/// error naming the bound (or a correct menu), in little time and memory.
@Suite struct GrubBudgetTests {
    static let debian = CloudImageLayouts.debianGrubCfg + "\n"

    func menu(_ text: String) throws -> GrubMenu {
        let statements = try GrubScriptParser.parse(text, source: "grub.cfg")
        return try GrubMenu(statements: statements,
                            context: .init(grubenv: [:], fileExists: { _ in false }, blsEntries: [], prefix: "/boot/grub"),
                            source: "grub.cfg")
    }

    static func maxRSSKiB() -> Int { ResourceUsage.maxResidentKiB() }

    /// Failure 5: 64 doublings of a variable would be 2^64 bytes.
    @Test func doublingAVariableStopsAtTheExpansionBudget() throws {
        let hostile = "set a=x\n" + String(repeating: "set a=\"$a$a\"\n", count: 64) + Self.debian
        let before = Self.maxRSSKiB()
        #expect {
            _ = try menu(hostile)
        } throws: { error in
            (error as? WispError)?.kind == .corrupt
                && "\(error)".contains("grub.cfg: GRUB script line")
                && "\(error)".contains("more than \(GrubEvaluationBudget.maxExpandedBytes) bytes in all (the limit on GRUB variable expansion)")
        }
        // At most a few times the 32 MiB budget, not gigabytes.
        #expect(Self.maxRSSKiB() - before < 256 << 10)
    }

    /// Failure 6: `[ ! ! ! ... -n x ]` with 200,000 `!` recursed once per `!`, copying the
    /// rest of the words each time.
    @Test func negationsAreCountedWithoutRecursion() throws {
        let bangs = String(repeating: "! ", count: 200_000)
        let odd = Self.debian + "if [ \(bangs)! -n x ]; then set default=7; fi\n"
        let before = Self.maxRSSKiB()
        let m = try menu(odd)
        // 200,001 negations of "x is not empty" is false: default keeps grub.cfg's own.
        #expect(m.environment["default"] != "7")
        let even = Self.debian + "if [ \(bangs)-n x ]; then set default=7; fi\n"
        #expect(try menu(even).environment["default"] == "7")
        #expect(Self.maxRSSKiB() - before < 256 << 10)
    }

    /// Failure 7: a 1 MB variable used unquoted in 4,000 menu entries was split again for
    /// every entry (over 10 s). It is split once; the bytes it adds to every entry's command
    /// line are charged, and the budget stops it with the bound named.
    @Test func bigVariableInManyEntriesIsSplitOnceAndCharged() throws {
        let value = (0..<50_000).map { "opt\($0)=y" }.joined(separator: " ")  // ~0.6 MB
        var hostile = "set big=\"\(value)\"\n"
        for i in 0..<4000 {
            hostile += "menuentry 'e\(i)' {\n  linux /vmlinuz root=/dev/vda1 $big\n}\n"
        }
        let start = Date()
        #expect {
            _ = try menu(hostile)
        } throws: { error in
            (error as? WispError)?.kind == .corrupt
                && ("\(error)".contains("the limit on GRUB variable expansion") || "\(error)".contains("the limit on GRUB word expansion"))
        }
        // Generous for a loaded CI machine; splitting per entry took over 10 s on an idle one.
        #expect(Date().timeIntervalSince(start) < 30)
        // Within the budget the split is shared and the entries are right.
        var fits = "set big=\"a b c\"\n"
        for i in 0..<100 { fits += "menuentry 'e\(i)' {\n  linux /vmlinuz $big\n}\n" }
        let m = try menu(fits)
        #expect(m.entries.count == 100)
        #expect(m.entries.allSatisfy { $0.arguments == ["a", "b", "c"] })
    }
}
