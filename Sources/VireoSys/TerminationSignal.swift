#if canImport(Glibc)
import Glibc
#endif

/// Daemon shutdown on SIGINT/SIGTERM without async signal handlers.
public enum TerminationSignal {
    /// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread. Call it before
    /// starting any thread, so every thread inherits the mask and the signals
    /// wait for `wait()`.
    public static func block() {
        var set = signalSet()
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
}
