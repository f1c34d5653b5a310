import CVireoSys
#if canImport(Glibc)
import Glibc
#endif

/// What a daemon tells systemd (`Type=notify` units, sd_notify(3)): READY=1 once it serves,
/// STOPPING=1 when it begins to stop, WATCHDOG=1 while it is healthy. Without
/// `NOTIFY_SOCKET` (not under systemd) every call does nothing.
public enum SystemdNotify {
    /// Sends `state`; whether systemd was told (false without a notify socket, or on failure).
    @discardableResult
    public static func send(_ state: String) -> Bool { vireo_sd_notify(state) == 1 }

    /// The watchdog interval systemd expects pings within (`WatchdogSec=`), when it is set for
    /// this process (`WATCHDOG_USEC`, and `WATCHDOG_PID` this pid when given).
    public static var watchdogNanoseconds: UInt64? {
        guard let text = getenv("WATCHDOG_USEC").map({ String(cString: $0) }), let usec = UInt64(text), usec > 0 else {
            return nil
        }
        if let pid = getenv("WATCHDOG_PID").map({ String(cString: $0) }), Int32(pid) != getpid() { return nil }
        return usec &* 1000
    }
}
