import VireoSys

/// One received request: header, decoded message and the fds that came with it.
public struct VhostUserReceivedMessage: Sendable {
    public let header: VhostUserHeader
    public let message: VhostUserMessage
    /// Exactly as many as the request requires (validated); untaken ones close on deinit.
    public let fds: ReceivedFileDescriptors
}

/// Why reading the next message stopped.
public enum VhostUserChannelError: Error, Sendable, CustomStringConvertible {
    /// The peer violated the protocol; close the connection.
    case protocolError(VhostUserProtocolError)
    /// The socket failed.
    case system(SystemError)

    public var description: String {
        switch self {
        case .protocolError(let e): "\(e)"
        case .system(let e): "\(e)"
        }
    }
}

/// Message framing over a vhost-user UNIX stream socket: reads and validates
/// requests (header, payload, SCM_RIGHTS fds) and writes replies.
public final class VhostUserChannel: @unchecked Sendable {
    /// Most fds accepted with one message; more is a protocol error.
    public static let maxFDs = 8
    /// A message that has begun must be complete within this time (header,
    /// then payload): half a message from a local client cannot lock the
    /// socket, and so the real VMM, out.
    public let partialMessageTimeoutMilliseconds: Int32
    /// The socket (owned).
    public let socket: UnixSocket
    private let buffer: UnsafeMutableRawBufferPointer

    public init(socket: consuming UnixSocket, partialMessageTimeoutMilliseconds: Int32 = 5000) {
        self.socket = socket
        self.partialMessageTimeoutMilliseconds = partialMessageTimeoutMilliseconds
        buffer = .allocate(byteCount: VhostUserHeader.maxPayloadSize, alignment: 8)
    }

    deinit { buffer.deallocate() }

    /// Reads one raw frame: header, payload bytes and fds (payload is valid until the next read).
    /// Returns `nil` at a clean end of stream (before any header byte).
    public func readFrame() throws(VhostUserChannelError) -> (VhostUserHeader, UnsafeRawBufferPointer, ReceivedFileDescriptors)? {
        let fds = ReceivedFileDescriptors()
        let headerBuf = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<VhostUserHeader.size])
        let n: Int
        do {
            n = try socket.receive(into: headerBuf, maxFDs: Self.maxFDs, appendingTo: fds,
                                   partialTimeoutMilliseconds: partialMessageTimeoutMilliseconds)
        } catch { throw .system(error) }
        if n == 0 { return nil }
        let header: VhostUserHeader
        do { header = try VhostUserHeader(decoding: UnsafeRawBufferPointer(rebasing: headerBuf[0..<n])) } catch { throw .protocolError(error) }
        let request = VhostUserRequest(rawValue: header.request)
        let size = Int(header.size)
        guard size <= VhostUserHeader.maxPayloadSize else {
            throw .protocolError(VhostUserProtocolError(request: request, .payloadTooLarge(size: size, max: VhostUserHeader.maxPayloadSize)))
        }
        let payloadBuf = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<size])
        var got = 0
        if size > 0 {
            do {
                got = try socket.receive(into: payloadBuf, maxFDs: Self.maxFDs, appendingTo: fds,
                                         partialTimeoutMilliseconds: partialMessageTimeoutMilliseconds, started: true)
            } catch { throw .system(error) }
        }
        guard got == size else {
            throw .protocolError(VhostUserProtocolError(request: request, .truncatedPayload(expected: size, received: got)))
        }
        guard !fds.truncated else { throw .protocolError(VhostUserProtocolError(request: request, .tooManyFDs)) }
        return (header, UnsafeRawBufferPointer(payloadBuf), fds)
    }

    /// Reads and validates one request; `nil` at a clean end of stream.
    public func readMessage() throws(VhostUserChannelError) -> VhostUserReceivedMessage? {
        guard let (header, payload, fds) = try readFrame() else { return nil }
        return try Self.message(header: header, payload: payload, fds: fds)
    }

    /// Parses a framed request (`readMessage`'s last step).
    static func message(header: VhostUserHeader, payload: UnsafeRawBufferPointer,
                        fds: ReceivedFileDescriptors) throws(VhostUserChannelError) -> VhostUserReceivedMessage {
        do {
            let message = try VhostUserMessage.parse(header: header, payload: payload, fdCount: fds.count)
            return VhostUserReceivedMessage(header: header, message: message, fds: fds)
        } catch {
            throw .protocolError(error)
        }
    }

    /// Test seam (`VhostUserSession.step`): validates and parses one whole
    /// frame, header then payload, that did not come through a socket, with
    /// the checks `readFrame` and `readMessage` apply to one that did (header
    /// length, payload size limit, payload complete, at most `maxFDs` fds).
    package static func message(frame: UnsafeRawBufferPointer,
                                fds: ReceivedFileDescriptors) throws(VhostUserChannelError) -> VhostUserReceivedMessage {
        let header: VhostUserHeader
        do { header = try VhostUserHeader(decoding: frame) } catch { throw .protocolError(error) }
        let request = VhostUserRequest(rawValue: header.request)
        let size = Int(header.size)
        guard size <= VhostUserHeader.maxPayloadSize else {
            throw .protocolError(VhostUserProtocolError(request: request, .payloadTooLarge(size: size, max: VhostUserHeader.maxPayloadSize)))
        }
        let got = frame.count - VhostUserHeader.size
        guard got == size else {
            throw .protocolError(VhostUserProtocolError(request: request, .truncatedPayload(expected: size, received: got)))
        }
        guard !fds.truncated, fds.count <= maxFDs else { throw .protocolError(VhostUserProtocolError(request: request, .tooManyFDs)) }
        return try message(header: header, payload: UnsafeRawBufferPointer(rebasing: frame[VhostUserHeader.size...]), fds: fds)
    }

    /// Sends a message: header with `flags`, then `payload`, with `fds` attached.
    public func send(request: UInt32, flags: UInt32, payload: [UInt8], fds: [Int32] = []) throws(SystemError) {
        var out: [UInt8] = []
        out.reserveCapacity(VhostUserHeader.size + payload.count)
        VhostUserHeader(request: request, flags: flags, size: UInt32(payload.count)).encode(into: &out)
        out.append(contentsOf: payload)
        // SAFETY: `out` is alive for the call.
        let result: Result<Void, SystemError> = out.withUnsafeBytes { b in
            do throws(SystemError) { try socket.send(b, fds: fds); return .success(()) } catch { return .failure(error) }
        }
        try result.get()
    }

    /// Sends a reply to `request` (REPLY flag set).
    public func reply(to request: VhostUserRequest, payload: [UInt8], fds: [Int32] = []) throws(SystemError) {
        try send(request: request.rawValue, flags: VhostUserHeader.version | VhostUserHeader.replyFlag, payload: payload, fds: fds)
    }

    /// Wakes a thread blocked reading this channel (it then sees end of stream).
    public func shutdown() { socket.shutdown() }
}
