/// Text a peer sent, made safe to quote in a log line.
public enum WireText {
    /// `text` with every control character (C0, DEL, C1: CR, LF, ESC, ...)
    /// replaced by `?`, so a peer's words cannot start a new log line or
    /// carry terminal escape sequences.
    public static func printable(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for u in text.unicodeScalars {
            out.append(u.properties.generalCategory == .control ? "?" : u)
        }
        return String(out)
    }
}
