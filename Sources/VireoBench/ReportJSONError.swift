import Foundation

/// Why a `vireo-bench blk`/`net` JSON file could not be used.
public enum ReportJSONError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Empty file (the run died before writing).
    case empty
    /// Not JSON, or JSON of the wrong shape (cut short, wrong types).
    case malformed(String)

    static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws(ReportJSONError) -> T {
        guard data.contains(where: { !($0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09) }) else {
            throw .empty
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw .malformed(brief(error))
        }
    }

    public var description: String {
        switch self {
        case .empty: "empty file"
        case .malformed(let why): "malformed JSON: \(why)"
        }
    }

    /// A one-line reason for a decoding failure: what and where.
    static func brief(_ error: any Error) -> String {
        guard let decoding = error as? DecodingError else { return String(describing: error) }
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return keys.isEmpty ? "" : " at \(keys)"
        }
        switch decoding {
        case .dataCorrupted(let context): return "not valid JSON\(path(context))"
        case .keyNotFound(let key, let context): return "missing key \(key.stringValue)\(path(context))"
        case .typeMismatch(let type, let context): return "expected \(type)\(path(context))"
        case .valueNotFound(let type, let context): return "null where \(type) expected\(path(context))"
        @unknown default: return String(describing: decoding)
        }
    }
}
