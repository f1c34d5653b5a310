// vireo-target: the storage host's daemon. This executable only parses
// options and runs what the libraries build.
import ArgumentParser
import Logging
import VireoFabric
import VireoSys

@main
struct VireoTarget: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vireo-target",
        abstract: "Vireo target: serves block and packet endpoints over RDMA.",
        subcommands: [FabricCheck.self, Devices.self])
}

extension VireoTarget {
    struct FabricCheck: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fabric-check",
            abstract: "Serve fabric probes (latency, bandwidth, checksum) for vireo-initiator fabric-check.")

        @Option(help: "Address to listen on (host:port) — an address of the RDMA netdev.")
        var listen: String = "0.0.0.0:7471"

        @Option(help: "Exit after serving this many clients (default: serve until killed).")
        var connections: Int?

        @Flag(help: "Busy-poll completion queues instead of poll-then-sleep (dedicated cores only).")
        var busyPoll = false

        func run() throws {
            LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
            let logger = Logger(label: "vireo.target")
            let address = try FabricAddress(parsing: listen)
            let server = try FabricProbeServer(address: address, busyPoll: busyPoll, logger: logger)
            logger.info("fabric-check: listening on \(address.host):\(server.port)")
            server.serve(maxConnections: connections)
        }
    }

    struct Devices: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List RDMA devices and their ports.")
        func run() throws {
            let names = VerbsContext.deviceNames()
            if names.isEmpty { throw FabricError.noDevice(VerbsContext.noDeviceHint) }
            for name in names { print(try VerbsContext(deviceName: name).query()) }
        }
    }
}
