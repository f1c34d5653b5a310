import Foundation

/// Checks Prometheus exposition text with `promtool check metrics` (Debian's prometheus
/// package; CI installs it): whether it passed and what it said; nil when promtool is not
/// installed.
public func promtoolCheck(_ text: String) throws -> (ok: Bool, output: String)? {
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") else { return nil }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
    p.arguments = ["check", "metrics"]
    let input = Pipe(), output = Pipe()
    p.standardInput = input
    p.standardOutput = output
    p.standardError = output
    try p.run()
    input.fileHandleForWriting.write(Data(text.utf8))
    try input.fileHandleForWriting.close()
    p.waitUntilExit()
    return (p.terminationStatus == 0, String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
}
