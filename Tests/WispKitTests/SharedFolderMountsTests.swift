import Foundation
import Machine
import Testing
import WispCore
import WispTestSupport
@testable import WispKit

/// How a guest is told to mount its shared folders: cloud-init bootcmd lines (with the
/// guest user made first when a folder lies in its home) and the fstab.extra credential.
@Suite struct SharedFolderMountsTests {
    let folders = [SharedFolder(hostPath: "/h/src", guestPath: "/home/me/src tree"),
                   SharedFolder(hostPath: "/h/data", guestPath: "/data", readOnly: true)]

    @Test func bootCommandsMountEveryBootAndMakeTheHomeOwnersFirst() {
        #expect(SharedFolderMounts.bootCommands(folders, user: "me", userID: 1234) == [
            "id -u me >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --uid 1234 me",
            "mkdir -p '/home/me/src tree' && { mountpoint -q '/home/me/src tree' || mount -t virtiofs -o rw wisp0 '/home/me/src tree'; }",
            "mkdir -p /data && { mountpoint -q /data || mount -t virtiofs -o ro wisp1 /data; }",
        ])
        // Outside the user's home nothing is made ahead of cloud-init.
        #expect(SharedFolderMounts.bootCommands([folders[1]], user: "me", userID: nil).count == 1)
    }

    @Test func guestUserIDIsTheHostUsersWhenOrdinary() {
        #expect(SharedFolderMounts.guestUserID(hostUID: 1000) == 1000)
        #expect(SharedFolderMounts.guestUserID(hostUID: 0) == nil)
        #expect(SharedFolderMounts.guestUserID(hostUID: 999) == nil)
        #expect(SharedFolderMounts.guestUserID(hostUID: 65534) == nil)
    }

    @Test func seedCarriesTheUIDAndTheBootCommands() throws {
        let dir = try TemporaryDirectory("wisp-seed")
        try ToolRunner.check("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", dir.file("key")])
        let hostPrivate = try String(contentsOfFile: dir.file("key"), encoding: .utf8)
        let hostPublic = try String(contentsOfFile: dir.file("key.pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        var request = RunIntegration.SeedRequest(user: "me", authorizedKeys: [], hostname: "vm", instanceID: "i-1", phoneHomeURL: nil,
                                                 staticNetwork: false, macAddress: "52:54:00:00:00:01", hostKeyPrivate: hostPrivate, hostKeyPublic: hostPublic,
                                                 extraUserData: nil, initStageModules: nil)
        request.sharedFolders = folders
        request.userID = 1234
        let seed = try RunIntegration.makeSeed(request)
        let userData = String(decoding: seed.userData, as: UTF8.self)
        #expect(userData.contains("    uid: 1234\n"))
        #expect(userData.contains("bootcmd:\n  - \"id -u me"))
        #expect(userData.contains("mount -t virtiofs -o ro wisp1 /data"))
    }

    @Test func fstabExtraEscapesBlanks() {
        #expect(SharedFolderMounts.fstabExtra(folders) == "wisp0 /home/me/src\\040tree virtiofs rw,nofail 0 0\nwisp1 /data virtiofs ro,nofail 0 0\n")
        let credentials = SystemdCredentialSet(authorizedKeys: ["ssh-ed25519 AAAA k"], hostKeyPrivate: "k", hostKeyPublic: "p", hostname: "vm",
                                               macAddress: "52:54:00:00:00:01", sharedFolders: folders)
        #expect(credentials.values().map(\.name) == ["ssh.authorized_keys.root", "tmpfiles.extra", "system.hostname", "fstab.extra"])
    }
}
