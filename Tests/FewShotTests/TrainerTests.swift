import FewShotData
import NeuralNetwork
import Foundation
import TensorCore
import XCTest
@testable import FewShot

/// Returns a source of `classes` classes with `perClass` random 32 x 32 images each.
func syntheticSource(classes: Int, perClass: Int, seed: UInt64) -> ImageSource {
    var random = SeededRandom(seed: seed)
    let pixels = (0..<(classes * perClass * 3072)).map { _ in UInt8(random.nextInt(below: 256)) }
    return ImageSource(
        classNames: (0..<classes).map { "class\($0)" }, height: 32, width: 32, pixels: pixels,
        imageIndices: (0..<classes).map { c in Array((c * perClass)..<((c + 1) * perClass)) })
}

/// Returns the smoke-test configuration: a 4-4-8-8 ResNet-12 and 3-way 2-shot episodes.
func tinyConfig(head: String = "l1-svm") -> TrainingConfig {
    var config = TrainingConfig()
    config.name = "tiny"
    config.threads = 1
    config.backbone.widths = [4, 4, 8, 8]
    config.backbone.dropBlockRampSteps = 4
    config.head.kind = head
    config.training.way = 3
    config.training.shot = 2
    config.training.query = 2
    config.training.episodesPerStep = 2
    config.training.stepsPerEpoch = 2
    config.training.epochs = 3
    config.validation = .init(episodes: 2, way: 3, shot: 2, query: 2)
    return config
}

final class TrainerTests: XCTestCase {
    private var folder: URL!
    private let sources = TrainingSources(
        train: syntheticSource(classes: 5, perClass: 6, seed: 1),
        validation: syntheticSource(classes: 4, perClass: 6, seed: 2))

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("trainer-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    func testNonFiniteLossStopsAndKeepsLastCheckpoint() throws {
        let config = tinyConfig()
        let run = try RunDirectory.create(root: folder, name: "nan", config: config)
        let trainer = try Trainer(config: config, sources: sources, run: run, resume: false)
        var checkpointAfterEpochOne: Data? = nil
        trainer.faultInjection = { step in
            if step == 4 { checkpointAfterEpochOne = try? Data(contentsOf: run.lastCheckpointURL) }
            return step == 4
        }
        XCTAssertThrowsError(try trainer.train()) { error in
            guard case let RunError.nonFinite(epoch, step, what, lastCheckpoint) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(epoch, 2)
            XCTAssertEqual(step, 4)
            XCTAssertTrue(what.contains("loss is nan"), what)
            XCTAssertEqual(lastCheckpoint, run.lastCheckpointURL.path)
            XCTAssertTrue("\(error)".contains("training stopped at epoch 2, step 4"), "\(error)")
        }
        XCTAssertNotNil(checkpointAfterEpochOne)
        XCTAssertEqual(try Data(contentsOf: run.lastCheckpointURL), checkpointAfterEpochOne, "the last good checkpoint is unchanged")
        XCTAssertEqual(try Checkpoint.read(from: run.lastCheckpointURL).epoch, 1)
        XCTAssertEqual(run.readStepLosses().map(\.step), [1, 2, 3], "no row for the failed step")
    }

    func testModelCheckpointRoundTrip() throws {
        let config = tinyConfig(head: "prototypical")
        let run = try RunDirectory.create(root: folder, name: "round-trip", config: config)
        let trainer = try Trainer(config: config, sources: sources, run: run, resume: false)
        try trainer.train()

        let fresh = FewShotModel(config: config)
        let optimizer = SGD(parameters: fresh.trainableParameters, learningRate: 0.1)
        let checkpoint = try fresh.load(from: run.lastCheckpointURL, optimizer: optimizer)
        XCTAssertEqual(checkpoint.epoch, 3)
        XCTAssertEqual(checkpoint.step, 6)
        for ((name, loaded), (_, trained)) in zip(fresh.backbone.stateDict(), trainer.model.backbone.stateDict()) {
            XCTAssertEqual(loaded, trained, name)
        }
        XCTAssertEqual(fresh.backbone.randomState, trainer.model.backbone.randomState)
        XCTAssertEqual(fresh.backbone.blockForwardPasses, trainer.model.backbone.blockForwardPasses)
        XCTAssertEqual(fresh.scaleParameter.value, trainer.model.scaleParameter.value)
        for parameter in fresh.trainableParameters {
            XCTAssertEqual(optimizer.momentumBuffer(named: parameter.name), trainer.optimizer.momentumBuffer(named: parameter.name), parameter.name)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.curvesURL.path))
        XCTAssertEqual(run.readMetrics().count, 3)
    }

    func testLoadRejectsOtherModels() throws {
        let config = tinyConfig(head: "prototypical")
        let model = FewShotModel(config: config)
        let optimizer = SGD(parameters: model.trainableParameters, learningRate: 0.1)
        let url = folder.appendingPathComponent("model.safetensors")
        try model.checkpoint(optimizer: optimizer, epoch: 1, step: 2, metrics: [:], extra: [:]).write(to: url)

        var otherHead = config
        otherHead.head.kind = "ridge"
        XCTAssertThrowsError(try FewShotModel(config: otherHead).load(from: url)) { error in
            XCTAssertEqual(error as? CheckpointError,
                           .configMismatch(path: url.path, key: "head.kind", checkpointValue: "prototypical", configValue: "ridge"))
        }

        var otherWidths = config
        otherWidths.backbone.widths = [4, 4, 8, 16]
        XCTAssertThrowsError(try FewShotModel(config: otherWidths).load(from: url)) { error in
            guard case let CheckpointError.wrongShape(_, name, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(name.hasPrefix("layer4.0") || name.hasPrefix("optimizer.momentum_buffer.layer4.0"), name)
        }

        var fixedScale = config
        fixedScale.head.learnScale = false
        XCTAssertThrowsError(try FewShotModel(config: fixedScale).load(from: url)) { error in
            XCTAssertEqual(error as? CheckpointError, .unexpectedTensors(path: url.path, names: ["optimizer.momentum_buffer.head.scale"]))
        }
    }

    func testEvaluationIsRepeatable() throws {
        let model = FewShotModel(config: tinyConfig())
        let first = try evaluate(model, source: sources.validation, way: 3, shot: 1, query: 2, episodes: 3, seed: 4)
        let second = try evaluate(model, source: sources.validation, way: 3, shot: 1, query: 2, episodes: 3, seed: 4)
        XCTAssertEqual(first.accuracies, second.accuracies)
        XCTAssertEqual(first.accuracies.count, 3)
        XCTAssertTrue(model.backbone.isTraining, "evaluation restores training mode")
    }

    func testMostRecentRunIsLastStarted() throws {
        let older = try RunDirectory.create(root: folder, name: "b-older", config: tinyConfig())
        let newer = try RunDirectory.create(root: folder, name: "a-newer", config: tinyConfig())
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -60)], ofItemAtPath: older.configURL.path)
        XCTAssertEqual(try RunDirectory.mostRecent(in: folder).url.lastPathComponent, newer.url.lastPathComponent)
        XCTAssertThrowsError(try RunDirectory.mostRecent(in: folder.appendingPathComponent("empty"))) { error in
            XCTAssertTrue("\(error)".contains("no runs found"), "\(error)")
        }
        let missing = folder.appendingPathComponent("empty")
        XCTAssertThrowsError(try RunDirectory.mostRecent(in: missing)) { error in
            XCTAssertEqual(error as? RunError, .runsFolderNotFound(root: missing.path))
            XCTAssertTrue("\(error)".contains("the folder \(missing.path) does not exist"), "\(error)")
        }
        let empty = folder.appendingPathComponent("really-empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try RunDirectory.mostRecent(in: empty)) { error in
            XCTAssertEqual(error as? RunError, .noRuns(root: empty.path))
        }
    }

    func testLogRateMatchesMetricsRate() throws {
        var config = tinyConfig(head: "prototypical")
        config.training.logEverySteps = 1
        let run = try RunDirectory.create(root: folder, name: "rates", config: config)
        let trainer = try Trainer(config: config, sources: sources, run: run, resume: false)
        var lastStepLines: [String] = []
        trainer.onLog = { line, kind in
            if kind == .step && line.contains("step 2/2 ") { lastStepLines.append(line) }
        }
        try trainer.train()

        let logged = lastStepLines.map { line -> Double in
            let words = line.split(separator: " ")
            guard let index = words.firstIndex(of: "images/s"), index > 0 else { return .nan }
            return Double(words[index - 1]) ?? .nan
        }
        let recorded = run.readMetrics().map { $0["images_per_second"] ?? .nan }
        XCTAssertEqual(logged.count, 3)
        XCTAssertEqual(recorded.count, 3)
        // The log rounds to 0.1 and metrics.csv to 0.01, so the two agree to 0.05 plus rounding slack.
        for (epoch, (log, metrics)) in zip(logged, recorded).enumerated() {
            XCTAssertEqual(log, metrics, accuracy: 0.051, "epoch \(epoch + 1)")
        }
    }

    func testPartialEpochRoundTripsExactly() {
        var sums = Trainer.PartialEpoch()
        sums.lossSum = 1.0 / 3.0
        sums.accuracySum = 0.1 + 0.2
        sums.residualSum = 1e-300
        sums.residualCount = 7
        sums.trainSeconds = 12.345678901234567
        XCTAssertEqual(Trainer.PartialEpoch(text: sums.text), sums)
        XCTAssertNil(Trainer.PartialEpoch(text: "1,2,3"))
        XCTAssertNil(Trainer.PartialEpoch(text: "a,b,c,d,e"))
    }

    func testUniqueRunNamesGetSuffixes() throws {
        let names = try (0..<3).map { _ in
            try RunDirectory.createUnique(root: folder, baseName: "tiny-20261204-215003", config: tinyConfig()).url.lastPathComponent
        }
        XCTAssertEqual(names, ["tiny-20261204-215003", "tiny-20261204-215003-2", "tiny-20261204-215003-3"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent("tiny-20261204-215003-3/config.json").path))

        XCTAssertThrowsError(try RunDirectory.create(root: folder, name: "tiny-20261204-215003", config: tinyConfig())) { error in
            XCTAssertEqual(error as? RunError, .alreadyExists(path: folder.appendingPathComponent("tiny-20261204-215003").path))
            XCTAssertTrue("\(error)".contains("--resume"), "\(error)")
        }
    }

    func testTruncationDropsRowsAfterCheckpoint() throws {
        let run = try RunDirectory.create(root: folder, name: "cut", config: tinyConfig())
        try run.append("1,1,0.5,10,0.1,\n2,1,0.4,20,0.1,\n3,2,0.3,30,0.1,\n", to: run.stepsURL)
        try run.truncateRows(of: run.stepsURL, header: RunDirectory.stepsHeader, keepingFirstColumnAtMost: 2)
        XCTAssertEqual(run.readStepLosses().map(\.step), [1, 2])
        XCTAssertEqual(try String(contentsOf: run.stepsURL, encoding: .utf8).split(separator: "\n").first.map(String.init), RunDirectory.stepsHeader)
    }

    func testDurationFormat() {
        XCTAssertEqual(formatDuration(12.4), "12s")
        XCTAssertEqual(formatDuration(245), "4m05s")
        XCTAssertEqual(formatDuration(3720), "1h02m")
        XCTAssertEqual(formatDuration(.nan), "?")
    }

    func testCurvesPictureMarksValidationInOrange() {
        let rows: [[String: Double]] = [
            ["train_loss": 1.5, "train_accuracy_percent": 30, "val_accuracy_percent": 40],
            ["train_loss": 1.0, "train_accuracy_percent": 50, "val_accuracy_percent": 60],
        ]
        let image = CurvesPicture.render(rows)
        XCTAssertEqual(image.width, 2 * CurvesPicture.panelWidth)
        XCTAssertEqual(image.height, CurvesPicture.panelHeight)
        let plane = image.width * image.height
        let orange = (0..<plane).filter { image.pixels[$0] == 255 && image.pixels[plane + $0] == 127 && image.pixels[2 * plane + $0] == 14 }
        XCTAssertFalse(orange.isEmpty)
        XCTAssertTrue(orange.allSatisfy { $0 % image.width >= CurvesPicture.panelWidth }, "validation accuracy is drawn in the right panel only")
    }
}

/// The pre-flight check that a run's splits can supply their episodes.
final class EpisodeSupplyTests: XCTestCase {
    private func data(trainClasses: Int = 5, validationPerClass: Int = 20, testPerClass: Int = 20) -> BenchmarkData {
        BenchmarkData(
            displayName: "synthetic", root: URL(fileURLWithPath: "/tmp"),
            train: syntheticSource(classes: trainClasses, perClass: 11, seed: 1),
            validation: syntheticSource(classes: 5, perClass: validationPerClass, seed: 2),
            test: syntheticSource(classes: 5, perClass: testPerClass, seed: 3))
    }

    private func config() -> TrainingConfig {
        var config = TrainingConfig()
        config.training.way = 5
        config.training.shot = 5
        config.training.query = 6
        config.validation = .init(episodes: 1, way: 5, shot: 5, query: 15)
        config.test = .init(episodes: 1, way: 5, shot: 5, query: 15)
        return config
    }

    func testSplitsLargeEnoughPass() throws {
        XCTAssertNoThrow(try data().checkTrainingEpisodes(config()))
        XCTAssertNil(data().testEpisodeShortfall(config()))
    }

    func testTooFewTrainClassesNamesSplitAndKey() {
        XCTAssertThrowsError(try data(trainClasses: 4).checkTrainingEpisodes(config())) { error in
            XCTAssertEqual(error as? EpisodeSupplyError, .tooFewClasses(split: "train", classCount: 4, section: "training", way: 5))
            XCTAssertEqual("\(error)", "train split has 4 classes, but training.way 5 needs at least 5; lower training.way or add classes to the train split")
        }
    }

    func testTooFewValidationImagesNamesClassAndKeys() {
        XCTAssertThrowsError(try data(validationPerClass: 12).checkTrainingEpisodes(config())) { error in
            XCTAssertEqual("\(error)", "validation split: class 'class0' has 12 images, but validation.shot 5 + validation.query 15 need 20; lower validation.shot or validation.query, or add images")
        }
    }

    func testTestSplitShortfallIsReportedSeparately() throws {
        let small = data(testPerClass: 12)
        XCTAssertNoThrow(try small.checkTrainingEpisodes(config()))
        XCTAssertEqual(small.testEpisodeShortfall(config()),
                       .tooFewImages(split: "test", className: "class0", imageCount: 12, section: "test", shot: 5, query: 15))
    }
}
