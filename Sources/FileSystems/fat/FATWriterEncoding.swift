import WispCore

/// The bytes of a laid-out FAT image: boot sector (and for FAT32 its FSInfo and backups),
/// both FATs, directory tables and file data.
extension FATLayout {
    func pieces() -> [FATPiece] {
        var pieces: [FATPiece] = []
        let g = geometry
        let boot = bootSector()
        pieces.append(FATPiece(offset: 0, bytes: boot))
        if g.type == .fat32 {
            let info = fsInfo()
            pieces.append(FATPiece(offset: 512, bytes: info))
            pieces.append(FATPiece(offset: 6 * 512, bytes: boot))
            pieces.append(FATPiece(offset: 7 * 512, bytes: info))
        }
        let table = fat()
        for copy in 0..<2 {
            pieces.append(FATPiece(offset: (g.firstFATSector + UInt64(copy) * g.sectorsPerFAT) * FATGeometry.sectorSize, bytes: table))
        }
        for directory in directories {
            let table = directoryTable(directory)
            let offset = directory === root && g.type != .fat32
                ? g.rootDirectorySector * FATGeometry.sectorSize
                : g.clusterOffset(directory.firstCluster)
            pieces.append(FATPiece(offset: offset, bytes: table))
        }
        for file in files where file.clusterCount > 0 {
            pieces.append(FATPiece(offset: g.clusterOffset(file.firstCluster), bytes: file.contents ?? []))
        }
        return pieces
    }

    private func bootSector() -> [UInt8] {
        let g = geometry
        var b = [UInt8](repeating: 0, count: 512)
        let fat32 = g.type == .fat32
        b[0] = 0xEB; b[1] = fat32 ? 0x58 : 0x3C; b[2] = 0x90
        b.replaceSubrange(3..<11, with: Array("mkfs.fat".utf8))
        b.putLE16(512, at: 11)
        b[13] = UInt8(g.sectorsPerCluster)
        b.putLE16(UInt16(g.reservedSectors), at: 14)
        b[16] = 2
        b.putLE16(UInt16(g.rootEntryCount), at: 17)
        if g.totalSectors < 65536 && !fat32 {
            b.putLE16(UInt16(g.totalSectors), at: 19)
        } else {
            b.putLE32(UInt32(truncatingIfNeeded: g.totalSectors), at: 32)
        }
        b[21] = 0xF8
        if !fat32 { b.putLE16(UInt16(g.sectorsPerFAT), at: 22) }
        b.putLE16(32, at: 24)   // sectors per track, heads: nominal CHS, as mkfs.fat writes for images
        b.putLE16(64, at: 26)
        let label = (try? FATLayout.labelField(writer.label, source: "")) ?? Array("NO NAME    ".utf8)
        let extended: Int
        if fat32 {
            b.putLE32(UInt32(g.sectorsPerFAT), at: 36)
            b.putLE32(2, at: 44)     // root directory cluster
            b.putLE16(1, at: 48)     // FSInfo sector
            b.putLE16(6, at: 50)     // backup boot sector
            extended = 64
        } else {
            extended = 36
        }
        b[extended] = 0x80
        b[extended + 2] = 0x29
        b.putLE32(writer.volumeID, at: extended + 3)
        b.replaceSubrange((extended + 7)..<(extended + 18), with: label)
        let typeName = fat32 ? "FAT32   " : (g.type == .fat12 ? "FAT12   " : "FAT16   ")
        b.replaceSubrange((extended + 18)..<(extended + 26), with: Array(typeName.utf8))
        // Boot code: halt forever; this volume is data, not a boot disk.
        let code = fat32 ? 0x5A : 0x3E
        b[code] = 0xF4; b[code + 1] = 0xEB; b[code + 2] = 0xFD
        b[510] = 0x55; b[511] = 0xAA
        return b
    }

    private func fsInfo() -> [UInt8] {
        var s = [UInt8](repeating: 0, count: 512)
        s.putLE32(0x4161_5252, at: 0)
        s.putLE32(0x6141_7272, at: 484)
        s.putLE32(UInt32(geometry.clusterCount) - usedClusters, at: 488)
        s.putLE32(2 + usedClusters, at: 492)
        s.putLE32(0xAA55_0000, at: 508)
        return s
    }

    private func fat() -> [UInt8] {
        let g = geometry
        var table = [UInt8](repeating: 0, count: Int(g.sectorsPerFAT) * 512)
        let endOfChain: UInt32
        func set(_ cluster: UInt32, _ value: UInt32) {
            let n = Int(cluster)
            switch g.type {
            case .fat12:
                let offset = n + n / 2
                if n % 2 == 0 {
                    table[offset] = UInt8(value & 0xFF)
                    table[offset + 1] = (table[offset + 1] & 0xF0) | UInt8((value >> 8) & 0x0F)
                } else {
                    table[offset] = (table[offset] & 0x0F) | UInt8((value & 0x0F) << 4)
                    table[offset + 1] = UInt8((value >> 4) & 0xFF)
                }
            case .fat16: table.putLE16(UInt16(truncatingIfNeeded: value), at: n * 2)
            case .fat32: table.putLE32(value, at: n * 4)
            }
        }
        switch g.type {
        case .fat12: endOfChain = 0xFFF; set(0, 0xFF8)
        case .fat16: endOfChain = 0xFFFF; set(0, 0xFFF8)
        case .fat32: endOfChain = 0x0FFF_FFFF; set(0, 0x0FFF_FFF8)
        }
        set(1, endOfChain)
        for node in directories + files where node.clusterCount > 0 {
            for index in 0..<node.clusterCount {
                let cluster = node.firstCluster + index
                set(cluster, index + 1 == node.clusterCount ? endOfChain : cluster + 1)
            }
        }
        return table
    }

    /// DOS date and time words (UTC; FAT has no zone), clamped to 1980...2107.
    private var dosStamp: (date: UInt16, time: UInt16) {
        let t = CivilTime(secondsSinceEpoch: writer.timestamp)
        if t.year < 1980 { return (UInt16(1 << 5 | 1), 0) }
        if t.year > 2107 { return (UInt16(127 << 9 | 12 << 5 | 31), UInt16(23 << 11 | 59 << 5 | 29)) }
        let date = UInt16((t.year - 1980) << 9 | t.month << 5 | t.day)
        let time = UInt16(t.hour << 11 | t.minute << 5 | t.second / 2)
        return (date, time)
    }

    private func shortEntry(_ name: [UInt8], attributes: UInt8, cluster: UInt32, size: UInt32) -> [UInt8] {
        var e = [UInt8](repeating: 0, count: 32)
        e.replaceSubrange(0..<11, with: name)
        if e[0] == 0xE5 { e[0] = 0x05 }
        e[11] = attributes
        let stamp = dosStamp
        e.putLE16(stamp.time, at: 14)
        e.putLE16(stamp.date, at: 16)
        e.putLE16(stamp.date, at: 18)
        e.putLE16(UInt16(cluster >> 16), at: 20)
        e.putLE16(stamp.time, at: 22)
        e.putLE16(stamp.date, at: 24)
        e.putLE16(UInt16(cluster & 0xFFFF), at: 26)
        e.putLE32(size, at: 28)
        return e
    }

    private func directoryTable(_ directory: FATNode) -> [UInt8] {
        var table: [UInt8] = []
        if directory === root {
            let label = (try? FATLayout.labelField(writer.label, source: "")) ?? Array("NO NAME    ".utf8)
            table += shortEntry(label, attributes: 0x08, cluster: 0, size: 0)
        } else {
            let parent = directories.first { $0.children.contains { $0 === directory } }
            let parentCluster = parent === root ? 0 : (parent?.firstCluster ?? 0)
            table += shortEntry(Array(".          ".utf8), attributes: 0x10, cluster: directory.firstCluster, size: 0)
            table += shortEntry(Array("..         ".utf8), attributes: 0x10, cluster: parentCluster, size: 0)
        }
        for child in directory.children {
            for entry in child.longNameEntries { table += entry }
            var attributes: UInt8 = child.isDirectory ? 0x10 : 0x20
            if child.permissions & 0o222 == 0 { attributes |= 0x01 }
            table += shortEntry(child.shortName, attributes: attributes, cluster: child.firstCluster,
                                size: UInt32(child.contents?.count ?? 0))
        }
        // Zero-fill to the table's full size so stale bytes never look like entries.
        let capacity = directory === root && geometry.type != .fat32
            ? geometry.rootEntryCount * 32
            : Int(directory.clusterCount) * geometry.bytesPerCluster
        table += [UInt8](repeating: 0, count: max(0, capacity - table.count))
        return table
    }
}
