import ArgumentParser
import Logging
import VireoDaemon
#if canImport(Glibc)
import Glibc
#endif

/// How a daemon writes its log to standard error: `text` (swift-log's stream handler: a
/// timestamp, level, label and message per line) or `json` (one JSON object per line, for
/// journald and log shippers: `ts`, `level`, `label`, `message`, and `metadata` when any).
public enum LogFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case text, json

    /// Installs this format as the process's logging backend (once, at start),
    /// at the level `VIREO_LOG_LEVEL` names (trace, debug, info, notice,
    /// warning, error, critical; default info: trace logs every vhost-user
    /// message a front-end sends).
    public func bootstrap() {
        let level = Self.level(getenv("VIREO_LOG_LEVEL").map { String(cString: $0) })
        LoggingSystem.bootstrap { label in
            var h: any LogHandler = self == .text ? StreamLogHandler.standardError(label: label) : JSONLogHandler(label: label)
            h.logLevel = level
            return h
        }
    }

    /// The level a `VIREO_LOG_LEVEL` value names (info when unset or unknown).
    static func level(_ name: String?) -> Logger.Level {
        name.flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .info
    }
}

/// swift-log's handler for `--log-format json`: one line of JSON per message on standard
/// error, written with one `write(2)` so lines of different threads never interleave.
public struct JSONLogHandler: LogHandler {
    public let label: String
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    /// Where lines go (standard error; a test passes a pipe).
    let fd: Int32

    public init(label: String, fd: Int32 = 2) {
        self.label = label
        self.fd = fd
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = Self.line(level: event.level, label: label, message: event.message.description,
                             metadata: metadata.merging(event.metadata ?? [:]) { _, new in new },
                             now: Self.now())
        line.append(10)
        line.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
    }

    /// One log line's JSON (without its newline).
    static func line(level: Logger.Level, label: String, message: String, metadata: Logger.Metadata,
                     now: String) -> [UInt8] {
        var o: [String: JSONValue] = ["ts": .string(now), "level": .string(level.rawValue), "label": .string(label),
                                      "message": .string(message)]
        if !metadata.isEmpty { o["metadata"] = .object(metadata.mapValues(Self.json)) }
        return JSONValue.object(o).encoded
    }

    static func json(_ v: Logger.Metadata.Value) -> JSONValue {
        switch v {
        case .string(let s): return .string(s)
        case .stringConvertible(let c): return .string(c.description)
        case .array(let a): return .array(a.map(json))
        case .dictionary(let d): return .object(d.mapValues(json))
        }
    }

    /// UTC now as RFC 3339 with microseconds (2026-12-06T21:30:05.123456Z).
    static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tm = tm()
        gmtime_r(&t, &tm)
        func pad(_ v: Int, _ n: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, n - s.count)) + s
        }
        return "\(pad(Int(tm.tm_year) + 1900, 4))-\(pad(Int(tm.tm_mon) + 1, 2))-\(pad(Int(tm.tm_mday), 2))T"
            + "\(pad(Int(tm.tm_hour), 2)):\(pad(Int(tm.tm_min), 2)):\(pad(Int(tm.tm_sec), 2)).\(pad(ts.tv_nsec / 1000, 6))Z"
    }
}
