import Foundation
import PhysarumLP
import TensorCore

/// `fewshot bench lp`: forward and forward+backward time of the physarum LP layer
/// on l1-SVM batches of the few-shot head's size and on a matching batch.
enum LPBenchCommand: Command {
    static let name = "lp"
    static let abstract = "Time the physarum LP layer on l1-SVM and matching batches."
    static let options: [OptionSpec] = [
        OptionSpec(name: "batches", valueName: "<list>", help: "Comma-separated l1-SVM batch sizes.", defaultValue: "8,32,80"),
        OptionSpec(name: "support", valueName: "<n>", help: "Support points per l1-SVM (9n + 2 variables, 4n rows).",
                   defaultValue: "10"),
        OptionSpec(name: "iterations", valueName: "<k>", help: "Physarum iterations K.", defaultValue: "10"),
        OptionSpec(name: "matching-batch", valueName: "<n>", help: "Matching LPs (5 x 50) in the matching batch; 0 skips it.",
                   defaultValue: "32"),
        OptionSpec(name: "threads", valueName: "<n>", help: "Worker threads over problems (0: every processor).", defaultValue: everyProcessorDefault),
        OptionSpec(name: "blas-threads", valueName: "<n>", help: "OpenBLAS threads inside each call of the layer.",
                   defaultValue: "1"),
        OptionSpec(name: "repeats", valueName: "<n>", help: "Timed repetitions; the median and minimum are printed.",
                   defaultValue: "30"),
    ]
    static let discussion = """
        Each row gives the median and the minimum over the repeats, after one
        untimed warm-up call; the minimum is least disturbed by other processes.
        l1-SVM inputs: linear kernels of random 64-dimensional points scaled to
        norm <= 1, half the labels +1; C = 1, M = 0.001, gamma = 0.001.
        The loss for the backward is sum(x), so the backward does its full work.
        """

    static func run(_ arguments: ParsedArguments) throws {
        try arguments.rejectPositionals()
        let batches = try arguments.intList("batches") ?? [8, 32, 80]
        guard batches.allSatisfy({ $0 >= 1 && $0 <= 100_000 }) else {
            throw UsageError("invalid value for '--batches': expected sizes from 1 to 100000")
        }
        let support = try arguments.int("support", range: 2...1000) ?? 10
        let iterations = try arguments.int("iterations", range: 1...100_000) ?? 10
        let matchingBatch = try arguments.int("matching-batch", range: 0...100_000) ?? 32
        let threads = try arguments.threadCount()
        let repeats = try arguments.int("repeats", range: 1...100_000) ?? 30
        let blasThreads = try arguments.int("blas-threads", range: 1...256) ?? 1
        Parallel.workerCount = threads
        BLAS.threadCount = blasThreads

        let options = PhysarumOptions(iterations: iterations, zeroCostPerturbation: 1e-3, start: .random(seed: 1))
        let layer = PhysarumLayer(options: options)
        let builder = L1SVMBuilder(supportCount: support)
        print("LP layer, Float64, K = \(iterations), \(threads) worker threads, OpenBLAS \(blasThreads) thread(s) per call, \(repeats) repeats")
        let table = TableLayout([("problem", 28), ("batch", 5), ("forward median ms", 0), ("forward min ms", 0),
                                 ("forward+backward median ms", 0), ("forward+backward min ms", 0)])
        print(table.header)
        func printRow(_ problem: String, _ batchSize: Int, _ timing: (forward: Timing, forwardBackward: Timing)) {
            let times = [timing.forward.median, timing.forward.minimum, timing.forwardBackward.median, timing.forwardBackward.minimum]
            print(table.row([problem, "\(batchSize)"] + times.map { String(format: "%.3f", $0) }))
        }
        for batchSize in batches {
            let (kernels, labels) = randomSVMInputs(count: batchSize, support: support, dimension: 64, seed: UInt64(batchSize))
            let batch = try builder.makeBatch(kernels: kernels, labels: labels)
            let timing = try timeLayer(layer, batch: batch, repeats: repeats)
            printRow("l1-SVM \(batch.columns) vars x \(batch.rows) rows", batchSize, timing)
        }
        if matchingBatch > 0 {
            var random = SeededRandom(seed: 9)
            let costs = (0..<(matchingBatch * 250)).map { _ in random.uniform(0.001, 1) }
            let batch = try MatchingBuilder(templates: 5, proposals: 50).makeBatch(costs: costs).batch
            let timing = try timeLayer(layer, batch: batch, repeats: repeats)
            printRow("matching \(batch.columns) vars x \(batch.rows) rows", matchingBatch, timing)
        }
    }

    /// Median and minimum milliseconds of a timed step.
    struct Timing {
        let median: Double
        let minimum: Double

        init(_ milliseconds: [Double]) {
            let sorted = milliseconds.sorted()
            median = sorted[sorted.count / 2]
            minimum = sorted[0]
        }
    }

    /// Times forward alone and forward plus backward.
    static func timeLayer(_ layer: PhysarumLayer, batch: LPBatch, repeats: Int) throws -> (forward: Timing, forwardBackward: Timing) {
        let dSolutions = [Double](repeating: 1, count: batch.count * batch.columns)
        _ = try layer.backward(tape: try layer.forward(batch).tape, dSolutions: dSolutions)
        var forwardTimes: [Double] = []
        var totalTimes: [Double] = []
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            let forward = try layer.forward(batch)
            let middle = DispatchTime.now().uptimeNanoseconds
            _ = try layer.backward(tape: forward.tape, dSolutions: dSolutions)
            let end = DispatchTime.now().uptimeNanoseconds
            forwardTimes.append(Double(middle - start) / 1e6)
            totalTimes.append(Double(end - start) / 1e6)
        }
        return (Timing(forwardTimes), Timing(totalTimes))
    }

    /// Linear kernels of random Gaussian points scaled so the largest norm per problem is 1,
    /// with alternating labels (half +1).
    static func randomSVMInputs(count: Int, support: Int, dimension: Int, seed: UInt64) -> (kernels: [Double], labels: [Double]) {
        var random = SeededRandom(seed: seed)
        var kernels: [Double] = []
        var labels: [Double] = []
        kernels.reserveCapacity(count * support * support)
        for _ in 0..<count {
            var points = (0..<(support * dimension)).map { _ in random.nextNormal() }
            var largest = 0.0
            for i in 0..<support {
                var norm = 0.0
                for d in 0..<dimension { norm += points[i * dimension + d] * points[i * dimension + d] }
                largest = max(largest, norm)
            }
            points = points.map { $0 / largest.squareRoot() }
            for i in 0..<support {
                for j in 0..<support {
                    var sum = 0.0
                    for d in 0..<dimension { sum += points[i * dimension + d] * points[j * dimension + d] }
                    kernels.append(sum)
                }
                labels.append(i < support / 2 ? 1 : -1)
            }
        }
        return (kernels, labels)
    }
}
