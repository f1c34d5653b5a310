import VireoDaemon
import TOMLKit

extension NicConfig {
    /// Parses one `--nic` value:
    /// `socket=PATH,target=HOST:PORT,network=NAME,mac=52:54:00:00:00:01[,queue-pairs=N][,queue-size=N][,port=NAME]`.
    public static func parse(nicOption text: String) throws(ConfigError) -> NicConfig {
        var problems: [String] = []
        var f = NicFields()
        let context = "--nic \(text)"
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            let kv = item.split(separator: "=", maxSplits: 1)
            let key = String(kv[0])
            let value = kv.count > 1 ? String(kv[1]) : nil
            func need() -> String? {
                if value == nil || value!.isEmpty {
                    problems.append("\(context): \(key) needs a value (\(key)=...)")
                    f.reported.insert(key)
                    return nil
                }
                return value
            }
            func int() -> Int? {
                guard let v = need() else { return nil }
                guard let n = Int(v) else {
                    problems.append("\(context): \(key) takes a number, not '\(v)'")
                    f.reported.insert(key)
                    return nil
                }
                return n
            }
            switch key {
            case "socket": f.socket = need()
            case "target": f.target = need()
            case "network": f.network = need()
            case "mac": f.mac = need()
            case "queue-pairs", "queue_pairs": f.queuePairs = int()
            case "queue-size", "queue_size": f.queueSize = int()
            case "port": f.port = need()
            default:
                problems.append("\(context): unknown key '\(key)' (known: socket, target, network, mac, queue-pairs, queue-size, port)")
            }
        }
        let cfg = f.validated(context: context, problems: &problems)
        guard problems.isEmpty, let cfg else { throw ConfigError(problems: problems) }
        return cfg
    }

    /// The NICs of one `[[nic]]` array (`socket`, `target`, `network`, `mac`,
    /// `queue_pairs`, `queue_size`, `port`); problems are appended, one line each.
    static func parse(tomlArray array: TOMLArray, source: String, problems: inout [String]) -> [NicConfig] {
        var out: [NicConfig] = []
        for (i, element) in array.enumerated() {
            let context = "\(source): nic #\(i + 1)"
            guard let t = element.table else { problems.append("\(context): not a table"); continue }
            var f = NicFields()
            for key in t.keys {
                let v = t[key]!
                func str() -> String? {
                    if let s = v.string { return s }
                    problems.append("\(context): \(key) must be a string"); f.reported.insert(key); return nil
                }
                func int() -> Int? {
                    if let n = v.int { return n }
                    problems.append("\(context): \(key) must be an integer"); f.reported.insert(key); return nil
                }
                switch key {
                case "socket": f.socket = str()
                case "target": f.target = str()
                case "network": f.network = str()
                case "mac": f.mac = str()
                case "queue_pairs": f.queuePairs = int()
                case "queue_size": f.queueSize = int()
                case "port": f.port = str()
                default:
                    problems.append("\(context): unknown key '\(key)' (known: socket, target, network, mac, queue_pairs, queue_size, port)")
                }
            }
            if let c = f.validated(context: context, problems: &problems) { out.append(c) }
        }
        return out
    }
}
