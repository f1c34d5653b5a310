import Dispatch
import Logging
import ServiceLifecycle

/// One part of a daemon (its endpoints, its control socket, its metrics listener) as a
/// swift-service-lifecycle `Service`. Parts are started by the daemon before the group runs,
/// in the order they are listed, each ready when the next starts (a device's socket is
/// served before the control API can name it); the group stops them when graceful shutdown
/// reaches them, in reverse order.
public struct DaemonPart: Service {
    public let name: String
    let stop: @Sendable () -> Void

    /// `stop`: what ends this part (it returns once the part has stopped).
    public init(_ name: String, stop: @escaping @Sendable () -> Void) {
        self.name = name
        self.stop = stop
    }

    public func run() async throws {
        // Returns at graceful shutdown (or, throwing, if the group is cancelled): stop either way.
        try? await gracefulShutdown()
        stop()
    }
}

/// A started daemon's life until SIGINT or SIGTERM: a `ServiceGroup` over its parts, with
/// the signals taken by `TerminationSignal.wait` on the calling thread (every other thread has
/// them blocked, so no data-path thread is ever interrupted), which also keeps the stats
/// file, systemd's watchdog and SIGHUP reloads going. A terminating signal triggers the
/// group's graceful shutdown, which stops the parts in reverse order of start (the last
/// started first) and waits for each; then the stats file gets its last write.
public enum DaemonLifecycle {
    @discardableResult
    public static func run(_ parts: [DaemonPart], stats file: StatsFile?, intervalSeconds: Double, logger: Logger,
                           collect: () -> StatsSnapshot, healthy: () -> Bool = { true },
                           reload: (() -> Void)? = nil) -> Int32 {
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: parts.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }, logger: logger))
        let finished = DispatchSemaphore(value: 0)
        Task.detached {
            do { try await group.run() } catch { logger.error("service group: \(error)") }
            finished.signal()
        }
        return TerminationSignal.wait(
            stats: file, intervalSeconds: intervalSeconds, logger: logger, collect: collect, healthy: healthy,
            reload: reload,
            stop: { sig in
                logger.info("signal \(sig): stopping \(parts.reversed().map(\.name).joined(separator: ", ")) (reverse order of start)")
                Task.detached { await group.triggerGracefulShutdown() }
                finished.wait()
            })
    }
}
