import Testing
@testable import VireoSys
@Test func placeholder() { #expect(pageSize == 4096) }
