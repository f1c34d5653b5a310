import VireoSys
#if canImport(Glibc)
import Glibc
#endif

extension SecretKey {
    /// Reads the key file at `path`. Refused, with what to do, when it is not a regular
    /// file, when anyone but its owner may read or write it (the mode must be 0600 or
    /// 0400), when it is not owned by the user the daemon runs as (or root), or when
    /// its text is not a valid key.
    public static func read(path: String) throws(ConfigError) -> SecretKey {
        let fd: FileDescriptor
        do { fd = try FileDescriptor.open(path, flags: O_RDONLY | O_NOFOLLOW) } catch {
            throw ConfigError("key file \(path): cannot open: \(error)")
        }
        let st: FileDescriptor.Status
        do { st = try fd.fileStatus() } catch { throw ConfigError("key file \(path): \(error)") }
        guard st.isRegularFile else { throw ConfigError("key file \(path): not a regular file") }
        guard st.permissions & 0o077 == 0 else {
            throw ConfigError("key file \(path): mode \(String(st.permissions, radix: 8)) lets others read it; it must be 600 (chmod 600 \(path))")
        }
        let uid = UInt32(getuid())
        guard st.owner == uid || st.owner == 0 else {
            throw ConfigError("key file \(path): owned by uid \(st.owner), not by this daemon's user (uid \(uid)) or root")
        }
        guard st.size <= 1024 else { throw ConfigError("key file \(path): \(st.size) bytes is too long for a key") }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1025, alignment: 1)
        defer { buffer.deallocate() }
        let n: Int
        do { n = try fd.read(into: buffer) ?? 0 } catch { throw ConfigError("key file \(path): cannot read: \(error)") }
        guard let text = String(validating: UnsafeRawBufferPointer(rebasing: buffer[0..<n]), as: UTF8.self) else {
            throw ConfigError("key file \(path): not text")
        }
        do { return try SecretKey(text: text) } catch { throw ConfigError("key file \(path): \(error)") }
    }

    /// Writes the key to a new file at `path` with mode 0600 (never over an existing one).
    public func write(path: String) throws(ConfigError) {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(path, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600)
        } catch {
            if error.errno == EEXIST { throw ConfigError("key file \(path) exists: not overwritten (remove it first to replace the key)") }
            throw ConfigError("key file \(path): cannot create: \(error)")
        }
        let line = Array((text + "\n").utf8)
        let raw = fd.rawValue
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: line.count, alignment: 1)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: line)
        do {
            // O_CREAT's mode is masked by the umask; make it exactly 0600 whatever the umask.
            try syscallRetrying("fchmod") { fchmod(raw, 0o600) }
            let written = try fd.write(UnsafeRawBufferPointer(buffer)) ?? 0
            guard written == line.count else { throw SystemError(call: "write (short)", errno: EIO) }
        } catch {
            unlink(path)
            throw ConfigError("key file \(path): cannot write: \(error)")
        }
    }
}

extension SecretKey {
    /// The `gen-key` command of both daemons: a new key of `length` bytes, written to a
    /// new 0600 file at `path` (then the line to print names the file), or, without a
    /// path, the key text itself to print (like `nvme gen-dhchap-key`).
    public static func genKeyCommand(path: String?, length: Int) throws(ConfigError) -> String {
        guard let key = generate(length: length) else {
            throw ConfigError("gen-key: --bytes \(length): a key is 32, 48 or 64 bytes")
        }
        guard let path else { return key.text }
        try key.write(path: path)
        return "wrote a \(length)-byte secret key to \(path) (mode 600)"
    }
}
