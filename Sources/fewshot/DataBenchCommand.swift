import FewShotData
import Foundation
import TensorCore

/// `fewshot bench data`: how long the loader takes to prepare one batch of episodes.
enum DataBenchCommand: Command {
    static let name = "data"
    static let abstract = "Time the preparation of one batch of augmented episodes."
    static let options: [OptionSpec] = dataLocationOptions + [
        OptionSpec(name: "benchmark", valueName: "<name>", help: "Benchmark whose training split is sampled.", defaultValue: "cifarfs", allowedValues: FewShotBenchmark.allCases.map(\.rawValue)),
        .flag("synthetic", help: "Use random images (64 classes x 600) instead of the real data."),
        OptionSpec(name: "episodes", valueName: "<n>", help: "Episodes per batch.", defaultValue: "8"),
        OptionSpec(name: "way", valueName: "<n>", help: "Classes per episode.", defaultValue: "5"),
        OptionSpec(name: "shot", valueName: "<n>", help: "Support images per class.", defaultValue: "5"),
        OptionSpec(name: "query", valueName: "<n>", help: "Query images per class.", defaultValue: "6"),
        OptionSpec(name: "threads", valueName: "<n>", help: "Threads preparing one batch (0: every processor).", defaultValue: everyProcessorDefault),
        OptionSpec(name: "repeats", valueName: "<n>", help: "Timed batches; the median is printed.", defaultValue: "20"),
        OptionSpec(name: "step-ms", valueName: "<ms>", help: "Simulated training step for the prefetch check, in milliseconds.", defaultValue: "100"),
    ]
    static let discussion = "The defaults are the training recipe's batch: 8 episodes of 5-way 5-shot 6-query, 440 images."

    static func run(_ arguments: ParsedArguments) throws {
        try arguments.rejectPositionals()
        let episodes = try arguments.int("episodes", range: 1...1000) ?? 8
        let shape = EpisodeShape(
            way: try arguments.int("way", range: 2...100) ?? 5,
            shot: try arguments.int("shot", range: 1...600) ?? 5,
            queryCount: try arguments.int("query", range: 0...600) ?? 6)
        let threads = try arguments.threadCount()
        let repeats = try arguments.int("repeats", range: 1...10_000) ?? 20
        let stepMilliseconds = try arguments.int("step-ms", range: 0...60_000) ?? 100
        let benchmark = FewShotBenchmark(rawValue: arguments.string("benchmark") ?? "cifarfs")!

        let source: ImageSource
        let sourceName: String
        if arguments.flag("synthetic") {
            source = syntheticSource(classes: 64, imagesPerClass: 600)
            sourceName = "synthetic 64 x 600 images"
        } else {
            let directory = try makeDataLocator(arguments).locate()
            source = try benchmark.source(.train, in: CIFAR100.load(from: directory))
            sourceName = "\(benchmark.displayName) train"
        }
        let images = episodes * shape.imagesPerEpisode
        let label = "\(episodes) x \(shape.way)-way \(shape.shot)-shot \(shape.queryCount)-query = \(images) images, \(threads) thread\(threads == 1 ? "" : "s"), \(sourceName)"

        for (name, augmentation) in [("augmented", Augmentation.standard), ("normalised only", nil)] as [(String, Augmentation?)] {
            let loader = try EpisodeLoader(source: source, shape: shape, episodesPerBatch: episodes, augmentation: augmentation,
                                           seed: 1, prefetch: false, workerCount: threads)
            _ = loader.makeBatch(0)
            var milliseconds: [Double] = []
            for index in 1...repeats {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = loader.makeBatch(index)
                milliseconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            }
            milliseconds.sort()
            let median = milliseconds[milliseconds.count / 2]
            print(String(format: "batch %@ (%@): median %.1f ms, minimum %.1f ms, maximum %.1f ms, %.0f images/s",
                         name, label, median, milliseconds.first!, milliseconds.last!, Double(images) / median * 1000))
        }

        // With prefetch, next() should only wait when preparing a batch takes longer than the step.
        let loader = try EpisodeLoader(source: source, shape: shape, episodesPerBatch: episodes, augmentation: .standard,
                                       seed: 1, prefetch: true, workerCount: threads)
        _ = loader.next()
        var waits: [Double] = []
        for _ in 0..<min(repeats, 10) {
            usleep(UInt32(stepMilliseconds * 1000))
            let start = DispatchTime.now().uptimeNanoseconds
            _ = loader.next()
            waits.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        waits.sort()
        print(String(format: "prefetch: next() waited %.2f ms median after a %d ms simulated step (%d steps)",
                     waits[waits.count / 2], stepMilliseconds, waits.count))
    }

    /// Returns `classes` classes of random 3 x 32 x 32 images.
    static func syntheticSource(classes: Int, imagesPerClass: Int) -> ImageSource {
        var random = SeededRandom(seed: 7)
        let count = classes * imagesPerClass
        var pixels = [UInt8](repeating: 0, count: count * 3072)
        for index in pixels.indices {
            pixels[index] = UInt8(truncatingIfNeeded: random.next())
        }
        let indices = (0..<classes).map { Array($0 * imagesPerClass ..< ($0 + 1) * imagesPerClass) }
        return ImageSource(classNames: (0..<classes).map { "class\($0)" }, height: 32, width: 32, pixels: pixels, imageIndices: indices)
    }
}
