import ArgumentParser

// Placeholder until the net command lands (issue #6); replaced, not shipped.
struct NetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "net")
    func run() throws { throw ValidationError("net: not built yet") }
}
