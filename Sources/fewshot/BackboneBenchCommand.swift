import Foundation
import NeuralNetwork
import TensorCore

/// `fewshot bench backbone`: the training step and evaluation forward of the full ResNet-12.
enum BackboneBenchCommand: Command {
    static let name = "backbone"
    static let abstract = "Time the ResNet-12 training step (forward, backward, SGD) and the evaluation forward."
    static let discussion = """
        The training step runs 8 episodes x 5 ways x (5 support + 6 query) = 440
        images of 32 x 32, with the support images (200) and the query images
        (240) normalised as separate batch-norm groups, as two PyTorch calls
        would. FLOP counts are those of the convolutions for the given --widths
        (2 per multiply-add; 1.046 GFLOP per image forward at the default
        widths) and twice that backward. Peak resident memory is the process
        maximum (getrusage).
        """
    static let options: [OptionSpec] = [
        OptionSpec(name: "threads", valueName: "<n>", help: "OpenBLAS threads, and worker threads unless --workers is given (0: every processor).", defaultValue: everyProcessorDefault),
        OptionSpec(name: "workers", valueName: "<n>", help: "Worker threads for the convolutions and elementwise loops (1: one SGEMM at a time on all OpenBLAS threads).", defaultValue: "threads"),
        OptionSpec(name: "chunk-columns", valueName: "<n>", help: "Columns (images x output pixels) a convolution chunk aims at.", defaultValue: "512"),
        OptionSpec(name: "repeats", valueName: "<n>", help: "Timed training steps after one warm-up step; the median is printed.", defaultValue: "3"),
        OptionSpec(name: "eval-repeats", valueName: "<n>", help: "Timed 80-image evaluation forwards after one warm-up.", defaultValue: "5"),
        OptionSpec(name: "widths", valueName: "<list>", help: "Channel widths of the four blocks, comma-separated.", defaultValue: "64,160,320,640"),
        OptionSpec(name: "sgemm-size", valueName: "<n>", help: "Side of the square SGEMM measured as the ceiling; 0 skips it.", defaultValue: "2048"),
    ]

    /// Returns the convolution FLOPs (2 per multiply-add) of one 3 x 32 x 32
    /// image through ResNet-12 with `widths`. Each block has three 3 x 3
    /// convolutions and a 1 x 1 shortcut at its input resolution, and its
    /// max-pool halves the side for the next block.
    static func forwardFLOPsPerImage(widths: [Int], inputChannels: Int = 3, side: Int = 32) -> Double {
        var total = 0.0
        var channels = inputChannels
        var currentSide = side
        for width in widths {
            let pixels = Double(currentSide * currentSide)
            let multiplyAdds = 9 * channels * width + 2 * 9 * width * width + channels * width
            total += 2 * pixels * Double(multiplyAdds)
            channels = width
            currentSide /= 2
        }
        return total
    }

    static func run(_ arguments: ParsedArguments) throws {
        try arguments.rejectPositionals()
        let threads = try arguments.threadCount()
        let repeats = try arguments.int("repeats", range: 1...1000) ?? 3
        let evalRepeats = try arguments.int("eval-repeats", range: 1...1000) ?? 5
        let widths = try arguments.intList("widths") ?? [64, 160, 320, 640]
        let sgemmSize = try arguments.int("sgemm-size", range: 0...16384) ?? 2048
        let workers = try arguments.int("workers", range: 1...256) ?? threads
        let chunkColumns = try arguments.int("chunk-columns", range: 1...1_000_000) ?? 512
        guard widths.count == 4, widths.allSatisfy({ $0 > 0 }) else {
            throw UsageError("invalid value for '--widths': expected four positive integers, got \(widths)")
        }
        BLAS.threadCount = threads
        Parallel.workerCount = workers

        let supportCount = 8 * 5 * 5
        let queryCount = 8 * 5 * 6
        let batch = supportCount + queryCount
        let network = ResNet12(widths: widths, seed: 1)
        for conv in network.convolutions { conv.targetColumns = chunkColumns }
        let optimizer = SGD(parameters: network.parameters, learningRate: 0.1)
        var random = SeededRandom(seed: 2)
        let images = Tensor(shape: [batch, 3, 32, 32], scalars: (0..<(batch * 3 * 32 * 32)).map { _ in Float(random.nextNormal()) })
        let dimension = network.embeddingDimension()
        let dEmbeddings = Tensor(shape: [batch, dimension], scalars: (0..<(batch * dimension)).map { _ in Float(random.nextNormal()) * 1e-3 })

        var stepSeconds: [Double] = []
        for iteration in 0...repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            optimizer.zeroGradients()
            _ = network.forward(images, normalizationGroups: [supportCount, queryCount])
            _ = network.backward(dEmbeddings)
            optimizer.step()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if iteration > 0 { stepSeconds.append(seconds) }
        }

        network.isTraining = false
        let evalImages = Tensor(shape: [80, 3, 32, 32], scalars: Array(images.scalars[0..<(80 * 3 * 32 * 32)]))
        var evalSeconds: [Double] = []
        for iteration in 0...evalRepeats {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = network.forward(evalImages)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if iteration > 0 { evalSeconds.append(seconds) }
        }
        let peakMegabytes = peakResidentMegabytes()

        let step = median(stepSeconds)
        let forwardGFLOPPerImage = forwardFLOPsPerImage(widths: widths) / 1e9
        let stepGFLOP = 3 * forwardGFLOPPerImage * Double(batch)
        let evaluation = median(evalSeconds)
        print("backbone ResNet-12 widths \(widths.map(String.init).joined(separator: "-")), \(threads) OpenBLAS threads, \(workers) workers, chunks of \(chunkColumns) columns")
        print(String(format: "FLOP count: %.4g GFLOP per image forward, %.4g GFLOP per training step", forwardGFLOPPerImage, stepGFLOP))
        print(String(format: "training step, %d images: %.3f s median of %d (min %.3f), %.1f images/s, %.1f GFLOP/s",
                     batch, step, repeats, stepSeconds.min()!, Double(batch) / step, stepGFLOP / step))
        print(String(format: "evaluation forward, 80 images: %.1f ms median of %d", evaluation * 1000, evalRepeats))
        if sgemmSize > 0 {
            let sgemm = measureSGEMM(size: sgemmSize, repeats: 5)
            print(String(format: "sgemm %d^3: %.1f GFLOP/s; training step at %.0f%% of it", sgemmSize, sgemm, 100 * stepGFLOP / step / sgemm))
        }
        print(String(format: "peak resident memory: %.0f MB (training step and evaluation)", peakMegabytes))
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// Returns the process's peak resident set size so far in MB. On Linux getrusage reports it in KiB.
    static func peakResidentMegabytes() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) * 1024 / 1e6
    }
}
