import Foundation

/// The JSON `vireo-bench net --json` writes (see the benchmark contract),
/// decoded for the report. Every key is optional; unknown keys are ignored.
public struct ReportNetRecord: Sendable, Equatable, Decodable {
    public var tool: String?
    public var label: String?
    /// Ethernet frame length without the virtio-net header.
    public var frameBytes: Int?
    public var seconds: Double?
    public var txFrames: Double?
    public var rxFrames: Double?
    public var rxBytes: Double?
    /// Received frames per second.
    public var fps: Double?
    /// Received frame bits per second / 10^9.
    public var gbps: Double?
    /// Received frame bytes per second / 10^6.
    public var mbps: Double?
    /// Fraction of sent frames not received.
    public var loss: Double?
    public var cpuS: [String: Double]?
    public var cpuUsPerFrame: [String: Double]?
    /// The switch over the window (when the target's stats file was read).
    public var target: Switch?

    /// `target`: frames the switch dropped, frame bytes it copied.
    public struct Switch: Sendable, Equatable, Decodable {
        public var drops: Double?
        public var payloadBytesCopied: Double?
        enum CodingKeys: String, CodingKey {
            case drops
            case payloadBytesCopied = "payload_bytes_copied"
        }
    }

    enum CodingKeys: String, CodingKey {
        case tool, label, seconds, fps, gbps, mbps, loss, target
        case frameBytes = "frame_bytes"
        case txFrames = "tx_frames"
        case rxFrames = "rx_frames"
        case rxBytes = "rx_bytes"
        case cpuS = "cpu_s"
        case cpuUsPerFrame = "cpu_us_per_frame"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tool = try c.decodeIfPresent(String.self, forKey: .tool)
        label = try c.decodeIfPresent(String.self, forKey: .label)
        frameBytes = try c.decodeIfPresent(Int.self, forKey: .frameBytes)
        seconds = try c.decodeIfPresent(Double.self, forKey: .seconds)
        txFrames = try c.decodeIfPresent(Double.self, forKey: .txFrames)
        rxFrames = try c.decodeIfPresent(Double.self, forKey: .rxFrames)
        rxBytes = try c.decodeIfPresent(Double.self, forKey: .rxBytes)
        fps = try c.decodeIfPresent(Double.self, forKey: .fps)
        gbps = try c.decodeIfPresent(Double.self, forKey: .gbps)
        mbps = try c.decodeIfPresent(Double.self, forKey: .mbps)
        loss = try c.decodeIfPresent(Double.self, forKey: .loss)
        // The load generator writes a non-finite figure (0 frames) as null.
        cpuS = try c.decodeIfPresent([String: Double?].self, forKey: .cpuS)?.compactMapValues { $0 }
        cpuUsPerFrame = try c.decodeIfPresent([String: Double?].self, forKey: .cpuUsPerFrame)?.compactMapValues { $0 }
        target = try c.decodeIfPresent(Switch.self, forKey: .target)
    }

    /// Decodes one file.
    public static func parse(_ data: Data) throws(ReportJSONError) -> ReportNetRecord {
        try ReportJSONError.decode(ReportNetRecord.self, from: data)
    }

    /// Gbit/s: `gbps`, else derived from `mbps` or `rx_bytes / seconds`.
    public var gigabitsPerSecond: Double? {
        if let gbps { return gbps }
        return megabytesPerSecond.map { $0 * 8 / 1e3 }
    }

    /// MB/s (10^6 bytes): `mbps`, else derived from `gbps` or `rx_bytes`.
    public var megabytesPerSecond: Double? {
        if let mbps { return mbps }
        if let gbps { return gbps * 1e3 / 8 }
        guard let rxBytes, let seconds, seconds > 0 else { return nil }
        return rxBytes / seconds / 1e6
    }

    /// Frames per second: `fps`, else `rx_frames / seconds`.
    public var framesPerSecond: Double? {
        if let fps { return fps }
        guard let rxFrames, let seconds, seconds > 0 else { return nil }
        return rxFrames / seconds
    }
}
