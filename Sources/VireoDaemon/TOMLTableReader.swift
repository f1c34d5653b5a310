import TOMLKit
import VireoSys

/// Typed values by key out of one TOML table, every problem one line starting with the
/// table's label: "vireo.toml: disk #2: queues must be an integer". A document reader
/// (`init(toml:source:)`) hands out the tables of its arrays of tables (`tables(_:)`),
/// which record their problems in the same list; `finish()` reports the unknown keys of
/// all of them ("unknown key 'K' (known: ...)", "unknown top-level key" in the document).
public final class TOMLTableReader: ConfigReader {
    /// The table read.
    public let table: TOMLTable
    /// What this table's problem lines start with ("vireo.toml: disk #2"); empty: nothing.
    public let label: String
    /// The dotted key of this table's array ("network.port"); empty for a document.
    private let path: String
    private let isDocument: Bool
    private let log: ProblemLog
    /// Keys asked for, in order: the known keys.
    private var known: [String] = []
    private var children: [TOMLTableReader] = []
    private var finished = false

    /// The problem lines of a document and the tables below it.
    private final class ProblemLog {
        var lines: [String] = []
    }

    private init(_ table: TOMLTable, label: String, path: String, isDocument: Bool, log: ProblemLog) {
        self.table = table
        self.label = label
        self.path = path
        self.isDocument = isDocument
        self.log = log
    }

    /// A reader over one table of an array of tables found at `path` ("network"), its
    /// problem lines starting with `label`.
    public convenience init(_ table: TOMLTable, label: String, path: String) {
        self.init(table, label: label, path: path, isDocument: false, log: ProblemLog())
    }

    /// Parses a TOML document; its problem lines start with `source` (nil: nothing). A
    /// syntax error is thrown: "SOURCE: TOML syntax error at line L, column C: ...".
    public convenience init(toml text: String, source: String? = nil) throws(ConfigError) {
        let prefix = source.map { "\($0): " } ?? ""
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw ConfigError("\(prefix)TOML syntax error at line \(e.source.begin.line), column \(e.source.begin.column): \(e.description)")
        } catch {
            throw ConfigError("\(prefix)TOML syntax error: \(error)")
        }
        self.init(table, label: source ?? "", path: "", isDocument: true, log: ProblemLog())
    }

    /// Every problem so far, in this document, one line each.
    public var problems: [String] { log.lines }

    public func problem(_ message: String) { log.lines.append(label.isEmpty ? message : "\(label): \(message)") }

    public func has(_ key: String) -> Bool { table.contains(key: key) }

    public func spelled(_ key: String) -> String { key }

    public func missing(_ key: String, example: String) { problem("\(key) is missing (e.g. \(key) = \"\(example)\")") }

    public func string(_ key: String, what: String?) -> String? {
        guard let s = value(key, mustBe: what ?? "a string", { $0.string }) else { return nil }
        if s.isEmpty {
            problem("\(key) must not be empty")
            return nil
        }
        return s
    }

    public func int(_ key: String) -> Int? { value(key, mustBe: "an integer") { $0.int } }

    /// A number, integer or not, that `valid` accepts; otherwise "KEY must be WHAT".
    public func number(_ key: String, what: String = "a number", where valid: (Double) -> Bool = { _ in true }) -> Double? {
        value(key, mustBe: what) { v in (v.double ?? v.int.map(Double.init)).flatMap { valid($0) ? $0 : nil } }
    }

    /// `aliases` are for flags: a TOML table takes `key` only.
    public func bool(_ key: String, aliases: [String]) -> Bool? { value(key, mustBe: "true or false") { $0.bool } }

    public func byteCount(_ key: String) -> Int? {
        value(key, mustBe: ConfigValueRules.byteCountWhat) { ConfigValueRules.byteCount(int: $0.int, string: $0.string) }
    }

    public func duration(_ key: String) -> UInt64? {
        value(key, mustBe: ConfigValueRules.durationWhat) { ConfigValueRules.duration(int: $0.int, string: $0.string) }
    }

    public func list(_ key: String) -> [String]? {
        value(key, mustBe: ConfigValueRules.stringsWhat) { ConfigValueRules.strings($0.array?.map(\.string)) }
    }

    /// The tables of the array of tables under `key` (`[[export]]`), each read by its own
    /// reader labelled "KEY 'NAME'" when it has a string `name`, else "KEY #N" (after this
    /// table's label). Not an array, or an element not a table, is a problem; absent: none.
    public func tables(_ key: String) -> [TOMLTableReader] {
        guard let value = lookup(key) else { return [] }
        let childPath = path.isEmpty ? key : "\(path).\(key)"
        guard let array = value.array else {
            problem("\(key) must be an array of tables ([[\(childPath)]])")
            return []
        }
        var out: [TOMLTableReader] = []
        for (i, element) in array.enumerated() {
            guard let t = element.table else {
                problem("\(key) #\(i + 1) must be a table")
                continue
            }
            let name = t["name"]?.string.map { "\(key) '\($0)'" } ?? "\(key) #\(i + 1)"
            let child = TOMLTableReader(t, label: label.isEmpty ? name : "\(label): \(name)", path: childPath,
                                        isDocument: false, log: log)
            children.append(child)
            out.append(child)
        }
        return out
    }

    /// Reports every key given that no one asked for, here and in every table below.
    public func finish() -> [String] {
        reportUnknownKeys()
        return log.lines
    }

    private func reportUnknownKeys() {
        guard !finished else { return }
        finished = true
        let noun = isDocument ? "top-level key" : "key"
        for key in table.keys where !known.contains(key) {
            problem("unknown \(noun) '\(key)'" + (known.isEmpty ? "" : " (known: \(known.joined(separator: ", ")))"))
        }
        for child in children { child.reportUnknownKeys() }
    }

    /// The value under `key`, which is now known.
    private func lookup(_ key: String) -> TOMLValueConvertible? {
        if !known.contains(key) { known.append(key) }
        return table[key]
    }

    /// The value under `key` converted; one `convert` refuses is a problem "KEY must be WHAT".
    private func value<T>(_ key: String, mustBe what: String, _ convert: (TOMLValueConvertible) -> T?) -> T? {
        guard let v = lookup(key) else { return nil }
        guard let t = convert(v) else {
            problem("\(key) must be \(what)")
            return nil
        }
        return t
    }
}
