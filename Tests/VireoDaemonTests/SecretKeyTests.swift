import Testing
import VireoDaemon
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// Secret keys: the text form (NVMe DHHC-1's layout with Vireo's tag), and key
/// files a daemon refuses unless only their owner can read them.
@Suite struct SecretKeyTests {
    static func tempPath(_ tag: String) -> String { "/tmp/vireo-key-\(getpid())-\(tag)" }

    @Test(arguments: [32, 48, 64])
    func generatedKeysRoundTripThroughTheirText(length: Int) throws {
        let key = try #require(SecretKey.generate(length: length))
        #expect(key.bytes.count == length)
        #expect(key.text.hasPrefix("VIREO-1:00:") && key.text.hasSuffix(":"))
        #expect(try SecretKey(text: key.text) == key)
        #expect(try SecretKey(text: "  " + key.text + "\n") == key, "surrounding whitespace is ignored")
        #expect(SecretKey.generate(length: length) != key, "two keys are not alike")
        #expect("\(key)" == "SecretKey(\(length) bytes)", "interpolation never shows the secret")
    }

    /// A fixed key: 32 bytes 0x00...0x1f, CRC-32 0x91267E8A (IEEE), little-endian after it.
    @Test func knownKeyText() throws {
        let key = try #require(SecretKey(bytes: Array(0..<32)))
        #expect(key.text == "VIREO-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:")
        #expect(SecretKey(bytes: Array(repeating: 0, count: 16)) == nil)
    }

    @Test func malformedKeysAreRefusedWithTheReason() throws {
        let good = try #require(SecretKey(bytes: Array(0..<32))).text
        func problem(_ text: String) -> String {
            do { _ = try SecretKey(text: text); return "accepted" } catch { return error.description }
        }
        #expect(problem("DHHC-1:00:AAAA:").contains("must start with VIREO-1:"))
        #expect(problem(String(good.dropLast())).contains("closing colon"))
        #expect(problem(good.replacing("VIREO-1:00:", with: "VIREO-1:01:", maxReplacements: 1)).contains("transformation 01"))
        #expect(problem("VIREO-1:00:not base64!:").contains("not base64"))
        // One character changed in the key part: the checksum catches it.
        #expect(problem(good.replacing("AAEC", with: "AAED", maxReplacements: 1)).contains("checksum mismatch"))
        // 16 bytes + CRC: too short.
        #expect(problem("VIREO-1:00:AAECAwQFBgcICQoLDA0ODwAAAAA=:").contains("must be 32, 48 or 64 bytes"))
        #expect(!problem(String(good.dropLast())).contains(good), "an error never quotes the key")
    }

    @Test func writtenKeyFileIsOwnerOnlyAndNeverOverwritten() throws {
        let path = Self.tempPath("w")
        unlink(path)
        defer { unlink(path) }
        let old = umask(0)   // the file is 0600 whatever the umask
        defer { umask(old) }
        let key = try #require(SecretKey.generate())
        try key.write(path: path)
        var st = stat()
        #expect(stat(path, &st) == 0 && st.st_mode & 0o777 == 0o600)
        #expect(try SecretKey.read(path: path) == key)
        #expect(throws: ConfigError.self) { try key.write(path: path) }
        #expect(try SecretKey.read(path: path) == key, "the first key is still there")
    }

    @Test func keyFilesOthersCanReadAreRefused() throws {
        let path = Self.tempPath("r")
        unlink(path)
        defer { unlink(path) }
        let key = try #require(SecretKey.generate())
        try key.write(path: path)
        chmod(path, 0o644)
        do {
            _ = try SecretKey.read(path: path)
            Issue.record("a 0644 key file was accepted")
        } catch {
            #expect(error.description.contains("mode 644") && error.description.contains("chmod 600 \(path)"))
        }
        chmod(path, 0o400)
        #expect(try SecretKey.read(path: path) == key, "read-only for the owner is fine")
        #expect(throws: ConfigError.self) { try SecretKey.read(path: "/tmp") }
        #expect(throws: ConfigError.self) { try SecretKey.read(path: Self.tempPath("missing")) }
    }
}

