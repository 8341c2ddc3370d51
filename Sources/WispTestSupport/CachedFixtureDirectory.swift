import Foundation
import WispCore

/// A fixture built by a script into the temporary directory once per input (the test
/// image it is made from, named by `stamp`) and kept for later test runs: built into a
/// `.building-PID` directory and renamed into place when done, so a run that dies halfway
/// leaves nothing that counts; `marker` is the file whose presence means "built".
public enum CachedFixtureDirectory {
    public static func get(_ name: String, stamp: String, marker: String,
                           build: (_ directory: String) throws -> Void) throws -> String {
        let directory = FileManager.default.temporaryDirectory.path + "/\(name)/\(stamp)"
        if FileManager.default.fileExists(atPath: "\(directory)/\(marker)") { return directory }
        let building = directory + ".building-\(getpid())"
        try? FileManager.default.removeItem(atPath: building)
        try FileManager.default.createDirectory(atPath: building, withIntermediateDirectories: true)
        try build(building)
        guard FileManager.default.fileExists(atPath: "\(building)/\(marker)") else {
            throw WispError(.failed, "the \(name) fixture script made no \(marker)")
        }
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.moveItem(atPath: building, toPath: directory)
        return directory
    }
}
