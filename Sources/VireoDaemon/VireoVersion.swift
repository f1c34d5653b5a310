/// The version both daemons and vireoctl report (`version_get`, `--version`).
public enum VireoVersion {
    public static let current = "0.8.0"
}
