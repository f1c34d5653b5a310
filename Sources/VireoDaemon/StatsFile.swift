import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// A daemon's stats file: each `write` renders a snapshot in the Prometheus
/// text format, adds `vireo_stats_sequence` (incremented per write, so a
/// reader can wait for a fresh file) and `vireo_process_allocations_total`
/// (when the malloc counter of deploy/bench/malloc-count.c is preloaded), and
/// replaces the file atomically (write a temporary file beside it, then
/// rename over it): a reader sees the old file or the new one, never a torn one.
///
/// Used from one thread (the daemon's main thread).
public final class StatsFile {
    /// The file written.
    public let path: String
    /// Writes done so far (the next write carries `sequence + 1`).
    public private(set) var sequence: UInt64 = 0
    private let temporaryPath: String

    public init(path: String) {
        self.path = path
        temporaryPath = path + ".tmp.\(getpid())"
    }

    /// The process's allocation count, when the malloc counter is preloaded.
    public static var processAllocations: UInt64? {
        processAllocationCount()
    }

    /// Renders `snapshot` plus the sequence and allocation count.
    public func render(_ snapshot: StatsSnapshot, sequence: UInt64) -> String {
        var s = snapshot
        // Both read at one point, with no allocation between: their deltas between two writes
        // differ by exactly what the other threads allocated.
        let own = threadAllocationCount()
        if let n = Self.processAllocations {
            s.counter("vireo_process_allocations_total", n,
                      help: "Heap allocations (malloc, calloc, realloc, memalign family) made by the process.")
            if let own {
                s.counter("vireo_stats_allocations_total", own,
                          help: "Of those, the ones made by the thread writing this file (its own writes: subtract them).")
            }
        }
        s.gauge("vireo_stats_sequence", sequence, help: "Writes of this file since the daemon started.")
        return s.render()
    }

    /// Writes `snapshot` to the file (tmp + rename).
    public func write(_ snapshot: StatsSnapshot) throws(SystemError) {
        let text = render(snapshot, sequence: sequence + 1)
        let fd = try FileDescriptor.open(temporaryPath, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644)
        var failure: SystemError?
        let bytes = Array(text.utf8)
        bytes.withUnsafeBytes { b in
            var done = 0
            while done < b.count {
                do throws(SystemError) {
                    guard let n = try fd.write(UnsafeRawBufferPointer(rebasing: b[done...])), n > 0 else {
                        failure = SystemError(call: "write", errno: EIO); return
                    }
                    done += n
                } catch {
                    failure = error; return
                }
            }
        }
        fd.close()
        if let failure {
            unlink(temporaryPath)
            throw failure
        }
        do {
            try zeroOrMinusOne("rename") { rename(temporaryPath, path) }
        } catch {
            unlink(temporaryPath)
            throw error
        }
        sequence += 1
    }
}
