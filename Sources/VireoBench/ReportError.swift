/// Why `vireo-bench report` could not produce a report. A missing or
/// malformed measurement is not an error (it shows as "n/a"); only input
/// with nothing usable at all, or an output that cannot be written, is.
public enum ReportError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The results directory cannot be listed.
    case unreadableDirectory(path: String, reason: String)
    /// No `round-N` directory holds a single usable measurement.
    case noResults(path: String)
    /// Writing the report or a plot failed.
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadableDirectory(let path, let reason): "cannot read results directory \(path): \(reason)"
        case .noResults(let path): "no usable results in \(path) (expected round-N/{perftest,fio-nvmf,fio-local,vireo-blk,vireo-net}/...)"
        case .writeFailed(let path, let reason): "cannot write \(path): \(reason)"
        }
    }
}
