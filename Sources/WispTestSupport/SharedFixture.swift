import Foundation
import WispCore

/// The fixture image and what umoci makes of it, built once per test process (the suites
/// share it; building takes a few seconds of umoci and skopeo).
public final class SharedFixture: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public let layout: String
    /// `umoci unpack` of the fixture (as root: real owners, devices, xattrs).
    public let judgeRecords: [String: RootFSRecord]

    private init() throws {
        directory = try TemporaryDirectory("wisp-oci-fixture")
        layout = try OCIFixture.makeLayout(in: directory.path)
        let bundle = directory.file("bundle")
        try ToolRunner.check("umoci", ["unpack", "--image", "\(layout):\(OCIFixture.tag)", bundle])
        judgeRecords = try HostTree.records("\(bundle)/rootfs")
    }

    private static let shared = Result { try SharedFixture() }

    public static func get() throws -> SharedFixture { try shared.get() }

    /// A transport's copy of the fixture made by skopeo (cached per destination).
    public func copy(to destination: String) throws {
        try ToolRunner.check("skopeo", ["copy", "--quiet", "oci:\(layout):\(OCIFixture.tag)", destination])
    }
}
