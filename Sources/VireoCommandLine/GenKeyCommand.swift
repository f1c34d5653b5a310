import ArgumentParser
import VireoDaemon
#if canImport(Glibc)
import Glibc
#endif

/// `gen-key`, the same subcommand in both daemons: a new secret key for this
/// host's or target's authentication (VIREO-1 format, docs/security.md).
public struct GenKeyCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "gen-key",
        abstract: "Make a secret key for this host's authentication (VIREO-1 format; docs/security.md).")

    @Option(help: "Write the key to this new file, mode 600 (an existing file is never overwritten); without it, print the key.")
    var out: String?

    @Option(help: "Secret length in bytes: 32, 48 or 64.")
    var bytes: Int = 32

    public init() {}

    public func run() throws {
        do { print(try SecretKey.genKeyCommand(path: out, length: bytes)) } catch {
            // The executable's name, then the one-line reason; exit 64 (EX_USAGE) without a usage dump.
            let name = CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "vireo") } ?? "vireo"
            var text = "\(name): \(error)\n"
            text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
            throw ExitCode(64)
        }
    }
}
