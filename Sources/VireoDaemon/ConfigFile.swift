import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// Reads a daemon's configuration file: the one place both daemons open one.
public enum ConfigFile {
    /// Largest configuration file read (a typo'd path to a disk image must not be slurped).
    public static let maxBytes = 4 << 20

    /// The file's text (UTF-8), or a `ConfigError` naming the path and what went wrong.
    public static func read(_ path: String) throws(ConfigError) -> String {
        let fd: FileDescriptor
        do { fd = try FileDescriptor.open(path, flags: O_RDONLY) } catch {
            throw ConfigError("\(path): cannot open: \(error)")
        }
        var bytes: [UInt8] = []
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 8)
        defer { chunk.deallocate() }
        while true {
            let n: Int?
            do { n = try fd.read(into: chunk) } catch { throw ConfigError("\(path): cannot read: \(error)") }
            guard let n, n > 0 else { break }
            bytes += chunk[0..<n]
            if bytes.count > maxBytes { throw ConfigError("\(path): larger than \(maxBytes) bytes: not a configuration file") }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw ConfigError("\(path): not UTF-8 text") }
        return text
    }
}
