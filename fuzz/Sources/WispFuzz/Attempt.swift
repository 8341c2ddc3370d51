/// Runs one step of a target. A typed refusal ends the step, not the input: the next step
/// still runs, so one input exercises every entry point it can reach.
func attempt(_ body: () throws -> Void) {
    do {
        try body()
    } catch {
        FuzzEntry.expectTyped(error, target: FuzzEntry.target?.name ?? "?")
    }
}
