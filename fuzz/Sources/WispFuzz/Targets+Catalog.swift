@testable import ImageSources
import WispCore

/// What distribution servers send the catalog resolver: checksum files in every published
/// format, directory index pages, and users' catalog files (images.d).
extension FuzzTargets {
    static let catalog: [FuzzTarget] = [
        FuzzTarget(name: "checksum-list", summary: "SHA256SUMS/SHA512SUMS, BSD CHECKSUM, clearsigned, per-image .sha256/.sha512") { input in
            for algorithm in ChecksumAlgorithm.allCases {
                attempt {
                    let list = try ChecksumList.parse(input, algorithm: algorithm, source: "SUMS")
                    if let name = list.names.first { _ = try list.digest(for: name, source: "SUMS") }
                }
            }
        },
        FuzzTarget(name: "directory-listing", summary: "web server index pages, globs and version order over their names") { input in
            let names = DirectoryListing.names(in: input)
            _ = NameGlob("20??????-*").newest(in: names)
            _ = NameGlob("*a*b*.qcow2").newest(in: names)
        },
        FuzzTarget(name: "catalog-yaml", summary: "catalog files (images.d/*.yaml)") { input in
            attempt { _ = try ImageCatalog.parse(FuzzInput.text(input), file: "images.d/fuzz.yaml") }
        },
    ]
}
