/// A target's refusal (rdma_cm reject private data, ≤ 148 bytes):
/// magic u32 · version u8 · kind u8 · reason u16 · message (UTF-8, ≤ 140 bytes).
/// The message is the peer's text: decoding makes it printable (control
/// characters such as CR, LF and ESC become `?`), so it cannot forge or
/// recolour the log line that quotes it.
public struct ConnectReject: Equatable, Sendable, CustomStringConvertible {
    public static let maxMessage = 140
    public var reason: RejectReason
    public var message: String
    /// The kind of endpoint that was asked for (byte 5).
    public var kind: Wire.EndpointKind = .block

    public init(_ reason: RejectReason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public func encoded() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 8)
        b.withUnsafeMutableBytes { raw in
            LE.store(raw.baseAddress!, 0, Wire.magic)
            LE.store(raw.baseAddress!, 4, Wire.version)
            LE.store(raw.baseAddress!, 5, kind.rawValue)
            LE.store(raw.baseAddress!, 6, reason.rawValue)
        }
        // Cut at a UTF-8 boundary within the limit.
        var text = Array(message.utf8.prefix(Self.maxMessage))
        while !text.isEmpty, String(validating: text, as: UTF8.self) == nil { text.removeLast() }
        return b + text
    }

    /// Decodes reject data; nil when it is not a Vireo reject (e.g. a bare rdma_cm reject).
    public init?(decoding bytes: [UInt8]) {
        guard bytes.count >= 8 else { return nil }
        let magic = bytes.withPadded(to: 8) { LE.load($0, 0, as: UInt32.self) }
        let code = bytes.withPadded(to: 8) { LE.load($0, 6, as: UInt16.self) }
        guard magic == Wire.magic, let reason = RejectReason(rawValue: code) else { return nil }
        self.reason = reason
        kind = Wire.EndpointKind(rawValue: bytes[5]) ?? .block
        let text = bytes[8...].prefix(Self.maxMessage).prefix { $0 != 0 }
        message = WireText.printable(String(decoding: text, as: UTF8.self))
    }

    public var description: String { message }
}
