import Synchronization
import VhostUser
import VireoSys
import VireoDaemon

extension InitiatorService {
    /// The counters of every disk and NIC served now for the daemon's stats file and
    /// `/metrics` (relaxed reads: a live, approximate view; after `stop()` still the last
    /// devices'). Disks are labelled `disk="d<N>"`, NICs `nic="n<N>"`, numbered in the order
    /// they were added and never reused, each with its socket and export or network.
    public func statsSnapshot() -> StatsSnapshot {
        let disks = self.disks, nics = self.nics
        var s = StatsSnapshot()
        var copied: UInt64 = 0
        for d in disks { copied &+= d.device.counters.payloadBytesCopied.load(ordering: .relaxed) }
        for n in nics { copied &+= n.device.counters.payloadBytesCopied.load(ordering: .relaxed) }
        s.counter("vireo_initiator_payload_bytes_copied_total", copied,
                  help: "Payload bytes the initiator's CPU copied (disks and NICs; 0 by design).")
        s.addDataPathCosts()
        for d in disks {
            let c = d.device.config
            Self.add(d.device.counters, to: &s, labels: [("disk", d.id), ("socket", c.socket), ("export", c.export)])
            guard let paths = d.device.paths else { continue }
            for p in paths.snapshot() {
                s.gauge("vireo_initiator_disk_path_active", p.state == .active ? 1 : 0,
                        help: "1 for the path a disk's I/O goes over, 0 for its other paths (a gateway group's).",
                        labelPairs: [("disk", d.id), ("path", p.address.description), ("state", p.state.rawValue)])
            }
            s.counter("vireo_initiator_disk_path_switches_total", paths.switches.load(ordering: .relaxed),
                      help: "Times a disk's active path moved to another gateway of its group.", labelPairs: [("disk", d.id)])
        }
        for n in nics {
            let c = n.device.config
            Self.add(n.device.counters, to: &s, labels: [("nic", n.id), ("socket", c.socket), ("network", c.network)])
        }
        for v in disks.map(\.server) + nics.map(\.server) {
            let labels = [("socket", v.path)]
            s.counter("vireo_initiator_vhost_protocol_errors_total", v.protocolErrors.load(ordering: .relaxed),
                      help: "Front-end connections closed for a protocol error (bad message, fd, file or ring).",
                      labelPairs: labels)
            s.counter("vireo_initiator_vhost_wedged_sessions_total", v.wedgedSessions.load(ordering: .relaxed),
                      help: "Front-end connections failed because a queue worker could not park (blocked on its call fd).",
                      labelPairs: labels)
        }
        s.counter("vireo_initiator_contained_sigbus_total", PeerFaultGuard.totalFaults,
                  help: "SIGBUS faults contained in front-end files shrunk under their mapping (each failed its connection).")
        return s
    }

    static func add(_ c: RemoteDiskCounters, to s: inout StatsSnapshot, labels: [(String, String)]) {
        func put(_ name: String, _ a: borrowing Atomic<UInt64>, _ help: String) {
            s.counter("vireo_initiator_disk_\(name)_total", a.load(ordering: .relaxed), help: help, labelPairs: labels)
        }
        put("requests", c.requests, "Requests taken from the disk's virtqueues.")
        put("completed", c.completed, "Requests completed to the guest (any status).")
        put("io_errors", c.ioErrors, "Requests completed with IOERR.")
        put("unsupported", c.unsupported, "Requests completed with UNSUPP.")
        put("commands_sent", c.commandsSent, "Commands sent to the target (resubmissions included).")
        put("inline_writes", c.inlineWrites, "Inline WRITE commands (guest data gathered into the SEND).")
        put("resubmitted", c.resubmitted, "Commands sent again after a reconnect.")
        put("connections_lost", c.connectionsLost, "Connections to the target lost.")
        put("reconnects", c.reconnects, "Connections to the target re-established.")
        put("failed_after_loss_timeout", c.failedAfterLossTimeout, "Requests failed because the target stayed away past the loss timeout.")
        put("failed_detached", c.failedDetached, "Requests failed because the disk was deleted with force while its VMM was attached.")
        s.histogram("vireo_initiator_disk_request_latency_seconds", c.latency,
                    help: "Time from a request's pop off the virtqueue to the target's answer (before the used ring update).",
                    labelPairs: labels)
        put("payload_bytes_copied", c.payloadBytesCopied, "Payload bytes the initiator's CPU copied for this disk.")
        put("bad_responses", c.badResponses, "Malformed responses or responses naming a tag not in flight.")
        put("aborted_by_quiesce", c.abortedByQuiesce, "Requests failed (IOERR) because a stop, reset or memory change could not wait for a stalled target.")
        put("windows_bound", c.windowsBound, "Memory windows bound over commands' guest buffers (one per segment).")
        put("windows_invalidated_locally", c.windowsInvalidatedLocally, "Windows the initiator invalidated itself.")
        put("responses_without_invalidation", c.responsesWithoutInvalidation, "Responses to commands on windows that invalidated none.")
        put("windows_allocated", c.windowsAllocated, "Memory windows allocated (system calls).")
    }

    static func add(_ c: RemoteNetCounters, to s: inout StatsSnapshot, labels: [(String, String)]) {
        func put(_ name: String, _ a: borrowing Atomic<UInt64>, _ help: String) {
            s.counter("vireo_initiator_nic_\(name)_total", a.load(ordering: .relaxed), help: help, labelPairs: labels)
        }
        put("tx_frames", c.txFrames, "Frames sent to the target.")
        put("tx_bytes", c.txBytes, "Frame bytes sent (virtio-net header included).")
        put("tx_dropped_invalid", c.txDroppedInvalid, "TX chains dropped as invalid.")
        put("tx_dropped_link_down", c.txDroppedLinkDown, "TX chains completed without sending while the link was down.")
        put("tx_lost_in_flight", c.txLostInFlight, "Frames in flight when a connection was lost.")
        put("tx_credit_stalls", c.txCreditStalls, "Times the TX ring waited for a credit.")
        put("rx_frames", c.rxFrames, "Frames received into guest buffers.")
        put("rx_bytes", c.rxBytes, "Received frame bytes (virtio-net header included).")
        put("rx_merged", c.rxMerged, "Receives that took more than one guest buffer.")
        put("rx_buffers_rejected", c.rxBuffersRejected, "Guest RX chains refused.")
        put("rx_buffers_returned", c.rxBuffersReturned, "Guest RX chains given back empty.")
        put("rx_filtered", c.rxFiltered, "Frames not delivered on a multi-pair NIC.")
        put("rx_runts", c.rxRunts, "Frames from the target too short to hold the headers.")
        put("receives_posted", c.receivesPosted, "Receive work requests posted.")
        put("credit_messages_sent", c.creditMessagesSent, "Credit-only messages sent to the target.")
        put("credit_messages_received", c.creditMessagesReceived, "Credit-only messages received.")
        put("bad_messages", c.badMessages, "Messages from the target with a malformed immediate.")
        put("connections_lost", c.connectionsLost, "Connections to the target lost.")
        put("reconnects", c.reconnects, "Connections to the target re-established.")
        put("control_ok", c.controlOK, "Control-queue commands acked OK.")
        put("control_refused", c.controlRefused, "Control-queue commands refused.")
        put("payload_bytes_copied", c.payloadBytesCopied, "Payload bytes the initiator's CPU copied for this NIC.")
    }
}
