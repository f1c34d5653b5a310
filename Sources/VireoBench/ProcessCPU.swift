#if canImport(Glibc)
import Glibc
#endif

/// CPU time of another process (user + system, all its threads) from
/// `/proc/PID/stat`, for the benchmarks' CPU-seconds-per-operation figures.
/// Shared by `vireo-bench blk` and `vireo-bench net`.
public enum ProcessCPU {
    /// Seconds of CPU (utime + stime over sysconf(_SC_CLK_TCK)) used so far by `pid`; nil if unreadable.
    public static func seconds(pid: Int32) -> Double? {
        guard let f = fopen("/proc/\(pid)/stat", "r") else { return nil }
        defer { fclose(f) }
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = fread(&buf, 1, buf.count - 1, f)
        guard n > 0 else { return nil }
        return parse(String(decoding: buf[0..<n], as: UTF8.self), ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))))
    }

    /// Parses a `/proc/PID/stat` line: fields after the last ')' (the command
    /// may contain spaces and parentheses) start at field 3 (state); utime and
    /// stime are fields 14 and 15.
    static func parse(_ line: String, ticksPerSecond: Double) -> Double? {
        guard let close = line.lastIndex(of: ")"), ticksPerSecond > 0 else { return nil }
        let fields = line[line.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let u = UInt64(fields[11]), let s = UInt64(fields[12]) else { return nil }
        return Double(u + s) / ticksPerSecond
    }
}
