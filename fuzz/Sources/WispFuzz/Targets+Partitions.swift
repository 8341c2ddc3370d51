import FileSystems
import Partitions
import WispCore

/// Partition tables as every disk command reads them first.
extension FuzzTargets {
    static let partitionTables: [FuzzTarget] = [
        FuzzTarget(name: "partitions", summary: "GPT (headers, entry array, CRCs, backup) and MBR (extended chains)") { input in
            let disk = FuzzInput.device(input, name: "disk.img")
            for sectorSize in [512, 4096] {
                attempt {
                    let table = try PartitionTable.read(from: disk, mbrSectorSize: sectorSize)
                    for partition in table.partitions.prefix(16) {
                        attempt { _ = try FileSystemProbe.probe(try partition.device(on: disk)) }
                    }
                }
            }
        },
    ]
}
