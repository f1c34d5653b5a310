import Testing
import VireoDaemon

/// Expects `parse` to refuse its configuration with a `ConfigError` holding a problem line
/// containing `expected`, every problem one line (no line feed inside).
public func expectConfigProblem(_ expected: String, sourceLocation: SourceLocation = #_sourceLocation,
                                _ parse: () throws -> Void) {
    do {
        try parse()
        Issue.record("accepted; expected a problem containing \"\(expected)\"", sourceLocation: sourceLocation)
    } catch let error as ConfigError {
        #expect(error.problems.contains { $0.contains(expected) }, "\(error.problems)", sourceLocation: sourceLocation)
        #expect(error.problems.allSatisfy { !$0.contains("\n") }, "\(error.problems)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("threw \(error), not a ConfigError", sourceLocation: sourceLocation)
    }
}
