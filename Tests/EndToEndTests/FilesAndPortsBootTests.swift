#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import WispCore
import WispTestSupport

/// Issue 17's files, folders and ports against one real guest: the test image booted under
/// TCG with two shared folders, then `wisp cp` both ways, the folders from the guest's
/// side, `wisp port add/rm` reached from the host, and `wisp stop`/`start` bringing an
/// added port and the folders back.
@Suite(.serialized) struct FilesAndPortsBootTests {
    /// A TCP port nothing listens on now (the kernel picks it).
    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return UInt16(bigEndian: sin.sin_port)
    }

    /// The page the guest's web server gives on 127.0.0.1:PORT, retried while it starts.
    static func fetch(_ port: UInt16, tries: Int = 60) throws -> ToolResult {
        var last = try ToolRunner.run("curl", ["-sS", "--max-time", "5", "http://127.0.0.1:\(port)/"])
        for _ in 1..<tries where last.status != 0 {
            sleep(1)
            last = try ToolRunner.run("curl", ["-sS", "--max-time", "5", "http://127.0.0.1:\(port)/"])
        }
        return last
    }

    /// python3's web server in the guest's /tmp on port 8000, detached from the ssh session.
    static func serve(_ box: BootTests.Sandbox, _ name: String) throws {
        try box.check(["ssh", name, "--", "sh -c 'cd /tmp && echo served-by-guest > index.html && setsid nohup python3 -m http.server 8000 </dev/null >/dev/null 2>&1 &'"])
    }

    @Test(.timeLimit(.minutes(40))) func copyMountAndForwardOnOneGuest() throws {
        let box = try BootTests.Sandbox()
        defer { box.cleanUp() }
        let fm = FileManager.default
        let rw = box.dir.file("rw share"), ro = box.dir.file("ro")
        try fm.createDirectory(atPath: rw, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: ro, withIntermediateDirectories: true)
        try "from the host\n".write(toFile: ro + "/hello.txt", atomically: true, encoding: .utf8)

        try box.check(["run", "--name", "fp", "--accel", BootTests.accel, "--memory", "1536M", "--timeout", "900",
                       "--mount", "\(rw):/mnt/rw share", "--mount", "\(ro):ro", box.image])
        let listed = try JSONSerialization.jsonObject(with: box.check(["list", "--json"]).stdout) as? [[String: Any]]
        let mounts = try #require(listed?.first?["mounts"] as? [[String: Any]])
        #expect(mounts.map { $0["guest-path"] as? String } == ["/mnt/rw share", ro])
        #expect(mounts.map { $0["read-only"] as? Bool } == [false, true])

        // The ro folder at the host's own path: readable, and writes refused by the guest.
        #expect(try box.check(["ssh", "fp", "--", "cat", ro + "/hello.txt"]).stdoutText == "from the host\n")
        let refused = try box.run(["ssh", "fp", "--", "sudo", "-n", "touch", ro + "/nope"])
        #expect(refused.status != 0)
        #expect(refused.stderrText.contains("Read-only file system"))
        #expect(!fm.fileExists(atPath: ro + "/nope"))

        // The rw folder: Wisp runs as root here, so the guest user (not uid 0) writes where
        // the host's modes let its uid write (docs: the guest user gets the host user's uid
        // only for an ordinary host user).
        let uid = try box.check(["ssh", "fp", "--", "id", "-u"]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        if getuid() == 0 { #expect(chown(rw, uid_t(uid) ?? 0, gid_t(uid) ?? 0) == 0) }
        try box.check(["ssh", "fp", "--", "sh -c 'echo written by the guest > \"/mnt/rw share/from guest.txt\"'"])
        #expect(try String(contentsOfFile: rw + "/from guest.txt", encoding: .utf8) == "written by the guest\n")
        var info = stat()
        #expect(stat(rw + "/from guest.txt", &info) == 0 && String(info.st_uid) == uid)

        // wisp cp up: a directory with modes, and a file with a space in its name.
        let tree = box.dir.file("tree")
        try fm.createDirectory(atPath: tree + "/sub dir", withIntermediateDirectories: true)
        try "#!/bin/sh\necho hi\n".write(toFile: tree + "/run.sh", atomically: true, encoding: .utf8)
        chmod(tree + "/run.sh", 0o750)
        try "secret\n".write(toFile: tree + "/sub dir/key", atomically: true, encoding: .utf8)
        chmod(tree + "/sub dir/key", 0o600)
        try "spaced\n".write(toFile: box.dir.file("with space.txt"), atomically: true, encoding: .utf8)
        try box.check(["cp", tree, "fp:"])
        try box.check(["cp", box.dir.file("with space.txt"), "fp:copied file.txt"])
        #expect(try box.check(["ssh", "fp", "--", "stat -c '%a %n' tree/run.sh 'tree/sub dir/key' 'copied file.txt'"]).stdoutText
                == "750 tree/run.sh\n600 tree/sub dir/key\n644 copied file.txt\n")
        #expect(try box.check(["ssh", "fp", "--", "tree/run.sh"]).stdoutText == "hi\n")

        // ... and back down: into an existing directory, and to a new name.
        let back = box.dir.file("back")
        try fm.createDirectory(atPath: back, withIntermediateDirectories: true)
        try box.check(["cp", "fp:tree", back])
        try box.check(["cp", "fp:copied file.txt", back + "/got it.txt"])
        #expect(try String(contentsOfFile: back + "/tree/sub dir/key", encoding: .utf8) == "secret\n")
        #expect(try String(contentsOfFile: back + "/got it.txt", encoding: .utf8) == "spaced\n")
        #expect(stat(back + "/tree/run.sh", &info) == 0 && info.st_mode & 0o777 == 0o750)
        #expect(stat(back + "/tree/sub dir/key", &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(try fm.contentsOfDirectory(atPath: back).sorted() == ["got it.txt", "tree"])  // no staging left
        // Missing on either side: a sentence and exit 1.
        let missingGuest = try box.run(["cp", "fp:/no/such/file", back])
        #expect(missingGuest.status == 1)
        #expect(missingGuest.stderrText.contains("no such file or directory in the guest: /no/such/file"))
        let missingHost = try box.run(["cp", box.dir.file("absent"), "fp:"])
        #expect(missingHost.status == 1)
        #expect(missingHost.stderrText.contains("no such file or directory on the host"))

        // wisp port add: a guest listener reached from the host; rm: gone again.
        try Self.serve(box, "fp")
        let live = try Self.freePort(), kept = try Self.freePort()
        try box.check(["port", "add", "fp", "\(live):8000"])
        #expect(try Self.fetch(live).stdoutText == "served-by-guest\n")
        try box.check(["port", "rm", "fp", String(live)])
        #expect(try ToolRunner.run("curl", ["-sS", "--max-time", "5", "http://127.0.0.1:\(live)/"]).status != 0)
        try box.check(["port", "add", "fp", "\(kept):8000"])
        #expect(try Self.fetch(kept).stdoutText == "served-by-guest\n")
        let again = try box.run(["port", "add", "fp", "\(kept):80"])
        #expect(again.status == 1 && again.stderrText.contains("already forwards host port \(kept)/tcp"))
        #expect(try box.check(["port", "fp"]).stdoutText.contains("127.0.0.1:\(kept)"))

        // stop + start: the added port and both folders come back.
        try box.check(["stop", "fp"])
        try box.check(["start", "fp", "--accel", BootTests.accel, "--timeout", "900"])
        try Self.serve(box, "fp")
        #expect(try Self.fetch(kept).stdoutText == "served-by-guest\n")
        #expect(try box.check(["ssh", "fp", "--", "cat '/mnt/rw share/from guest.txt'"]).stdoutText == "written by the guest\n")
        #expect(try box.run(["ssh", "fp", "--", "sudo", "-n", "touch", ro + "/nope"]).status != 0)
    }
}
