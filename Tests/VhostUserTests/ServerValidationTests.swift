import Foundation
import Testing
import VireoSys
import Virtio
import VirtioDriver
@testable import VhostUser
@testable import VhostUserFrontend

/// A malformed message sent after a normal set-up, and what the server must say.
struct BadMessage: CustomStringConvertible, Sendable {
    let name: String
    let bytes: [UInt8]
    let fds: Int
    let request: VhostUserRequest?
    let fragment: String
    var description: String { name }

    static func frame(_ code: UInt32, flags: UInt32 = 1, _ payload: [UInt8], size: UInt32? = nil) -> [UInt8] {
        var o: [UInt8] = []
        VhostUserHeader(request: code, flags: flags, size: size ?? UInt32(payload.count)).encode(into: &o)
        return o + payload
    }

    static let all: [BadMessage] = {
        var addr: [UInt8] = []
        VhostUserVringAddress(index: 0, descriptorTable: 0x1000, usedRing: 0x2000, availableRing: 0x3000).encode(into: &addr)
        let nine = memTable((0..<9).map { region(UInt64($0) << 20, 4096, UInt64($0) << 20) })
        return [
            BadMessage(name: "size mismatch", bytes: frame(8, [0, 0, 0, 0]), fds: 0, request: .setVringNum, fragment: "payload size 4, expected 8"),
            BadMessage(name: "oversize payload", bytes: frame(2, [], size: 100_000), fds: 0, request: .setFeatures, fragment: "exceeds maximum"),
            BadMessage(name: "missing fd", bytes: frame(12, u64(0)), fds: 0, request: .setVringKick, fragment: "received 0 fds, expected 1"),
            BadMessage(name: "two fds", bytes: frame(13, u64(0)), fds: 2, request: .setVringCall, fragment: "received 2 fds, expected 1"),
            BadMessage(name: "unknown request", bytes: frame(200, []), fds: 0, request: nil, fragment: "unknown request code 200"),
            BadMessage(name: "bad version", bytes: frame(1, flags: 2, []), fds: 0, request: .getFeatures, fragment: "bad flags"),
            BadMessage(name: "nregions > max", bytes: frame(5, nine), fds: 0, request: .setMemTable, fragment: "nregions 9"),
            BadMessage(name: "vring index", bytes: frame(8, state(5, 64)), fds: 0, request: .setVringNum, fragment: "vring index 5 out of range"),
            BadMessage(name: "vring num not pow2", bytes: frame(8, state(0, 100)), fds: 0, request: .setVringNum, fragment: "power of 2"),
            BadMessage(name: "vring num too big", bytes: frame(8, state(0, 4096)), fds: 0, request: .setVringNum, fragment: "power of 2"),
            BadMessage(name: "vring addr outside memory", bytes: frame(9, addr), fds: 0, request: .setVringAddr, fragment: "outside guest memory"),
        ]
    }()
}

/// Descriptors that are not eventfds, as a hostile VMM would send them.
enum BadEventFD: CaseIterable, CustomStringConvertible, Sendable {
    case oPath, readOnly, writeOnlyDevNull, devZero

    var description: String {
        switch self {
        case .oPath: "O_PATH fd"
        case .readOnly: "read-only fd"
        case .writeOnlyDevNull: "write-only /dev/null"
        case .devZero: "/dev/zero (always readable)"
        }
    }

    func open() throws -> FileDescriptor {
        switch self {
        case .oPath: try FileDescriptor.open("/tmp", flags: 0o10000000)   // O_PATH
        case .readOnly: try FileDescriptor.open("/dev/null", flags: O_RDONLY)
        case .writeOnlyDevNull: try FileDescriptor.open("/dev/null", flags: O_WRONLY)
        case .devZero: try FileDescriptor.open("/dev/zero", flags: O_RDWR)
        }
    }
}

@Suite(.serialized) struct ServerValidationTests {
    /// Each bad message closes its connection with a log-worthy error; a second
    /// device keeps working meanwhile, and the first accepts a reconnect.
    @Test(arguments: BadMessage.all)
    func badMessageClosesConnectionOnly(_ bad: BadMessage) throws {
        let b = try HostileFrontendTests.Bystander()   // device B, up and serving
        let a = try BlockRig(tag: "bad-a", queues: 1)

        try a.frontend.negotiate(wanted: blockFeatures)
        try a.frontend.setMemTable(a.memory)
        let fds = try (0..<bad.fds).map { _ in SharedEventFD(try EventFD()) }
        try a.frontend.sendRaw(bad.bytes, fds: fds.map(\.rawValue))
        try expectClosedOthersServed(a: a, b: b, request: bad.request, fragment: bad.fragment, name: bad.name)
    }

    /// A descriptor a VMM sends as a kick, call or err eventfd that is not one
    /// (O_PATH, read-only, write-only, always readable) is refused with a
    /// protocol error on that connection; the process, and device B, live on.
    /// Before: EBADF from fcntl/read/write trapped and aborted every VM's devices.
    @Test(arguments: BadEventFD.allCases, [VhostUserRequest.setVringKick, .setVringCall, .setVringErr])
    func nonEventFDIsRefused(_ kind: BadEventFD, _ request: VhostUserRequest) throws {
        let b = try HostileFrontendTests.Bystander()
        let a = try BlockRig(tag: "badfd-a", queues: 1)

        try a.frontend.negotiate(wanted: blockFeatures)
        try a.frontend.setMemTable(a.memory)
        let aq = SplitDriverQueue(memory: a.memory, size: 16, eventIdx: false)
        try a.frontend.setUpRing(0, driver: aq)
        let fd = try kind.open()
        try a.frontend.sendRaw(BadMessage.frame(request.rawValue, u64(0)), fds: [fd.rawValue])
        try expectClosedOthersServed(a: a, b: b, request: request, fragment: "peer eventfd check", name: "\(kind)")
    }

    /// After A's connection closed on a bad message: B keeps serving, and A
    /// accepts a reconnect and serves.
    private func expectClosedOthersServed(a: BlockRig, b: HostileFrontendTests.Bystander, request: VhostUserRequest?,
                                          fragment: String, name: String) throws {
        #expect(a.frontend.waitForClose(), "server did not close after \(name)")
        #expect(waitUntil { a.server.lastEnd != nil })
        guard case .protocolError(let e)? = a.server.lastEnd else {
            Issue.record("ended with \(String(describing: a.server.lastEnd))")
            return
        }
        #expect(e.request == request)
        #expect(e.description.contains(fragment), "\(e)")
        #expect(a.server.protocolErrors.load(ordering: .relaxed) == 1)

        b.expectServes()

        // A accepts a reconnect and serves.
        a.frontend = try VhostUserFrontend(path: a.path)
        try a.frontend.negotiate(wanted: blockFeatures)
        try a.frontend.setMemTable(a.memory)
        let aq = SplitDriverQueue(memory: a.memory, size: 16, eventIdx: false)
        try a.frontend.setUpRing(0, driver: aq)
        let g = a.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0)
        aq.add(g, write: true)
        a.frontend.kick(0)
        #expect(a.frontend.waitForUsed(0, count: 1).count == 1)
        #expect(a.server.connectionsAccepted.load(ordering: .relaxed) == 2)
    }

    @Test func truncatedHeaderAtEndOfStream() throws {
        let a = try BlockRig(tag: "trunc", queues: 1)
        try a.frontend.sendRaw([1, 0, 0, 0, 1])
        a.frontend.close()
        #expect(waitUntil { a.server.lastEnd != nil })
        #expect(a.server.lastEnd == .protocolError(VhostUserProtocolError(request: nil, .truncatedHeader(received: 5))))
    }

    @Test func requestNeedingUnnegotiatedFeatureIsRefusedWithNack() throws {
        let a = try BlockRig(tag: "nack", queues: 1)
        try a.frontend.negotiate(wanted: blockFeatures, wantedProtocol: [.replyAck])
        // ADD_MEM_REG without CONFIGURE_MEM_SLOTS: NACK (u64 1), then close.
        var p = u64(0)
        region(0, 4096, 0).encode(into: &p)
        let fd = try EventFD()
        #expect(throws: VhostUserFrontendError.nack(.addMemReg)) {
            try a.frontend.request(.addMemReg, payload: p, fds: [fd.rawValue])
        }
        #expect(a.frontend.waitForClose())
    }
}
