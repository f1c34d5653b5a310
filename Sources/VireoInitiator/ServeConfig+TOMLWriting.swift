import VireoDaemon

extension ServeConfig {
    /// The configuration as a TOML document that `ServeConfig.parse(toml:)` reads back to an
    /// equal value (`config_get`; an initiator started from it serves the same devices).
    public var tomlText: String {
        var w = TOMLWriter()
        w.set("stats_file", statsFile)
        w.set("stats_interval", statsIntervalSeconds)
        w.set("metrics_listen", metricsListen)
        w.set("host_name", hostName)
        w.set("host_key_file", hostKeyFile)
        w.set("control_socket", controlSocket)
        w.setOctal("control_socket_mode", controlSocketMode)
        for d in disks {
            w.table("disk")
            w.set("socket", d.socket)
            w.set("target", d.targetText)
            w.set("export", d.export)
            w.set("queues", d.queues)
            w.set("queue_depth", d.queueDepth)
            w.set("read_only", d.readOnly)
            w.set("loss_timeout", "\(d.lossTimeoutNanoseconds / 1_000_000)ms")
            w.set("remote_access", d.remoteAccess.rawValue)
            d.targetTrust.write(to: &w)
        }
        for n in nics {
            w.table("nic")
            w.set("socket", n.socket)
            w.set("target", n.target.description)
            w.set("network", n.network)
            w.set("mac", n.mac.description)
            w.set("queue_pairs", n.queuePairs)
            w.set("queue_size", n.queueSize)
            w.set("port", n.port)
            n.targetTrust.write(to: &w)
        }
        return w.text
    }
}

extension TargetTrust {
    func write(to w: inout TOMLWriter) {
        if !keyFiles.isEmpty { w.set("target_key_files", keyFiles) }
        w.set("target_name", name)
    }
}
