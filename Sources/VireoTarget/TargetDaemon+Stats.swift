import VireoBlockTarget
import VireoPacketTarget
import VireoSys
import VireoWire
import VireoDaemon

extension TargetDaemon {
    /// The daemon's counters for its stats file: block commands and bytes
    /// (totals over the workers), every network's totals and every live
    /// packet port's counters. Racy reads of single-writer counters: a live,
    /// approximate view (exact once stopped). Safe from any thread.
    public func statsSnapshot() -> StatsSnapshot {
        let (workerCounters, ports, exports, networks) = shared.withLock {
            ($0.workerCounters, Array($0.ports.values), $0.exports, $0.networks)
        }
        let total = TargetCounters()
        for c in workerCounters { total.add(c) }
        var s = StatsSnapshot()
        let opcodes: [(UInt8, String)] = [(1, "read"), (2, "write"), (3, "flush"), (4, "discard"), (5, "write_zeroes"),
                                          (6, "get_id"), (0, "unknown")]
        for (raw, name) in opcodes {
            s.counter("vireo_target_commands_total", total.commands(opcode: raw),
                      help: "Block commands received, by opcode.", labelPairs: [("opcode", name)])
        }
        for status in BlockStatus.allCases where status != .ok {
            s.counter("vireo_target_error_responses_total", total.responses(status: status.rawValue),
                      help: "Block commands answered with an error status, by status.", labelPairs: [("status", "\(status)")])
        }
        s.addDataPathCosts()
        s.counter("vireo_target_bytes_read_total", total.bytesRead, help: "Bytes read from exports for block commands.")
        s.counter("vireo_target_bytes_written_total", total.bytesWritten, help: "Bytes written to exports for block commands.")
        s.counter("vireo_target_payload_bytes_copied_total", total.payloadBytesCopied,
                  help: "READ/WRITE payload bytes the target's CPU copied through bounce buffers (0 when every memory export is registered).")
        s.counter("vireo_target_connections_accepted_total", total.acceptedConnections, help: "Block connections accepted by the workers.")
        s.counter("vireo_target_connections_dropped_total", total.droppedConnections, help: "Block connections dropped on an error.")
        for check in CapsuleCheck.allCases {
            s.counter("vireo_target_bad_commands_total", total.badCommands(check),
                      help: "Capsules refused, by the check they failed.", labelPairs: [("check", check.name)])
        }
        for fault in ConnectionFault.allCases {
            s.counter("vireo_target_connection_faults_total", total.drops(fault),
                      help: "Block connections dropped on an error, by reason.", labelPairs: [("reason", fault.name)])
        }
        s.counter("vireo_target_handshakes_accepted_total", total.authenticatedConnections,
                  help: "Block connections whose host authenticated and is allowed on the export.")
        for reason in AuthRejectReason.allCases {
            s.counter("vireo_target_handshakes_refused_total", total.refusedHandshakes(reason),
                      help: "Block connection handshakes refused, by reason.", labelPairs: [("reason", "\(reason)")])
        }
        s.counter("vireo_target_commands_chunked_total", total.chunkedCommands,
                  help: "Memory-export DISCARD/WRITE_ZEROES carried out in bounded chunks between other connections' work.")
        s.counter("vireo_target_stray_receives_total", total.strayReceives,
                  help: "Commands in a worker's shared receive pool that no connection claimed (its queue pair was gone or never adopted); given back unserved.")
        s.counter("vireo_target_liveness_probes_total", total.livenessProbes,
                  help: "Zero-length RDMA WRITEs sent to block connections that were idle and silent for the keepalive interval.")
        s.counter("vireo_target_path_probes_total", pathProbes.load(ordering: .relaxed),
                  help: "Path probes answered that the export would be admitted (initiators checking this target as a standby path); nothing is allocated for them.")
        s.counter("vireo_target_cluster_retries_total", total.clusterRetries,
                  help: "RBD operations the Ceph cluster failed and that were started again within the export's io_timeout.")
        s.counter("vireo_target_cluster_errors_total", total.clusterErrors,
                  help: "RBD operations answered with an I/O error: the cluster failed or did not answer them within the export's io_timeout.")
        for e in exports {
            let labels = [("export", e.name)]
            let c = e.counters
            s.counter("vireo_target_export_commands_total", c[.reads], help: "Commands answered for the export, by kind (read, write, other).",
                      labelPairs: labels + [("kind", "read")])
            s.counter("vireo_target_export_commands_total", c[.writes], help: "", labelPairs: labels + [("kind", "write")])
            s.counter("vireo_target_export_commands_total", c[.otherCommands], help: "", labelPairs: labels + [("kind", "other")])
            s.counter("vireo_target_export_bytes_read_total", c[.bytesRead], help: "Bytes read from the export by successful READs.", labelPairs: labels)
            s.counter("vireo_target_export_bytes_written_total", c[.bytesWritten], help: "Bytes written to the export by successful WRITEs.", labelPairs: labels)
            s.counter("vireo_target_export_errors_total", c[.errors], help: "Commands for the export answered with an error status.", labelPairs: labels)
            s.gauge("vireo_target_export_capacity_bytes", e.capacity, help: "The export's capacity.", labelPairs: labels)
            s.histogram("vireo_target_export_command_latency_seconds", c.latency,
                        help: "Time from a command's capsule taken into a request slot to its response posted.", labelPairs: labels)
        }
        for network in networks {
            let name = network.name, totals = network.totals
            Self.add(totals, to: &s, prefix: "vireo_target_network", labels: [("network", name)])
            s.counter("vireo_target_network_handshakes_accepted_total", totals.acceptedHandshakes,
                      help: "Packet connections whose host authenticated and may join the network.", labelPairs: [("network", name)])
            s.counter("vireo_target_network_handshakes_refused_total", totals.refusedHandshakes,
                      help: "Packet connections refused by the handshake (or with a malformed one).", labelPairs: [("network", name)])
            s.counter("vireo_target_network_macs_unlearned_total", totals.unlearnedTableFull,
                      help: "Source MACs not learned, by reason (the table full of live entries, or the port at its share).",
                      labelPairs: [("network", name), ("reason", "tableFull")])
            s.counter("vireo_target_network_macs_unlearned_total", totals.unlearnedPortLimit,
                      help: "Source MACs not learned, by reason (the table full of live entries, or the port at its share).",
                      labelPairs: [("network", name), ("reason", "portLimit")])
        }
        for (network, port) in ports.sorted(by: { ($0.network, $0.port.peer, $0.port.queueIndex) < ($1.network, $1.port.peer, $1.port.queueIndex) }) {
            Self.add(port.counters, to: &s, prefix: "vireo_target_port",
                     labels: [("network", network), ("port", "\(port.peer)/\(port.queueIndex)")])
        }
        return s
    }

    static func add(_ c: PortCounters, to s: inout StatsSnapshot, prefix: String, labels: [(String, String)]) {
        s.counter("\(prefix)_rx_frames_total", c.rxFrames, help: "Frames received from the peer (valid or not).", labelPairs: labels)
        s.counter("\(prefix)_rx_bytes_total", c.rxBytes, help: "Bytes received from the peer.", labelPairs: labels)
        s.counter("\(prefix)_tx_frames_total", c.txFrames, help: "Frames sent to the peer.", labelPairs: labels)
        s.counter("\(prefix)_tx_bytes_total", c.txBytes, help: "Bytes sent to the peer.", labelPairs: labels)
        s.counter("\(prefix)_credit_messages_total", c.creditMessages, help: "Credit-only messages sent to the peer.", labelPairs: labels)
        s.counter("\(prefix)_payload_bytes_copied_total", c.payloadBytesCopied,
                  help: "Frame bytes the target's CPU copied (TAP uplink, or across RDMA devices); 0 between ports of one device.",
                  labelPairs: labels)
        s.counter("\(prefix)_frames_held_total", c.framesHeld,
                  help: "Frames that found the port without credit and waited in their ingress buffer for it.", labelPairs: labels)
        s.counter("\(prefix)_liveness_probes_total", c.livenessProbes,
                  help: "Zero-length RDMA WRITEs sent to the peer while it was idle and silent.", labelPairs: labels)
        for reason in PortDrop.allCases {
            s.counter("\(prefix)_drops_total", c.drops(reason), help: "Frames not delivered, by reason.",
                      labelPairs: labels + [("reason", reason.name)])
        }
    }
}
