import Testing
@testable import VireoFabric
@Test func placeholder2() { #expect(true) }
