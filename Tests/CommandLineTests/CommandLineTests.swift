import FewShot
import FewShotData
import Foundation
import TensorCore
import XCTest

final class CommandLineTests: XCTestCase {
    private var workspace: Workspace!

    override func setUpWithError() throws {
        workspace = try Workspace()
    }

    override func tearDownWithError() throws {
        workspace.remove()
    }

    private var smokeConfig: String { packageRoot().appendingPathComponent("Configs/smoke.json").path }

    private func assertFailure(_ result: ToolResult, status: Int32, mentions fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(result.status, status, "stderr: \(result.standardError)", file: file, line: line)
        let errorLines = result.standardError.split(separator: "\n").filter { $0.hasPrefix("error: ") }
        XCTAssertEqual(errorLines.count, 1, "one error line expected in: \(result.standardError)", file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(result.standardError.contains(fragment), "'\(result.standardError)' lacks '\(fragment)'", file: file, line: line)
        }
    }

    // MARK: Errors

    func testTrainWithoutConfigIsUsageError() throws {
        let result = try runTool(["train"], in: workspace.url)
        assertFailure(result, status: 64, mentions: ["needs --config <file> or --resume <run folder>"])
    }

    func testTrainWithMissingDataNamesWhereItLooked() throws {
        let missing = workspace.url.appendingPathComponent("no-such-folder").path
        let result = try runTool(["train", "--config", smokeConfig, "--data", missing], in: workspace.url)
        assertFailure(result, status: 1, mentions: ["CIFAR-100 binary data not found", missing, "FEWSHOT_DATA_DIR"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: workspace.url.appendingPathComponent("Runs").path),
                       "no run folder is created before the data is found")
    }

    func testTrainWithoutDataRootSaysDefault() throws {
        let config = try workspace.write(#"{"name": "plain"}"#, to: "plain.json")
        let result = try runTool(["train", "--config", config.path], in: workspace.url)
        assertFailure(result, status: 1, mentions: ["(from default data.root)", "config data.root (not set"])
    }

    func testTrainFetchReportsFailedDownload() throws {
        // Nothing listens on port 9 of 127.0.0.1, so the download fails at once.
        let target = workspace.url.appendingPathComponent("fetched").path
        let result = try runTool(["train", "--config", smokeConfig, "--data", target, "--fetch",
                                  "--fetch-url", "http://127.0.0.1:9/cifar-100-binary.tar.gz"], in: workspace.url)
        assertFailure(result, status: 1, mentions: ["download of http://127.0.0.1:9/cifar-100-binary.tar.gz failed"])
        XCTAssertTrue(result.standardError.contains("downloading http://127.0.0.1:9/cifar-100-binary.tar.gz to \(target)"), result.standardError)
        XCTAssertFalse(FileManager.default.fileExists(atPath: target), "a failed fetch leaves no data folder")
    }

    func testTrainWithUnknownConfigKeyNamesKey() throws {
        let config = try workspace.write(#"{"training": {"epoch": 3}}"#, to: "bad.json")
        let result = try runTool(["train", "--config", config.path, "--data", workspace.data.path], in: workspace.url)
        assertFailure(result, status: 1, mentions: ["unknown key 'training.epoch'", "epochs"])
    }

    func testTrainWithOutOfRangeValue() throws {
        let config = try workspace.write(#"{"head": {"kind": "svm"}}"#, to: "bad.json")
        let result = try runTool(["train", "--config", config.path, "--data", workspace.data.path], in: workspace.url)
        assertFailure(result, status: 1, mentions: ["'head.kind'", "l1-svm, prototypical, ridge"])
    }

    func testTrainWithMissingConfigFile() throws {
        let result = try runTool(["train", "--config", "absent.json", "--data", workspace.data.path], in: workspace.url)
        assertFailure(result, status: 1, mentions: ["cannot read config", "absent.json"])
    }

    func testInvalidShotsIsUsageError() throws {
        let result = try runTool(["eval", "--shots", "3"], in: workspace.url)
        assertFailure(result, status: 64, mentions: ["'--shots'", "allowed values: 1, 5"])
    }

    func testEvalWithoutRunsSaysHowToTrain() throws {
        let result = try runTool(["eval", "--shots", "1"], in: workspace.url)
        assertFailure(result, status: 1, mentions: ["no runs found", "fewshot train", "\(workspace.url.path)/Runs does not exist"])
    }

    func testCorruptCheckpointIsRejected() throws {
        let checkpoint = try workspace.write("not a checkpoint at all", to: "broken.safetensors")
        let inspect = try runTool(["inspect", checkpoint.path], in: workspace.url)
        assertFailure(inspect, status: 1, mentions: [checkpoint.path, "invalid safetensors header"])
        let eval = try runTool(["eval", "--checkpoint", checkpoint.path, "--data", workspace.data.path], in: workspace.url)
        assertFailure(eval, status: 1, mentions: [checkpoint.path, "invalid safetensors header"])
    }

    // MARK: A whole run

    func testTrainInspectEvalEndToEnd() throws {
        let train = try runTool(["train", "--config", smokeConfig, "--data", workspace.data.path, "--name", "smoke"], in: workspace.url)
        XCTAssertEqual(train.status, 0, train.standardError)
        XCTAssertTrue(train.standardOutput.contains("epoch 3/3 finished"), train.standardOutput)
        let run = workspace.url.appendingPathComponent("Runs/smoke")
        for file in ["config.json", "log.txt", "metrics.csv", "steps.csv", "last.safetensors", "best.safetensors", "curves.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent(file).path), "\(file) missing")
        }
        let metrics = try String(contentsOf: run.appendingPathComponent("metrics.csv"), encoding: .utf8)
        XCTAssertEqual(metrics.split(separator: "\n").count, 4, "header and one row per epoch")
        let steps = try String(contentsOf: run.appendingPathComponent("steps.csv"), encoding: .utf8)
        for row in steps.split(separator: "\n").dropFirst() {
            let loss = String(row.split(separator: ",")[2])
            XCTAssertNotNil(loss.range(of: #"^-?[0-9]+\.[0-9]{6}$"#, options: .regularExpression), "loss with 6 decimals, as in metrics.csv: \(loss)")
        }

        let inspect = try runTool(["inspect", run.appendingPathComponent("last.safetensors").path], in: workspace.url)
        XCTAssertEqual(inspect.status, 0, inspect.standardError)
        XCTAssertTrue(inspect.standardOutput.contains("verification: ok"), inspect.standardOutput)
        XCTAssertTrue(inspect.standardOutput.contains("layer1.0.conv1.weight"), inspect.standardOutput)
        XCTAssertTrue(inspect.standardOutput.contains("[4, 3, 3, 3]"), inspect.standardOutput)
        let counterLine = inspect.standardOutput.split(separator: "\n").first { $0.hasPrefix("layer4.0.bn3.num_batches_tracked ") }
        XCTAssertTrue(counterLine?.contains(" I64 ") == true, "\(counterLine ?? "no num_batches_tracked line")")
        XCTAssertTrue(inspect.standardOutput.contains("epoch: 3"), inspect.standardOutput)

        let inspectJSON = try runTool(["inspect", "--json", run.appendingPathComponent("best.safetensors").path], in: workspace.url)
        XCTAssertEqual(inspectJSON.status, 0, inspectJSON.standardError)
        let object = try JSONSerialization.jsonObject(with: Data(inspectJSON.standardOutput.utf8)) as? [String: Any]
        XCTAssertEqual(object?["verified"] as? Bool, true)
        XCTAssertNotNil((object?["metadata"] as? [String: Any])?["config"] as? [String: Any])

        let eval = try runTool(["eval", "--shots", "1", "--episodes", "6", "--way", "3", "--query", "2", "--data", workspace.data.path], in: workspace.url)
        XCTAssertEqual(eval.status, 0, eval.standardError)
        XCTAssertTrue(eval.standardOutput.contains("checkpoint: "), eval.standardOutput)
        XCTAssertTrue(eval.standardOutput.contains("Runs/smoke/best.safetensors (epoch "), eval.standardOutput)
        XCTAssertTrue(eval.standardOutput.contains("CIFAR-FS test, 3-way 1-shot, 2 queries per class, 6 episodes: accuracy"), eval.standardOutput)
        let evalJSON = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("eval-best-1shot.json"))) as? [String: Any]
        XCTAssertEqual(evalJSON?["episodes"] as? Int, 6)
        XCTAssertNotNil(evalJSON?["interval95_percent"] as? Double)

        // Too many shots and queries for 8 images a class name the options to lower.
        let tooMany = try runTool(["eval", "--shots", "5", "--query", "15", "--episodes", "1", "--way", "3", "--data", workspace.data.path], in: workspace.url)
        assertFailure(tooMany, status: 1, mentions: ["has 8 images, but --shots 5 + --query 15 need 20; lower --shots or --query"])

        // Testing last.safetensors writes its own file and leaves the best checkpoint's result alone.
        let evalLast = try runTool(["eval", "--checkpoint", run.appendingPathComponent("last.safetensors").path, "--shots", "1",
                                    "--episodes", "2", "--way", "3", "--query", "2", "--data", workspace.data.path], in: workspace.url)
        XCTAssertEqual(evalLast.status, 0, evalLast.standardError)
        XCTAssertTrue(evalLast.standardOutput.contains("wrote \(run.path)/eval-last-1shot.json"), evalLast.standardOutput)
        let bestAfter = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("eval-best-1shot.json"))) as? [String: Any]
        XCTAssertEqual(bestAfter?["episodes"] as? Int, 6)
        let lastJSON = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("eval-last-1shot.json"))) as? [String: Any]
        XCTAssertEqual(lastJSON?["episodes"] as? Int, 2)

        // embed writes one embedding per image: D = 8 channels x 2 x 2 for the smoke widths.
        let images = workspace.url.appendingPathComponent("images.safetensors")
        let embeddings = workspace.url.appendingPathComponent("embeddings.safetensors")
        try SafetensorsFile(tensors: ["images": SafetensorsTensor(Tensor(shape: [3, 3, 32, 32], repeating: 0.5))]).write(to: images)
        let embed = try runTool(["embed", "--checkpoint", run.appendingPathComponent("last.safetensors").path,
                                 "--images", images.path, "--output", embeddings.path], in: workspace.url)
        XCTAssertEqual(embed.status, 0, embed.standardError)
        XCTAssertEqual(try SafetensorsFile.read(from: embeddings).tensors["embeddings"]?.shape, [3, 32])

        // inspect accepts embed's output as a plain safetensors file and lists its tensor.
        let inspectEmbeddings = try runTool(["inspect", embeddings.path], in: workspace.url)
        XCTAssertEqual(inspectEmbeddings.status, 0, inspectEmbeddings.standardOutput)
        XCTAssertTrue(inspectEmbeddings.standardOutput.contains("not a training checkpoint: no config metadata"), inspectEmbeddings.standardOutput)
        XCTAssertTrue(inspectEmbeddings.standardOutput.contains("embeddings  F32"), inspectEmbeddings.standardOutput)

        // A truncated copy of the checkpoint is named as truncated by both commands.
        let bytes = try Data(contentsOf: run.appendingPathComponent("last.safetensors"))
        let truncated = workspace.url.appendingPathComponent("truncated.safetensors")
        try bytes.prefix(bytes.count / 2).write(to: truncated)
        let inspectTruncated = try runTool(["inspect", truncated.path], in: workspace.url)
        assertFailure(inspectTruncated, status: 1, mentions: ["is truncated"])
        let evalTruncated = try runTool(["eval", "--checkpoint", truncated.path, "--data", workspace.data.path], in: workspace.url)
        assertFailure(evalTruncated, status: 1, mentions: ["is truncated"])

        // An existing run folder is not overwritten.
        let again = try runTool(["train", "--config", smokeConfig, "--data", workspace.data.path, "--name", "smoke"], in: workspace.url)
        assertFailure(again, status: 1, mentions: ["already exists", "--resume"])
    }

    func testResumeAfterKillRepeatsLossesExactly() throws {
        let config = try workspace.write("""
            {"name": "resume", "backbone": {"widths": [4, 4, 8, 8], "dropBlockRampSteps": 6},
             "training": {"way": 3, "shot": 2, "query": 2, "episodesPerStep": 2, "stepsPerEpoch": 4, "epochs": 5, "logEverySteps": 1},
             "optimizer": {"schedule": [{"fromEpoch": 1, "learningRate": 0.05}, {"fromEpoch": 4, "learningRate": 0.01}]},
             "validation": {"episodes": 2, "way": 3, "shot": 2, "query": 2}}
            """, to: "resume.json")
        let common = ["--data", workspace.data.path, "--threads", "2"]

        let whole = try runTool(["train", "--config", config.path, "--name", "whole"] + common, in: workspace.url)
        XCTAssertEqual(whole.status, 0, whole.standardError)

        // Kill the second run with SIGKILL once its first checkpoint exists and epoch 2 is under way.
        let (process, _, _) = try startTool(["train", "--config", config.path, "--name", "killed"] + common, in: workspace.url)
        let killedRun = workspace.url.appendingPathComponent("Runs/killed")
        let deadline = Date().addingTimeInterval(60)
        var killedWhileRunning = false
        while Date() < deadline {
            let steps = (try? String(contentsOf: killedRun.appendingPathComponent("steps.csv"), encoding: .utf8)) ?? ""
            if steps.split(separator: "\n").count >= 1 + 4 + 2 {
                killedWhileRunning = process.isRunning
                kill(process.processIdentifier, SIGKILL)
                break
            }
            usleep(2_000)
        }
        process.waitUntilExit()
        XCTAssertTrue(killedWhileRunning, "the run finished before it could be killed")
        XCTAssertEqual(process.terminationReason, .uncaughtSignal)

        let resumed = try runTool(["train", "--resume", killedRun.path, "--threads", "2", "--data", workspace.data.path], in: workspace.url)
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        XCTAssertTrue(resumed.standardOutput.contains("resuming killed after epoch"), resumed.standardOutput)

        func lossColumn(_ run: String) throws -> [String] {
            let text = try String(contentsOf: workspace.url.appendingPathComponent("Runs/\(run)/steps.csv"), encoding: .utf8)
            return text.split(separator: "\n").dropFirst().map { line in
                let fields = line.split(separator: ",", omittingEmptySubsequences: false)
                return fields[0] + "," + fields[2]
            }
        }
        let expected = try lossColumn("whole")
        XCTAssertEqual(expected.count, 20)
        XCTAssertEqual(try lossColumn("killed"), expected, "step losses after resume equal the uninterrupted run's, bit for bit")

        func validationColumn(_ run: String) throws -> [String] {
            let text = try String(contentsOf: workspace.url.appendingPathComponent("Runs/\(run)/metrics.csv"), encoding: .utf8)
            return text.split(separator: "\n").dropFirst().map { String($0.split(separator: ",")[5]) }
        }
        XCTAssertEqual(try validationColumn("killed"), try validationColumn("whole"))
    }

    func testPNGFolderDatasetTrainsAndEvaluates() throws {
        // Three classes per split, four 32 x 32 images each, in a different colour per class.
        let root = workspace.url.appendingPathComponent("png")
        for split in ["train", "val", "test"] {
            for classIndex in 0..<3 {
                let folder = root.appendingPathComponent("\(split)/class\(classIndex)")
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                for image in 0..<4 {
                    var pixels = [UInt8](repeating: 0, count: 3 * 32 * 32)
                    for index in pixels.indices { pixels[index] = UInt8((index / 1024 == classIndex ? 200 : 40) + image * 5) }
                    try PNG.write(RGBImage(height: 32, width: 32, pixels: pixels), to: folder.appendingPathComponent("\(image).png"))
                }
            }
        }
        let config = try workspace.write("""
            {"name": "png", "data": {"format": "png-folders", "root": "png"}, "backbone": {"widths": [4, 4, 8, 8]},
             "training": {"way": 3, "shot": 2, "query": 2, "episodesPerStep": 1, "stepsPerEpoch": 1, "epochs": 1},
             "validation": {"episodes": 1, "way": 3, "shot": 2, "query": 2}}
            """, to: "png.json")
        let train = try runTool(["train", "--config", config.path, "--name", "png"], in: workspace.url)
        XCTAssertEqual(train.status, 0, train.standardError)
        XCTAssertTrue(train.standardError.contains("data: PNG folders png, 3 training, 3 validation and 3 test classes"), train.standardError)
        let eval = try runTool(["eval", "--shots", "1", "--episodes", "2", "--way", "3", "--query", "3"], in: workspace.url)
        XCTAssertEqual(eval.status, 0, eval.standardError)
        XCTAssertTrue(eval.standardOutput.contains("PNG folders png test, 3-way 1-shot, 3 queries per class, 2 episodes: accuracy"), eval.standardOutput)

        let missing = try runTool(["train", "--config", config.path, "--name", "png2", "--data", "absent"], in: workspace.url)
        assertFailure(missing, status: 1, mentions: ["absent/train", "(from --data) does not exist"])
    }

    func testCustomSplitTrains() throws {
        let config = try workspace.write("""
            {"name": "custom", "data": {"dataset": "custom", "split": {"train": ["apple", 1, 9], "val": [3, 4, 5], "test": [6, 7, 8]}},
             "backbone": {"widths": [4, 4, 8, 8]},
             "training": {"way": 3, "shot": 2, "query": 2, "episodesPerStep": 1, "stepsPerEpoch": 1, "epochs": 1},
             "validation": {"episodes": 1, "way": 3, "shot": 2, "query": 2}}
            """, to: "custom.json")
        let train = try runTool(["train", "--config", config.path, "--data", workspace.data.path], in: workspace.url)
        XCTAssertEqual(train.status, 0, train.standardError)
        XCTAssertTrue(train.standardError.contains("data: custom CIFAR-100 split, 3 training, 3 validation and 3 test classes"), train.standardError)

        let overlapping = try workspace.write(#"{"data": {"dataset": "custom", "split": {"train": ["apple"], "val": [0], "test": [6]}}}"#, to: "overlap.json")
        let rejected = try runTool(["train", "--config", overlapping.path, "--data", workspace.data.path], in: workspace.url)
        assertFailure(rejected, status: 1, mentions: ["'apple'", "appears in 'train' and again in 'val'"])
    }

    func testTooSmallSplitsAreRejectedBeforeRunFolder() throws {
        // Validation classes of 12 images cannot give 5 support + 15 query images each.
        let root = workspace.url.appendingPathComponent("png")
        for (split, count) in [("train", 4), ("val", 12), ("test", 4)] {
            for classIndex in 0..<3 {
                let folder = root.appendingPathComponent("\(split)/\(split)\(classIndex)")
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                for image in 0..<count {
                    let pixels = [UInt8](repeating: UInt8(40 * classIndex + image), count: 3 * 32 * 32)
                    try PNG.write(RGBImage(height: 32, width: 32, pixels: pixels), to: folder.appendingPathComponent("\(image).png"))
                }
            }
        }
        let png = try workspace.write("""
            {"name": "png", "data": {"format": "png-folders", "root": "png"}, "backbone": {"widths": [4, 4, 8, 8]},
             "training": {"way": 3, "shot": 2, "query": 2, "episodesPerStep": 1, "stepsPerEpoch": 1, "epochs": 1},
             "validation": {"episodes": 1, "way": 3, "shot": 5, "query": 15}}
            """, to: "png.json")
        let small = try runTool(["train", "--config", png.path], in: workspace.url)
        assertFailure(small, status: 1, mentions: [
            "validation split: class 'val0' has 12 images, but validation.shot 5 + validation.query 15 need 20; lower validation.shot or validation.query, or add images"])

        let custom = try workspace.write("""
            {"name": "custom", "data": {"dataset": "custom", "split": {"train": [0, 1, 2, 9], "val": [3, 4, 5], "test": [6, 7, 8]}},
             "training": {"way": 5}}
            """, to: "custom.json")
        let few = try runTool(["train", "--config", custom.path, "--data", workspace.data.path], in: workspace.url)
        assertFailure(few, status: 1, mentions: ["train split has 4 classes, but training.way 5 needs at least 5", "lower training.way"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: workspace.url.appendingPathComponent("Runs").path),
                       "no run folder is created for a split that is too small")
    }

    func testResumeRejectsMismatchedCheckpoint() throws {
        let train = try runTool(["train", "--config", smokeConfig, "--data", workspace.data.path, "--name", "smoke"], in: workspace.url)
        XCTAssertEqual(train.status, 0, train.standardError)
        let run = workspace.url.appendingPathComponent("Runs/smoke")
        let configURL = run.appendingPathComponent("config.json")
        let text = try String(contentsOf: configURL, encoding: .utf8)
        let widened = text.replacingOccurrences(of: "\"widths\" : [\n      4,\n      4,\n      8,\n      8\n    ]",
                                                with: "\"widths\" : [4, 4, 8, 16]")
        XCTAssertNotEqual(widened, text, "the test edits the widths")
        try Data(widened.utf8).write(to: configURL)
        let resumed = try runTool(["train", "--resume", run.path, "--data", workspace.data.path], in: workspace.url)
        assertFailure(resumed, status: 1, mentions: ["last.safetensors", "layer4.0", "expected"])
    }
}
