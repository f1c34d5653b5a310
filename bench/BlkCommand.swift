import ArgumentParser

// Placeholder until the blk command lands (issue #6); replaced, not shipped.
struct BlkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "blk")
    func run() throws { throw ValidationError("blk: not built yet") }
}
