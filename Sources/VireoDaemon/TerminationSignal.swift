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

    /// Like `wait()`, while keeping `file` fresh: writes `collect()` to it
    /// every `intervalSeconds`, on SIGUSR1, and once more after `stop` runs
    /// (final counters). Without a file, just waits, then calls `stop` with the signal.
    /// Returns the terminating signal.
    @discardableResult
    public static func wait(stats file: StatsFile?, intervalSeconds: Double, logger: Logger,
                            collect: () -> StatsSnapshot, stop: (Int32) -> Void) -> Int32 {
        guard let file else {
            let sig = wait()
            stop(sig)
            return sig
        }
        let interval = max(0.001, intervalSeconds)
        func write() {
            do { try file.write(collect()) } catch { logger.warning("stats file \(file.path): \(error)") }
        }
        write()
        var next = monotonicNanoseconds() + UInt64(interval * 1e9)
        var sig: Int32 = 0
        while true {
            let now = monotonicNanoseconds()
            let left = next > now ? Int((next - now + 999_999) / 1_000_000) : 0
            let got = waitForSignal(timeoutMilliseconds: left)
            if got == SIGUSR1 {
                write()
                continue
            }
            if got != 0 { sig = got; break }
            write()
            next = monotonicNanoseconds() + UInt64(interval * 1e9)
        }
        stop(sig)
        write()
        return sig
    }
}
