import Machine
@testable import MetadataService
@testable import OCI
import WispCore

/// Bytes from other processes: QEMU's QMP socket, guests talking to the metadata server,
/// registries' auth challenges.
extension FuzzTargets {
    static let protocols: [FuzzTarget] = [
        FuzzTarget(name: "qmp", summary: "QMP JSON lines from QEMU (greeting, return, error, events)") { input in
            for line in FuzzInput.text(input).split(separator: "\n", omittingEmptySubsequences: false).prefix(64) {
                attempt { _ = try QMPMessage.parse(String(line), source: "qmp.sock") }
            }
        },
        FuzzTarget(name: "http", summary: "HTTP/1.1 requests to the metadata server (pipelined), phone_home forms") { input in
            var buffer = input
            for _ in 0..<64 {
                guard case .request(let request) = HTTPServer.parseRequest(&buffer) else { break }
                _ = MetadataServer.parseForm(request.body)
            }
        },
        FuzzTarget(name: "registry-text", summary: "registry WWW-Authenticate challenges, image references, platforms") { input in
            let text = FuzzInput.text(input)
            _ = RegistryAuthChallenge(text)
            attempt { _ = try OCIReference.parse(text) }
            attempt { _ = try OCIPlatform(parsing: text) }
        },
    ]
}
