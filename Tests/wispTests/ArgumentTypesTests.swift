import Foundation
import Testing
import WispCore
import WispTestSupport

/// Typed options, judged through the real binary: a bad value is a usage error (exit 64)
/// naming the valid ones, before any work; --help lists them.
@Suite struct ArgumentTypesTests {
    @Test func accelIsOneOfItsValues() throws {
        let wisp = try FSCommandTests.wisp()
        for command in [["run", "image.qcow2"], ["start", "some-instance"]] {
            let bad = try ToolRunner.run(wisp, [command[0], "--accel", "kvmm", command[1]])
            #expect(bad.status == 64, "\(command)")
            #expect(bad.stderrText.contains("'auto', 'kvm' or 'tcg'"), "\(bad.stderrText)")
            let help = try ToolRunner.check(wisp, [command[0], "--help"]).stdoutText
            // The default is the config file's accelerator, else auto: help says both.
            #expect(help.contains("(values: auto, kvm, tcg)") && help.contains("default: the config file's accelerator, else auto"), "\(command)")
        }
    }
}
