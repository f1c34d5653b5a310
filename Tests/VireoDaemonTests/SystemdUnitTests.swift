import Foundation
import VireoDaemon
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// The shipped systemd units run their daemons with the least they need (#14): checked with
/// `systemd-analyze security --offline=yes`, which scores a unit's exposure from 0 (locked
/// down) to 10 (none). Before the hardening both scored 9.6 ("UNSAFE").
@Suite struct SystemdUnitTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test(arguments: ["vireo-target.service", "vireo-initiator.service"])
    func theUnitsExposeLittle(unit: String) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else { return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-analyze")
        p.arguments = ["security", "--offline=yes", "--threshold=45",  // tenths: 4.5
                       Self.repo.appendingPathComponent("deploy/systemd/\(unit)").path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        p.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 0, "\(unit) scores above 4.5:\n\(text.split(separator: "\n").suffix(3).joined(separator: "\n"))")
        #expect(text.contains("Overall exposure level"))
    }

    @Test func theUnitsAreNotifyUnitsWithAWatchdog() throws {
        for unit in ["vireo-target.service", "vireo-initiator.service"] {
            let text = try String(contentsOf: Self.repo.appendingPathComponent("deploy/systemd/\(unit)"), encoding: .utf8)
            #expect(text.contains("Type=notify") && text.contains("WatchdogSec=") && text.contains("User=vireo"), "\(unit)")
        }
    }
}

/// sd_notify without libsystemd: what the daemons tell a `Type=notify` unit's systemd.
@Suite(.serialized) struct SystemdNotifyTests {
    @Test func aStateReachesTheNotifySocketAndTheWatchdogIntervalIsRead() throws {
        let path = "/tmp/vireo-notify-\(getpid()).sock"
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd); unlink(path) }
        var sa = sockaddr_un()
        sa.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &sa.sun_path) { b in
            for (i, c) in path.utf8.enumerated() { b[i] = c }
        }
        let bound = withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        unsetenv("NOTIFY_SOCKET")
        #expect(!SystemdNotify.send("READY=1"), "not under systemd: nothing to tell")
        setenv("NOTIFY_SOCKET", path, 1)
        defer { unsetenv("NOTIFY_SOCKET") }
        #expect(SystemdNotify.send("READY=1\nSTATUS=serving"))
        var buf = [UInt8](repeating: 0, count: 256)
        let n = recv(fd, &buf, buf.count, Int32(MSG_DONTWAIT))
        #expect(n > 0 && String(decoding: buf[0..<max(n, 0)], as: UTF8.self) == "READY=1\nSTATUS=serving")

        setenv("WATCHDOG_USEC", "30000000", 1)
        defer { unsetenv("WATCHDOG_USEC"); unsetenv("WATCHDOG_PID") }
        #expect(SystemdNotify.watchdogNanoseconds == 30_000_000_000)
        setenv("WATCHDOG_PID", "1", 1)
        #expect(SystemdNotify.watchdogNanoseconds == nil, "another process's watchdog")
    }
}
