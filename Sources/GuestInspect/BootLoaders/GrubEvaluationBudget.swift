import WispCore

/// What running one grub.cfg may cost Wisp. GRUB's script language can double a variable
/// with each `set a="$a$a"` and repeat a huge variable in every menu entry; a hostile
/// grub.cfg drove `wisp inspect` out of memory that way (issue 16, failures 5 and 7). Every
/// statement is a step, and every expansion is charged its bytes and words before it is
/// built, so the evaluation stops with the bound named instead of allocating it.
struct GrubEvaluationBudget: Sendable {
    /// Statements run, counting each pass through a menu entry's body.
    static let maxSteps = 200_000
    /// Bytes produced by expanding words, over the whole script. A real grub.cfg expands a
    /// few hundred kilobytes at most (a kernel command line per entry).
    static let maxExpandedBytes = 32 << 20
    /// Arguments produced by expanding words (after unquoted values split on blanks).
    static let maxExpandedWords = 1 << 20

    let source: String
    private(set) var steps = 0
    private(set) var bytes = 0
    private(set) var words = 0

    init(source: String) { self.source = source }

    mutating func step(line: Int) throws {
        steps += 1
        guard steps <= Self.maxSteps else {
            throw WispError.corrupt(source, "GRUB script line \(line)", "more than \(Self.maxSteps) steps: refusing to run further")
        }
    }

    /// Charges `count` bytes of expansion before they are built.
    mutating func chargeBytes(_ count: Int, line: Int) throws {
        let (total, overflow) = bytes.addingReportingOverflow(count)
        guard !overflow, total <= Self.maxExpandedBytes else {
            throw WispError.corrupt(source, "GRUB script line \(line)",
                                    "expanding variables would produce more than \(Self.maxExpandedBytes) bytes in all (the limit on GRUB variable expansion): refusing to run further")
        }
        bytes = total
    }

    mutating func chargeWords(_ count: Int, line: Int) throws {
        let (total, overflow) = words.addingReportingOverflow(count)
        guard !overflow, total <= Self.maxExpandedWords else {
            throw WispError.corrupt(source, "GRUB script line \(line)",
                                    "expanding words would produce more than \(Self.maxExpandedWords) arguments in all (the limit on GRUB word expansion): refusing to run further")
        }
        words = total
    }
}
