/// A minimal MIME multipart reader for user-data (what `cloud-init devel make-mime` and
/// write-mime-multipart produce): the boundary from the top Content-Type, then each part's
/// headers and body, base64 bodies decoded. Hostile input: bounded part count, no recursion.
struct MIMEMessage {
    struct Part {
        var contentType: String
        var body: [UInt8]
        /// Headers and body as they appear, for nested multiparts.
        var raw: [UInt8]
    }

    static let maximumParts = 1000
    var parts: [Part] = []

    init?(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let (headers, _) = Self.splitHeaders(Substring(text))
        guard let type = headers["content-type"], let boundary = Self.parameter("boundary", in: type), !boundary.isEmpty else {
            return nil
        }
        let delimiter = "--" + boundary
        var sections = text.components(separatedBy: delimiter)
        guard sections.count >= 2 else { return nil }
        sections.removeFirst()  // preamble
        for section in sections {
            if section.hasPrefix("--") { break }  // closing delimiter
            guard parts.count < Self.maximumParts else { break }
            var body = Substring(section)
            if body.hasPrefix("\r\n") { body = body.dropFirst(2) } else if body.hasPrefix("\n") { body = body.dropFirst() }
            let (partHeaders, content) = Self.splitHeaders(body)
            var payload = String(content)
            if payload.hasSuffix("\r\n") { payload.removeLast(2) } else if payload.hasSuffix("\n") { payload.removeLast() }
            let contentType = (partHeaders["content-type"] ?? "text/plain")
                .split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? "text/plain"
            var decoded = Array(payload.utf8)
            if partHeaders["content-transfer-encoding"]?.lowercased().contains("base64") == true {
                decoded = Self.base64(payload) ?? decoded
            }
            parts.append(Part(contentType: contentType, body: decoded, raw: Array(body.utf8)))
        }
        if parts.isEmpty { return nil }
    }

    static func splitHeaders(_ text: Substring) -> ([String: String], Substring) {
        var headers: [String: String] = [:]
        var rest = text
        var lastKey: String?
        while let newline = rest.firstIndex(of: "\n") {
            var line = rest[..<newline]
            if line.hasSuffix("\r") { line = line.dropLast() }
            rest = rest[rest.index(after: newline)...]
            if line.isEmpty { return (headers, rest) }
            if let first = line.first, first == " " || first == "\t", let key = lastKey {
                headers[key, default: ""] += " " + line.trimmingCharacters(in: .whitespaces)
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { return (headers, text) }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            headers[key] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            lastKey = key
        }
        return (headers, rest)
    }

    static func parameter(_ name: String, in header: String) -> String? {
        for piece in header.split(separator: ";").dropFirst() {
            let pair = piece.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == name else { continue }
            return pair[1].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return nil
    }

    static func base64(_ text: String) -> [UInt8]? {
        let cleaned = text.filter { !$0.isWhitespace }
        return Data(base64Encoded: cleaned).map { Array($0) }
    }
}

import Foundation
