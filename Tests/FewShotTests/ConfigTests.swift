import Foundation
import FewShotData
import XCTest
@testable import FewShot

final class ConfigTests: XCTestCase {
    private func parse(_ json: String) throws -> TrainingConfig {
        try TrainingConfig.parse(Data(json.utf8), path: "test.json")
    }

    private func assertRejected(_ json: String, mentions fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(json), file: file, line: line) { error in
            let message = "\(error)"
            XCTAssertNil(message.range(of: #"[0-9]\.\.\.|[(\[][0-9.]+, [0-9.]+[)\]]"#, options: .regularExpression),
                         "'\(message)' uses range syntax", file: file, line: line)
            for fragment in fragments {
                XCTAssertTrue(message.contains(fragment), "'\(message)' lacks '\(fragment)'", file: file, line: line)
            }
        }
    }

    func testJSONTextKeepsSlashes() throws {
        var config = TrainingConfig()
        config.data.root = "/data/cifar-100-binary"
        let text = config.jsonText()
        XCTAssertTrue(text.contains("\"root\" : \"/data/cifar-100-binary\""), text)
        XCTAssertFalse(text.contains("\\/"), text)
        XCTAssertEqual(try parse(text), config)
    }

    func testEmptyObjectIsFullRecipe() throws {
        let config = try parse("{}")
        XCTAssertEqual(config, TrainingConfig())
        XCTAssertEqual(config.backbone.widths, [64, 160, 320, 640])
        XCTAssertEqual(config.training.stepsPerEpoch, 1000)
        XCTAssertEqual(config.training.epochs, 60)
        XCTAssertEqual(config.optimizer.learningRate(epoch: 1), 0.1)
        XCTAssertEqual(config.optimizer.learningRate(epoch: 20), 0.1)
        XCTAssertEqual(config.optimizer.learningRate(epoch: 21), 0.006)
        XCTAssertEqual(config.optimizer.learningRate(epoch: 41), 0.0012)
        XCTAssertEqual(config.optimizer.learningRate(epoch: 60), 0.00024)
    }

    func testResolvedJSONRoundTrips() throws {
        var config = TrainingConfig()
        config.name = "round-trip"
        config.head.kind = "ridge"
        config.head.gamma = 0.003
        config.training.labelSmoothing = 0.1
        config.backbone.widths = [8, 16, 32, 64]
        XCTAssertEqual(try parse(config.jsonText()), config)
    }

    func testUnknownKeyNamesKeyAndAllowedKeys() {
        assertRejected(#"{"head": {"gama": 0.1}}"#, mentions: ["unknown key 'head.gama'", "gamma", "kind"])
        assertRejected(#"{"epochs": 3}"#, mentions: ["unknown key 'epochs'", "training"])
        assertRejected(#"{"optimizer": {"schedule": [{"fromEpoch": 1, "lr": 0.1}]}}"#,
                       mentions: ["unknown key 'optimizer.schedule[0].lr'", "learningRate"])
    }

    func testOutOfRangeValuesNameAllowedValues() {
        assertRejected(#"{"head": {"kind": "svm"}}"#, mentions: ["'head.kind'", "l1-svm, prototypical, ridge"])
        assertRejected(#"{"training": {"way": 1}}"#, mentions: ["'training.way'", "allowed: an integer from 2 to 64"])
        assertRejected(#"{"head": {"gamma": 0}}"#, mentions: ["'head.gamma'", "allowed: a number from 0 to 10, excluding 0"])
        assertRejected(#"{"backbone": {"widths": [1, 2, 3]}}"#, mentions: ["'backbone.widths'", "a list of 4 integers from 1 to 4096"])
        assertRejected(#"{"training": {"labelSmoothing": 1}}"#, mentions: ["'training.labelSmoothing'", "allowed: a number from 0 to 1, excluding 1"])
        assertRejected(#"{"head": {"M": -1}}"#, mentions: ["'head.M'", "allowed: a number from 0 to 1000000"])
        assertRejected(#"{"data": {"dataset": "imagenet"}}"#, mentions: ["'data.dataset'", "cifarfs, fc100"])
        assertRejected(#"{"name": "../escape"}"#, mentions: ["'name'"])
        assertRejected(#"{"optimizer": {"schedule": [{"fromEpoch": 5, "learningRate": 0.1}]}}"#,
                       mentions: ["'optimizer.schedule'", "start at 1"])
    }

    func testWrongTypesAreRejected() {
        assertRejected(#"{"training": {"epochs": "ten"}}"#, mentions: ["'training.epochs'", "an integer"])
        assertRejected(#"{"training": {"epochs": 2.5}}"#, mentions: ["'training.epochs'", "an integer"])
        assertRejected(#"{"data": {"augment": 1}}"#, mentions: ["'data.augment'", "true or false"])
        assertRejected(#"{"training": {"epochs": true}}"#, mentions: ["'training.epochs'"])
        assertRejected(#"{"head": 3}"#, mentions: ["'head'", "an object"])
        assertRejected(#"[1, 2]"#, mentions: ["top level must be an object"])
        assertRejected(#"{"name": }"#, mentions: ["not valid JSON"])
    }

    func testCustomSplitRoundTrips() throws {
        let config = try parse(#"{"data": {"dataset": "custom", "split": {"train": ["apple", 3], "val": [4], "test": ["zebra"]}}}"#)
        XCTAssertEqual(config.data.split, CustomSplit(train: [.name("apple"), .label(3)], validation: [.label(4)], test: [.name("zebra")]))
        XCTAssertEqual(try parse(config.jsonText()), config)
    }

    func testSplitMustMatchDataset() {
        assertRejected(#"{"data": {"dataset": "custom"}}"#,
                       mentions: ["'data.split' is missing", "class names or fine-label indices for each split", #""split": {"train": ["apple", 1, 2]"#])
        assertRejected(#"{"data": {"split": {"train": [1], "val": [2], "test": [3]}}}"#,
                       mentions: ["'data.split' is given, but data.dataset is cifarfs", "set data.dataset to custom"])
        assertRejected(#"{"data": {"dataset": "custom", "split": {"train": [true], "val": [2], "test": [3]}}}"#,
                       mentions: ["'data.split.train'", "fine labels"])
        assertRejected(#"{"data": {"dataset": "custom", "split": {"train": [1], "validation": [2], "test": [3]}}}"#,
                       mentions: ["'data.split.val'"])
        assertRejected(#"{"data": {"format": "png-folders", "dataset": "custom", "split": {"train": [1], "val": [2], "test": [3]}}}"#,
                       mentions: ["'data.split'", "png-folders"])
        assertRejected(#"{"data": {"format": "jpeg"}}"#, mentions: ["'data.format'", "cifar100-binary, png-folders"])
    }

    func testShippedConfigsLoad() throws {
        let configs = packageRoot().appendingPathComponent("Configs")
        let names = try FileManager.default.contentsOfDirectory(atPath: configs.path).filter { $0.hasSuffix(".json") }.sorted()
        for required in ["cifarfs.json", "fc100.json", "cifarfs-quick.json"] {
            XCTAssertTrue(names.contains(required), "Configs/ lacks \(required): \(names)")
        }
        for name in names {
            let config = try TrainingConfig.load(from: configs.appendingPathComponent(name))
            XCTAssertEqual(config.name + ".json", name, "the config's name matches its file")
        }
        let fc100 = try TrainingConfig.load(from: configs.appendingPathComponent("fc100.json"))
        XCTAssertEqual(fc100.data.dataset, "fc100")
        XCTAssertEqual(fc100.training.shot, 15)
        let full = try TrainingConfig.load(from: configs.appendingPathComponent("cifarfs.json"))
        XCTAssertEqual(full, { var c = TrainingConfig(); c.name = "cifarfs"; return c }(), "cifarfs.json is the full recipe")
    }
}

/// Returns the package root, found from this source file's path.
func packageRoot() -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}
