import Foundation

/// One option or flag of a command, as it appears in `--help`.
struct OptionSpec {
    /// The long name without dashes, for example `config`.
    let name: String
    /// The placeholder shown in help (`<file>`), or nil for a flag that takes no value.
    let valueName: String?
    /// What the option sets, with its unit.
    let help: String
    /// The default shown in help, if any.
    var defaultValue: String? = nil
    /// The accepted values, when the option is a choice.
    var allowedValues: [String]? = nil

    static func flag(_ name: String, help: String) -> OptionSpec {
        OptionSpec(name: name, valueName: nil, help: help)
    }
}

/// A command-line usage error: printed as one line on stderr, exit code 64.
struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// A failure while running a command: printed as one line on stderr, exit code 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// A finished command whose result misses a stated condition: its output is
/// printed, then `warning: ` and the message go to stderr and the process exits
/// with `status`.
struct CommandWarning: Error, CustomStringConvertible {
    let status: Int32
    let description: String
}

/// Parsed options, flags and positional arguments of one command.
struct ParsedArguments {
    let commandPath: String
    private(set) var values: [String: String] = [:]
    private(set) var flags: Set<String> = []
    private(set) var positionals: [String] = []

    /// Parses `arguments` against `specs`, rejecting unknown options and
    /// missing values. `--name=value` and `--name value` are both accepted.
    init(_ arguments: [String], specs: [OptionSpec], commandPath: String) throws {
        self.commandPath = commandPath
        let byName = Dictionary(uniqueKeysWithValues: specs.map { ($0.name, $0) })
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--"), argument.count > 2 else {
                positionals.append(argument)
                continue
            }
            var name = String(argument.dropFirst(2))
            var inlineValue: String? = nil
            if let equals = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard let spec = byName[name] else {
                throw UsageError("unknown option '--\(name)' for '\(commandPath)'; run '\(commandPath) --help' for the options")
            }
            if spec.valueName == nil {
                if inlineValue != nil {
                    throw UsageError("flag '--\(name)' takes no value")
                }
                flags.insert(name)
                continue
            }
            let value: String
            if let inlineValue {
                value = inlineValue
            } else {
                guard index < arguments.count else {
                    throw UsageError("missing value for '--\(name) \(spec.valueName!)'")
                }
                value = arguments[index]
                index += 1
            }
            if let allowed = spec.allowedValues, !allowed.contains(value) {
                throw UsageError("invalid value '\(value)' for '--\(name)'; allowed values: \(allowed.joined(separator: ", "))")
            }
            values[name] = value
        }
    }

    func flag(_ name: String) -> Bool { flags.contains(name) }

    func string(_ name: String) -> String? { values[name] }

    func int(_ name: String, range: ClosedRange<Int>? = nil) throws -> Int? {
        guard let text = values[name] else { return nil }
        guard let value = Int(text) else {
            throw UsageError("invalid value '\(text)' for '--\(name)': expected an integer")
        }
        if let range, !range.contains(value) {
            let expected = range.upperBound == Int.max
                ? "an integer >= \(range.lowerBound)" : "an integer from \(range.lowerBound) to \(range.upperBound)"
            throw UsageError("invalid value \(value) for '--\(name)': expected \(expected)")
        }
        return value
    }

    /// Parses a thread count, where 0 or no value means every processor, as
    /// `train --threads` does.
    func threadCount(_ name: String = "threads") throws -> Int {
        let value = try int(name, range: 0...256) ?? 0
        return value > 0 ? value : ProcessInfo.processInfo.activeProcessorCount
    }

    func double(_ name: String) throws -> Double? {
        guard let text = values[name] else { return nil }
        guard let value = Double(text), value.isFinite else {
            throw UsageError("invalid value '\(text)' for '--\(name)': expected a finite number")
        }
        return value
    }

    /// Parses a comma-separated list of integers, such as `--iterations 5,10,20`.
    func intList(_ name: String) throws -> [Int]? {
        guard let text = values[name] else { return nil }
        let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let numbers = parts.compactMap { Int($0) }
        guard !parts.isEmpty, numbers.count == parts.count else {
            throw UsageError("invalid value '\(text)' for '--\(name)': expected comma-separated integers")
        }
        return numbers
    }

    /// The single positional argument, or a usage error naming what is expected.
    func requirePositional(_ placeholder: String) throws -> String {
        guard positionals.count == 1 else {
            throw UsageError("'\(commandPath)' expects one argument \(placeholder), got \(positionals.count)")
        }
        return positionals[0]
    }

    func rejectPositionals() throws {
        if let first = positionals.first {
            throw UsageError("unexpected argument '\(first)' for '\(commandPath)'")
        }
    }
}

/// The default shown for a `--threads` option that `ParsedArguments.threadCount` reads.
let everyProcessorDefault = "every processor"

/// A command of the tool: a leaf that runs, or a group of subcommands.
protocol Command {
    static var name: String { get }
    /// One line for the parent's command list.
    static var abstract: String { get }
    /// Extra help text after the options (examples, formats).
    static var discussion: String { get }
    static var options: [OptionSpec] { get }
    static var subcommands: [Command.Type] { get }
    static func run(_ arguments: ParsedArguments) throws
}

extension Command {
    static var discussion: String { "" }
    static var options: [OptionSpec] { [] }
    static var subcommands: [Command.Type] { [] }
    static func run(_ arguments: ParsedArguments) throws {
        throw UsageError("'\(arguments.commandPath)' needs a subcommand: \(subcommands.map { $0.name }.joined(separator: ", "))")
    }

    /// Returns the help page. Subcommands and options share one description
    /// column; a name too long for it gets a line of its own.
    static func helpText(commandPath: String, showsVersion: Bool = false) -> String {
        let nameWidth = 26
        func entry(_ name: String, _ help: String) -> String {
            let padded = name.count < nameWidth
                ? name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                : name + "\n" + String(repeating: " ", count: nameWidth + 2)
            return "  " + padded + help
        }

        var lines = ["OVERVIEW: \(abstract)", ""]
        if subcommands.isEmpty {
            lines.append("USAGE: \(commandPath)\(options.isEmpty ? "" : " [options]")")
        } else {
            lines.append("USAGE: \(commandPath) <subcommand>")
            lines.append("")
            lines.append("SUBCOMMANDS:")
            for command in subcommands {
                lines.append(entry(command.name, command.abstract))
            }
        }
        lines.append("")
        lines.append("OPTIONS:")
        for option in options {
            var left = "--\(option.name)"
            if let valueName = option.valueName { left += " \(valueName)" }
            var help = option.help
            if let allowed = option.allowedValues { help += " (values: \(allowed.joined(separator: ", ")))" }
            if let defaultValue = option.defaultValue { help += " (default: \(defaultValue))" }
            lines.append(entry(left, help))
        }
        if showsVersion {
            lines.append(entry("--version", "Print the version and exit."))
        }
        lines.append(entry("--help", "Show this help."))
        if !discussion.isEmpty {
            lines.append("")
            lines.append(discussion)
        }
        return lines.joined(separator: "\n")
    }
}

/// Finds the command named by the leading arguments, handles `--help`, parses
/// the options and runs it. Returns the process exit code.
///
/// A group given no subcommand prints its help on stderr and returns 64;
/// `--help` prints it on stdout and returns 0. At the top level, `--version`
/// prints `toolName` and `version`.
func dispatch(_ root: Command.Type, arguments: [String], toolName: String, version: String) -> Int32 {
    var command = root
    var path = toolName
    var rest = arguments
    while let next = rest.first, !next.hasPrefix("-"),
          let sub = command.subcommands.first(where: { $0.name == next }) {
        command = sub
        path += " " + next
        rest.removeFirst()
    }
    let isRoot = command == root
    if rest.contains("--help") || rest.contains("-h") {
        print(command.helpText(commandPath: path, showsVersion: isRoot))
        return 0
    }
    if isRoot && rest.first == "--version" {
        print("\(toolName) \(version)")
        return 0
    }
    if rest.isEmpty && !command.subcommands.isEmpty {
        FileHandle.standardError.write(Data((command.helpText(commandPath: path, showsVersion: isRoot) + "\n\n").utf8))
        printError("'\(path)' needs a subcommand: \(command.subcommands.map { $0.name }.joined(separator: ", "))")
        return 64
    }
    if !command.subcommands.isEmpty, let unknown = rest.first {
        printError("unknown subcommand '\(unknown)' for '\(path)'; available: \(command.subcommands.map { $0.name }.joined(separator: ", "))")
        return 64
    }
    do {
        let parsed = try ParsedArguments(rest, specs: command.options, commandPath: path)
        try command.run(parsed)
        return 0
    } catch let error as UsageError {
        printError(error.description)
        return 64
    } catch let warning as CommandWarning {
        printDiagnostic("warning: \(warning.description)")
        return warning.status
    } catch {
        printError("\(error)")
        return 1
    }
}

/// Fixed-width columns for a table printed row by row, so that each header
/// title lines up with its values: the first column is left-aligned, the
/// others right-aligned, and columns are two spaces apart.
struct TableLayout {
    let titles: [String]
    let widths: [Int]

    /// Makes columns at least as wide as their titles and `minimumWidths`.
    init(_ columns: [(title: String, minimumWidth: Int)]) {
        titles = columns.map(\.title)
        widths = columns.map { max($0.title.count, $0.minimumWidth) }
    }

    var header: String { row(titles) }

    /// Returns one line with `values` padded to the column widths; a longer value widens its cell.
    func row(_ values: [String]) -> String {
        var cells: [String] = []
        for (index, value) in values.enumerated() {
            let padding = String(repeating: " ", count: max(0, widths[index] - value.count))
            cells.append(index == 0 ? value + padding : padding + value)
        }
        return cells.joined(separator: "  ")
    }
}

/// Writes one line to stderr, prefixed with `error: `.
func printError(_ message: String) {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
}

/// Writes one diagnostic line to stderr.
func printDiagnostic(_ message: String) {
    FileHandle.standardError.write(Data("\(message)\n".utf8))
}

/// Returns the count with its noun, singular for 1 ("1 row", "3 rows").
func counted(_ count: Int, _ singular: String, plural: String? = nil) -> String {
    "\(count) \(count == 1 ? singular : plural ?? singular + "s")"
}
