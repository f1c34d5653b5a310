/// A configuration that cannot be used: every problem found, one line each, so
/// an operator fixes them all in one go. The one error type of every Vireo
/// configuration source: TOML files, `--export`/`--network`/`--disk`/`--nic`
/// flags, and the checks after them.
public struct ConfigError: Error, Equatable, CustomStringConvertible, Sendable {
    public var problems: [String]
    public init(problems: [String]) { self.problems = problems }
    public init(_ problem: String) { problems = [problem] }
    public var description: String { problems.joined(separator: "\n") }
}
