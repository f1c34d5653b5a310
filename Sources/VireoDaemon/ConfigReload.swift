import Logging

/// What a daemon does on SIGHUP (`TerminationSignal.wait(..., reload:)`): reads its
/// configuration again (`reread`: the file with the command line's flags over it) and, if it
/// has no problem, applies the difference (`apply` returns one line per change or refusal);
/// every step is logged. A configuration with problems changes nothing.
public enum ConfigReload {
    public static func handler<Config>(logger: Logger, reread: @escaping () throws(ConfigError) -> Config,
                                       apply: @escaping (Config) -> [String]) -> () -> Void {
        {
            logger.notice("SIGHUP: reading the configuration again")
            let new: Config
            do throws(ConfigError) { new = try reread() } catch {
                for p in error.problems { logger.error("SIGHUP: \(p)") }
                logger.error("SIGHUP: the configuration has \(error.problems.count) problem(s); nothing changed")
                return
            }
            let notes = apply(new)
            for n in notes { logger.notice("SIGHUP: \(n)") }
            logger.notice("SIGHUP: reload done, \(notes.isEmpty ? "nothing differed" : "\(notes.count) change(s) or refusal(s)")")
        }
    }
}
