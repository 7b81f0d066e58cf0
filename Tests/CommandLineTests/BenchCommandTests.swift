import Foundation
import XCTest

/// `fewshot bench`: figures that depend on the options given.
final class BenchCommandTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("fewshot-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    /// Returns the number after `prefix` in `text`, such as the 12.5 of "prefix 12.5 GFLOP".
    private func number(after prefix: String, in text: String) -> Double? {
        guard let range = text.range(of: prefix) else { return nil }
        let rest = text[range.upperBound...].drop { $0 == " " }
        return Double(rest.prefix { $0.isNumber || $0 == "." || $0 == "e" || $0 == "-" })
    }

    func testBackboneFLOPsFollowWidths() throws {
        let result = try runTool(["bench", "backbone", "--widths", "4,4,8,8", "--repeats", "1", "--eval-repeats", "1",
                                  "--sgemm-size", "0", "--threads", "1"], in: folder)
        XCTAssertEqual(result.status, 0, result.standardError)
        // Convolution multiply-adds per block: three 3 x 3 and one 1 x 1 shortcut, at sides 32, 16, 8 and 4.
        let blocks: [(input: Int, width: Int, side: Int)] = [(3, 4, 32), (4, 4, 16), (4, 8, 8), (8, 8, 4)]
        var flops = 0.0
        for block in blocks {
            let multiplyAdds = 9 * block.input * block.width + 18 * block.width * block.width + block.input * block.width
            flops += 2 * Double(block.side * block.side) * Double(multiplyAdds)
        }
        let printed = try XCTUnwrap(number(after: "FLOP count:", in: result.standardOutput), result.standardOutput)
        XCTAssertEqual(printed, flops / 1e9, accuracy: flops / 1e9 * 1e-3)
        XCTAssertLessThan(printed, 0.01, "widths 4,4,8,8 are far below the default 1.046 GFLOP per image")
    }

    func testThreadDefaultsUseEveryProcessor() throws {
        let processors = ProcessInfo.processInfo.activeProcessorCount
        let runs: [(arguments: [String], expected: String)] = [
            (["bench", "sgemm", "--size", "32", "--repeats", "1"], "\(processors) threads"),
            (["bench", "lp", "--batches", "1", "--matching-batch", "0", "--repeats", "1"], "\(processors) worker threads"),
            (["bench", "backbone", "--widths", "2,2,2,2", "--repeats", "1", "--eval-repeats", "1", "--sgemm-size", "0"],
             "\(processors) OpenBLAS threads, \(processors) workers"),
            (["bench", "data", "--synthetic", "--episodes", "1", "--repeats", "1", "--step-ms", "0"], "\(processors) thread"),
            (["lp", "matching", "--problems", "2", "--iterations", "2"], "; \(processors) threads"),
        ]
        for run in runs {
            let result = try runTool(run.arguments, in: folder)
            XCTAssertEqual(result.status, 0, "\(run.arguments): \(result.standardError)")
            XCTAssertTrue(result.standardOutput.contains(run.expected), "\(run.arguments) lacks '\(run.expected)': \(result.standardOutput)")
        }
    }

    func testThreadHelpNamesDefault() throws {
        let result = try runTool(["bench", "sgemm", "--help"], in: folder)
        XCTAssertEqual(result.status, 0, result.standardError)
        XCTAssertTrue(result.standardOutput.contains("(default: every processor)"), result.standardOutput)
        XCTAssertFalse(result.standardOutput.contains("(default: 2)"), result.standardOutput)
    }

    /// Checks that in the table starting at the line that begins with `firstTitle`, each
    /// right-aligned title after the first ends in the same column as the value under it.
    private func assertColumnsAligned(_ output: String, firstTitle: String, titles: [String],
                                      file: StaticString = #filePath, line: UInt = #line) {
        let lines = output.split(separator: "\n").map(String.init)
        guard let headerIndex = lines.firstIndex(where: { $0.hasPrefix(firstTitle) }) else {
            return XCTFail("no table header in:\n\(output)", file: file, line: line)
        }
        let header = lines[headerIndex]
        let rows = lines[(headerIndex + 1)...]
        XCTAssertFalse(rows.isEmpty, output, file: file, line: line)
        for title in titles {
            guard let range = header.range(of: title) else {
                XCTFail("header lacks '\(title)': \(header)", file: file, line: line)
                continue
            }
            let end = header.distance(from: header.startIndex, to: range.upperBound)
            for row in rows {
                let characters = Array(row)
                let endsHere = end <= characters.count && characters[end - 1] != " " && (end == characters.count || characters[end] == " ")
                XCTAssertTrue(endsHere, "'\(title)' ends at column \(end), the value under it does not:\n\(header)\n\(row)", file: file, line: line)
            }
        }
    }

    func testMatchingColumnsAlignWithHeader() throws {
        let result = try runTool(["lp", "matching", "--problems", "3", "--iterations", "5,100"], in: folder)
        XCTAssertEqual(result.status, 0, result.standardError)
        assertColumnsAligned(result.standardOutput, firstTitle: "solver",
                             titles: ["K", "mean dist", "median dist", "mean gap", "rounded", "ms per batch"])
    }

    func testLPBenchColumnsAlignWithHeader() throws {
        let result = try runTool(["bench", "lp", "--batches", "8,80", "--matching-batch", "4", "--repeats", "1"], in: folder)
        XCTAssertEqual(result.status, 0, result.standardError)
        assertColumnsAligned(result.standardOutput, firstTitle: "problem",
                             titles: ["batch", "forward median ms", "forward min ms", "forward+backward median ms", "forward+backward min ms"])
    }

    func testDataBenchNamesEveryUnit() throws {
        let result = try runTool(["bench", "data", "--synthetic", "--episodes", "1", "--repeats", "2", "--step-ms", "0"], in: folder)
        XCTAssertEqual(result.status, 0, result.standardError)
        let batchLines = result.standardOutput.split(separator: "\n").filter { $0.hasPrefix("batch ") }
        XCTAssertEqual(batchLines.count, 2, result.standardOutput)
        for line in batchLines {
            XCTAssertTrue(line.contains("minimum "), String(line))
            XCTAssertTrue(line.contains("maximum "), String(line))
            XCTAssertFalse(line.contains(" min,"), String(line))
            XCTAssertEqual(line.components(separatedBy: " ms").count - 1, 3, "median, minimum and maximum each carry ms: \(line)")
        }
    }
}
