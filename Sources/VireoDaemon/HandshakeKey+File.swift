import VireoAuth

extension HandshakeKey {
    /// The key in a `SecretKey` file (its mode, owner and checksum checked);
    /// problems are prefixed with `what` ("host_key_file", "host 'compute-1'").
    public init(file path: String, for what: String) throws(ConfigError) {
        let secret: SecretKey
        do { secret = try SecretKey.read(path: path) } catch {
            throw ConfigError(problems: error.problems.map { "\(what): \($0)" })
        }
        // A SecretKey holds 32, 48 or 64 bytes: always a usable HMAC-SHA-256 key.
        guard let key = HandshakeKey(secret: secret.bytes) else { throw ConfigError("\(what): \(path): key too short") }
        self = key
    }
}
