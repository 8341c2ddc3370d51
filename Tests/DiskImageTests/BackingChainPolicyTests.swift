import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import DiskImage

/// Images name other files (qcow2 backing files, external data files); those names are
/// the image author's choice, so Wisp checks every one against a policy before opening it.
/// Fixtures are made by qemu-img; a "host file" with a marker stands for /etc/shadow.
@Suite struct BackingChainPolicyTests {
    static let marker = Array("WISP-HOST-SECRET-MARKER".utf8)

    /// Two sibling directories: `host` holds a file the image must not reach, `images`
    /// holds the images.
    struct Fixture {
        let root: TemporaryDirectory
        let host: String
        let images: String
        let hostFile: String

        func image(_ name: String) -> String { images + "/" + name }
    }

    static func fixture() throws -> Fixture {
        let root = try TemporaryDirectory("chain")
        let host = root.file("host"), images = root.file("images")
        try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: false)
        let hostFile = host + "/secret.raw"
        var bytes: [UInt8] = []
        while bytes.count < 1 << 20 { bytes += marker + Array(" padding ".utf8) }
        try Data(bytes.prefix(1 << 20)).write(to: URL(fileURLWithPath: hostFile))
        return Fixture(root: root, host: host, images: images, hostFile: hostFile)
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count, let first = needle.first else { return false }
        var i = 0
        while i <= haystack.count - needle.count {
            if haystack[i] == first && Array(haystack[i..<(i + needle.count)]) == needle { return true }
            i += 1
        }
        return false
    }

    static func readAll(_ device: any BlockDevice) throws -> [UInt8] {
        try device.read(at: 0, count: Int(device.size))
    }

    /// Resolving, opening and `ImageInfo` must all refuse `path` under `policy` with
    /// `kind`, in a message naming the image and containing `words`.
    static func expectRefused(_ path: String, format: ImageFormat? = nil, _ policy: ExternalReferencePolicy,
                              _ kind: WispError.Kind, _ words: String...,
                              sourceLocation: SourceLocation = #_sourceLocation) {
        let attempts: [(String, () throws -> Void)] = [
            ("resolve", { _ = try BackingChain.resolve(path: path, format: format, policy: policy) }),
            ("open", {
                let device = try DiskImageFile.open(path, format: format, policy: policy)
                Issue.record("opened \(path); it read \(contains(try readAll(device), marker) ? "" : "no ")host data",
                             sourceLocation: sourceLocation)
            }),
            ("info", { _ = try ImageInfo.read(path: path, format: format, policy: policy) }),
        ]
        for (what, attempt) in attempts {
            do {
                try attempt()
                Issue.record("\(what) of \(path) under \(policy) was not refused", sourceLocation: sourceLocation)
            } catch let error as WispError {
                #expect(error.kind == kind, "\(what): \(error.kind): \(error.message)", sourceLocation: sourceLocation)
                #expect(error.message.contains((path as NSString).lastPathComponent), "\(error.message)",
                        sourceLocation: sourceLocation)
                for w in words {
                    #expect(error.message.contains(w), "'\(error.message)' should say '\(w)'", sourceLocation: sourceLocation)
                }
            } catch {
                Issue.record("\(what): not a WispError: \(error)", sourceLocation: sourceLocation)
            }
        }
    }

    // MARK: - References out of the image's directory

    @Test func absoluteBackingToAHostFile() throws {
        let f = try Self.fixture()
        let evil = f.image("evil.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-b", f.hostFile, "-F", "raw", evil)
        // QEMU would follow it: the guest would read the host file.
        let qemuSees = f.root.file("qemu.raw")
        try Qemu.img("convert", "-O", "raw", evil, qemuSees)
        #expect(Self.contains(try Self.readAll(FileBlockDevice(path: qemuSees)), Self.marker))

        Self.expectRefused(evil, .selfContained, .permissionDenied,
                           "qcow2 backing file \"\(f.hostFile)\" refers to another file", "self-contained")
        Self.expectRefused(evil, .confinedToImageDirectory, .permissionDenied,
                           "qcow2 backing file \"\(f.hostFile)\"", "outside", f.images)
        // Allowed explicitly, it is an ordinary chain.
        let chain = try BackingChain.resolve(path: evil, policy: .confined(allowedDirectories: [f.host]))
        #expect(chain.members.map(\.path) == [evil, f.hostFile])
        #expect(chain.members.map(\.format) == [.qcow2, .raw])
        #expect(chain.members[1].formatSource == .header)
        try Qemu.compare(evil, qemuSees)
    }

    /// The exact sentence the brief promises for images from outside.
    @Test func selfContainedRefusalNamesFieldAndValue() throws {
        let f = try Self.fixture()
        let evil = f.image("evil.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-u", "-b", "/etc/shadow", "-F", "raw", evil, "1M")
        #expect(throws: WispError(.permissionDenied, "\(evil): qcow2 backing file \"/etc/shadow\" refers to another file; images from outside Wisp must be self-contained")) {
            _ = try BackingChain.resolve(path: evil, policy: .selfContained)
        }
        // Under any policy: /etc is outside the directory.
        Self.expectRefused(evil, .confinedToImageDirectory, .permissionDenied, "/etc/shadow", "outside")
    }

    @Test func relativeBackingClimbingOut() throws {
        let f = try Self.fixture()
        let sub = f.images + "/vm"
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: false)
        let evil = sub + "/evil.qcow2"
        try Qemu.img("create", "-f", "qcow2", "-b", "../../host/secret.raw", "-F", "raw", evil)
        Self.expectRefused(evil, .selfContained, .permissionDenied, "\"../../host/secret.raw\"", "self-contained")
        Self.expectRefused(evil, .confinedToImageDirectory, .permissionDenied,
                           "\"../../host/secret.raw\"", "resolves to \(f.hostFile)", "outside")
        // Even allowing the images directory does not let ../../host through.
        Self.expectRefused(evil, .confined(allowedDirectories: [f.images]), .permissionDenied, "outside")

        // A base one directory up is fine once that directory is allowed.
        let base = f.image("base.qcow2")
        try Qemu.img("create", "-f", "qcow2", base, "4M")
        try Qemu.io(base, "write -P 0x5b 0 1M")
        let overlay = sub + "/overlay.qcow2"
        try Qemu.img("create", "-f", "qcow2", "-b", "../base.qcow2", "-F", "qcow2", overlay)
        Self.expectRefused(overlay, .confinedToImageDirectory, .permissionDenied, "\"../base.qcow2\"", "outside")
        let chain = try BackingChain.resolve(path: overlay, policy: .confined(allowedDirectories: [f.images]))
        #expect(chain.members.map(\.path) == [overlay, base])
        #expect(chain.members[1].name == sub + "/../base.qcow2")
        let device = try DiskImageFile.open(overlay, policy: .confined(allowedDirectories: [f.images]))
        #expect(try device.read(at: 0, count: 4096) == [UInt8](repeating: 0x5b, count: 4096))
    }

    @Test func jsonAndProtocolNames() throws {
        let f = try Self.fixture()
        let json = f.image("json.qcow2")
        let spec = #"json:{"driver":"raw","file":{"driver":"file","filename":"\#(f.hostFile)"}}"#
        try Qemu.img("create", "-f", "qcow2", "-u", "-b", spec, "-F", "raw", json, "1M")
        Self.expectRefused(json, .selfContained, .permissionDenied, "qcow2 backing file \"json:", "self-contained")
        Self.expectRefused(json, .confined(allowedDirectories: [f.host]), .permissionDenied,
                           "qcow2 backing file \"json:", "json: block specification")
        for (name, proto) in [("nbd:localhost:10809", "nbd:"), ("file:\(f.hostFile)", "file:"),
                              ("http://example.com/x.img", "http:")] {
            let image = f.image("proto-\(proto.dropLast()).qcow2")
            try Qemu.img("create", "-f", "qcow2", "-u", "-b", name, "-F", "raw", image, "1M")
            Self.expectRefused(image, .selfContained, .permissionDenied, "\"\(name)\"", "self-contained")
            Self.expectRefused(image, .confined(allowedDirectories: [f.host]), .permissionDenied,
                               "\"\(name)\"", "\"\(proto)\" protocol")
        }
    }

    @Test func symlinkOutOfTheDirectory() throws {
        let f = try Self.fixture()
        try FileManager.default.createSymbolicLink(atPath: f.image("link.raw"), withDestinationPath: f.hostFile)
        let evil = f.image("evil.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-u", "-b", "link.raw", "-F", "raw", evil, "1M")
        Self.expectRefused(evil, .confinedToImageDirectory, .permissionDenied,
                           "\"link.raw\"", "resolves to \(f.hostFile)", "outside")
        // A link that stays inside the directory is followed, and the member is its target.
        let base = f.image("base.raw")
        try Qemu.img("create", "-f", "raw", base, "1M")
        try FileManager.default.createSymbolicLink(atPath: f.image("inner.raw"), withDestinationPath: "base.raw")
        let fine = f.image("fine.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-b", "inner.raw", "-F", "raw", fine)
        let chain = try BackingChain.resolve(path: fine, policy: .confinedToImageDirectory)
        #expect(chain.members[1].path == base)
        #expect(chain.members[1].name == f.image("inner.raw"))
    }

    /// Devices, FIFOs, directories and system files never back an image, and a FIFO is
    /// refused without being opened (opening one for reading would block forever, which the
    /// time limit turns into a failure). The limit is generous: alone the test takes 0.1 s,
    /// but in the full run both of the cooperative pool's threads can be held for minutes by
    /// tests waiting on TCG boots, and the limit counts that wait (CI once hit 2 minutes).
    @Test(.timeLimit(.minutes(20))) func specialFilesAndSystemPaths() throws {
        let f = try Self.fixture()
        let fifo = f.image("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        try FileManager.default.createDirectory(atPath: f.image("dir"), withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: f.image("zero-link"), withDestinationPath: "/dev/zero")
        let cases: [(backing: String, words: [String])] = [
            ("fifo", ["a FIFO"]), ("dir", ["a directory"]), ("/dev/zero", ["under /dev"]),
            ("zero-link", ["resolves to /dev/zero", "under /dev"]), ("/proc/self/environ", ["under /proc"]),
            ("/sys", ["under /sys"]),
        ]
        for (i, c) in cases.enumerated() {
            let image = f.image("special\(i).qcow2")
            try Qemu.img("create", "-f", "qcow2", "-u", "-b", c.backing, "-F", "raw", image, "1M")
            // Allowing / changes nothing for these.
            for policy in [ExternalReferencePolicy.confinedToImageDirectory, .confined(allowedDirectories: ["/"])] {
                for w in c.words {
                    Self.expectRefused(image, policy, .permissionDenied, "qcow2 backing file \"\(c.backing)\"", w)
                }
            }
            Self.expectRefused(image, .selfContained, .permissionDenied, "self-contained")
        }
        // The image itself may not be a FIFO either (a usage error, nothing opened).
        #expect(throws: WispError.self) { _ = try BackingChain.resolve(path: fifo, policy: .confinedToImageDirectory) }
    }

    @Test func missingMembersAreNamed() throws {
        let f = try Self.fixture()
        let image = f.image("orphan.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-u", "-b", "gone.qcow2", "-F", "qcow2", image, "1M")
        Self.expectRefused(image, .confinedToImageDirectory, .notFound, "qcow2 backing file \"gone.qcow2\"",
                           f.image("gone.qcow2"), "does not exist")
        Self.expectRefused(f.image("nothing.qcow2"), .confinedToImageDirectory, .notFound, "no such file")
    }

    // MARK: - External data files

    @Test func externalDataFiles() throws {
        let f = try Self.fixture()
        // A local image with its data file beside it reads like qemu-img reads it.
        let local = f.image("ext.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-o", "data_file=\(f.image("ext.data"))", local, "4M")
        try Qemu.io(local, "write -P 0x6d 0 100k", "write -P 0x6e 1M 64k", "write -z 2M 64k")
        let chain = try BackingChain.resolve(path: local, policy: .confinedToImageDirectory)
        #expect(chain.members.count == 1)
        #expect(chain.top.dataFile?.path == f.image("ext.data"))
        #expect(chain.top.dataFile?.recordedName == f.image("ext.data"))
        #expect(chain.top.dataFile?.isRaw == false)
        try Qemu.expectReadsIdentical(local, in: f.root)
        #expect(throws: WispError.self) { _ = try DiskImageFile.open(local, writable: true) }
        let info = try ImageInfo.read(path: local)
        #expect(info.dataFile == f.image("ext.data"))
        #expect(info.text.contains("data file: \(f.image("ext.data"))"))
        // From outside, the same image is refused: it is not self-contained.
        Self.expectRefused(local, .selfContained, .permissionDenied,
                           "qcow2 external data file \"\(f.image("ext.data"))\"", "self-contained")

        // A data file that is a host file: data_file_raw maps every guest byte onto it.
        let evil = f.image("evil-data.qcow2")
        let stolen = f.host + "/stolen.raw"
        try Qemu.img("create", "-f", "qcow2", "-o", "data_file=\(stolen),data_file_raw=on", evil, "1M")
        try FileManager.default.removeItem(atPath: stolen)
        try FileManager.default.copyItem(atPath: f.hostFile, toPath: stolen)
        let qemuSees = f.root.file("qemu.raw")
        try Qemu.img("convert", "-O", "raw", evil, qemuSees)
        #expect(Self.contains(try Self.readAll(FileBlockDevice(path: qemuSees)), Self.marker))
        Self.expectRefused(evil, .selfContained, .permissionDenied, "qcow2 external data file \"\(stolen)\"", "self-contained")
        Self.expectRefused(evil, .confinedToImageDirectory, .permissionDenied,
                           "qcow2 external data file \"\(stolen)\"", "outside")
        // Allowed explicitly, Wisp reads what QEMU reads.
        let allowed = try DiskImageFile.open(evil, policy: .confined(allowedDirectories: [f.host]))
        #expect(try Self.readAll(allowed) == (try Self.readAll(FileBlockDevice(path: qemuSees))))
        #expect(try BackingChain.resolve(path: evil, policy: .confined(allowedDirectories: [f.host])).top.dataFile?.isRaw == true)

        // The data file bit without a name: QEMU would need one from the command line.
        let unnamed = f.image("unnamed.qcow2")
        try Qemu.img("create", "-f", "qcow2", unnamed, "1M")
        let file = try FileBlockDevice(path: unnamed, writable: true)
        var incompatible = try file.read(at: 72, count: 8)
        incompatible[7] |= 4
        try file.write(incompatible, at: 72)
        Self.expectRefused(unnamed, .selfContained, .permissionDenied, "external data file", "self-contained")
        Self.expectRefused(unnamed, .confinedToImageDirectory, .unsupported, "does not name its data file")
    }

    // MARK: - Loops and legitimate chains

    @Test func cyclicChain() throws {
        let f = try Self.fixture()
        let a = f.image("a.qcow2"), b = f.image("b.qcow2")
        try Qemu.img("create", "-f", "qcow2", a, "1M")
        try Qemu.img("create", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", b)
        try Qemu.img("rebase", "-u", "-b", "b.qcow2", "-F", "qcow2", a)
        Self.expectRefused(a, .confinedToImageDirectory, .corrupt, "qcow2 backing file", "\"a.qcow2\"", "loops")
        Self.expectRefused(b, .confinedToImageDirectory, .corrupt, "loops")
        Self.expectRefused(a, .selfContained, .permissionDenied, "\"b.qcow2\"", "self-contained")
    }

    @Test func legitimateLocalChainStillOpens() throws {
        let f = try Self.fixture()
        let base = f.image("base.qcow2"), overlay = f.image("overlay.qcow2")
        try Qemu.img("create", "-f", "qcow2", base, "16M")
        try Qemu.io(base, "write -P 0x10 0 16M")
        try Qemu.img("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", overlay, "24M")
        try Qemu.io(overlay, "write -P 0x20 1M 100k", "write -z 4M 64k", "write -P 0x21 20M 64k")

        let chain = try BackingChain.resolve(path: overlay, policy: .confinedToImageDirectory, writable: true)
        #expect(chain.members.map(\.path) == [overlay, base])
        #expect(chain.members.map(\.format) == [.qcow2, .qcow2])
        #expect(chain.members.map(\.qemuDriver) == ["qcow2", "qcow2"])
        #expect(chain.members.map(\.virtualSize) == [24 << 20, 16 << 20])
        #expect(chain.members.map(\.isReadOnly) == [false, true])
        #expect(chain.members.map(\.formatSource) == [.probe, .header])
        #expect(chain.members[1].recordedName == "base.qcow2")
        #expect(chain.top.backingFile == "base.qcow2")
        #expect(chain.members.allSatisfy { $0.dataFile == nil })
        try Qemu.expectReadsIdentical(overlay, in: f.root)

        // A base in a subdirectory is inside the image's directory.
        try FileManager.default.createDirectory(atPath: f.image("bases"), withIntermediateDirectories: false)
        let nestedBase = f.image("bases/base.qcow2")
        try Qemu.img("convert", "-O", "qcow2", base, nestedBase)
        let nested = f.image("nested.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-b", "bases/base.qcow2", "-F", "qcow2", nested)
        try Qemu.io(nested, "write -P 0x33 8M 4k")
        try Qemu.expectReadsIdentical(nested, in: f.root)

        // Wisp's own overlay on it, written by Wisp, still what qemu-img sees.
        let mine = f.image("mine.qcow2")
        try Qcow2Image.create(path: mine, virtualSize: 16 << 20, backingFile: "overlay.qcow2", backingFormat: .qcow2)
        do {
            let q = try Qcow2Image(path: mine, writable: true)
            try q.write([UInt8](repeating: 0x44, count: 5000), at: 3 << 20)
        }
        try Qemu.check(mine)
        try Qemu.expectReadsIdentical(mine, in: f.root)
        #expect(try BackingChain.resolve(path: mine, policy: .confinedToImageDirectory).members.count == 3)

        // The base alone is self-contained; the overlay is not.
        #expect(try BackingChain.resolve(path: base, policy: .selfContained).members.count == 1)
        Self.expectRefused(overlay, .selfContained, .permissionDenied, "\"base.qcow2\"", "self-contained")
        // Creating an overlay whose base is not self-contained, when the caller says it must be.
        #expect(throws: WispError.self) {
            try Qcow2Image.create(path: f.image("x.qcow2"), virtualSize: 1 << 20, backingFile: "overlay.qcow2",
                                  backingFormat: .qcow2, backingPolicy: .selfContained)
        }
    }

    // MARK: - Raw stays raw

    /// A raw image whose bytes are a qcow2 header naming the host file: said to be raw, it is
    /// read as the bytes it holds, never as qcow2.
    @Test func rawThatLooksLikeQcow2StaysRaw() throws {
        let f = try Self.fixture()
        let disguised = f.image("disguised.raw")
        try Qemu.img("create", "-f", "qcow2", "-u", "-b", f.hostFile, "-F", "raw", disguised, "1M")
        let ownBytes = try Self.readAll(FileBlockDevice(path: disguised))

        for policy in [ExternalReferencePolicy.selfContained, .confinedToImageDirectory] {
            let chain = try BackingChain.resolve(path: disguised, format: .raw, policy: policy)
            #expect(chain.members.count == 1)
            #expect(chain.top.format == .raw)
            #expect(chain.top.formatSource == .caller)
            #expect(chain.top.qcow2Header == nil)
            let device = try DiskImageFile.open(disguised, format: .raw, policy: policy)
            let bytes = try Self.readAll(device)
            #expect(bytes == ownBytes)
            #expect(!Self.contains(bytes, Self.marker))
        }
        // Probed, it is the qcow2 it looks like, and refused.
        Self.expectRefused(disguised, .selfContained, .permissionDenied, "qcow2 backing file", "self-contained")

        // The same as a backing file recorded as raw: the overlay's record wins over the magic.
        let overlay = f.image("overlay.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-b", "disguised.raw", "-F", "raw", overlay)
        let chain = try BackingChain.resolve(path: overlay, policy: .confinedToImageDirectory)
        #expect(chain.members.map(\.format) == [.qcow2, .raw])
        #expect(chain.members[1].formatSource == .header)
        let bytes = try Self.readAll(try DiskImageFile.open(overlay))
        #expect(!Self.contains(bytes, Self.marker))
        #expect(Array(bytes.prefix(ownBytes.count)) == ownBytes)
        try Qemu.expectReadsIdentical(overlay, in: f.root)
    }
}
