#if canImport(Glibc)
import Glibc
#endif
import VireoSys
import VireoDaemon

/// Reads a daemon's stats file (Prometheus text format, see `StatsFile`) and
/// asks for fresh ones with SIGUSR1. Shared by the load generators.
public struct StatsFileReader: Sendable {
    public let path: String
    /// The daemon to signal (nil: only read what is there).
    public let pid: Int32?

    public init(path: String, pid: Int32?) {
        self.path = path
        self.pid = pid
    }

    /// Sample values summed by metric name (labels ignored), from the current file; nil if unreadable.
    public func read() -> [String: Double]? {
        guard let bytes = Self.readBytes(path) else { return nil }
        return Self.parse(String(decoding: bytes, as: UTF8.self))
    }

    /// The bytes of the file at `path`; nil if it cannot be opened.
    public static func readBytes(_ path: String) -> [UInt8]? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n == 0 { break }
            bytes += buf[0..<n]
        }
        return bytes
    }

    /// Sums sample values by metric name; comments and malformed lines are skipped.
    public static func parse(_ text: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) else { continue }
            let head = line[..<space]
            let name = head.firstIndex(of: "{").map { head[..<$0] } ?? head
            out[String(name), default: 0] += v
        }
        return out
    }

    /// How much counter `name` grew from snapshot `a` to snapshot `b` (a missing sample counts
    /// as 0, and a counter that went backwards as no growth).
    public static func delta(_ name: String, from a: [String: Double], to b: [String: Double]) -> UInt64 {
        UInt64(max(0, (b[name] ?? 0) - (a[name] ?? 0)))
    }

    /// Sends SIGUSR1 to the daemon and waits (up to `timeoutSeconds`) for a
    /// file whose `vireo_stats_sequence` is newer than the one present before.
    /// Returns it, or nil on timeout or when no pid is known.
    public func fresh(timeoutSeconds: Double = 15) -> [String: Double]? {
        guard let pid else { return nil }
        let before = read()?["vireo_stats_sequence"] ?? -1
        guard kill(pid, SIGUSR1) == 0 else { return nil }
        let deadline = monotonicNanoseconds() + UInt64(timeoutSeconds * 1e9)
        while monotonicNanoseconds() < deadline {
            if let s = read(), let seq = s["vireo_stats_sequence"], seq > before { return s }
            usleep(1000)
        }
        return nil
    }
}
