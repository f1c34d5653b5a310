/// Benchmarks for Vireo: vhost-user load generators that drive the
/// initiator's socket exactly as a VMM would, and the report that compares
/// them with perftest and kernel NVMe-oF measured in the same lab boot.
public enum VireoBench {}
