import ArgumentParser
import Foundation
import ImageSources
import WispCore
import WispKit

struct ImagesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "images",
        abstract: "List the cloud images Wisp has downloaded from its catalog, the catalog itself, or prune the cache.",
        discussion: """
        `wisp run NAME` and `wisp image pull NAME` take a catalog name (debian-13, ubuntu-24.04, \
        fedora, ...): the image is downloaded once from its distribution, checked against the \
        checksum file published beside it (and that file's OpenPGP signature, with gpgv, where \
        the distribution signs it and its keyring is installed), unpacked and kept in \
        $XDG_CACHE_HOME/wisp/images/catalog. Add your own names in \
        $XDG_CONFIG_HOME/wisp/images.d/*.yaml; set a mirror per distribution in config.yaml \
        (mirrors: {debian: URL}).

        Examples:
          wisp images
          wisp images catalog
          wisp images prune --older-than 30d
        """,
        subcommands: [ImagesListCommand.self, ImagesCatalogCommand.self, ImagesPruneCommand.self],
        defaultSubcommand: ImagesListCommand.self)
}

struct ImagesListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List cached catalog images: name, build, architecture, size, last use and the instances based on each.",
        discussion: """
        Example:
          wisp images --json
        """)

    @Flag(help: "Print the result as JSON.") var json = false

    struct Row: Encodable {
        var name, build, architecture, distribution, release, url, sha256, trust, path: String
        var size: UInt64
        var downloaded, lastUsed: Date
        var instances: [String]
    }

    func run() throws {
        let images = CatalogImages()
        let users = images.users()
        let cache = images.cache
        let rows = cache.images().map { image in
            let path = cache.diskPath(image)
            return Row(name: image.resolution.name, build: image.resolution.build, architecture: image.resolution.architecture,
                       distribution: image.resolution.distribution, release: image.resolution.release, url: image.resolution.url,
                       sha256: image.sha256, trust: image.resolution.trust.rawValue, path: path,
                       size: CatalogCache.allocatedBytes(path), downloaded: image.downloaded, lastUsed: image.lastUsed,
                       instances: users[URL(fileURLWithPath: path).standardizedFileURL.path]?.sorted() ?? [])
        }
        if json { return try JSONOutput.print(rows) }
        guard !rows.isEmpty else {
            FileOutput.standardError("no catalog images cached (wisp image pull NAME; wisp images catalog lists the names)\n")
            return
        }
        var lines = [["NAME", "BUILD", "ARCH", "SIZE", "LAST USED", "INSTANCES"]]
        for row in rows {
            lines.append([row.name, row.build, row.architecture, ByteSize.format(row.size), Self.ago(row.lastUsed),
                          row.instances.isEmpty ? "-" : row.instances.joined(separator: ",")])
        }
        print(Self.table(lines))
    }

    static func ago(_ date: Date, now: Date = Date()) -> String {
        let seconds = max(0, now.timeIntervalSince(date))
        if seconds < 120 { return "just now" }
        if seconds < 7200 { return "\(Int(seconds / 60)) min ago" }
        if seconds < 172_800 { return "\(Int(seconds / 3600)) h ago" }
        return "\(Int(seconds / 86400)) days ago"
    }

    static func table(_ lines: [[String]]) -> String {
        let widths = (0..<lines[0].count).map { column in lines.map { $0[column].count }.max() ?? 0 }
        return lines.map { line in
            line.enumerated().map { $0.offset == line.count - 1 ? $0.element : $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

struct ImagesCatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "List the names `wisp run` knows: distribution, release, architectures, aliases.",
        discussion: """
        The built-in catalog, plus entries from $XDG_CONFIG_HOME/wisp/images.d/*.yaml (same \
        shape as the built-in catalog; an entry with a built-in name replaces it).

        --check resolves every name for every architecture against the real servers (build \
        directory, checksum file, the image's line, signature) and prints the URL each resolves \
        to; it exits 1 when any fails (scripts/check-catalog runs it, then HEADs every URL).

        Examples:
          wisp images catalog --json
          wisp images catalog --check
        """)

    @Flag(help: "Print the result as JSON.") var json = false
    @Flag(help: "Resolve every entry on the network and print name, architecture, build, trust and URL.") var check = false

    struct Row: Encodable {
        var name, distribution, release, variant, source, trust: String
        var aliases, architectures: [String]
    }

    func run() async throws {
        let catalog = try CatalogImages().catalog()
        if check { return try await checkAll(catalog) }
        let rows = catalog.entries.map { entry in
            Row(name: entry.name, distribution: entry.distribution, release: entry.release, variant: entry.variant,
                source: entry.source, trust: entry.signature == nil ? "checksum" : "signed checksum",
                aliases: catalog.aliases(of: entry), architectures: entry.architectures)
        }
        if json { return try JSONOutput.print(rows) }
        var lines = [["NAME", "ALIASES", "ARCH", "VERIFIED BY"]]
        for row in rows {
            lines.append([row.name, row.aliases.isEmpty ? "-" : row.aliases.joined(separator: ","),
                          row.architectures.joined(separator: ","), row.trust + (row.source == "built-in" ? "" : " (\(row.source))")])
        }
        print(ImagesListCommand.table(lines))
    }
}

extension ImagesCatalogCommand {
    /// One line per name and architecture: `ok NAME ARCH BUILD TRUST URL` or `FAIL NAME ARCH: why`.
    func checkAll(_ catalog: ImageCatalog) async throws {
        let mirrors = (try? WispConfig.load())?.mirrors ?? [:]
        var failures = 0
        for entry in catalog.entries {
            for arch in entry.architectures {
                do {
                    let resolution = try await CatalogResolver(entry: entry, architecture: arch, mirror: mirrors[entry.distribution]).resolve()
                    print("ok \(entry.name) \(arch) \(resolution.build) [\(resolution.trust.rawValue)] \(resolution.url)")
                } catch {
                    failures += 1
                    print("FAIL \(entry.name) \(arch): \(error)")
                }
            }
        }
        if failures > 0 { throw WispError(.failed, "\(failures) catalog entr\(failures == 1 ? "y" : "ies") did not resolve") }
    }
}

struct ImagesPruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove cached catalog images no instance uses, and say how much was freed.",
        discussion: """
        Without options: builds replaced by a newer build of the same name. --all: every \
        image no instance is based on, and partial downloads. --older-than: images not used \
        for that long (30d, 12h, 90m). An image an instance is based on is never removed. \
        Warm templates (wisp run's saved guests, one per image and shape) are removed too, \
        except those running clones' disks back onto.

        Examples:
          wisp images prune
          wisp images prune --all
          wisp images prune --older-than 30d
        """)

    @Flag(help: "Remove every cached image no instance uses, and partial downloads.") var all = false
    @Option(name: .customLong("older-than"), help: "Remove images not used for this long (e.g. 30d, 12h, 90m).") var olderThan: String?
    @Flag(help: "Print the result as JSON.") var json = false

    static func parseDuration(_ text: String) throws -> TimeInterval {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800]
        guard let unit = text.last, let scale = units[unit], let number = Double(text.dropLast()), number >= 0, number.isFinite else {
            throw WispError.usage("--older-than \(text): expected a number and a unit (s, m, h, d or w), e.g. 30d")
        }
        return number * scale
    }

    struct Result: Encodable {
        var removed: [String]
        var kept: [String]
        var partialDownloads: Int
        var templatesRemoved: [String]
        var templatesKept: [String]
        var freed: UInt64
    }

    func run() throws {
        let age = try olderThan.map(Self.parseDuration)
        // Templates first: a template no instance uses no longer keeps its base image.
        let templates = WarmTemplateStore().prune(instances: InstanceStore())
        let pruned = CatalogImages().prune(all: all, olderThan: age)
        let templatesKept = templates.kept.map { "\($0.key): \($0.instances.joined(separator: ", "))" }
        if json {
            return try JSONOutput.print(Result(removed: pruned.removed.map { "\($0.resolution.name) \($0.resolution.build) \($0.resolution.architecture)" },
                                               kept: pruned.kept.map { "\($0.image.resolution.name) \($0.image.resolution.build) \($0.image.resolution.architecture)" },
                                               partialDownloads: pruned.partials, templatesRemoved: templates.removed, templatesKept: templatesKept,
                                               freed: pruned.bytes + templates.bytes))
        }
        for key in templates.removed { print("removed warm template \(key)") }
        for kept in templatesKept { print("kept warm template \(kept)") }
        for image in pruned.removed {
            print("removed \(image.resolution.name) \(image.resolution.build) (\(image.resolution.architecture))")
        }
        for (image, instances) in pruned.kept where all || age != nil {
            print("kept \(image.resolution.name) \(image.resolution.build) (\(image.resolution.architecture)): used by \(instances.joined(separator: ", "))")
        }
        let partial = pruned.partials > 0 ? " and \(pruned.partials) partial download(s)" : ""
        print("freed \(ByteSize.format(pruned.bytes + templates.bytes)) (\(pruned.removed.count) image(s)\(partial), \(templates.removed.count) warm template(s))")
    }
}
