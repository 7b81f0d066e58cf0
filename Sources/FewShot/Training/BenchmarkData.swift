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
        let locator = DataLocator(flag: dataFlag, configRoot: data.root)
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

    public var trainingSources: TrainingSources { TrainingSources(train: train, validation: validation) }
}

/// Sets the worker threads of the parallel loops and of OpenBLAS; 0 means every processor.
public func applyThreadCount(_ threads: Int) {
    let count = threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount
    Parallel.workerCount = count
    BLAS.threadCount = count
}
