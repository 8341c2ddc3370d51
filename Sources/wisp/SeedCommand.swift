import ArgumentParser
import CloudInit
import Foundation
import WispCore

struct SeedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed",
        abstract: "Make a cloud-init NoCloud seed disk (cloud-localds, mkpasswd and `cloud-init schema` in one).",
        discussion: """
        Like cloud-localds, `wisp seed OUTPUT [USER-DATA [META-DATA]]` packs the files into an ISO 9660 image with volume id "cidata" (or a FAT image labelled CIDATA with -f vfat). Without USER-DATA it writes one from the flags: a user (default: you) with passwordless sudo, bash and your ~/.ssh/*.pub keys. META-DATA defaults to a fresh instance-id and the hostname.

        User-data is validated before anything is written (as `cloud-init schema` would); `--validate FILE` only checks a file. Seed images are written atomically with mode 0600. No genisoimage, xorriso or mkfs.vfat is needed.

        Examples:
          wisp seed seed.iso --user me --ssh-key ~/.ssh/id_ed25519.pub
          wisp seed seed.img -f vfat user-data meta-data
          printf '%s' "$PASSWORD" | wisp seed seed.iso --password-stdin --hostname web1
          wisp seed --validate user-data

        A generated seed must let someone log in: with no --ssh-key, no ~/.ssh/*.pub and no password it is refused unless --allow-no-login is given.
        """
    )

    @Argument(help: "The seed image to write.") var output: String?
    @Argument(help: "user-data to pack as is (\"-\" reads stdin); omit to generate one from the flags.") var userData: String?
    @Argument(help: "meta-data to pack as is; omit for a fresh instance-id and the hostname.") var metaData: String?

    @Option(name: [.customShort("f"), .customLong("filesystem")], help: "Image filesystem: iso or vfat.")
    var filesystem: String = "iso"
    @Option(name: [.customShort("N"), .customLong("network-config")], help: "network-config file to include.")
    var networkConfig: String?
    @Option(name: [.customShort("V"), .customLong("vendor-data")], help: "vendor-data file to include.")
    var vendorData: String?
    @Option(name: [.customShort("H"), .customLong("hostname")], help: "Hostname (meta-data local-hostname, and user-data when generated).")
    var hostname: String?
    @Option(name: [.customShort("i"), .customLong("instance-id")], help: "Instance id (default: a fresh iid-<random>).")
    var instanceID: String?

    @Option(help: "Login to create (default: your user name; \"wisp\" when you are root).") var user: String?
    @Option(name: .customLong("ssh-key"), help: "Public key file to authorize (repeatable; default: ~/.ssh/*.pub).")
    var sshKeys: [String] = []
    @Option(name: .customLong("password-hash"), help: "Already hashed password (crypt(3): $y$..., $6$...).")
    var passwordHash: String?
    @Flag(name: .customLong("password-stdin"), help: "Read a clear-text password from stdin and hash it (never stored).")
    var passwordStdin = false
    @Option(name: .customLong("hash"), help: "Hash for --password-stdin: yescrypt or sha512.")
    var hashMethod: String = "yescrypt"
    @Option(help: "Packages to install (comma-separated, repeatable).") var packages: [String] = []
    @Option(name: .customLong("run"), help: "Command for runcmd (repeatable, run in order).") var run: [String] = []
    @Option(name: .customLong("phone-home"), help: "URL cloud-init's phone_home posts to when done.") var phoneHome: String?
    @Option(name: .customLong("static-ip"), help: "Static address ADDR/PREFIX for network-config v2.") var staticIP: String?
    @Option(help: "Default gateway for --static-ip.") var gateway: String?
    @Option(help: "DNS server for --static-ip (repeatable).") var dns: [String] = []
    @Option(help: "MAC address of the NIC --static-ip applies to (matched and named eth0; without it, any e* interface, which only netplan guests honour).")
    var mac: String?

    @Flag(name: .customLong("allow-no-login"), help: "Write a generated seed even when it authorizes no SSH key and sets no password.")
    var allowNoLogin = false

    @Option(name: .customLong("validate"), help: "Only validate this user-data file; exit 1 if it has errors.")
    var validatePath: String?
    @Flag(help: "Print the result as JSON.") var json = false

    private var generationFlagsUsed: Bool {
        user != nil || !sshKeys.isEmpty || passwordHash != nil || passwordStdin || !packages.isEmpty || !run.isEmpty
            || phoneHome != nil || staticIP != nil || allowNoLogin
    }

    func validate() throws {
        if validatePath == nil && output == nil {
            throw ValidationError("give the seed image to write (OUTPUT), or --validate USER-DATA")
        }
        guard SeedImageFormat(rawValue: filesystem) != nil else {
            throw ValidationError("-f must be iso or vfat, not \(filesystem)")
        }
        guard PasswordHasher.Method(rawValue: hashMethod) != nil else {
            throw ValidationError("--hash must be yescrypt or sha512")
        }
        if userData != nil && generationFlagsUsed {
            throw ValidationError("USER-DATA is packed as is; --user, --ssh-key, --password-*, --packages, --run, --phone-home and --static-ip only apply when Wisp generates user-data")
        }
        if passwordHash != nil && passwordStdin { throw ValidationError("give --password-hash or --password-stdin, not both") }
        if staticIP != nil && networkConfig != nil { throw ValidationError("give --static-ip or -N network-config, not both") }
        if staticIP == nil && (gateway != nil || !dns.isEmpty || mac != nil) { throw ValidationError("--gateway, --dns and --mac need --static-ip") }
        if metaData != nil && instanceID != nil { throw ValidationError("-i sets the instance id of generated meta-data; META-DATA was given") }
    }

    func run() async throws {
        if let validatePath { return try runValidation(validatePath) }
        guard let output else { return }
        let format = SeedImageFormat(rawValue: filesystem) ?? .iso

        var seed: NoCloudSeed
        if let userData {
            let metaBytes = try metaData.map(Self.readInput)
                ?? Array(try SeedGenerator.metaData(instanceID: instanceID ?? SeedGenerator.freshInstanceID(), hostname: hostname).utf8)
            seed = NoCloudSeed(userData: try Self.readInput(userData), metaData: metaBytes)
        } else {
            var options = SeedOptions(user: user, hostname: hostname, instanceID: instanceID,
                                      packages: packages.flatMap { $0.split(separator: ",") }
                                          .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty },
                                      runcmd: run, phoneHomeURL: phoneHome)
            options.sshAuthorizedKeys = try authorizedKeys()
            if let passwordHash {
                options.passwordHash = passwordHash
            } else if passwordStdin {
                options.passwordHash = try Self.hashPasswordFromStdin(method: PasswordHasher.Method(rawValue: hashMethod) ?? .yescrypt)
            }
            // A seed nobody can log in with is almost always a mistake (no ~/.ssh/*.pub on a
            // CI runner): refused unless asked for.
            if options.sshAuthorizedKeys.isEmpty && options.passwordHash == nil && !allowNoLogin {
                throw WispError.usage("no SSH public key (none given and none in ~/.ssh/*.pub) and no password: nobody could log in; give --ssh-key FILE or --password-stdin, or --allow-no-login")
            }
            if options.sshAuthorizedKeys.isEmpty && options.passwordHash != nil && !json {
                FileOutput.standardError("wisp seed: note: no SSH public keys (none given and none in ~/.ssh/*.pub); \(options.user ?? "the user") can log in only with the password\n")
            }
            if let staticIP { options.network = StaticNetwork(address: staticIP, gateway: gateway, dns: dns, macAddress: mac) }
            seed = try SeedGenerator.makeSeed(options)
            if let metaData { seed.metaData = try Self.readInput(metaData) }
        }
        if let networkConfig { seed.networkConfig = try Self.readInput(networkConfig) }
        if let vendorData { seed.vendorData = try Self.readInput(vendorData) }
        try write(seed, format: format, output: output)
    }

    private func write(_ seed: NoCloudSeed, format: SeedImageFormat, output: String) throws {
        let issues = SeedImageWriter.validate(seed)
        for issue in issues where issue.severity == .warning && !json {
            FileHandle.standardError.write(Data("wisp seed: \(issue)\n".utf8))
        }
        try SeedImageWriter.write(seed, format: format, to: output, timestamp: SeedImageWriter.defaultTimestamp(), issues: issues)
        if json {
            let report = SeedReport(output: output, format: format.rawValue,
                                    files: seed.files.map { .init(name: $0.name, bytes: $0.contents.count) },
                                    instanceID: Self.instanceID(in: seed.metaData), issues: issues)
            print(try Self.jsonText(report))
        } else {
            // stat, not FileManager.attributesOfItem: that also looks up the owner's name
            // through NSS (/etc/passwd, /etc/group) on every run.
            var info = stat()
            let size = stat(output, &info) == 0 ? UInt64(info.st_size) : 0
            print("wrote \(output) (\(format.rawValue), \(ByteSize.format(size))): " + seed.files.map(\.name).joined(separator: ", "))
        }
    }

    private func runValidation(_ path: String) throws {
        let bytes = try Self.readInput(path)
        let validator = UserDataValidator(fileName: path)
        let issues = validator.validate(bytes)
        let valid = !issues.hasErrors
        if json {
            print(try Self.jsonText(ValidationReport(file: path, kind: validator.kind(of: bytes).rawValue, valid: valid, issues: issues)))
        } else {
            for issue in issues { print(issue) }
            print(valid ? "valid \(validator.kind(of: bytes).rawValue): \(path)" : "invalid: \(path) (\(issues.filter { $0.severity == .error }.count) errors)")
        }
        if !valid { throw ExitCode(1) }
    }

    private func authorizedKeys() throws -> [String] {
        if sshKeys.isEmpty { return SeedGenerator.hostPublicKeys() }
        var keys: [String] = []
        for path in sshKeys {
            let text = String(decoding: try Self.readInput(path), as: UTF8.self)
            let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }
            guard !lines.isEmpty else { throw WispError.invalidArgument("\(path): holds no public key") }
            if lines.contains(where: { $0.contains("PRIVATE KEY") }) {
                throw WispError.invalidArgument("\(path): is a private key; give the .pub file")
            }
            keys += lines
        }
        return keys
    }

    /// Reads the password from stdin into a buffer that is zeroed after hashing.
    static func hashPasswordFromStdin(method: PasswordHasher.Method) throws -> String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var length = 0
        while length < buffer.count {
            let count = buffer.withUnsafeMutableBytes { raw in
                read(0, raw.baseAddress! + length, raw.count - length)
            }
            if count < 0 { if errno == EINTR { continue }; throw WispError.posix("read", "stdin", errno: errno) }
            if count == 0 { break }
            length += count
        }
        defer { for i in buffer.indices { buffer[i] = 0 } }
        guard length < buffer.count else { throw WispError.invalidArgument("the password on stdin is longer than 4095 bytes") }
        while length > 0, buffer[length - 1] == 0x0A || buffer[length - 1] == 0x0D { length -= 1 }
        guard length > 0 else { throw WispError.usage("--password-stdin read an empty password") }
        var clear = Array(buffer[0..<length])
        defer { for i in clear.indices { clear[i] = 0 } }
        return try PasswordHasher.hash(bytes: clear, method: method)
    }

    /// A file's bytes, or stdin for "-"; at most 64 MiB.
    static func readInput(_ path: String) throws -> [UInt8] {
        let limit = 64 << 20
        let handle: FileHandle
        if path == "-" {
            handle = FileHandle.standardInput
        } else {
            guard let opened = FileHandle(forReadingAtPath: path) else {
                throw WispError.notFound("\(path): cannot open for reading (\(String(cString: strerror(errno))))")
            }
            handle = opened
        }
        let data = try handle.read(upToCount: limit + 1) ?? Data()
        guard data.count <= limit else { throw WispError.invalidArgument("\(path): larger than \(limit >> 20) MiB; not seed data") }
        return Array(data)
    }

    static func instanceID(in metaData: [UInt8]) -> String? {
        for line in String(decoding: metaData, as: UTF8.self).split(whereSeparator: \.isNewline) where line.hasPrefix("instance-id:") {
            return line.dropFirst("instance-id:".count).trimmingCharacters(in: CharacterSet(charactersIn: " \"'"))
        }
        return nil
    }

    static func jsonText<T: Encodable>(_ value: T) throws -> String {
        try JSONOutput.text(value)
    }
}

struct SeedReport: Encodable {
    struct File: Encodable { var name: String; var bytes: Int }
    var output: String
    var format: String
    var files: [File]
    var instanceID: String?
    var issues: [ValidationIssue]

    enum CodingKeys: String, CodingKey {
        case output, format, files, issues
        case instanceID = "instance_id"
    }
}

struct ValidationReport: Encodable {
    var file: String
    var kind: String
    var valid: Bool
    var issues: [ValidationIssue]
}
