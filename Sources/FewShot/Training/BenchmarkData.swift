import FewShotData
import Foundation
import TensorCore

/// The three splits of a benchmark, read from a CIFAR-100 binary folder.
public struct BenchmarkData: Sendable {
    public var benchmark: FewShotBenchmark
    public var train: ImageSource
    public var validation: ImageSource
    public var test: ImageSource

    /// Reads CIFAR-100 from `directory` and builds the splits of the config's `data.dataset`.
    public static func load(dataset: String, from directory: URL) throws -> BenchmarkData {
        guard let benchmark = FewShotBenchmark(rawValue: dataset) else {
            preconditionFailure("dataset '\(dataset)' passed config validation but names no benchmark")
        }
        let cifar = try CIFAR100.load(from: directory)
        return BenchmarkData(
            benchmark: benchmark, train: try benchmark.source(.train, in: cifar),
            validation: try benchmark.source(.validation, in: cifar), test: try benchmark.source(.test, in: cifar))
    }

    public var trainingSources: TrainingSources { TrainingSources(train: train, validation: validation) }
}

/// Sets the worker threads of the parallel loops and of OpenBLAS; 0 means every processor.
public func applyThreadCount(_ threads: Int) {
    let count = threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount
    Parallel.workerCount = count
    BLAS.threadCount = count
}
