import VireoSys
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Daemon shutdown on SIGINT/SIGTERM without async signal handlers.
public enum TerminationSignal {
    /// Blocks SIGINT, SIGTERM, SIGHUP and SIGUSR1 in the calling thread. Call
    /// it before starting any thread, so every thread inherits the mask and the
    /// signals wait for `wait()` (SIGUSR1: for `wait(stats:...)`; otherwise it
    /// stays pending, harmless).
    public static func block() {
        var set = signalSet()
        sigaddset(&set, SIGUSR1)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        signal(SIGPIPE, SIG_IGN)
    }

    /// Waits for SIGINT, SIGTERM or SIGHUP (blocked with `block()` first); returns its number.
    @discardableResult
    public static func wait() -> Int32 {
        var set = signalSet()
        var sig: Int32 = 0
        while sigwait(&set, &sig) != 0 {}
        return sig
    }

    private static func signalSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGHUP)
        return set
    }

    /// Like `wait()`, while keeping `file` fresh and systemd told: writes `collect()` to the
    /// file every `intervalSeconds`, on SIGUSR1, and once more after `stop` runs (final
    /// counters); tells systemd READY=1 now, WATCHDOG=1 every half watchdog interval while
    /// `healthy()` says so, and STOPPING=1 when a terminating signal arrives, then calls `stop`
    /// with it. SIGHUP calls `reload` (with systemd told RELOADING=1, then READY=1) and goes
    /// on waiting; without `reload` it terminates as SIGINT and SIGTERM do. Returns the
    /// terminating signal.
    @discardableResult
    public static func wait(stats file: StatsFile?, intervalSeconds: Double, logger: Logger,
                            collect: () -> StatsSnapshot, healthy: () -> Bool = { true },
                            reload: (() -> Void)? = nil, stop: (Int32) -> Void) -> Int32 {
        let statsEvery: UInt64? = file == nil ? nil : UInt64(max(0.001, intervalSeconds) * 1e9)
        let pingEvery = SystemdNotify.watchdogNanoseconds.map { max($0 / 2, 1_000_000) }
        func write() {
            guard let file else { return }
            do { try file.write(collect()) } catch { logger.warning("stats file \(file.path): \(error)") }
        }
        write()
        SystemdNotify.send("READY=1")
        let start = monotonicNanoseconds()
        var nextStats = statsEvery.map { start &+ $0 } ?? .max
        var nextPing = pingEvery.map { start &+ $0 } ?? .max
        var sig: Int32 = 0
        while true {
            let now = monotonicNanoseconds()
            let next = min(nextStats, nextPing)
            let left = next == .max ? -1 : (next > now ? Int((next - now + 999_999) / 1_000_000) : 0)
            let got = waitForSignal(timeoutMilliseconds: left)
            if got == SIGUSR1 {
                write()
                continue
            }
            if got == SIGHUP, let reload {
                SystemdNotify.send("RELOADING=1")
                reload()
                SystemdNotify.send("READY=1")
                continue
            }
            if got != 0 { sig = got; break }
            let woke = monotonicNanoseconds()
            if let every = statsEvery, woke >= nextStats {
                write()
                nextStats = woke &+ every
            }
            if let every = pingEvery, woke >= nextPing {
                // A daemon that is not healthy stops pinging: systemd restarts it (Restart=).
                if healthy() { SystemdNotify.send("WATCHDOG=1") } else { logger.error("unhealthy: not pinging the systemd watchdog") }
                nextPing = woke &+ every
            }
        }
        SystemdNotify.send("STOPPING=1")
        stop(sig)
        write()
        return sig
    }
}
