import VireoBlockTarget
import VireoDaemon
import VireoPacketTarget

extension TargetConfig {
    /// The configuration as a TOML document that `TargetConfig(toml:)` reads back to an equal
    /// value (`config_get`; a daemon started from it serves the same endpoints).
    public var tomlText: String {
        var w = TOMLWriter()
        w.set("listen", listen)
        w.set("workers", workers)
        w.set("busy_poll", busyPoll)
        w.set("shared_receives", sharedReceives)
        w.set("stats_file", statsFile)
        w.set("stats_interval", statsIntervalSeconds)
        w.set("keepalive", keepaliveSeconds)
        w.set("peer_timeout", peerTimeoutSeconds)
        w.set("name", name)
        w.set("key_file", keyFile)
        w.set("handshake_timeout", handshakeTimeoutSeconds)
        w.set("max_connections_per_host", maxConnectionsPerHost)
        w.set("max_memory_per_host", maxMemoryPerHost)
        w.set("control_socket", controlSocket)
        w.setOctal("control_socket_mode", controlSocketMode)
        w.set("metrics_listen", metricsListen)
        for h in hosts {
            w.table("host")
            w.set("name", h.name)
            if !h.keyFiles.isEmpty { w.set("key_files", h.keyFiles) }
        }
        for c in cephClusters {
            w.table("ceph_cluster")
            w.set("name", c.name)
            w.set("conf", c.configFile)
            w.set("client", c.clientID)
            w.set("keyring", c.keyring)
            w.set("images_per_connection", c.imagesPerConnection)
        }
        for e in exports { e.write(to: &w) }
        for n in networks {
            w.table("network")
            w.set("name", n.name)
            w.set("mtu", n.mtu)
            w.set("tap", n.tap)
            w.set("aging", n.agingSeconds)
            w.set("receive_buffers", n.receiveBuffers)
            w.set("max_ports", n.maxPorts)
            w.set("mac_table_size", n.macTableSize)
            w.set("allowed_macs", n.allowedMACs?.map(\.description))
            n.access.write(to: &w)
            for p in n.ports {
                w.table("network.port")
                w.set("name", p.name)
                w.set("allowed_macs", p.allowedMACs?.map(\.description))
                w.set("hosts", p.hosts)
            }
        }
        return w.text
    }
}

extension ExportConfig {
    /// This export as an `[[export]]` table.
    public func write(to w: inout TOMLWriter) {
        w.table("export")
        w.set("name", name)
        switch backing {
        case .file(let p): w.set("file", p)
        case .device(let p): w.set("device", p)
        case .memory: w.set("memory", true)
        case .rbd(let spec):
            w.set("rbd", spec.description)
            w.set("ceph_cluster", cephCluster)
            w.set("group", group)
            w.set("io_timeout", Int(ioTimeoutSeconds.rounded(.up)))
        }
        if let size { w.set("size", size) }
        w.set("block_size", Int(blockSize))
        w.set("read_only", readOnly)
        w.set("max_queues", maxQueues)
        w.set("max_queues_per_host", maxQueuesPerHost)
        w.set("queue_depth", queueDepth)
        w.set("max_io", maxIO)
        w.set("max_segments", maxSegments)
        w.set("inline_max", inlineMax)
        access.write(to: &w)
    }
}

extension EndpointAccessConfig {
    func write(to w: inout TOMLWriter) {
        w.set("allowed_hosts", allowedHosts)
        w.set("allow_any_host", allowAnyHost)
    }
}
