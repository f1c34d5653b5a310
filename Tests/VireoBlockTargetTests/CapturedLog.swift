import Foundation
import Logging

/// A logger whose lines a test can read back (and that also prints them), to
/// check what the daemon says about a peer.
final class CapturedLog: @unchecked Sendable {
    // SAFETY: `lines` is guarded by `lock`.
    private let lock = NSLock()
    private var lines: [String] = []

    /// A logger writing into this capture at `level` and above.
    func logger(level: Logger.Level = .info) -> Logger {
        var l = Logger(label: "vireo.target.test") { _ in Handler(sink: self) }
        l.logLevel = level
        return l
    }

    /// The lines so far that contain every one of `parts`.
    func lines(containing parts: String...) -> [String] {
        lock.lock()
        defer { lock.unlock() }
        return lines.filter { line in parts.allSatisfy { line.contains($0) } }
    }

    fileprivate func append(_ line: String) {
        print(line)
        lock.lock()
        lines.append(line)
        lock.unlock()
    }

    private struct Handler: LogHandler {
        let sink: CapturedLog
        var logLevel: Logger.Level = .info
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) { sink.append("\(event.level): \(event.message)") }
    }
}
