import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import ImageSources

/// The catalog against a local mirror of each distribution's real layout: dated build
/// directories beside `latest`/`current`, and every checksum-file format as published
/// (Debian's SHA512SUMS, Ubuntu's SHA256SUMS with `*` and its detached .gpg, Fedora's
/// clearsigned BSD-style CHECKSUM, Alma's CHECKSUM listing several builds, openSUSE's
/// per-image .sha256 naming the snapshot, Alpine's per-image .sha512, Arch's .SHA256).
/// The built-in entries are used as they are, with the mirror as their root.
@Suite struct CatalogTests {
    static func payload(_ seed: UInt64, _ count: Int = 300_000) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    struct Expectation {
        var name: String
        var build: String
        var path: String
        var bytes: [UInt8]
    }

    /// Lays out one image per distribution on `mirror`; returns what each name must resolve to.
    static func populate(_ mirror: DistributionMirror) throws -> [Expectation] {
        var expected: [Expectation] = []
        // Debian: /images/cloud/trixie/<YYYYMMDD-NNNN>/ and latest/, SHA512SUMS in each.
        let debian = payload(1), debianOld = payload(2)
        for (build, bytes) in [("20250801-2100", debianOld), ("20250814-2204", debian)] {
            let name = "debian-13-genericcloud-amd64-\(build).qcow2"
            let json = Array("{}".utf8)
            mirror.put("/debian/trixie/\(build)/\(name)", bytes)
            mirror.put("/debian/trixie/\(build)/debian-13-genericcloud-amd64-\(build).json", json)
            mirror.put("/debian/trixie/\(build)/SHA512SUMS",
                       "\(try FixtureDigest.hex(json, "sha512"))  debian-13-genericcloud-amd64-\(build).json\n\(try FixtureDigest.hex(bytes, "sha512"))  \(name)\n")
        }
        mirror.put("/debian/trixie/latest/debian-13-genericcloud-amd64.qcow2", debian)
        expected.append(Expectation(name: "debian-13", build: "20250814-2204", path: "/debian/trixie/20250814-2204/debian-13-genericcloud-amd64-20250814-2204.qcow2", bytes: debian))

        // Ubuntu: /releases/noble/release-YYYYMMDD/ and current/, SHA256SUMS with "*NAME".
        let ubuntu = payload(3)
        for build in ["release-20250610", "release-20250805"] {
            let bytes = build == "release-20250805" ? ubuntu : payload(4)
            mirror.put("/ubuntu/noble/\(build)/ubuntu-24.04-server-cloudimg-amd64.img", bytes)
            mirror.put("/ubuntu/noble/\(build)/SHA256SUMS", "\(try FixtureDigest.hex(bytes, "sha256")) *ubuntu-24.04-server-cloudimg-amd64.img\n\(String(repeating: "ab", count: 32)) *ubuntu-24.04-server-cloudimg-arm64.img\n")
        }
        mirror.put("/ubuntu/noble/current/ubuntu-24.04-server-cloudimg-amd64.img", ubuntu)
        expected.append(Expectation(name: "ubuntu-24.04", build: "release-20250805", path: "/ubuntu/noble/release-20250805/ubuntu-24.04-server-cloudimg-amd64.img", bytes: ubuntu))

        // Fedora: the compose id in both the image's and the CHECKSUM's names.
        let fedora = payload(5)
        let fedoraDir = "/fedora/releases/43/Cloud/x86_64/images/"
        mirror.put(fedoraDir + "Fedora-Cloud-Base-Generic-43-1.6.x86_64.qcow2", fedora)
        mirror.put(fedoraDir + "Fedora-Cloud-43-1.6-x86_64-CHECKSUM", """
            # Fedora-Cloud-Base-AmazonEC2-43-1.6.x86_64.raw.xz: 412336844 bytes
            SHA256 (Fedora-Cloud-Base-AmazonEC2-43-1.6.x86_64.raw.xz) = \(String(repeating: "1f", count: 32))
            # Fedora-Cloud-Base-Generic-43-1.6.x86_64.qcow2: \(fedora.count) bytes
            SHA256 (Fedora-Cloud-Base-Generic-43-1.6.x86_64.qcow2) = \(try FixtureDigest.hex(fedora, "sha256"))

            """)
        expected.append(Expectation(name: "fedora-43", build: "Fedora-Cloud-Base-Generic-43-1.6.x86_64.qcow2", path: fedoraDir + "Fedora-Cloud-Base-Generic-43-1.6.x86_64.qcow2", bytes: fedora))

        // AlmaLinux: one CHECKSUM for the directory, the newest versioned build wins over -latest.
        let alma = payload(6), almaOld = payload(7)
        let almaDir = "/alma/9/cloud/x86_64/images/"
        mirror.put(almaDir + "AlmaLinux-9-GenericCloud-9.5-20241120.x86_64.qcow2", almaOld)
        mirror.put(almaDir + "AlmaLinux-9-GenericCloud-9.6-20250522.x86_64.qcow2", alma)
        mirror.put(almaDir + "AlmaLinux-9-GenericCloud-latest.x86_64.qcow2", alma)
        mirror.put(almaDir + "CHECKSUM", """
            SHA256 (AlmaLinux-9-GenericCloud-9.5-20241120.x86_64.qcow2) = \(try FixtureDigest.hex(almaOld, "sha256"))
            SHA256 (AlmaLinux-9-GenericCloud-9.6-20250522.x86_64.qcow2) = \(try FixtureDigest.hex(alma, "sha256"))
            SHA256 (AlmaLinux-9-GenericCloud-latest.x86_64.qcow2) = \(try FixtureDigest.hex(alma, "sha256"))

            """)
        expected.append(Expectation(name: "almalinux-9", build: "AlmaLinux-9-GenericCloud-9.6-20250522.x86_64.qcow2", path: almaDir + "AlmaLinux-9-GenericCloud-9.6-20250522.x86_64.qcow2", bytes: alma))

        // openSUSE: the stable name's .sha256 names the snapshot it points at.
        let suse = payload(8)
        let suseDir = "/opensuse/tumbleweed/appliances/"
        mirror.put(suseDir + "openSUSE-Tumbleweed-Minimal-VM.x86_64-Cloud.qcow2", suse)
        mirror.put(suseDir + "openSUSE-Tumbleweed-Minimal-VM.x86_64-Cloud.qcow2.sha256",
                   "\(try FixtureDigest.hex(suse, "sha256"))  openSUSE-Tumbleweed-Minimal-VM.x86_64-1.0.0-Cloud-Snapshot20251201.qcow2\n")
        expected.append(Expectation(name: "opensuse-tumbleweed", build: "openSUSE-Tumbleweed-Minimal-VM.x86_64-1.0.0-Cloud-Snapshot20251201.qcow2",
                                    path: suseDir + "openSUSE-Tumbleweed-Minimal-VM.x86_64-Cloud.qcow2", bytes: suse))

        // Alpine: per-image .sha512, the point release found in the listing.
        let alpine = payload(9)
        let alpineDir = "/alpine/v3.22/releases/cloud/"
        for (point, bytes) in [("3.22.0", payload(10)), ("3.22.1", alpine)] {
            let name = "nocloud_alpine-\(point)-x86_64-bios-cloudinit-r0.qcow2"
            mirror.put(alpineDir + name, bytes)
            mirror.put(alpineDir + name + ".sha512", "\(try FixtureDigest.hex(bytes, "sha512"))  \(name)\n")
            mirror.put(alpineDir + "nocloud_alpine-\(point)-x86_64-uefi-cloudinit-r0.qcow2", payload(11))
        }
        expected.append(Expectation(name: "alpine-3.22", build: "nocloud_alpine-3.22.1-x86_64-bios-cloudinit-r0.qcow2", path: alpineDir + "nocloud_alpine-3.22.1-x86_64-bios-cloudinit-r0.qcow2", bytes: alpine))

        // Arch: /images/vYYYYMMDD.N/ with a per-image .SHA256.
        let arch = payload(12)
        for (build, bytes) in [("v20250801.390203", payload(13)), ("v20250815.403817", arch)] {
            let name = "Arch-Linux-x86_64-cloudimg-\(build.dropFirst()).qcow2"
            mirror.put("/arch/images/\(build)/\(name)", bytes)
            mirror.put("/arch/images/\(build)/\(name).SHA256", "\(try FixtureDigest.hex(bytes, "sha256"))  \(name)\n")
            mirror.put("/arch/images/\(build)/\(name).sig", [0x89, 0x01])
        }
        expected.append(Expectation(name: "arch", build: "v20250815.403817", path: "/arch/images/v20250815.403817/Arch-Linux-x86_64-cloudimg-20250815.403817.qcow2", bytes: arch))
        return expected
    }

    static func mirrorRoot(_ mirror: DistributionMirror, _ distribution: String) -> String {
        "\(mirror.base)/\(distribution == "almalinux" ? "alma" : distribution)/"
    }

    @Test func everyPublishedFormatResolvesToTheNewestBuild() async throws {
        let mirror = try DistributionMirror()
        defer { mirror.stop() }
        let catalog = try ImageCatalog.builtin()
        for expectation in try Self.populate(mirror) {
            let entry = try #require(catalog.entry(named: expectation.name))
            let resolution = try await CatalogResolver(entry: entry, architecture: "x86_64", mirror: Self.mirrorRoot(mirror, entry.distribution)).resolve()
            #expect(resolution.build == expectation.build, "\(expectation.name)")
            #expect(resolution.url == mirror.base + expectation.path, "\(expectation.name)")
            #expect(resolution.digest == (try FixtureDigest.hex(expectation.bytes, entry.algorithm.rawValue)), "\(expectation.name)")
            // No keyring for the real distributions' keys on a test machine: said, not hidden.
            if !SignatureCheck.available(keyring: entry.signature?.keyring ?? "/nonexistent") {
                #expect(resolution.trust == .checksumOnly)
            }
        }
        // A `latest`/`current` directory is never what gets recorded.
        #expect(mirror.server.requests.withLock { $0.allSatisfy { !$0.path.contains("/latest/") && !$0.path.contains("/current/") } })
    }

    @Test func downloadsOnceVerifiesAndThenUsesTheCache() async throws {
        let mirror = try DistributionMirror()
        defer { mirror.stop() }
        let expected = try Self.populate(mirror)
        let dir = try TemporaryDirectory("wisp-catalog")
        let entry = try #require(try ImageCatalog.builtin().entry(named: "debian"))
        let announced = LockedValue([String]())
        let context = ImageResolveContext(cache: ImageCacheDirectory(path: dir.file("images")), announce: { line in announced.withLock { $0.append(line) } })
        let source = CatalogImageSource(reference: "debian", entry: entry, architecture: "x86_64", mirror: Self.mirrorRoot(mirror, "debian"))
        let first = try await source.fetch(context)
        #expect(first.downloaded)
        #expect(FileManager.default.contents(atPath: first.resolved.path) == Data(expected[0].bytes))
        #expect(first.resolved.build == "20250814-2204")
        #expect(first.record.sha256 == (try FixtureDigest.hex(expected[0].bytes, "sha256")))
        #expect(first.resolved.origin.isFromOutside)
        let requests = mirror.server.requests.withLock { $0.count }
        // The next run uses the cached build with no network at all, and says so.
        let second = try await source.fetch(context)
        #expect(!second.downloaded && second.resolved.path == first.resolved.path)
        #expect(mirror.server.requests.withLock { $0.count } == requests)
        #expect(announced.withLock { $0.last ?? "" } == "using cached debian-13 20250814-2204 (sha256:\(first.record.sha256.prefix(12))...)")
        // A pull looks again: the same build is not fetched twice.
        var refresh = source
        refresh.refresh = true
        let third = try await refresh.fetch(context)
        #expect(!third.downloaded)
        #expect(mirror.requestCount(expected[0].path) == 1)
        // Nothing in the cache but the image, its record, the lock and an empty staging area.
        let cache = CatalogCache(images: context.cache)
        #expect(cache.images().count == 1)
        #expect(cache.partialDownloads().isEmpty)
    }

    @Test func signaturesAreCheckedWithGpgv() async throws {
        let mirror = try DistributionMirror()
        defer { mirror.stop() }
        let expected = try Self.populate(mirror)
        let key = try TestSigningKey()
        let sums = try #require(mirror.files.withLock { $0["/ubuntu/noble/release-20250805/SHA256SUMS"] })
        mirror.put("/ubuntu/noble/release-20250805/SHA256SUMS.gpg", try key.sign(sums, clear: false))
        let fedoraChecksum = "/fedora/releases/43/Cloud/x86_64/images/Fedora-Cloud-43-1.6-x86_64-CHECKSUM"
        let checksum = try #require(mirror.files.withLock { $0[fedoraChecksum] })
        mirror.put(fedoraChecksum, try key.sign(checksum, clear: true))
        let catalog = try ImageCatalog.builtin()
        for name in ["ubuntu-24.04", "fedora-43"] {
            var entry = try #require(catalog.entry(named: name))
            entry.signature?.keyring = key.keyring
            let resolution = try await CatalogResolver(entry: entry, architecture: "x86_64", mirror: Self.mirrorRoot(mirror, entry.distribution)).resolve()
            #expect(resolution.trust == .signed, "\(name)")
            #expect(resolution.digest == (try FixtureDigest.hex(try #require(expected.first { $0.name == name }).bytes, "sha256")))
        }
        // A checksum file changed after signing fails, as a digest mismatch naming the file.
        mirror.put("/ubuntu/noble/release-20250805/SHA256SUMS", sums + Array("\(String(repeating: "cd", count: 32)) *extra.img\n".utf8))
        var ubuntu = try #require(catalog.entry(named: "ubuntu-24.04"))
        ubuntu.signature?.keyring = key.keyring
        await #expect(throws: WispError.self) {
            do {
                _ = try await CatalogResolver(entry: ubuntu, architecture: "x86_64", mirror: Self.mirrorRoot(mirror, "ubuntu")).resolve()
            } catch let error as WispError {
                #expect(error.kind == .digestMismatch && error.message.contains("SHA256SUMS: the OpenPGP signature does not verify"), "\(error)")
                throw error
            }
        }
        // Text in front of a clearsigned message is not part of what was signed: never read.
        let list = try ChecksumList.parse(Array("\(String(repeating: "ee", count: 32))  evil.qcow2\n".utf8) + (try key.sign(checksum, clear: true)),
                                          algorithm: .sha256, source: "CHECKSUM")
        #expect(!list.names.contains("evil.qcow2") && list.names.contains("Fedora-Cloud-Base-Generic-43-1.6.x86_64.qcow2"))
    }

    @Test func linesAfterAClearsignedBlockAreNeverTrusted() async throws {
        let mirror = try DistributionMirror()
        defer { mirror.stop() }
        _ = try Self.populate(mirror)
        let key = try TestSigningKey()
        let fedoraChecksum = "/fedora/releases/43/Cloud/x86_64/images/Fedora-Cloud-43-1.6-x86_64-CHECKSUM"
        let checksum = try #require(mirror.files.withLock { $0[fedoraChecksum] })
        let signed = try key.sign(checksum, clear: true)
        // gpgv accepts the signed block and ignores what a mirror appends after it.
        let appended = "SHA256 (Fedora-Cloud-Base-Generic-43-9.9.x86_64.qcow2) = \(String(repeating: "ee", count: 32))\n"
        let entryName = "fedora-43"
        var entry = try #require(try ImageCatalog.builtin().entry(named: entryName))
        let keyring = try #require(entry.signature).keyring
        for (tail, keyed) in [(appended, true), (appended, false), (String(decoding: signed, as: UTF8.self), true)] {
            mirror.put(fedoraChecksum, signed + Array(tail.utf8))
            entry.signature?.keyring = keyed ? key.keyring : keyring + ".absent"
            do {
                let resolution = try await CatalogResolver(entry: entry, architecture: "x86_64", mirror: Self.mirrorRoot(mirror, "fedora")).resolve()
                Issue.record("a checksum file with unsigned text after its signature resolved to \(resolution.build)")
            } catch let error as WispError {
                #expect(error.kind == .corrupt && error.message.contains("Fedora-Cloud-43-1.6-x86_64-CHECKSUM: "), "\(error)")
            }
        }
        // Blank lines after the signature are harmless and still accepted.
        mirror.put(fedoraChecksum, signed + Array("\n  \n".utf8))
        entry.signature?.keyring = key.keyring
        let resolution = try await CatalogResolver(entry: entry, architecture: "x86_64", mirror: Self.mirrorRoot(mirror, "fedora")).resolve()
        #expect(resolution.trust == .signed && resolution.build == "Fedora-Cloud-Base-Generic-43-1.6.x86_64.qcow2")
    }

    @Test func aRepublishedOrLongBuildNeverReplacesACachedDisk() async throws {
        // Two builds that differ only past 64 characters (Alpine's -r0/-r1) get two names.
        func resolution(_ build: String, _ digest: String) -> CatalogResolution {
            CatalogResolution(name: "alpine-3.22", distribution: "alpine", release: "3.22", architecture: "x86_64", build: build,
                              url: "http://mirror/\(build)", checksumURL: "http://mirror/\(build).sha512", algorithm: .sha512, digest: digest, trust: .checksumOnly)
        }
        let long = "generic_alpine-3.22.1-x86_64-uefi-cloudinit-r"
        let r0 = CatalogCache.leaf(resolution(long + "0.qcow2", String(repeating: "ab", count: 64)), downloadName: long + "0.qcow2")
        let r1 = CatalogCache.leaf(resolution(long + "1.qcow2", String(repeating: "ab", count: 64)), downloadName: long + "1.qcow2")
        #expect(r0 != r1, "\(r0)")
        #expect(r0.hasSuffix("-abababababab.qcow2"), "\(r0)")
        let hashed = CatalogCache.leaf(resolution(String(repeating: "x", count: 70) + "0.qcow2", "ab"), downloadName: "a.qcow2")
        #expect(hashed != CatalogCache.leaf(resolution(String(repeating: "x", count: 70) + "1.qcow2", "ab"), downloadName: "a.qcow2"), "\(hashed)")
        // The same build republished with other bytes: the first disk stays as it was, beside the new one.
        let mirror = try DistributionMirror()
        defer { mirror.stop() }
        let expected = try Self.populate(mirror)
        let arch = try #require(expected.first { $0.name == "arch" })
        let dir = try TemporaryDirectory("wisp-catalog")
        let context = ImageResolveContext(cache: ImageCacheDirectory(path: dir.file("images")))
        let entry = try #require(try ImageCatalog.builtin().entry(named: "archlinux"))
        var source = CatalogImageSource(reference: "arch", entry: entry, architecture: "x86_64", mirror: Self.mirrorRoot(mirror, "arch"))
        let first = try await source.fetch(context)
        let firstBytes = try #require(FileManager.default.contents(atPath: first.resolved.path))
        #expect(Array(firstBytes) == arch.bytes)
        let republished = Self.payload(77)
        let name = URL(fileURLWithPath: arch.path).lastPathComponent
        mirror.put(arch.path, republished)
        mirror.put(arch.path + ".SHA256", "\(try FixtureDigest.hex(republished, "sha256"))  \(name)\n")
        source.refresh = true
        let second = try await source.fetch(context)
        #expect(second.downloaded && second.resolved.path != first.resolved.path)
        #expect(FileManager.default.contents(atPath: first.resolved.path) == firstBytes)
        #expect(Array(try #require(FileManager.default.contents(atPath: second.resolved.path))) == republished)
        let cache = CatalogCache(images: context.cache)
        #expect(cache.images().count == 2)
        // `wisp run NAME` takes the newest: the one pulled last.
        #expect(cache.newest(name: entry.name, architecture: "x86_64")?.file == URL(fileURLWithPath: second.resolved.path).lastPathComponent)
        // A stray disk of other bytes under the name a download would take is refused, not replaced.
        let stray = Self.payload(78)
        mirror.put(arch.path, stray)
        mirror.put(arch.path + ".SHA256", "\(try FixtureDigest.hex(stray, "sha256"))  \(name)\n")
        var third = source
        third.refresh = true
        let strayResolution = try await CatalogResolver(entry: entry, architecture: "x86_64", mirror: Self.mirrorRoot(mirror, "arch")).resolve()
        let strayPath = cache.path + "/" + CatalogCache.leaf(strayResolution, downloadName: name)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: strayPath))
        do {
            _ = try await third.fetch(context)
            Issue.record("a download replaced a cached disk of other bytes")
        } catch let error as WispError {
            #expect(error.kind == .alreadyExists, "\(error)")
        }
        #expect(FileManager.default.contents(atPath: strayPath) == Data([1, 2, 3]))
    }

    @Test func aDownloadWithoutContentLengthIsCapped() async throws {
        let mirror = try DistributionMirror()
        defer { mirror.stop() }
        let expected = try Self.populate(mirror)
        let arch = try #require(expected.first { $0.name == "arch" })
        mirror.unsized.withLock { _ = $0.insert(arch.path) }
        let dir = try TemporaryDirectory("wisp-catalog")
        let part = dir.file("staging/arch.part")
        var download = StagedDownload(url: try #require(URL(string: mirror.base + arch.path)), partPath: part, algorithm: .sha256)
        // Under the cap, a body without Content-Length downloads whole.
        let whole = try await download.run(progress: nil, announce: nil)
        let archDigest = try FixtureDigest.hex(arch.bytes, "sha256")
        #expect(whole.size == UInt64(arch.bytes.count) && whole.digest == archDigest)
        try FileManager.default.removeItem(atPath: part)
        // Past it: a typed error, and no partial file left holding the space.
        download.maxBytes = UInt64(arch.bytes.count / 3)
        do {
            _ = try await download.run(progress: nil, announce: nil)
            Issue.record("a download past its cap was accepted")
        } catch let error as WispError {
            #expect(error.kind == .invalidArgument && error.message.contains(arch.path) && error.message.contains("at most"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: part))
        #expect(StagedDownload.defaultMaxBytes == 64 << 30)
    }

    @Test func namesWithControlCharactersAreNotTaken() async throws {
        // A listing whose newest-looking entry smuggles an escape sequence (percent-encoded and raw).
        let page = Array("<a href=\"v20991231.1%1B%5B2J/\">x</a><a href=\"v20991231.2\u{1B}]0;pwned\u{07}/\">y</a><a href=\"v20991231.3%C2%9B/\">z</a><a href=\"v20250815.403817/\">ok</a>".utf8)
        #expect(DirectoryListing.names(in: page) == ["v20250815.403817"])
        let good = String(repeating: "ab", count: 32)
        let list = try ChecksumList.parse(Array("\(good)  Arch-Linux-x86_64-cloudimg-29991231\u{1B}[2J.qcow2\nSHA256 (evil\u{7F}.qcow2) = \(good)\n\(good)  fine.qcow2\n".utf8),
                                          algorithm: .sha256, source: "SHA256SUMS")
        #expect(list.names == ["fine.qcow2"])
        // Through the resolver: the hostile directory is never chosen over the real newest build.
        let mirror = try DistributionMirror()
        defer { mirror.stop() }
        let expected = try Self.populate(mirror)
        let name = "Arch-Linux-x86_64-cloudimg-20991231.1.qcow2"
        mirror.put("/arch/images/v20991231.1%1B%5B2J/\(name)", Self.payload(5))
        mirror.put("/arch/images/v20991231.1%1B%5B2J/\(name).SHA256", "\(try FixtureDigest.hex(Self.payload(5), "sha256"))  \(name)\n")
        let entry = try #require(try ImageCatalog.builtin().entry(named: "archlinux"))
        let resolution = try await CatalogResolver(entry: entry, architecture: "x86_64", mirror: Self.mirrorRoot(mirror, "arch")).resolve()
        #expect(resolution.build == (try #require(expected.first { $0.name == "arch" })).build)
        #expect(!resolution.build.unicodeScalars.contains { $0.value == 0x1B })
    }

    @Test func aChecksumMismatchCachesNothing() async throws {
        let mirror = try DistributionMirror()
        defer { mirror.stop() }
        let expected = try Self.populate(mirror)
        // The image changed on the server after its checksum was published.
        let arch = try #require(expected.first { $0.name == "arch" })
        mirror.put(arch.path, Self.payload(99))
        let dir = try TemporaryDirectory("wisp-catalog")
        let context = ImageResolveContext(cache: ImageCacheDirectory(path: dir.file("images")))
        let entry = try #require(try ImageCatalog.builtin().entry(named: "archlinux"))
        let source = CatalogImageSource(reference: "arch", entry: entry, architecture: "x86_64", mirror: Self.mirrorRoot(mirror, "arch"))
        do {
            _ = try await source.fetch(context)
            Issue.record("a download that does not match its published checksum was accepted")
        } catch let error as WispError {
            #expect(error.kind == .digestMismatch, "\(error)")
            #expect(error.message.contains("nothing was cached"), "\(error)")
        }
        let cache = CatalogCache(images: context.cache)
        #expect(cache.images().isEmpty && cache.partialDownloads().isEmpty)
        let left = (try? FileManager.default.contentsOfDirectory(atPath: cache.path)) ?? []
        #expect(left.allSatisfy { $0.hasPrefix(".") }, "\(left)")
        // aarch64 is not published for Arch: one sentence saying which are.
        do {
            _ = try await CatalogImageSource(reference: "arch", entry: entry, architecture: "aarch64").fetch(context)
            Issue.record("an unpublished architecture resolved")
        } catch let error as WispError {
            #expect(error.kind == .unsupported && error.message == "arch is not published for aarch64 (it is for x86_64)", "\(error)")
        }
    }

    @Test func aCutDownloadIsResumedWithARangeAndVerified() async throws {
        let mirror = try DistributionMirror()
        defer { mirror.stop() }
        let expected = try Self.populate(mirror)
        let ubuntu = try #require(expected.first { $0.name == "ubuntu-24.04" })
        mirror.cutOnce.withLock { _ = $0.insert(ubuntu.path) }
        let dir = try TemporaryDirectory("wisp-catalog")
        let announced = LockedValue([String]())
        let progress = LockedValue([(UInt64, UInt64?)]())
        let context = ImageResolveContext(cache: ImageCacheDirectory(path: dir.file("images")),
                                          progress: { done, total in progress.withLock { $0.append((done, total)) } },
                                          announce: { line in announced.withLock { $0.append(line) } })
        let entry = try #require(try ImageCatalog.builtin().entry(named: "24.04"))
        let fetched = try await CatalogImageSource(reference: "24.04", entry: entry, architecture: "x86_64", mirror: Self.mirrorRoot(mirror, "ubuntu")).fetch(context)
        #expect(FileManager.default.contents(atPath: fetched.resolved.path) == Data(ubuntu.bytes))
        #expect(mirror.requestCount(ubuntu.path) == 2)
        #expect(mirror.rangeRequests(ubuntu.path) == ["bytes=\(ubuntu.bytes.count / 2)-"])
        #expect(announced.withLock { $0.contains("resuming ubuntu-24.04-server-cloudimg-amd64.img at \(ByteSize.format(UInt64(ubuntu.bytes.count / 2)))") })
        // Progress counts the whole file, not the resumed part alone.
        #expect(progress.withLock { $0.last.map { $0.0 == UInt64(ubuntu.bytes.count) && $0.1 == UInt64(ubuntu.bytes.count) } ?? false })
    }

    @Test func aPartialFileLeftByAKilledWispIsResumed() async throws {
        let mirror = try DistributionMirror()
        defer { mirror.stop() }
        let expected = try Self.populate(mirror)
        let debian = expected[0]
        let dir = try TemporaryDirectory("wisp-catalog")
        let images = ImageCacheDirectory(path: dir.file("images"))
        let cache = CatalogCache(images: images)
        // What a Ctrl-C leaves: the first 100,000 bytes in the staging area, not an image.
        let digest = try FixtureDigest.hex(debian.bytes, "sha512")
        let part = "\(cache.staging)/\(digest.prefix(16))-debian-13-genericcloud-amd64-20250814-2204.qcow2.part"
        try FileManager.default.createDirectory(atPath: cache.staging, withIntermediateDirectories: true)
        try Data(debian.bytes.prefix(100_000)).write(to: URL(fileURLWithPath: part))
        #expect(cache.images().isEmpty && cache.partialDownloads().count == 1)
        let entry = try #require(try ImageCatalog.builtin().entry(named: "debian-13"))
        let fetched = try await CatalogImageSource(reference: "debian-13", entry: entry, architecture: "x86_64", mirror: Self.mirrorRoot(mirror, "debian")).fetch(ImageResolveContext(cache: images))
        #expect(FileManager.default.contents(atPath: fetched.resolved.path) == Data(debian.bytes))
        #expect(mirror.rangeRequests(debian.path) == ["bytes=100000-"])
        #expect(cache.partialDownloads().isEmpty)
    }

    @Test func notFoundAndStalledServersSayASentence() async throws {
        let mirror = try DistributionMirror()
        defer { mirror.stop() }
        let catalog = try ImageCatalog.builtin()
        // Nothing published under the root: the listing is a 404.
        let debian = try #require(catalog.entry(named: "debian-12"))
        do {
            _ = try await CatalogResolver(entry: debian, architecture: "x86_64", mirror: Self.mirrorRoot(mirror, "debian")).resolve()
            Issue.record("a missing directory resolved")
        } catch let error as WispError {
            #expect(error.kind == .notFound, "\(error)")
            #expect(error.message == "\(mirror.base)/debian/bookworm/: download failed: the server answered HTTP 404", "\(error)")
        }
        // A checksum file that lists other images only.
        _ = try Self.populate(mirror)
        mirror.put("/alma/9/cloud/x86_64/images/CHECKSUM", "SHA256 (AlmaLinux-9-GenericCloud-9.6-20250522.aarch64.qcow2) = \(String(repeating: "0a", count: 32))\n")
        do {
            _ = try await CatalogResolver(entry: try #require(catalog.entry(named: "alma-9")), architecture: "x86_64", mirror: Self.mirrorRoot(mirror, "almalinux")).resolve()
            Issue.record("an image missing from its checksum file resolved")
        } catch let error as WispError {
            #expect(error.kind == .notFound && error.message.hasSuffix("no sha256 line for an image matching AlmaLinux-9-GenericCloud-9.*.{arch}.qcow2 (almalinux-9)"), "\(error)")
        }
        // A server that accepts the request and then says nothing.
        mirror.stalls.withLock { _ = $0.insert("/fedora/releases/43/Cloud/x86_64/images/") }
        var resolver = CatalogResolver(entry: try #require(catalog.entry(named: "fedora-43")), architecture: "x86_64", mirror: Self.mirrorRoot(mirror, "fedora"))
        resolver.stallSeconds = 2
        let started = Date()
        do {
            _ = try await resolver.resolve()
            Issue.record("a stalled server resolved")
        } catch let error as WispError {
            #expect(error.kind == .timedOut, "\(error)")
            #expect(error.message.hasPrefix("\(mirror.base)/fedora/releases/43/Cloud/x86_64/images/: download failed: the server sent nothing for 2 s"), "\(error)")
        }
        #expect(Date().timeIntervalSince(started) < 60, "the 2 s stall limit, not the server, ended it (its kind is .timedOut, above); the bound only guards against a hang")
    }

    @Test func compressedImagesAreUnpackedOnTheWayIn() async throws {
        let mirror = try DistributionMirror()
        defer { mirror.stop() }
        let work = try TemporaryDirectory("wisp-xz")
        // A raw disk that is mostly zeros, as cloud images are; and a qcow2 made by qemu-img.
        var disk = [UInt8](repeating: 0, count: 4 << 20)
        let data = Self.payload(20, 200_000)
        disk.replaceSubrange(1 << 20..<(1 << 20) + data.count, with: data)
        try Data(disk).write(to: URL(fileURLWithPath: work.file("disk.raw")))
        #expect(try ToolRunner.run("tar", ["-C", work.path, "-cJf", work.file("image.tar.xz"), "disk.raw"]).status == 0)
        #expect(try ToolRunner.run("qemu-img", ["create", "-q", "-f", "qcow2", work.file("image.qcow2"), "64M"]).status == 0)
        #expect(try ToolRunner.run("xz", ["-k", work.file("image.qcow2")]).status == 0)
        let qcow2 = try #require(FileManager.default.contents(atPath: work.file("image.qcow2")))
        let tarball = Array(try #require(FileManager.default.contents(atPath: work.file("image.tar.xz"))))
        let xz = Array(try #require(FileManager.default.contents(atPath: work.file("image.qcow2.xz"))))
        mirror.put("/images/disk-raw.tar.xz", tarball)
        mirror.put("/images/disk.qcow2.xz", xz)
        mirror.put("/images/SHA256SUMS", "\(try FixtureDigest.hex(tarball, "sha256"))  disk-raw.tar.xz\n\(try FixtureDigest.hex(xz, "sha256"))  disk.qcow2.xz\n")
        // The user's own entries, as in images.d.
        let entries = try ImageCatalog.parse("""
            images:
              - name: my-raw
                distribution: mine
                release: "1"
                arches: {x86_64: {arch: amd64}}
                root: \(mirror.base)/
                directory: images/
                file: disk-raw.tar.xz
                checksum: {file: SHA256SUMS, algorithm: sha256}
              - name: my-qcow2
                distribution: mine
                release: "1"
                arches: {x86_64: {arch: amd64}}
                root: \(mirror.base)/
                directory: images/
                file: disk.qcow2.xz
                checksum: {file: SHA256SUMS, algorithm: sha256}
            """, file: "images.d/mine.yaml")
        let announced = LockedValue([String]())
        let context = ImageResolveContext(cache: ImageCacheDirectory(path: work.file("cache")), announce: { line in announced.withLock { $0.append(line) } })
        // --digest pins the unpacked disk: another disk is refused and not kept.
        var pinned = context
        pinned.expectedDigest = String(repeating: "0", count: 64)
        do {
            _ = try await CatalogImageSource(reference: "my-raw", entry: entries[0], architecture: "x86_64").fetch(pinned)
            Issue.record("a disk other than the pinned one was accepted")
        } catch let error as WispError {
            #expect(error.kind == .digestMismatch && error.message.contains("--digest asked for sha256:0000"), "\(error)")
        }
        #expect(CatalogCache(images: context.cache).images().isEmpty)
        let raw = try await CatalogImageSource(reference: "my-raw", entry: entries[0], architecture: "x86_64").fetch(context)
        #expect(raw.resolved.format == .raw && raw.resolved.path.hasSuffix(".raw"))
        #expect(FileManager.default.contents(atPath: raw.resolved.path) == Data(disk))
        #expect(raw.record.sha256 == (try FixtureDigest.hex(disk, "sha256")))
        // Zeros became holes: the 4 MiB disk holds about what its data needs.
        #expect(CatalogCache.allocatedBytes(raw.resolved.path) < 1 << 20)
        let unpacked = try await CatalogImageSource(reference: "my-qcow2", entry: entries[1], architecture: "x86_64").fetch(context)
        #expect(unpacked.resolved.format == .qcow2 && unpacked.resolved.path.hasSuffix(".qcow2"))
        #expect(FileManager.default.contents(atPath: unpacked.resolved.path) == qcow2)
        #expect(try ToolRunner.run("qemu-img", ["check", "-q", unpacked.resolved.path]).status == 0)
        // Both were unpacked while they downloaded, not after.
        #expect(announced.withLock { $0.filter { $0.hasPrefix("unpacked ") && $0.contains("while downloading") }.count } == 3, "\(announced.withLock { $0 })")
        #expect(!announced.withLock { $0.contains { $0.hasPrefix("unpacking ") } })
    }

    @Test func theCatalogFileIsCheckedAndUserEntriesAddOrReplace() throws {
        let catalog = try ImageCatalog.builtin()
        // Every distribution the catalog promises, with its aliases.
        for name in ["debian-12", "debian-12-generic", "debian-13", "debian-13-generic", "ubuntu-22.04", "ubuntu-24.04", "ubuntu-26.04",
                     "ubuntu-26.10", "fedora-43", "fedora-44", "fedora-45", "almalinux-9", "almalinux-10", "rocky-9", "rocky-10",
                     "centos-stream-10", "opensuse-leap-15.6", "opensuse-tumbleweed", "alpine-3.22", "alpine-3.24", "arch"] {
            let entry = try #require(catalog.entry(named: name), "\(name)")
            #expect(entry.arches["x86_64"] != nil, "\(name)")
            if name != "arch" { #expect(entry.arches["aarch64"] != nil, "\(name)") }
        }
        #expect(catalog.entry(named: "ubuntu")?.name == "ubuntu-26.04")
        #expect(catalog.entry(named: "ubuntu-interim")?.name == "ubuntu-26.10")
        #expect(catalog.entry(named: "rocky")?.name == "rocky-10")
        #expect(catalog.entry(named: "alpine")?.name == "alpine-3.24")
        #expect(catalog.entry(named: "debian")?.name == "debian-13")
        #expect(catalog.entry(named: "fedora")?.name == "fedora-45")
        // A user's file replaces a built-in name and adds one.
        let dir = try TemporaryDirectory("wisp-images.d")
        try """
            images:
              - name: debian-13
                distribution: debian
                release: "13"
                arches: {x86_64: {arch: amd64}}
                root: https://mirror.example.org/debian-cloud/
                directory: trixie/{build}/
                build: "20*"
                file: debian-13-genericcloud-{arch}-{build}.qcow2
                checksum: {file: SHA512SUMS, algorithm: sha512}
              - name: corp-base
                aliases: [corp]
                distribution: corp
                release: "7"
                arches: {x86_64: {arch: x86_64}}
                root: https://images.corp.example/
                directory: base/
                file: corp-base-7-*.qcow2
                checksum: {file: SHA256SUMS, algorithm: sha256}
            """.write(toFile: dir.file("10-corp.yaml"), atomically: true, encoding: .utf8)
        let merged = try ImageCatalog.load(userDirectory: dir.path)
        #expect(merged.entry(named: "debian-13")?.root == "https://mirror.example.org/debian-cloud/")
        #expect(merged.entry(named: "debian")?.root == "https://mirror.example.org/debian-cloud/", "a replaced entry keeps its aliases")
        #expect(merged.entry(named: "corp")?.name == "corp-base")
        // Bad entries: one sentence naming the file, the entry and the key.
        let bad: [(String, String)] = [
            ("images: [{name: x, distribution: d, release: '1', arches: {x86_64: {}}, root: 'ftp://h/', directory: d/, file: f, checksum: {file: S, algorithm: sha256}}]", "root: expected an http(s) URL ending in /"),
            ("images: [{name: x, distribution: d, release: '1', arches: {x86_64: {}}, root: 'http://h/', directory: ../d/, file: f, checksum: {file: S, algorithm: sha256}}]", "directory: expected a relative path"),
            ("images: [{name: x, distribution: d, release: '1', arches: {x86_64: {}}, root: 'http://h/', directory: d/, file: f, checksum: {file: S, algorithm: md5}}]", "checksum.algorithm: expected sha256 or sha512"),
            ("images: [{name: x, distribution: d, release: '1', arches: {riscv: {}}, root: 'http://h/', directory: d/, file: f, checksum: {file: S, algorithm: sha256}}]", "arches: only x86_64 and aarch64 are known"),
            ("images: [{name: x, distribution: d, release: '1', arches: {x86_64: {}}, root: 'http://h/', directory: d/, file: f, checksum: {file: S, algorithm: sha256}, mirror: y}]", "unknown key 'mirror'"),
            ("images: [{name: '../x', distribution: d}]", "name: letters, digits"),
            ("images: " + String(repeating: "[", count: 2000) + String(repeating: "]", count: 2000), "levels of YAML nesting"),
        ]
        for (text, words) in bad {
            do {
                _ = try ImageCatalog.parse(text, file: "bad.yaml")
                Issue.record("accepted: \(text)")
            } catch let error as WispError {
                #expect(error.kind == .invalidArgument && error.message.hasPrefix("bad.yaml") && error.message.contains(words), "\(error)")
            }
        }
    }

    @Test func checksumFilesAndListingsAreReadAsHostileInput() throws {
        let hex = String(repeating: "a1", count: 32)
        let list = try ChecksumList.parse(Array("""
            \(hex)  plain.qcow2\r
            \(hex) *binary.img
            SHA256 (odd (name) = x.qcow2) = \(hex)
            SHA512 (other.qcow2) = \(hex)
            \(hex.prefix(63))  short.qcow2
            \(hex)  ./sub/dir.qcow2
            - SHA256 (escaped.qcow2) = \(hex)
            garbage line
            """.utf8), algorithm: .sha256, source: "SUMS")
        #expect(list.names == ["plain.qcow2", "binary.img", "odd (name) = x.qcow2", "dir.qcow2", "escaped.qcow2"])
        #expect(throws: WispError.self) { try ChecksumList(lines: [.init(name: "a", hex: hex), .init(name: "a", hex: String(repeating: "b2", count: 32))]).digest(for: "a", source: "S") }
        #expect(throws: WispError.self) { try ChecksumList.parse([UInt8](repeating: 10, count: ChecksumList.maxBytes + 1), algorithm: .sha256, source: "S") }
        let names = DirectoryListing.names(in: Array("""
            <a href="?C=N;O=D">Name</a><a href="../">Parent</a><a href="/abs/">x</a><a href="http://evil/x">x</a>
            <A HREF='20250814-2204/'>d</A><a href=release-20250805/>r</a><a href="a%20b.qcow2">f</a><a href="..%2Fx">f</a><a href="
            """.utf8))
        #expect(names == ["20250814-2204", "release-20250805", "a b.qcow2"])
        // Versions sort number by number; globs match without backtracking blow-up.
        #expect(NameGlob("9.*").newest(in: ["9.9", "9.10", "9.2"]) == "9.10")
        #expect(NameGlob("v20*").newest(in: ["v20250801.390203", "v20250815.403817", "latest"]) == "v20250815.403817")
        #expect(NameGlob("*a*a*a*a*a*a*b").matches(String(repeating: "a", count: 5000)) == false)
        #expect(NameGlob("Fedora-Cloud-43-*-x86_64-CHECKSUM").matches("Fedora-Cloud-43-1.6-x86_64-CHECKSUM"))
    }
}
