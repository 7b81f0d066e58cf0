import Foundation
import XCTest

/// Run folders across commands: resuming, choosing a run for eval, interruption.
final class RunFolderTests: XCTestCase {
    private var workspace: Workspace!

    override func setUpWithError() throws {
        workspace = try Workspace()
    }

    override func tearDownWithError() throws {
        workspace.remove()
    }

    /// Writes a config for a run of `epochs` epochs of `steps` steps on a 4-4-8-8 backbone.
    private func writeTinyConfig(epochs: Int = 1, steps: Int = 1, test: String = "") throws -> URL {
        try workspace.write("""
            {"name": "tiny", "backbone": {"widths": [4, 4, 8, 8]},
             "training": {"way": 3, "shot": 2, "query": 2, "episodesPerStep": 1, "stepsPerEpoch": \(steps), "epochs": \(epochs), "logEverySteps": 1},
             "validation": {"episodes": 1, "way": 3, "shot": 2, "query": 2}\(test)}
            """, to: "tiny.json")
    }

    private func readText(_ url: URL) -> String {
        (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    }

    func testResumeUsesDataFolderOfRun() throws {
        let config = try writeTinyConfig()
        let train = try runTool(["train", "--config", config.path, "--data", workspace.data.path, "--name", "first"], in: workspace.url)
        XCTAssertEqual(train.status, 0, train.standardError)
        XCTAssertTrue(train.standardOutput.contains("1 epoch of 1 step, 1 episode of 3-way"), train.standardOutput)
        let run = workspace.url.appendingPathComponent("Runs/first")

        let stored = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("config.json"))) as? [String: Any]
        XCTAssertEqual((stored?["data"] as? [String: Any])?["root"] as? String, workspace.data.standardizedFileURL.path)

        let resumed = try runTool(["train", "--resume", run.path], in: workspace.url)
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        XCTAssertTrue(resumed.standardOutput.contains("the run already finished its 1 epoch"), resumed.standardOutput)
    }

    func testRunStoppedInFirstEpochIsRecoverable() throws {
        let config = try writeTinyConfig()
        let train = try runTool(["train", "--config", config.path, "--data", workspace.data.path, "--name", "done"], in: workspace.url)
        XCTAssertEqual(train.status, 0, train.standardError)

        // A newer run stopped before its first checkpoint: config, CSV headers and one step row.
        let runs = workspace.url.appendingPathComponent("Runs")
        let early = runs.appendingPathComponent("early")
        try FileManager.default.createDirectory(at: early, withIntermediateDirectories: true)
        try Data(contentsOf: runs.appendingPathComponent("done/config.json")).write(to: early.appendingPathComponent("config.json"))
        let stepsHeader = "step,epoch,loss,accuracy_percent,learning_rate,lp_max_residual"
        try Data((stepsHeader + "\n1,1,9.5,10,0.1,\n").utf8).write(to: early.appendingPathComponent("steps.csv"))
        let metricsHeader = readText(runs.appendingPathComponent("done/metrics.csv")).split(separator: "\n")[0]
        try Data((metricsHeader + "\n").utf8).write(to: early.appendingPathComponent("metrics.csv"))

        let eval = try runTool(["eval", "--episodes", "1", "--way", "3", "--query", "2"], in: workspace.url)
        XCTAssertEqual(eval.status, 0, eval.standardError)
        XCTAssertTrue(eval.standardOutput.contains("Runs/done/best.safetensors (epoch 1"), eval.standardOutput)
        XCTAssertTrue(eval.standardError.contains("using \(runs.path)/done/best.safetensors, the best checkpoint of the most recent run that has one"),
                      eval.standardError)

        let resumed = try runTool(["train", "--resume", early.path], in: workspace.url)
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        XCTAssertTrue(resumed.standardOutput.contains("restarting early from step 0"), resumed.standardOutput)
        XCTAssertTrue(readText(early.appendingPathComponent("log.txt")).contains("restarting early from step 0"))
        let stepRows = readText(early.appendingPathComponent("steps.csv")).split(separator: "\n").dropFirst()
        XCTAssertEqual(stepRows.count, 1, "the stale step row is replaced")
        XCTAssertFalse(stepRows.first?.hasPrefix("1,1,9.5,") ?? true)
        XCTAssertTrue(FileManager.default.fileExists(atPath: early.appendingPathComponent("best.safetensors").path))
    }

    func testEvalWithOnlyUnfinishedRunsSuggestsResume() throws {
        let early = workspace.url.appendingPathComponent("Runs/early")
        try FileManager.default.createDirectory(at: early, withIntermediateDirectories: true)
        _ = try workspace.write("{}", to: "Runs/early/config.json")
        let eval = try runTool(["eval"], in: workspace.url)
        XCTAssertEqual(eval.status, 1, eval.standardError)
        XCTAssertTrue(eval.standardError.contains("no run in \(workspace.url.path)/Runs has a best checkpoint yet"), eval.standardError)
        XCTAssertTrue(eval.standardError.contains("'fewshot train --resume \(early.path)'"), eval.standardError)
        XCTAssertTrue(eval.standardError.contains("--checkpoint <file>"), eval.standardError)
    }

    func testSignalStopsTrainingWithResumeHint() throws {
        let config = try writeTinyConfig(epochs: 3, steps: 4)
        let common = ["--data", workspace.data.path, "--threads", "2"]
        let whole = try runTool(["train", "--config", config.path, "--name", "whole"] + common, in: workspace.url)
        XCTAssertEqual(whole.status, 0, whole.standardError)

        for (signalNumber, status, name) in [(SIGINT, Int32(130), "interrupted"), (SIGTERM, Int32(143), "terminated")] {
            let (process, _, errorURL) = try startTool(["train", "--config", config.path, "--name", name] + common, in: workspace.url)
            let run = workspace.url.appendingPathComponent("Runs/\(name)")

            // Signal once epoch 1 is checkpointed and epoch 2 is under way.
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline, process.isRunning {
                if readText(run.appendingPathComponent("steps.csv")).split(separator: "\n").count >= 1 + 4 + 1 {
                    kill(process.processIdentifier, signalNumber)
                    break
                }
                usleep(2_000)
            }
            process.waitUntilExit()

            let standardError = readText(errorURL)
            XCTAssertEqual(process.terminationReason, .exit, "signal \(signalNumber) ends the process with an exit status")
            XCTAssertEqual(process.terminationStatus, status, standardError)
            XCTAssertTrue(standardError.contains("interrupted at epoch 2, step "), standardError)
            XCTAssertTrue(standardError.contains("; resume with: fewshot train --resume \(run.path)\n"), standardError)
            XCTAssertTrue(readText(run.appendingPathComponent("log.txt")).contains("interrupted at epoch 2, step "))
        }

        // Resuming continues after the interrupted step and repeats the uninterrupted run exactly.
        let run = workspace.url.appendingPathComponent("Runs/interrupted")
        let resumed = try runTool(["train", "--resume", run.path, "--threads", "2"], in: workspace.url)
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        XCTAssertTrue(resumed.standardOutput.contains("resuming interrupted at step "), resumed.standardOutput)
        XCTAssertTrue(resumed.standardOutput.contains(", inside epoch 2, from "), resumed.standardOutput)

        func stepLosses(_ name: String) -> [String] {
            readText(workspace.url.appendingPathComponent("Runs/\(name)/steps.csv")).split(separator: "\n").dropFirst().map { line in
                let fields = line.split(separator: ",", omittingEmptySubsequences: false)
                return fields[0] + "," + fields[2]
            }
        }
        XCTAssertEqual(stepLosses("whole").count, 12)
        XCTAssertEqual(stepLosses("interrupted"), stepLosses("whole"), "step losses after resume equal the uninterrupted run's")

        func epochColumns(_ name: String) -> [String] {
            readText(workspace.url.appendingPathComponent("Runs/\(name)/metrics.csv")).split(separator: "\n").dropFirst().map { line in
                line.split(separator: ",", omittingEmptySubsequences: false)[0...7].joined(separator: ",")
            }
        }
        XCTAssertEqual(epochColumns("interrupted"), epochColumns("whole"), "losses, accuracies and residuals per epoch")
    }

    func testSecondSignalSaysWhyItStops() throws {
        let config = try writeTinyConfig(epochs: 1, steps: 400)
        let (process, _, errorURL) = try startTool(
            ["train", "--config", config.path, "--name", "twice", "--data", workspace.data.path, "--threads", "2"], in: workspace.url)
        let run = workspace.url.appendingPathComponent("Runs/twice")

        // Two different signals back to back: the second arrives while the first waits for its step to end.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, process.isRunning {
            if readText(run.appendingPathComponent("steps.csv")).split(separator: "\n").count >= 3 {
                kill(process.processIdentifier, SIGINT)
                kill(process.processIdentifier, SIGTERM)
                break
            }
            usleep(2_000)
        }
        process.waitUntilExit()

        let standardError = readText(errorURL)
        XCTAssertEqual(process.terminationReason, .uncaughtSignal, standardError)
        XCTAssertTrue(standardError.contains(" received: stopping at once without saving the current epoch; resume from the last checkpoint with: fewshot train --resume \(run.path)"),
                      standardError)
        XCTAssertTrue(readText(run.appendingPathComponent("log.txt")).contains("received: stopping at once"))
    }

    func testResumeOfMissingFolderSaysSo() throws {
        let missing = try runTool(["train", "--resume", "Runs/nonexist"], in: workspace.url)
        XCTAssertEqual(missing.status, 1, missing.standardError)
        XCTAssertTrue(missing.standardError.contains("/Runs/nonexist does not exist"), missing.standardError)

        let empty = workspace.url.appendingPathComponent("Runs/empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let notRun = try runTool(["train", "--resume", "Runs/empty"], in: workspace.url)
        XCTAssertEqual(notRun.status, 1, notRun.standardError)
        XCTAssertTrue(notRun.standardError.contains("/Runs/empty is not a run folder (it has no config.json)"), notRun.standardError)
    }

    func testEvalDefaultsComeFromTestSection() throws {
        let config = try writeTinyConfig(test: #", "test": {"episodes": 3, "way": 4, "shot": 2, "query": 3}"#)
        let train = try runTool(["train", "--config", config.path, "--data", workspace.data.path], in: workspace.url)
        XCTAssertEqual(train.status, 0, train.standardError)

        let eval = try runTool(["eval"], in: workspace.url)
        XCTAssertEqual(eval.status, 0, eval.standardError)
        XCTAssertTrue(eval.standardOutput.contains("CIFAR-FS test, 4-way 1-shot, 3 queries per class, 3 episodes: accuracy"), eval.standardOutput)

        let overridden = try runTool(["eval", "--episodes", "2", "--way", "3", "--query", "2"], in: workspace.url)
        XCTAssertEqual(overridden.status, 0, overridden.standardError)
        XCTAssertTrue(overridden.standardOutput.contains("CIFAR-FS test, 3-way 1-shot, 2 queries per class, 2 episodes: accuracy"),
                      overridden.standardOutput)

        let runs = try FileManager.default.contentsOfDirectory(atPath: workspace.url.appendingPathComponent("Runs").path)
        XCTAssertEqual(runs.count, 1)
        let written = readText(workspace.url.appendingPathComponent("Runs/\(runs.first ?? "")/eval-best-1shot.json"))
        XCTAssertTrue(written.contains("\"checkpoint\" : \"\(workspace.url.path)/Runs/"), written)
        XCTAssertFalse(written.contains("\\/"), "slashes are not escaped: \(written)")
        XCTAssertTrue(written.hasSuffix("}\n"), "the file ends with a newline")
        for key in ["accuracy_percent", "interval95_percent"] {
            let value = written.range(of: "\"\(key)\" : [0-9.]+", options: .regularExpression).map { String(written[$0]) } ?? ""
            let decimals = value.split(separator: ".").dropFirst().first?.count ?? 0
            XCTAssertFalse(value.isEmpty, "\(key) is missing from \(written)")
            XCTAssertLessThanOrEqual(decimals, 4, "\(key) has at most 4 decimals: \(value)")
        }

        let help = try runTool(["eval", "--help"], in: workspace.url)
        XCTAssertTrue(help.standardOutput.contains("(default: the checkpoint config's test.episodes)"), help.standardOutput)
    }

    func testInspectReportsDamageTheSameWay() throws {
        let config = try writeTinyConfig()
        let train = try runTool(["train", "--config", config.path, "--data", workspace.data.path, "--name", "damaged"], in: workspace.url)
        XCTAssertEqual(train.status, 0, train.standardError)
        let bytes = try Data(contentsOf: workspace.url.appendingPathComponent("Runs/damaged/last.safetensors"))

        let truncated = workspace.url.appendingPathComponent("truncated.safetensors")
        try bytes.prefix(bytes.count / 2).write(to: truncated)
        var flipped = bytes
        flipped[flipped.count - 1] ^= 0xFF
        let corrupted = workspace.url.appendingPathComponent("corrupted.safetensors")
        try flipped.write(to: corrupted)

        for (file, reason) in [(truncated, "is truncated"), (corrupted, "does not match the checksum")] {
            let json = try runTool(["inspect", "--json", file.path], in: workspace.url)
            XCTAssertEqual(json.status, 1, json.standardError)
            let object = try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any]
            XCTAssertEqual(object?["verified"] as? Bool, false, json.standardOutput)
            XCTAssertTrue((object?["verification_error"] as? String)?.contains(reason) == true, json.standardOutput)
            XCTAssertEqual(object?["path"] as? String, file.path)
            XCTAssertFalse(json.standardOutput.contains("\\/"), "slashes are not escaped: \(json.standardOutput)")

            let text = try runTool(["inspect", file.path], in: workspace.url)
            XCTAssertEqual(text.status, 1, text.standardError)
            let lines = text.standardOutput.split(separator: "\n")
            XCTAssertEqual(lines.first.map(String.init), "checkpoint: \(file.path)")
            XCTAssertGreaterThan(lines.count, 1, text.standardOutput)
            let verification = lines.count > 1 ? String(lines[1]) : ""
            XCTAssertTrue(verification.hasPrefix("verification: FAILED: "), text.standardOutput)
            XCTAssertTrue(verification.contains(reason), text.standardOutput)
            XCTAssertTrue(text.standardError.contains(reason), text.standardError)
        }
    }
}
