import Logging
import VireoBlockTarget
import VireoDaemon

extension TargetDaemon {
    /// SIGHUP: makes the running state what `new` (the configuration file read again, with
    /// the command line's flags) says, changing only what differs (control thread, through
    /// `mailbox`): hosts added first, then exports created or grown, exports deleted, hosts
    /// removed. An export still attached is kept (a reload never drops a guest's disk), and
    /// what cannot change at run time is named for the next restart. Returns one line per
    /// change or refusal, in order; none when the file says what runs.
    public func reload(to new: TargetConfig) -> [String] {
        (try? mailbox.run { [self] () -> Result<JSONValue, ControlError> in
            .success(JSONValue(applyDifference(new)))
        })?.array?.compactMap(\.string) ?? ["the control thread did not take the reload in time; nothing changed"]
    }

    func applyDifference(_ new: TargetConfig) -> [String] {
        let running = runningConfig
        var notes: [String] = []
        func restart(_ what: String, _ changed: Bool) {
            if changed { notes.append("\(what) changed: takes effect at the next restart") }
        }
        restart("listen", new.listen != running.listen)
        restart("workers", new.workers != running.workers)
        restart("busy_poll", new.busyPoll != running.busyPoll)
        restart("shared_receives", new.sharedReceives != running.sharedReceives)
        restart("name", new.name != running.name)
        restart("key_file", new.keyFile != running.keyFile)
        restart("control_socket", new.controlSocket != running.controlSocket || new.controlSocketMode != running.controlSocketMode)
        restart("metrics_listen", new.metricsListen != running.metricsListen)
        restart("stats_file or stats_interval", new.statsFile != running.statsFile || new.statsIntervalSeconds != running.statsIntervalSeconds)
        restart("keepalive, peer_timeout or handshake_timeout", new.keepaliveSeconds != running.keepaliveSeconds
            || new.peerTimeoutSeconds != running.peerTimeoutSeconds || new.handshakeTimeoutSeconds != running.handshakeTimeoutSeconds)
        restart("max_connections_per_host or max_memory_per_host", new.maxConnectionsPerHost != running.maxConnectionsPerHost
            || new.maxMemoryPerHost != running.maxMemoryPerHost)

        func outcome(_ r: Result<JSONValue, ControlError>, _ done: String) {
            switch r {
            case .success: notes.append(done)
            case .failure(let e): notes.append("\(done.split(separator: ":").first ?? ""): not applied: \(e.message)")
            }
        }
        let oldHosts = Dictionary(running.hosts.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let newHosts = Dictionary(new.hosts.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for h in new.hosts where oldHosts[h.name] == nil { outcome(addHost(h), "host \(h.name): added") }
        for h in new.hosts where oldHosts[h.name].map({ $0 != h }) == true {
            notes.append("host \(h.name): key files changed: not applied (a key file replaced in place is read at each connection; host_remove and host_add to change the list)")
        }
        let oldExports = Dictionary(running.exports.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let newExports = Dictionary(new.exports.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for e in new.exports {
            guard let old = oldExports[e.name] else {
                outcome(createExport(e, how: "SIGHUP reload"), "export \(e.name): created")
                continue
            }
            guard old != e else { continue }
            var grownOnly = old
            grownOnly.size = e.size
            if grownOnly == e, let size = e.size, size > (old.size ?? 0) {
                outcome(resizeExport(e.name, to: size), "export \(e.name): resized to \(size) bytes")
            } else {
                notes.append("export \(e.name): changed keys not applied at run time (only a larger size is): export_delete and re-create it, or restart")
            }
        }
        for e in running.exports where newExports[e.name] == nil {
            outcome(deleteExport(e.name, force: false), "export \(e.name): deleted")
        }
        let oldNetworks = Dictionary(running.networks.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let newNetworks = Set(new.networks.map(\.name))
        for n in new.networks {
            if let old = oldNetworks[n.name] {
                if old != n { notes.append("network \(n.name): changed keys not applied at run time: network_delete and re-create it, or restart") }
            } else {
                outcome(createNetwork(n, how: "SIGHUP reload"), "network \(n.name): created")
            }
        }
        for n in running.networks where !newNetworks.contains(n.name) {
            outcome(deleteNetwork(n.name, force: false), "network \(n.name): deleted")
        }
        for h in running.hosts where newHosts[h.name] == nil { outcome(removeHost(h.name), "host \(h.name): removed") }
        return notes
    }
}
