import Logging
import VireoSys

/// Test seam: a session driven one request at a time on the caller's thread,
/// without the socket read loop and without queue worker threads. The
/// `vhost-user-session` fuzz harness uses it to run thousands of inputs a
/// second. Production code uses `run()`.
///
/// What is the same as `run()`: frame validation and parsing
/// (`VhostUserChannel.message(frame:fds:)`, the checks `readMessage` applies),
/// the handlers, REPLY_ACK, replies (written to the session's socket), the
/// rings' queue work (`VhostUserWorker.serviceRound`, grouped by worker as
/// `run()` groups them) and the teardown. What differs: no worker is parked
/// or resumed (`quiesced` drains the device on the caller's thread instead),
/// no kick or wake eventfd is waited on, and a ring's `worker` stays nil
/// (pulled-on-demand queues get no chains through `takeRequest(fromQueue:)`).
extension VhostUserSession {
    /// A session for `step` / `stepQueues` / `finishStepping` (never `run()`).
    /// Replies go to `socket`, as in `run()`.
    package static func stepping(socket: consuming UnixSocket, device: VhostUserDevice,
                                 options: VhostUserOptions = .init(),
                                 logger: Logger = Logger(label: "vireo.vhost-user")) -> VhostUserSession {
        let session = VhostUserSession(socket: socket, device: device, options: options, logger: logger)
        let n = max(1, min(device.workerCount, session.vrings.count))
        var groups = [[VhostUserVring]](repeating: [], count: n)
        for r in session.vrings {
            r.pulledOnDemand = device.isPulledOnDemand(queue: r.index)
            groups[device.worker(forQueue: r.index) % n].append(r)
        }
        session.steppedGroups = groups
        return session
    }

    /// Applies one request, `frame` being its header and payload and `fds`
    /// what came with it, as `run()` applies one it read. Returns how the
    /// connection ends (the request was refused or a reply failed), or nil:
    /// it goes on. After an end, only `finishStepping` may follow.
    package func step(frame: UnsafeRawBufferPointer, fds: ReceivedFileDescriptors) -> End? {
        precondition(steppedGroups != nil, "step: not a stepping session")
        let received: VhostUserReceivedMessage
        do { received = try VhostUserChannel.message(frame: frame, fds: fds) } catch { return ended(by: error) }
        if let e = peerFault() { return .protocolError(e) }
        return apply(received)
    }

    /// One round of every worker's queue work on the calling thread: pops
    /// what the running rings hold and polls the device. Returns how much
    /// was done (0: nothing to do).
    @discardableResult
    package func stepQueues() -> Int {
        guard let groups = steppedGroups else { preconditionFailure("stepQueues: not a stepping session") }
        let faulted = PeerFaultGuard.faults(owner: faultOwner) > 0
        var did = 0
        for (w, rings) in groups.enumerated() {
            did += VhostUserWorker.serviceRound(rings, device: device, worker: w, batch: options.polling.batch,
                                                faulted: faulted)
        }
        return did
    }

    /// The teardown `run()` ends with: rings stopped, device told, memory
    /// unmapped, eventfds released.
    package func finishStepping() {
        precondition(steppedGroups != nil, "finishStepping: not a stepping session")
        finishTeardown()
    }

    /// Whether the session holds no guest memory, log, inflight region,
    /// started ring, outstanding request or call/err eventfd (true after
    /// `finishStepping`, or after `run()` returned without a wedged worker).
    package var holdsNothing: Bool {
        table.mapped.isEmpty && log == nil && inflight == nil
            && vrings.allSatisfy { !$0.started && $0.outstanding == 0 && $0.kick == nil
                && $0.call.current == nil && $0.err.current == nil }
    }

    /// `quiesced`'s stand-in for parking workers: what the device still holds
    /// is polled to completion (cut off with `abortOutstanding` after 1000
    /// idle polls, given up after 2000: the worker's drain, counted in polls
    /// instead of nanoseconds so that a fuzz input replays the same way).
    func drainStepped(_ groups: [[VhostUserVring]]) {
        for (w, rings) in groups.enumerated() {
            device.willPark(worker: w)
            var idle = 0
            while rings.contains(where: { $0.outstanding > 0 }), idle < 2000 {
                if device.poll(worker: w) > 0 { idle = 0; continue }
                idle += 1
                if idle == 1000 { device.abortOutstanding(worker: w) }
            }
        }
    }
}
