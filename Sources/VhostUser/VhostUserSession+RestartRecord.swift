// The back-end's own inflight record (`RestartRecord`) on a session: opened
// at a ring's start when the device names a file and the front-end sent no
// region of its own; each ring claims its part (kept only if this ring left
// it); a clean stop or a reset clears it (the handlers).

extension VhostUserSession {
    /// (Quiesced, SET_VRING_KICK) Opens the record for ring `r`'s layout
    /// unless the front-end keeps one, and claims the ring's part. Failing to
    /// open it costs only restarts: logged, the ring starts without it.
    func openRestartRecord(for r: VhostUserVring) {
        guard let path = device.restartRecordPath, let address = r.address else { return }
        if inflight != nil, restartRecord == nil { return }     // the front-end's region
        if restartRecord?.region.packed != r.packed {
            // Running rings write through views of the current mapping: a
            // front-end mixing layouts gets the mismatch at attach instead.
            guard !vrings.contains(where: \.started) else { return }
            restartRecord = nil
            inflight = nil
            do {
                let rec = try RestartRecord(path: path, numQueues: vrings.count, queueSize: device.maxQueueSize,
                                            packed: r.packed, frontend: RestartRecord.identity(of: table),
                                            faultOwner: faultOwner)
                if let why = rec.discarded { logger.info("vhost-user: restart record \(path) cleared: \(why)") }
                restartRecord = rec
                inflight = rec.region
            } catch {
                logger.warning("vhost-user: no restart record at \(path) (\(error)): if this back-end restarts, what it had in flight is lost and its rings may resume at the wrong position")
                return
            }
        }
        _ = restartRecord?.claim(ring: r.index, address: address, size: r.size)
    }

    /// (Quiesced: the worker has not resubmitted yet) After ring `r` started
    /// with the record: says what recovery made of it.
    func reportRestartRecord(_ r: VhostUserVring) {
        if let why = r.recordDiscarded {
            r.recordDiscarded = nil
            logger.warning("vhost-user: queue \(r.index): restart record does not fit the ring (\(why)); cleared, starting at SET_VRING_BASE")
        }
        let n = r.resubmitHeads.count + r.resubmitPacked.count
        if n > 0 {
            let b = r.currentBase
            let at = r.packed
                ? "avail slot \(b & 0x7FFF) wrap \(b >> 15 & 1), used slot \(b >> 16 & 0x7FFF) wrap \(b >> 31)"
                : "avail index \(b)"
            logger.notice("vhost-user: queue \(r.index): the previous back-end left \(n) chain(s) in flight (restart record); resubmitting them, resuming at \(at)")
        }
    }
}
