import WispCore

/// Turns the IMAGE a user typed into the source that can resolve it.
public enum ImageReference {
    /// An http(s) URL is downloaded; a container reference (oci:, oci-archive:,
    /// docker-archive:, docker://) becomes a disk built from the image; anything else is a
    /// local path. Schemes Wisp does not fetch (ftp:, s3:, ...) are refused rather than
    /// taken for file names.
    public static func parse(_ text: String) throws -> any ImageSource {
        if HTTPImageSource.handles(text) { return try HTTPImageSource(reference: text) }
        if OCIImageSource.handles(text) { return try OCIImageSource(reference: text) }
        if let colon = text.firstIndex(of: ":"), !text.hasPrefix("/"), !text.hasPrefix("."),
           text[text.index(after: colon)...].hasPrefix("//") {
            let scheme = text[..<colon]
            throw WispError.usage("\(text): \(scheme):// images are not fetched by Wisp (use a file path or an http(s) URL)")
        }
        guard !text.isEmpty else { throw WispError.usage("the image name is empty") }
        return LocalFileSource(reference: text)
    }

    /// Parses `sha256:HEX` into lowercase hex.
    public static func parseDigest(_ text: String) throws -> String {
        let parts = text.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "sha256", parts[1].count == 64,
              parts[1].allSatisfy({ $0.isHexDigit }) else {
            throw WispError.usage("--digest \(text): expected sha256: followed by 64 hex digits")
        }
        return parts[1].lowercased()
    }
}
