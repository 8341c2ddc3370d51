/// One libFuzzer target: a parser (or a chain of them) driven through its real entry
/// point with the input bytes.
struct FuzzTarget: Sendable {
    /// What `scripts/fuzz TARGET` calls it; also the name of its seed corpus and dictionary.
    let name: String
    /// One line for `scripts/fuzz --list`.
    let summary: String
    /// Runs the parser on `input`. Errors the parser throws are the expected outcome for
    /// hostile bytes; only a trap, a hang or unbounded memory is a finding (and an error
    /// that is not a `WispError`, see `FuzzEntry.expectTyped`).
    let run: @Sendable ([UInt8]) throws -> Void
}

/// Every target, in the order `--list` prints them.
enum FuzzTargets {
    static let all: [FuzzTarget] =
        diskImages + partitionTables + fileSystems + guest + bootConfigs + kernels + cloudInit + protocols + containers + catalog

    static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }
}
