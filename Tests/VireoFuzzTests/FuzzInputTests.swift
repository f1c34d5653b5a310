import Testing
import VireoFuzz

/// `FuzzInput` reads past the end as zeros, so a harness needs no length
/// checks: that includes a `take` after a read that ran past the end (an
/// input that stops inside a header), which used to slice out of bounds and
/// trap in a debug build (the corpus replay found it: Fuzz/corpus/
/// vhost-user-session/crash-input-ends-inside-a-header).
@Suite struct FuzzInputTests {
    @Test func takeAfterReadingPastTheEndIsEmpty() {
        let bytes: [UInt8] = [1, 2, 3]
        bytes.withUnsafeBytes { b in
            var input = FuzzInput(b)
            #expect(input.read(UInt32.self) == 0x03_0201)
            #expect(input.isEmpty)
            #expect(input.take(8).count == 0)
            #expect(input.rest().count == 0)
        }
    }
}
