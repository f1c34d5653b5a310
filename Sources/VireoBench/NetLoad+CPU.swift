#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension NetLoad {
    /// CPU time (user + system, all threads) of process `pid` in seconds,
    /// from fields 14 and 15 of /proc/PID/stat; nil when unreadable.
    /// (Same sampler the blk load generator needs; dedupe at merge.)
    static func processCPUSeconds(pid: Int32) -> Double? {
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
        guard let close = buf[0..<n].lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = buf[(close + 1)..<n].split(separator: UInt8(ascii: " "))
        // fields[0] is field 3 (state); utime is field 14, stime field 15.
        guard fields.count > 12, let utime = Double(String(decoding: fields[11], as: UTF8.self)),
              let stime = Double(String(decoding: fields[12], as: UTF8.self)) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return ticks > 0 ? (utime + stime) / ticks : nil
    }
}
