/// What an initiator asks for when it connects a queue (rdma_cm private
/// data of the CONNECT_REQUEST, exactly 56 bytes).
///
/// Layout: magic u32 · version u8 · kind u8 · queue index u16 · queue depth u16 ·
/// max segments u16 · max I/O bytes u32 · host id [16] · flags u8 · name [23].
///
/// Flags: bit 0 needs write access (block); bit 1 (packet) the host-id bytes
/// carry a `PortKey` instead; bit 2 (with bit 1) that key is a port name; bit 3
/// a path probe: the target checks the request as it would a connect and answers
/// with a reject (`RejectReason.probeAnswer` when it would admit), allocating nothing.
public struct ConnectRequest: Equatable, Sendable {
    public static let size = 56

    public var kind: Wire.EndpointKind
    public var queueIndex: UInt16
    public var queueDepth: UInt16
    public var maxSegments: UInt16
    public var maxIOBytes: UInt32
    /// Identifies the initiator host (e.g. a hash of its configured host name).
    public var hostID: [UInt8]
    /// Bit 0: the initiator needs write access.
    public var wantsWrite: Bool
    /// Packet connections: the switch port this queue pair belongs to (flags
    /// bits 1-2; carried in the host-id bytes, which then are not a host id).
    public var port: PortKey?
    /// The endpoint (export or network) name, ≤ 23 bytes of UTF-8.
    public var name: String
    /// A path probe (flags bit 3): asks whether the target would admit this request,
    /// without a connection (a standby path's health check).
    public var probe = false
    /// The version the peer spoke (decoded), or ours (encoded).
    public var version: UInt8 = Wire.version

    public static let flagWrite: UInt8 = 1
    public static let flagPortKey: UInt8 = 2
    public static let flagNamedPort: UInt8 = 4
    public static let flagProbe: UInt8 = 8

    public init(kind: Wire.EndpointKind, name: String, queueIndex: UInt16, queueDepth: UInt16,
                maxSegments: UInt16, maxIOBytes: UInt32, hostID: [UInt8], wantsWrite: Bool, port: PortKey? = nil) {
        self.port = port
        self.kind = kind
        self.name = name
        self.queueIndex = queueIndex
        self.queueDepth = queueDepth
        self.maxSegments = maxSegments
        self.maxIOBytes = maxIOBytes
        self.hostID = hostID
        self.wantsWrite = wantsWrite
    }

    /// Whether `name` can be carried: 1...23 bytes of [A-Za-z0-9._:-].
    public static func isValidName(_ name: String) -> Bool {
        let u = Array(name.utf8)
        return !u.isEmpty && u.count <= Wire.maxNameLength && u.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a)
                || $0 == 0x2e || $0 == 0x5f || $0 == 0x3a || $0 == 0x2d
        }
    }

    /// The 56 bytes to send. Fails on a name that does not fit.
    public func encoded() throws(WireError) -> [UInt8] {
        guard Self.isValidName(name) else { throw WireError("endpoint name '\(name)' must be 1-23 characters of A-Z a-z 0-9 . _ : -") }
        if let port {
            guard kind == .packet else { throw WireError("a port key belongs to packet connections only") }
            if case .named(let n) = port, !PortKey.isValidName(n) {
                throw WireError("port name '\(n)' must be 1-15 characters of A-Z a-z 0-9 . _ -")
            }
        }
        var flags: UInt8 = wantsWrite ? Self.flagWrite : 0
        if let port { flags |= Self.flagPortKey | (port.name != nil ? Self.flagNamedPort : 0) }
        if probe { flags |= Self.flagProbe }
        let idBytes = port?.bytes ?? hostID
        var b = [UInt8](repeating: 0, count: Self.size)
        b.withUnsafeMutableBytes { raw in
            let p = raw.baseAddress!
            LE.store(p, 0, Wire.magic)
            LE.store(p, 4, version)
            LE.store(p, 5, kind.rawValue)
            LE.store(p, 6, queueIndex)
            LE.store(p, 8, queueDepth)
            LE.store(p, 10, maxSegments)
            LE.store(p, 12, maxIOBytes)
            for (i, byte) in idBytes.prefix(16).enumerated() { p.storeBytes(of: byte, toByteOffset: 16 + i, as: UInt8.self) }
            LE.store(p, 32, flags)
            for (i, byte) in name.utf8.enumerated() { p.storeBytes(of: byte, toByteOffset: 33 + i, as: UInt8.self) }
        }
        return b
    }

    /// Decodes and validates a peer's private data. Version mismatches decode
    /// (so the target can answer `versionMismatch`); everything else is checked.
    public init(decoding bytes: [UInt8]) throws(WireError) {
        guard bytes.count >= Self.size else { throw WireError("connect request of \(bytes.count) bytes, need \(Self.size)") }
        var result: Result<ConnectRequest, WireError> = .failure(WireError("?"))
        bytes.withUnsafeBytes { raw in
            let p = raw.baseAddress!
            guard LE.load(p, 0, as: UInt32.self) == Wire.magic else {
                result = .failure(WireError("not a Vireo connect request (bad magic)"))
                return
            }
            let version = LE.load(p, 4, as: UInt8.self)
            guard let kind = Wire.EndpointKind(rawValue: LE.load(p, 5, as: UInt8.self)) else {
                result = .failure(WireError("unknown endpoint kind \(LE.load(p, 5, as: UInt8.self))"))
                return
            }
            let flags = LE.load(p, 32, as: UInt8.self)
            let known = Self.flagWrite | Self.flagProbe | (kind == .packet ? Self.flagPortKey | Self.flagNamedPort : 0)
            guard flags & ~known == 0, flags & Self.flagNamedPort == 0 || flags & Self.flagPortKey != 0 else {
                result = .failure(WireError("unknown connect flags 0x\(String(flags, radix: 16))"))
                return
            }
            let idBytes = Array(UnsafeRawBufferPointer(start: p + 16, count: 16))
            var port: PortKey?
            if flags & Self.flagPortKey != 0 {
                guard let k = PortKey(bytes: idBytes, named: flags & Self.flagNamedPort != 0) else {
                    result = .failure(WireError("port name must be 1-15 characters of A-Z a-z 0-9 . _ -, NUL padded"))
                    return
                }
                port = k
            }
            let nameBytes = Array(UnsafeRawBufferPointer(start: p + 33, count: Wire.maxNameLength).prefix { $0 != 0 })
            let name = String(decoding: nameBytes, as: UTF8.self)
            guard Self.isValidName(name) else {
                result = .failure(WireError("endpoint name is empty or has characters outside A-Z a-z 0-9 . _ : -"))
                return
            }
            var r = ConnectRequest(
                kind: kind, name: name, queueIndex: LE.load(p, 6, as: UInt16.self),
                queueDepth: LE.load(p, 8, as: UInt16.self), maxSegments: LE.load(p, 10, as: UInt16.self),
                maxIOBytes: LE.load(p, 12, as: UInt32.self),
                hostID: idBytes, wantsWrite: flags & Self.flagWrite != 0, port: port)
            r.version = version
            r.probe = flags & Self.flagProbe != 0
            result = .success(r)
        }
        self = try result.get()
    }
}
