import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import WispCore

/// What Wisp takes from an OVF descriptor: the disks (file, capacity, format), CPU count and
/// memory. Parsed with Foundation's XMLParser (libxml2 underneath, external entities off)
/// rather than XMLCoder: no extra package to build, and OVF's namespaced, optional-heavy
/// schema is easier to pick from as events than to decode into structs.
public struct OvfDescriptor: Sendable, Equatable {
    public static let maxSize = 4 << 20

    public struct Disk: Sendable, Equatable {
        public var diskId: String
        /// The `href` of the referenced File: the tar member holding the disk.
        public var href: String
        public var capacity: UInt64
        /// The format URI (http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized).
        public var format: String?
    }

    public var disks: [Disk] = []
    public var cpus: Int?
    public var memoryBytes: UInt64?

    public static func parse(_ bytes: [UInt8], name: String) throws -> OvfDescriptor {
        guard bytes.count <= maxSize else {
            throw WispError.corrupt(name, "OVF descriptor", "\(bytes.count) bytes, more than \(maxSize)")
        }
        let collector = Collector()
        let parser = XMLParser(data: Data(try preflight(bytes, name: name)))
        parser.shouldResolveExternalEntities = false
        parser.shouldProcessNamespaces = false
        parser.delegate = collector
        guard parser.parse() else {
            let message = parser.parserError.map { "\($0)" } ?? "malformed XML"
            throw WispError.corrupt(name, "OVF descriptor", "line \(parser.lineNumber): \(message)")
        }
        var d = OvfDescriptor()
        for disk in collector.disks {
            let units = disk.attributes["capacityAllocationUnits"] ?? "byte"
            guard let id = disk.attributes["diskId"], let fileRef = disk.attributes["fileRef"],
                  let href = collector.files[fileRef], let capacityText = disk.attributes["capacity"] else {
                throw WispError.corrupt(name, "OVF Disk", "a Disk lacks diskId, fileRef (to a File), or capacity")
            }
            guard let capacity = UInt64(capacityText), let scale = unitScale(units),
                  capacity.multipliedReportingOverflow(by: scale).overflow == false else {
                throw WispError.corrupt(name, "OVF Disk \(id)", "capacity \(capacityText) \(units) is not a size")
            }
            d.disks.append(Disk(diskId: id, href: href, capacity: capacity * scale, format: disk.attributes["format"]))
        }
        for item in collector.items {
            guard let type = item["ResourceType"], let quantity = item["VirtualQuantity"].flatMap({ UInt64($0) }) else { continue }
            if type == "3" {
                d.cpus = Int(clamping: quantity)
            } else if type == "4" {
                let scale = unitScale(item["AllocationUnits"] ?? "byte * 2^20") ?? (1 << 20)
                let (bytes, overflow) = quantity.multipliedReportingOverflow(by: scale)
                if !overflow { d.memoryBytes = bytes }
            }
        }
        return d
    }

    /// Makes hostile XML safe to hand to XMLParser. swift-corelibs-foundation's XMLParser
    /// dereferences NULL on a processing instruction without data (`<?x?>`), so every
    /// processing instruction except the leading XML declaration is blanked out (same length,
    /// so line numbers in errors stay right); OVF gives them no meaning. A DOCTYPE (the only
    /// way to declare entities, and so to build an entity-expansion bomb) is refused: OVF
    /// descriptors never carry one.
    static func preflight(_ bytes: [UInt8], name: String) throws -> [UInt8] {
        // Foundation's XMLParser force-unwraps every element and attribute name as UTF-8:
        // one invalid byte in a name (`xmlns:rasd\xFF=`) traps the process (found by the
        // ovf fuzz target). OVF descriptors are UTF-8; anything else is refused here.
        if let bad = firstInvalidUTF8(bytes) {
            throw WispError.corrupt(name, "OVF descriptor", at: UInt64(bad), "is not valid UTF-8 (byte 0x\(String(bytes[bad], radix: 16)))")
        }
        var out = bytes
        var i = 0
        let count = bytes.count
        func starts(_ pattern: [UInt8], at index: Int) -> Bool {
            index + pattern.count <= count && bytes[index..<index + pattern.count].elementsEqual(pattern)
        }
        let bomLength = starts([0xEF, 0xBB, 0xBF], at: 0) ? 3 : 0
        while i + 1 < count {
            guard bytes[i] == UInt8(ascii: "<") else { i += 1; continue }
            if starts(Array("<!DOCTYPE".utf8), at: i) || starts(Array("<!ENTITY".utf8), at: i) {
                throw WispError.corrupt(name, "OVF descriptor", "offset \(i): a DOCTYPE or ENTITY declaration (OVF has none; refused)")
            }
            guard bytes[i + 1] == UInt8(ascii: "?") else { i += 1; continue }
            var end = i + 2
            while end + 1 < count, !(bytes[end] == UInt8(ascii: "?") && bytes[end + 1] == UInt8(ascii: ">")) { end += 1 }
            guard end + 1 < count else {
                throw WispError.corrupt(name, "OVF descriptor", "offset \(i): a processing instruction without its closing '?>'")
            }
            let isDeclaration = i == bomLength && starts(Array("<?xml".utf8), at: i)
                && (i + 5 < count && [UInt8(ascii: " "), 0x09, 0x0A, 0x0D].contains(bytes[i + 5]))
            if isDeclaration {
                // libxml must end the declaration where this scan does: one it cannot parse
                // (`<?xml version=<?xml ...`) sends it on to report a later `<?xml?>` as a
                // processing instruction without data, which Foundation's XMLParser passes
                // to strlen (a NULL read, found by the ovf fuzz target).
                guard isWellFormedDeclaration(bytes[(i + 5)..<end]) else {
                    throw WispError.corrupt(name, "OVF descriptor", at: UInt64(i), "a malformed XML declaration")
                }
            } else {
                for k in i...(end + 1) where out[k] != 0x0A { out[k] = UInt8(ascii: " ") }
            }
            i = end + 2
        }
        return out
    }

    /// The inside of `<?xml ... ?>`: only `name="value"` or `name='value'` pairs separated by
    /// white space, values without `<` (XML 1.0 production 23, as libxml reads it).
    static func isWellFormedDeclaration(_ inside: ArraySlice<UInt8>) -> Bool {
        let space: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0D]
        func isNameByte(_ b: UInt8) -> Bool {
            (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x2D || b == 0x5F || b == 0x2E
        }
        var i = inside.startIndex
        var pairs = 0
        while true {
            while i < inside.endIndex, space.contains(inside[i]) { i += 1 }
            guard i < inside.endIndex else { return pairs > 0 }
            let nameStart = i
            while i < inside.endIndex, isNameByte(inside[i]) { i += 1 }
            guard i > nameStart else { return false }
            while i < inside.endIndex, space.contains(inside[i]) { i += 1 }
            guard i < inside.endIndex, inside[i] == UInt8(ascii: "=") else { return false }
            i += 1
            while i < inside.endIndex, space.contains(inside[i]) { i += 1 }
            guard i < inside.endIndex, inside[i] == 0x22 || inside[i] == 0x27 else { return false }
            let quote = inside[i]
            i += 1
            while i < inside.endIndex, inside[i] != quote {
                guard inside[i] != UInt8(ascii: "<") else { return false }
                i += 1
            }
            guard i < inside.endIndex else { return false }
            i += 1
            pairs += 1
            // Pairs are separated by white space.
            guard i == inside.endIndex || space.contains(inside[i]) else { return false }
        }
    }

    /// The offset of the first byte that does not start a valid UTF-8 sequence, or nil.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): offset += scalar.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }

    /// "byte", "byte * 2^20", "byte * 1024", "KiloBytes", "MegaBytes", "GigaBytes".
    static func unitScale(_ units: String) -> UInt64? {
        let compact = units.filter { !$0.isWhitespace }.lowercased()
        switch compact {
        case "byte", "bytes": return 1
        case "kilobytes", "kb": return 1 << 10
        case "megabytes", "mb": return 1 << 20
        case "gigabytes", "gb": return 1 << 30
        default: break
        }
        guard compact.hasPrefix("byte*") else { return nil }
        let factor = compact.dropFirst(5)
        if factor.hasPrefix("2^"), let p = Int(factor.dropFirst(2)), (0...60).contains(p) { return 1 << UInt64(p) }
        if let n = UInt64(factor), n > 0 { return n }
        return nil
    }

    /// Element events reduced to what `parse` needs, by local name (OVF files use varying
    /// namespace prefixes).
    final class Collector: NSObject, XMLParserDelegate {
        var files: [String: String] = [:]
        var disks: [(attributes: [String: String], Void)] = []
        var items: [[String: String]] = []
        private var currentItem: [String: String]?
        private var text = ""
        private var depth = 0

        static func local(_ name: String) -> String {
            name.split(separator: ":").last.map(String.init) ?? name
        }

        static func localAttributes(_ a: [String: String]) -> [String: String] {
            var out: [String: String] = [:]
            for (k, v) in a { out[local(k)] = v }
            return out
        }

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                    qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
            depth += 1
            if depth > 64 || files.count + disks.count + items.count > 100_000 { parser.abortParsing(); return }
            let attrs = Self.localAttributes(attributeDict)
            switch Self.local(elementName) {
            case "File":
                if let id = attrs["id"], let href = attrs["href"] { files[id] = href }
            case "Disk":
                disks.append((attrs, ()))
            case "Item", "StorageItem", "EthernetPortItem":
                currentItem = [:]
            default: break
            }
            text = ""
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if text.count < 4096 { text += string }
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
            depth -= 1
            let local = Self.local(elementName)
            if local == "Item" || local == "StorageItem" || local == "EthernetPortItem" {
                if let item = currentItem { items.append(item) }
                currentItem = nil
            } else if currentItem != nil {
                currentItem?[local] = text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            text = ""
        }
    }
}
