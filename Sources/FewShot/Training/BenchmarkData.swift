import FewShotData
import Foundation
import TensorCore

/// The three class splits a run uses, read as the config's `data` section specifies.
public struct BenchmarkData: Sendable {
    /// The name shown in results: CIFAR-FS, FC100, a custom split or a PNG folder.
    public var displayName: String
    /// The data folder the splits were read from, as an absolute path.
    public var root: URL
    public var train: ImageSource
    public var validation: ImageSource
    public var test: ImageSource

    /// Finds the data folder (`--data`, then FEWSHOT_DATA_DIR, then `data.root`)
    /// and reads the three splits from it.
    ///
    /// `cifar100-binary`: the official files, split into CIFAR-FS, FC100 or the
    /// config's custom split. `png-folders`: `<root>/train`, `<root>/val` and
    /// `<root>/test`, each with one subfolder of 32 x 32 PNG files per class.
    public static func load(_ data: TrainingConfig.DataSection, dataFlag: String?) throws -> BenchmarkData {
        let locator = Self.locator(for: data, dataFlag: dataFlag)
        if data.format == "png-folders" {
            let (root, origin) = locator.candidate()
            var splits: [ImageSource] = []
            for folder in ["train", "val", "test"] {
                let url = root.appendingPathComponent(folder)
                guard FileManager.default.fileExists(atPath: url.path) else {
                    throw DataError(.dataNotFound, "PNG dataset folder \(url.path) (from \(origin)) does not exist; data.format png-folders needs <root>/train, <root>/val and <root>/test, each with one subfolder of PNG files per class")
                }
                splits.append(try ImageSource.pngFolder(url))
            }
            return BenchmarkData(
                displayName: "PNG folders \(root.lastPathComponent)", root: root, train: splits[0], validation: splits[1], test: splits[2])
        }

        let directory = try locator.locate()
        let cifar = try CIFAR100.load(from: directory)
        let definition: SplitDefinition
        let displayName: String
        if let split = data.split {
            definition = .custom(split)
            displayName = "custom CIFAR-100 split"
        } else {
            guard let benchmark = FewShotBenchmark(rawValue: data.dataset) else {
                preconditionFailure("dataset '\(data.dataset)' passed config validation but names no benchmark")
            }
            definition = .benchmark(benchmark)
            displayName = benchmark.displayName
        }
        return BenchmarkData(
            displayName: displayName, root: directory, train: try definition.source(.train, in: cifar),
            validation: try definition.source(.validation, in: cifar), test: try definition.source(.test, in: cifar))
    }

    /// Returns the locator for the data folder. A data.root equal to the
    /// default counts as not set, so messages say "default data.root".
    public static func locator(for data: TrainingConfig.DataSection, dataFlag: String?) -> DataLocator {
        DataLocator(flag: dataFlag, configRoot: data.root == DataLocator.defaultRoot ? nil : data.root)
    }

    public var trainingSources: TrainingSources { TrainingSources(train: train, validation: validation) }

    /// Checks that the train and validation splits can supply the episodes
    /// training draws from them (`training.*` and `validation.*`), so that a
    /// split that is too small stops the run before its folder is created.
    public func checkTrainingEpisodes(_ config: TrainingConfig) throws {
        let training = config.training
        if let shortfall = Self.episodeShortfall(
            split: "train", source: train, section: "training", way: training.way, shot: training.shot, query: training.query) {
            throw shortfall
        }
        let validationSection = config.validation
        if let shortfall = Self.episodeShortfall(
            split: "validation", source: validation, section: "validation",
            way: validationSection.way, shot: validationSection.shot, query: validationSection.query) {
            throw shortfall
        }
    }

    /// Returns why the test split cannot supply `test.*` episodes, or nil when it can.
    /// Training draws no test episodes, and `fewshot eval` can change the shape
    /// with `--shots`, `--way` and `--query`, so this is a warning, not an error.
    public func testEpisodeShortfall(_ config: TrainingConfig) -> EpisodeSupplyError? {
        Self.episodeShortfall(
            split: "test", source: test, section: "test", way: config.test.way, shot: config.test.shot, query: config.test.query)
    }

    /// Returns why `source` cannot supply episodes of `way` classes with
    /// `shot + query` images each, naming the split and the config keys.
    public static func episodeShortfall(
        split: String, source: ImageSource, section: String, way: Int, shot: Int, query: Int
    ) -> EpisodeSupplyError? {
        if source.classCount < way {
            return .tooFewClasses(split: split, classCount: source.classCount, section: section, way: way)
        }
        for classIndex in 0..<source.classCount where source.imageCount(inClass: classIndex) < shot + query {
            return .tooFewImages(
                split: split, className: source.classNames[classIndex], imageCount: source.imageCount(inClass: classIndex),
                section: section, shot: shot, query: query)
        }
        return nil
    }
}

/// A split that cannot supply the episodes a run or an evaluation draws from it.
public enum EpisodeSupplyError: Error, CustomStringConvertible, Equatable {
    /// The split has fewer classes than `<section>.way`.
    case tooFewClasses(split: String, classCount: Int, section: String, way: Int)
    /// A class of the split has fewer images than `<section>.shot + <section>.query`.
    case tooFewImages(split: String, className: String, imageCount: Int, section: String, shot: Int, query: Int)

    public var description: String {
        switch self {
        case let .tooFewClasses(split, classCount, section, way):
            return "\(split) split has \(classCount) \(classCount == 1 ? "class" : "classes"), but \(section).way \(way) needs at least \(way); lower \(section).way or add classes to the \(split) split"
        case let .tooFewImages(split, className, imageCount, section, shot, query):
            return "\(split) split: class '\(className)' has \(imageCount) \(imageCount == 1 ? "image" : "images"), but \(section).shot \(shot) + \(section).query \(query) need \(shot + query); lower \(section).shot or \(section).query, or add images"
        }
    }
}

/// Sets the worker threads of the parallel loops and of OpenBLAS; 0 means every processor.
public func applyThreadCount(_ threads: Int) {
    let count = threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount
    Parallel.workerCount = count
    BLAS.threadCount = count
}
