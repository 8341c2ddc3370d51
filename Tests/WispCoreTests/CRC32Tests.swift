import Testing
@testable import WispCore

@Suite struct CRC32Tests {
    @Test func knownVectors() {
        let check = Array("123456789".utf8)
        #expect(CRC32.checksum(check) == 0xCBF4_3926)
        #expect(CRC32C.checksum(check) == 0xE306_9283)
        #expect(CRC32.checksum([UInt8]()) == 0)
    }

    @Test func continuationMatchesOneShot() {
        let data = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let whole = CRC32.checksum(data)
        let split = CRC32.checksum(data[5000...], continuing: CRC32.checksum(data[..<5000]))
        #expect(whole == split)
        let wholeC = CRC32C.checksum(data)
        let splitC = CRC32C.checksum(data[1234...], continuing: CRC32C.checksum(data[..<1234]))
        #expect(wholeC == splitC)
    }
}

@Suite struct ByteSizeTests {
    @Test func parsesQemuSpellings() throws {
        #expect(try ByteSize.parse("10G") == 10 << 30)
        #expect(try ByteSize.parse("512M") == 512 << 20)
        #expect(try ByteSize.parse("64k") == 64 << 10)
        #expect(try ByteSize.parse("4096") == 4096)
        #expect(try ByteSize.parse("1.5G") == 3 << 29)
        #expect(try ByteSize.parse("2GiB") == 2 << 30)
        #expect(throws: WispError.self) { try ByteSize.parse("ten") }
        #expect(throws: WispError.self) { try ByteSize.parse("99999999999E") }
    }

    /// Memory as `qemu -m` reads it: a bare number is MiB; a unit (B included) is kept.
    @Test func memoryBareNumbersAreMiB() throws {
        #expect(try ByteSize.parseMemory("2048") == 2 << 30)
        #expect(try ByteSize.parseMemory("1.5") == 3 << 19)
        #expect(try ByteSize.parseMemory("2G") == 2 << 30)
        #expect(try ByteSize.parseMemory("1536M") == 1536 << 20)
        #expect(try ByteSize.parseMemory("4096B") == 4096)
        #expect(throws: WispError.self) { try ByteSize.parseMemory("99999999999999") }
    }
}

@Suite struct ByteReaderTests {
    @Test func boundsCheckedReadsNameTheStructure() throws {
        let r = ByteReader([1, 2, 3, 4, 5], source: "disk.img", structure: "test header", baseOffset: 100)
        #expect(try r.u32le(0) == 0x0403_0201)
        #expect(try r.u32be(1) == 0x0203_0405)
        do {
            _ = try r.u64le(0)
            Issue.record("expected an error")
        } catch let e as WispError {
            #expect(e.kind == .corrupt)
            #expect(e.message == "disk.img: test header at offset 100: needs 8 bytes, 5 remain")
        }
        #expect(throws: WispError.self) { try r.u8(-1) }
        #expect(throws: WispError.self) { try r.slice(3, Int.max) }
    }
}
