import VireoBlockTarget
import VireoWire

/// The control plane's decision on one connect request: which export, what
/// geometry, or a reject carrying the reason and a message the initiator prints.
enum Admission {
    enum Decision {
        case admit(Admitted)
        /// A packet request naming a configured network: the network decides the rest.
        case packet(ConnectRequest)
        case reject(ConnectReject)
    }

    struct Admitted {
        let export: Export
        let request: ConnectRequest
        let geometry: BlockGeometry
    }

    /// Checks, in order: decodable, version, kind, export name, write access,
    /// per-export and per-host queue limits; then grants the geometry. A path probe that
    /// passes them all is answered with a `probeAnswer` reject: nothing is allocated for it.
    static func decide(privateData: [UInt8], exports: [String: Export], networks: Set<String> = []) -> Decision {
        let r: ConnectRequest
        do {
            r = try ConnectRequest(decoding: privateData)
        } catch {
            return .reject(ConnectReject(.malformed, "malformed connect request: \(error.message)"))
        }
        guard r.version == Wire.version else {
            return .reject(ConnectReject(.versionMismatch, "target speaks wire version \(Wire.version), initiator sent \(r.version)"))
        }
        if r.kind == .packet {
            if networks.contains(r.name) { return r.probe ? probeAnswer(r, "network \(r.name) is served here") : .packet(r) }
            var reject = exports[r.name] != nil
                ? ConnectReject(.wrongKind, "'\(r.name)' is an export: it serves block endpoints only")
                : ConnectReject(.noSuchEndpoint, "no such network: \(r.name)")
            reject.kind = r.kind
            return .reject(reject)
        }
        if networks.contains(r.name) {
            return .reject(ConnectReject(.wrongKind, "'\(r.name)' is a network: it serves packet endpoints only"))
        }
        guard let export = exports[r.name] else {
            return .reject(ConnectReject(.noSuchEndpoint, "no such export: \(r.name)"))
        }
        let c = export.config
        if r.wantsWrite && c.readOnly {
            return .reject(ConnectReject(.readOnly, "export \(r.name) is read-only"))
        }
        if export.queues >= c.maxQueues {
            return .reject(ConnectReject(.queueLimit, "export \(r.name) already serves its maximum of \(c.maxQueues) queues"))
        }
        let perHost = c.maxQueuesPerHost ?? c.maxQueues
        if export.queuesByHost[r.hostID, default: 0] >= perHost {
            return .reject(ConnectReject(.queueLimit, "export \(r.name) already serves \(perHost) queues to this host"))
        }
        switch export.grant(r) {
        case .granted(let g):
            if r.probe { return probeAnswer(r, "export \(r.name) is served here (\(export.store.capacity) bytes)") }
            return .admit(Admitted(export: export, request: r, geometry: g))
        case .refused(let reject): return .reject(reject)
        }
    }

    /// The answer to a probe that would have been admitted.
    private static func probeAnswer(_ r: ConnectRequest, _ text: String) -> Decision {
        var answer = ConnectReject(.probeAnswer, text)
        answer.kind = r.kind
        return .reject(answer)
    }
}
