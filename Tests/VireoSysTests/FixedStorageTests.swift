import Testing
import VireoSys

/// The engines' owned fixed storage: rings keep order across wrap-around and
/// release what they hold when popped, cleared or dropped; arrays release their
/// elements with their owner.
@Suite struct FixedStorageTests {
    final class Token {
        let counter: Counter
        init(_ c: Counter) { counter = c; c.live += 1 }
        deinit { counter.live -= 1 }
    }
    final class Counter { var live = 0 }

    @Test func ringIsFirstInFirstOutAcrossWrapAround() {
        // (Values are read into lets first: #expect takes copies, and a ring has none.)
        var r = FixedRing<Int>(capacity: 3)
        let startsEmpty = r.isEmpty, firstPop = r.pop(), firstPeek = r.peek()
        #expect(startsEmpty && firstPop == nil && firstPeek == nil)
        for round in 0..<5 {
            r.push(round * 10)
            r.push(round * 10 + 1)
            let count = r.count, oldest = r[0], newest = r[1]
            #expect(count == 2 && oldest == round * 10 && newest == round * 10 + 1)
            let a = r.pop(), peeked = r.peek(), b = r.pop()
            #expect(a == round * 10 && peeked == round * 10 + 1 && b == round * 10 + 1)
        }
        r.push(1); r.push(2); r.push(3)
        let full = r.isFull
        #expect(full)
        r.removeAll()
        let emptyAgain = r.isEmpty, none = r.pop()
        #expect(emptyAgain && none == nil)
    }

    @Test func ringReleasesWhatItHolds() {
        let c = Counter()
        do {
            var r = FixedRing<Token>(capacity: 4)
            for _ in 0..<4 { r.push(Token(c)) }
            _ = r.pop()
            #expect(c.live == 3, "a popped element is the caller's")
            r.removeAll()
            #expect(c.live == 0)
            r.push(Token(c)); r.push(Token(c))
        }
        #expect(c.live == 0, "elements still in a dropped ring are released")
    }

    @Test func arrayElementsAreWrittenInPlaceAndReleasedWithIt() {
        let c = Counter()
        do {
            let a = FixedArray<Token?>(repeating: nil, count: 3)
            a[1] = Token(c)
            a[2] = Token(c)
            let firstIsNil = a[0] == nil
            #expect(c.live == 2 && firstIsNil)
            a[1] = nil
            #expect(c.live == 1)
            let n = FixedArray<Int>(repeating: 7, count: 2)
            n[1] += 1
            let values = (n[0], n[1], n.base[1])
            #expect(values == (7, 8, 8))
        }
        #expect(c.live == 0)
    }
}
