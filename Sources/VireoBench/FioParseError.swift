/// Why a fio output could not be used.
public enum FioParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No JSON object in the file (fio failed before reporting).
    case notJSON
    /// JSON that does not have fio's shape (or is cut short).
    case malformed(String)
    /// A report without jobs.
    case noJobs
    /// fio reported an error for a job (e.g. EIO from the device).
    case jobFailed(name: String, error: Int)

    public var description: String {
        switch self {
        case .notJSON: "no JSON object (fio failed before reporting?)"
        case .malformed(let why): "malformed fio JSON: \(why)"
        case .noJobs: "fio JSON without jobs"
        case .jobFailed(let name, let error): "fio job \(name) failed with error \(error)"
        }
    }
}
