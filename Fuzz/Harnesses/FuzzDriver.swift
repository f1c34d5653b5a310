#if VIREO_LIBFUZZER
import CVireoFuzz
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The `main` of every Fuzz* executable.
///
/// Built with `-sanitize=fuzzer -DVIREO_LIBFUZZER` (deploy/fuzz/run) it hands
/// the command line to libFuzzer. In an ordinary build it replays the files
/// (or directories of files) named on the command line through the harness,
/// so a crash input can be rerun in the debugger without the fuzzer.
/// Either way `--write-seeds DIR` writes the harness's seed inputs to DIR.
public enum FuzzDriver {
    nonisolated(unsafe) static var current: FuzzHarness?
    /// Set by `main`: the harness has the process to itself (libFuzzer or
    /// replay), so it may check process-wide state between inputs, such as
    /// the count of open descriptors. False in the test run, where other
    /// tests open and close descriptors concurrently.
    nonisolated(unsafe) static var ownsProcess = false

    /// Runs `harness` as this process's program; returns the exit status.
    public static func main(_ harness: FuzzHarness) -> Int32 {
        let args = Array(CommandLine.arguments.dropFirst())
        ownsProcess = true
        if args.first == "--write-seeds" {
            guard args.count == 2 else {
                print("usage: \(harness.name) --write-seeds DIR")
                return 2
            }
            return writeSeeds(harness, to: args[1])
        }
        #if VIREO_LIBFUZZER
        current = harness
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            FuzzDriver.current?.run(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        }
        #else
        return replay(harness, paths: args)
        #endif
    }

    /// Writes seed `i` of `harness` to `DIR/seed-i`.
    static func writeSeeds(_ harness: FuzzHarness, to dir: String) -> Int32 {
        mkdir(dir, 0o755)
        for (i, seed) in harness.seeds().enumerated() {
            let path = "\(dir)/seed-\(i)"
            guard let f = fopen(path, "wb") else {
                print("\(harness.name): cannot write \(path)")
                return 1
            }
            _ = seed.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
            fclose(f)
        }
        print("\(harness.name): wrote \(harness.seeds().count) seeds to \(dir)")
        return 0
    }

    /// Runs every file named (directories: every file in them) through `harness`.
    static func replay(_ harness: FuzzHarness, paths: [String]) -> Int32 {
        var files: [String] = []
        for p in paths {
            if let d = opendir(p) {
                while let e = readdir(d) {
                    let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                    if !name.hasPrefix(".") { files.append("\(p)/\(name)") }
                }
                closedir(d)
            } else {
                files.append(p)
            }
        }
        for f in files.sorted() {
            guard let bytes = readFile(f) else {
                print("\(harness.name): cannot read \(f)")
                return 1
            }
            bytes.withUnsafeBytes { harness.run($0) }
        }
        print("\(harness.name): replayed \(files.count) inputs")
        return 0
    }

    /// The whole contents of the file at `path`, or nil.
    public static func readFile(_ path: String) -> [UInt8]? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n == 0 { break }
            out += buf[0..<n]
        }
        return out
    }
}
