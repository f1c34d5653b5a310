import Testing
@testable import VireoBench

@Test func moduleLinks() { #expect(String(describing: VireoBench.self) == "VireoBench") }
