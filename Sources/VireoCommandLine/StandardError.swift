#if canImport(Glibc)
import Glibc
#endif

/// Writes one line to standard error (a problem the executable reports before exiting).
public func printError(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
