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
        let run = workspace.url.appendingPathComponent("Runs/first")

        let stored = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("config.json"))) as? [String: Any]
        XCTAssertEqual((stored?["data"] as? [String: Any])?["root"] as? String, workspace.data.standardizedFileURL.path)

        let resumed = try runTool(["train", "--resume", run.path], in: workspace.url)
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        XCTAssertTrue(resumed.standardOutput.contains("the run already finished all 1 epochs"), resumed.standardOutput)
    }
}
