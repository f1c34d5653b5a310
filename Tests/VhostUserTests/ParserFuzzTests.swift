import Testing
import VireoSys
@testable import VhostUser

/// SplitMix64: a tiny seeded generator so a failing run can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct ParserFuzzTests {
    /// Random and mutated frames into the parser for ~2 s and at least 1024
    /// frames (a busy machine gets fewer per second; the floor keeps the test
    /// equally strong there): it must never trap, and whatever it accepts
    /// must satisfy the invariants it promises.
    @Test func fuzzParserNeverCrashes() {
        let seed = UInt64(monotonicNanoseconds())
        print("ParserFuzzTests seed: \(seed)")
        var rng = SplitMix64(seed: seed)
        let deadline = monotonicNanoseconds() + 2_000_000_000
        var iterations = 0, accepted = 0
        // Valid seeds to mutate.
        var corpus: [[UInt8]] = []
        func frame(_ code: UInt32, _ payload: [UInt8]) -> [UInt8] {
            var o: [UInt8] = []
            VhostUserHeader(request: code, flags: 1, size: UInt32(payload.count)).encode(into: &o)
            return o + payload
        }
        corpus.append(frame(5, memTable([region(0, 0x10000, 0x7f00_0000_0000), region(0x100000, 0x1000, 0x1000, 4096)])))
        corpus.append(frame(9, Array(repeating: 0, count: 40)))
        corpus.append(frame(24, [0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0] + Array(repeating: 0, count: 8)))
        corpus.append(frame(12, u64(0x101)))
        corpus.append(frame(37, Array(repeating: 0, count: 48)))
        corpus.append(frame(6, Array(repeating: 0, count: 16)))
        while iterations < 1024 || monotonicNanoseconds() < deadline {
            for _ in 0..<256 {
                iterations += 1
                var bytes: [UInt8]
                switch rng.next() % 3 {
                case 0:
                    let n = Int(rng.next() % 320)
                    bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                    if n >= 8, rng.next() % 2 == 0 { // plausible request code and flags
                        bytes[0] = UInt8(rng.next() % 45); bytes[1] = 0; bytes[2] = 0; bytes[3] = 0
                        bytes[4] = UInt8(1 | (rng.next() % 2 == 0 ? 8 : 0)); bytes[5] = 0; bytes[6] = 0; bytes[7] = 0
                    }
                default:
                    bytes = corpus[Int(rng.next() % UInt64(corpus.count))]
                    for _ in 0..<Int(1 + rng.next() % 6) {
                        let i = Int(rng.next() % UInt64(bytes.count))
                        bytes[i] = rng.next() % 4 == 0 ? 0xff : UInt8(truncatingIfNeeded: rng.next())
                    }
                    if rng.next() % 4 == 0 { bytes.removeLast(Int(rng.next() % UInt64(bytes.count))) }
                }
                let fds = Int(rng.next() % 10)
                bytes.withUnsafeBytes { raw in
                    guard let header = try? VhostUserHeader(decoding: raw) else { return }
                    let payload = UnsafeRawBufferPointer(rebasing: raw[VhostUserHeader.size...])
                    if let m = try? VhostUserMessage.parse(header: header, payload: payload, fdCount: fds) {
                        accepted += 1
                        if case .setMemTable(let regions) = m {
                            #expect(regions.count == fds && regions.count <= 8)
                            for r in regions { #expect(r.size > 0 && !r.guestPhysicalAddress.addingReportingOverflow(r.size).overflow) }
                        }
                        #expect(Int(header.size) == payload.count)
                    }
                }
            }
        }
        print("ParserFuzzTests: \(iterations) frames, \(accepted) accepted (seed \(seed))")
        #expect(accepted > 0, "mutated valid frames must sometimes still parse")
    }
}
