import Foundation
import XCTest

/// Help pages, `--version` and the exit status of a command group run bare.
final class HelpTests: XCTestCase {
    private let folder = FileManager.default.temporaryDirectory

    func testBareToolPrintsHelpAndExits64() throws {
        let result = try runTool([], in: folder)
        XCTAssertEqual(result.status, 64)
        XCTAssertTrue(result.standardError.contains("SUBCOMMANDS:"), result.standardError)
        XCTAssertTrue(result.standardError.contains("error: 'fewshot' needs a subcommand"), result.standardError)
        XCTAssertEqual(result.standardOutput, "")
    }

    func testBareGroupExits64() throws {
        let result = try runTool(["lp"], in: folder)
        XCTAssertEqual(result.status, 64)
        XCTAssertTrue(result.standardError.contains("matching"), result.standardError)
    }

    func testHelpFlagExitsZero() throws {
        let result = try runTool(["--help"], in: folder)
        XCTAssertEqual(result.status, 0, result.standardError)
        XCTAssertTrue(result.standardOutput.contains("SUBCOMMANDS:"), result.standardOutput)
        XCTAssertTrue(result.standardOutput.contains("--version"), result.standardOutput)
    }

    func testTrainAndEvalHelpNameRequiredAndData() throws {
        func words(_ text: String) -> String { text.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
        let train = try runTool(["train", "--help"], in: folder)
        XCTAssertEqual(train.status, 0, train.standardError)
        XCTAssertTrue(words(train.standardOutput).contains("Either --config or --resume is required."), train.standardOutput)
        for command in ["train", "eval"] {
            let help = try runTool([command, "--help"], in: folder)
            XCTAssertTrue(words(help.standardOutput).contains("Data folder (CIFAR-100 binary, or the PNG root for data.format png-folders)"),
                          help.standardOutput)
        }
    }

    func testVersionPrintsVersion() throws {
        let result = try runTool(["--version"], in: folder)
        XCTAssertEqual(result.status, 0, result.standardError)
        let text = result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(text.hasPrefix("fewshot "), text)
        XCTAssertEqual(text.split(separator: " ").count, 2, text)
        XCTAssertEqual(text.split(separator: "\n").count, 1, text)
    }

    /// Returns the column where the description of a help entry line starts: after
    /// the first run of two or more spaces that follows the name. Nil when the line
    /// has no such run, as for a long name whose description is on the next line.
    private func descriptionColumn(_ line: Substring) -> Int? {
        let characters = Array(line)
        var index = 2
        while index + 1 < characters.count, !(characters[index] == " " && characters[index + 1] == " ") { index += 1 }
        guard index + 1 < characters.count else { return nil }
        while index < characters.count, characters[index] == " " { index += 1 }
        return index
    }

    func testHelpDescriptionsShareOneColumn() throws {
        for arguments in [["--help"], ["lp", "--help"], ["bench", "--help"], ["lp", "solve", "--help"]] {
            let result = try runTool(arguments, in: folder)
            XCTAssertEqual(result.status, 0, result.standardError)
            let entries = result.standardOutput.split(separator: "\n").filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") }
            XCTAssertTrue(entries.contains { $0.hasPrefix("  --help ") }, result.standardOutput)
            let columns = Set(entries.compactMap { descriptionColumn($0) })
            XCTAssertEqual(columns.count, 1, "\(arguments): description columns \(columns.sorted()) in:\n\(result.standardOutput)")
        }
    }

    func testRangeErrorsUsePlainWords() throws {
        let bounded = try runTool(["lp", "matching", "--problems", "0"], in: folder)
        XCTAssertEqual(bounded.status, 64)
        XCTAssertTrue(bounded.standardError.contains("expected an integer from 1 to 100000"), bounded.standardError)
        XCTAssertFalse(bounded.standardError.contains("..."), bounded.standardError)

        let unbounded = try runTool(["lp", "matching", "--seed", "-1"], in: folder)
        XCTAssertEqual(unbounded.status, 64)
        XCTAssertTrue(unbounded.standardError.contains("expected an integer >= 0"), unbounded.standardError)

        let iterations = try runTool(["lp", "matching", "--iterations", "0,5"], in: folder)
        XCTAssertEqual(iterations.status, 64)
        XCTAssertTrue(iterations.standardError.contains("expected counts from 1 to 100000"), iterations.standardError)
    }
}
