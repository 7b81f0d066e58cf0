import Foundation
import XCTest

/// `fewshot lp solve`: exit status, warnings and messages for problem files.
final class LPSolveCommandTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("fewshot-lp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    private func writeProblem(_ text: String, name: String = "problem.json") throws -> String {
        let url = folder.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    private func solve(_ arguments: [String]) throws -> ToolResult {
        try runTool(["lp", "solve"] + arguments, in: folder)
    }

    func testInfeasibleProblemWarnsAndExits2() throws {
        let path = try writeProblem(#"{"A": [[1, 1]], "b": [-1], "c": [1, 1]}"#)
        let result = try solve(["--problem", path])
        XCTAssertEqual(result.status, 2, result.standardError)
        XCTAssertTrue(result.standardOutput.contains("x = ["), result.standardOutput)
        XCTAssertTrue(result.standardError.hasPrefix("warning: x does not meet the constraints"), result.standardError)
        XCTAssertTrue(result.standardError.contains("infeasible"), result.standardError)
        XCTAssertTrue(result.standardError.contains("iterations"), result.standardError)
    }

    func testInfeasibleProblemJSONMarksConstraints() throws {
        let path = try writeProblem(#"{"A": [[1, 1]], "b": [-1], "c": [1, 1]}"#)
        let result = try solve(["--problem", path, "--json"])
        XCTAssertEqual(result.status, 2, result.standardError)
        let object = try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any]
        XCTAssertEqual(object?["constraints_met"] as? Bool, false)
    }

    func testJSONKeysAreSnakeCase() throws {
        let path = try writeProblem(#"{"A": [[1, 1, 1]], "b": [1], "c": [0.5, 0.2, 0.9]}"#)
        let result = try solve(["--problem", path, "--json"])
        XCTAssertEqual(result.status, 0, result.standardError)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["x", "objective", "relative_residual", "clamped_count", "smallest_entry",
                                          "has_non_finite", "factorization_failed", "completed_iterations", "constraints_met"])
        XCTAssertEqual(object["completed_iterations"] as? Int, 10)
    }

    func testFeasibleProblemExitsZero() throws {
        let path = try writeProblem(#"{"A": [[1, 1, 1]], "b": [1], "c": [0.5, 0.2, 0.9]}"#)
        let result = try solve(["--problem", path])
        XCTAssertEqual(result.status, 0, result.standardError)
        XCTAssertEqual(result.standardError, "")
    }

    func testLooseResidualLimitAcceptsProblem() throws {
        let path = try writeProblem(#"{"A": [[1, 1]], "b": [-1], "c": [1, 1]}"#)
        let result = try solve(["--problem", path, "--max-residual", "2"])
        XCTAssertEqual(result.status, 0, result.standardError)
    }

    /// Checks a failed solve: exit status 1 and one error line that starts with the file.
    private func assertProblemFileError(_ result: ToolResult, path: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(result.status, 1, result.standardError, file: file, line: line)
        let lines = result.standardError.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, result.standardError, file: file, line: line)
        XCTAssertTrue(result.standardError.hasPrefix("error: problem file "), result.standardError, file: file, line: line)
        XCTAssertTrue(result.standardError.contains(path), result.standardError, file: file, line: line)
    }

    func testTruncatedJSONIsInvalidJSON() throws {
        let path = try writeProblem(#"{"A": [[1, 1]], "b": [1], "c": [1,"#)
        let result = try solve(["--problem", path])
        assertProblemFileError(result, path: path)
        XCTAssertTrue(result.standardError.contains("invalid JSON"), result.standardError)
        XCTAssertFalse(result.standardError.contains("not a JSON object"), result.standardError)
    }

    func testArrayTopLevelIsNotObject() throws {
        let path = try writeProblem("[1, 2]")
        let result = try solve(["--problem", path])
        assertProblemFileError(result, path: path)
        XCTAssertTrue(result.standardError.contains("is not a JSON object"), result.standardError)
    }

    func testMissingFileIsNotFound() throws {
        let path = folder.appendingPathComponent("absent.json").path
        let result = try solve(["--problem", path])
        assertProblemFileError(result, path: path)
        XCTAssertTrue(result.standardError.contains("problem file not found: \(path)"), result.standardError)
        XCTAssertFalse(result.standardError.contains("could not be completed"), result.standardError)
    }

    func testNegativeCostNamesNoProblemIndex() throws {
        let path = try writeProblem(#"{"A": [[1, 1]], "b": [1], "c": [1, -0.5]}"#)
        let result = try solve(["--problem", path])
        assertProblemFileError(result, path: path)
        XCTAssertTrue(result.standardError.contains("c[1] is -0.5"), result.standardError)
        XCTAssertFalse(result.standardError.contains("problem 0"), result.standardError)
        XCTAssertFalse(result.standardError.contains("matching builder"), result.standardError)
    }

    func testShapeErrorStartsWithFile() throws {
        let path = try writeProblem(#"{"A": [[1, 1]], "b": [1, 2], "c": [1, 1]}"#)
        let result = try solve(["--problem", path])
        assertProblemFileError(result, path: path)
        XCTAssertTrue(result.standardError.contains("b has 2 entries"), result.standardError)
    }

    func testShapeErrorsUseSingularNouns() throws {
        let extraEntry = try writeProblem(#"{"A": [[1]], "b": [1, 2], "c": [1]}"#)
        let rowResult = try solve(["--problem", extraEntry])
        assertProblemFileError(rowResult, path: extraEntry)
        XCTAssertTrue(rowResult.standardError.contains("b has 2 entries but A has 1 row"), rowResult.standardError)

        let missingEntry = try writeProblem(#"{"A": [[1]], "b": [1], "c": [1, 2]}"#, name: "columns.json")
        let columnResult = try solve(["--problem", missingEntry])
        assertProblemFileError(columnResult, path: missingEntry)
        XCTAssertTrue(columnResult.standardError.contains("c has 2 entries but A has 1 column"), columnResult.standardError)

        let shortRow = try writeProblem(#"{"A": [[1, 1], [1]], "b": [1, 1], "c": [1, 1]}"#, name: "rows.json")
        let shortResult = try solve(["--problem", shortRow])
        XCTAssertTrue(shortResult.standardError.contains("row A[1] has 1 entry, but A[0] has 2"), shortResult.standardError)
    }

    func testHelpDocumentsExitStatus() throws {
        let result = try solve(["--help"])
        XCTAssertEqual(result.status, 0)
        XCTAssertTrue(result.standardOutput.contains("Exit status: 0 when"), result.standardOutput)
        XCTAssertTrue(result.standardOutput.contains("2 when"), result.standardOutput)
    }
}
