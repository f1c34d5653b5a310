import Logging
import VireoDaemon

extension InitiatorService {
    /// SIGHUP: makes the served devices what `new` (the configuration file read again, with
    /// the command line's flags) says, changing only what differs: devices whose socket is
    /// new are added, devices whose socket is gone are deleted (one a VMM is attached to is
    /// kept: a reload never pulls a disk from under a guest), a device whose keys changed is
    /// named (delete and re-create it). Settings that need a restart are named too. Returns
    /// one line per change or refusal; none when the file says what runs.
    public func reload(to new: ServeConfig) -> [String] {
        let running = runningConfig
        var notes: [String] = []
        func restart(_ what: String, _ changed: Bool) {
            if changed { notes.append("\(what) changed: takes effect at the next restart") }
        }
        restart("stats_file or stats_interval", new.statsFile != running.statsFile || new.statsIntervalSeconds != running.statsIntervalSeconds)
        restart("metrics_listen", new.metricsListen != running.metricsListen)
        restart("host_name or host_key_file", new.hostName != running.hostName || new.hostKeyFile != running.hostKeyFile)
        restart("control_socket", new.controlSocket != running.controlSocket || new.controlSocketMode != running.controlSocketMode)
        notes += difference(running.disks, new.disks, what: "disk", socket: \.socket,
                            add: { c throws(InitiatorError) in _ = try addDisk(c) }, remove: { removeDisk(socket: $0, force: false) })
        notes += difference(running.nics, new.nics, what: "nic", socket: \.socket,
                            add: { c throws(InitiatorError) in _ = try addNic(c) }, remove: { removeNic(socket: $0, force: false) })
        return notes
    }

    private func difference<C: Equatable>(_ old: [C], _ new: [C], what: String, socket: KeyPath<C, String>,
                                          add: (C) throws(InitiatorError) -> Void, remove: (String) -> Removal) -> [String] {
        var notes: [String] = []
        let before = Dictionary(old.map { ($0[keyPath: socket], $0) }, uniquingKeysWith: { a, _ in a })
        let after = Set(new.map { $0[keyPath: socket] })
        for c in new {
            let path = c[keyPath: socket]
            if let was = before[path] {
                if was != c { notes.append("\(what) \(path): changed keys not applied at run time: \(what)_delete and re-create it, or restart") }
                continue
            }
            do throws(InitiatorError) {
                try add(c)
                notes.append("\(what) \(path): added")
            } catch { notes.append("\(what) \(path): not added: \(error)") }
        }
        for c in old where !after.contains(c[keyPath: socket]) {
            let path = c[keyPath: socket]
            switch remove(path) {
            case .removed: notes.append("\(what) \(path): deleted")
            case .refusedAttached: notes.append("\(what) \(path): kept: a VMM is attached (detach it, then reload again, or \(what)_delete with force)")
            case .detached, .notFound: break
            }
        }
        return notes
    }
}
