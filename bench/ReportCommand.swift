import ArgumentParser

// Placeholder until the report command lands (issue #6); replaced, not shipped.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "report")
    func run() throws { throw ValidationError("report: not built yet") }
}
