import Testing
import WispTestSupport
import WispCore

/// The in-memory device against a byte array model: every read of a random window over
/// random (overlapping, clipped) extents returns what the model holds.
@Suite struct MemoryBlockDeviceTests {
    @Test("reads match a dense model: zeros between extents, later extents win, clipped at the end")
    func readsMatchModel() throws {
        var random = SplitMix64(state: 0x4D45_4D44)
        for _ in 0..<200 {
            let size = Int(random.next() % 5000)
            var model = [UInt8](repeating: 0, count: size)
            var extents: [MemoryBlockDevice.Extent] = []
            for _ in 0..<Int(random.next() % 6) {
                let offset = Int(random.next() % UInt64(size + 100))
                let bytes = random.bytes(Int(random.next() % 700))
                extents.append(.init(offset: UInt64(offset), bytes: bytes))
                for (i, byte) in bytes.enumerated() where offset + i < size { model[offset + i] = byte }
            }
            let device = MemoryBlockDevice(name: "mem", size: UInt64(size), extents: extents)
            #expect(device.size == UInt64(size))
            for _ in 0..<20 {
                let offset = Int(random.next() % UInt64(size + 1))
                let count = Int(random.next() % UInt64(size - offset + 1))
                #expect(try device.read(at: UInt64(offset), count: count) == Array(model[offset..<(offset + count)]))
            }
        }
    }

    @Test("reads past the end and writes are refused with typed errors")
    func refusals() throws {
        let device = MemoryBlockDevice(name: "tiny", bytes: [1, 2, 3])
        #expect(try device.read(at: 1, count: 2) == [2, 3])
        let past = #expect(throws: WispError.self) { try device.read(at: 2, count: 2) }
        #expect(past?.kind == .corrupt)
        let overflow = #expect(throws: WispError.self) { try device.read(at: UInt64.max, count: 2) }
        #expect(overflow?.kind == .corrupt)
        let write = #expect(throws: WispError.self) { try device.write([0], at: 0) }
        #expect(write?.kind == .invalidArgument)
    }
}
