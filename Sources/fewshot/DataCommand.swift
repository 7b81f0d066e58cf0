import FewShot
import FewShotData
import Foundation
import TensorCore

/// `fewshot data <subcommand>`: inspect, look at and download the dataset.
enum DataCommand: Command {
    static let name = "data"
    static let abstract = "Check, show or download the CIFAR-100 data."
    static let subcommands: [Command.Type] = [
        DataCheckCommand.self,
        DataShowCommand.self,
        DataFetchCommand.self,
    ]
}

/// The options every data command shares for finding the dataset.
let dataLocationOptions: [OptionSpec] = [
    OptionSpec(name: "data", valueName: "<dir>", help: "CIFAR-100 binary folder; overrides FEWSHOT_DATA_DIR and the config's data.root."),
    OptionSpec(name: "config", valueName: "<file>", help: "JSON config whose data.root names the data folder.", defaultValue: "none, so data.root is \(DataLocator.defaultRoot)"),
]

/// `--data` and a `--config` whose whole data section (root, format, dataset, split) applies.
let dataSectionOptions: [OptionSpec] = [
    dataLocationOptions[0],
    OptionSpec(name: "config", valueName: "<file>", help: "JSON config whose data section (root, format, dataset, split) chooses the data, as train reads it.", defaultValue: "none: CIFAR-100 binary at \(DataLocator.defaultRoot)"),
]

/// Returns a locator from `--data`, the environment and `--config`'s `data.root`.
func makeDataLocator(_ arguments: ParsedArguments) throws -> DataLocator {
    var configRoot: String? = nil
    if let configPath = arguments.string("config") {
        configRoot = try readDataRoot(fromConfig: configPath)
    }
    return DataLocator(flag: arguments.string("data"), configRoot: configRoot)
}

/// Returns the `data.root` string of a JSON config, or nil when it sets none.
///
/// NOTE: reads only this one key; the trainer's config type validates the rest.
func readDataRoot(fromConfig path: String) throws -> String? {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw UsageError("config file '\(path)' is missing or unreadable; check the path given to --config")
    }
    guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw UsageError("config file '\(path)' is not a JSON object; fix its syntax")
    }
    guard let dataSection = object["data"] else { return nil }
    guard let section = dataSection as? [String: Any] else {
        throw UsageError("config file '\(path)': 'data' must be an object such as {\"root\": \"\(DataLocator.defaultRoot)\"}")
    }
    guard let root = section["root"] else { return nil }
    guard let text = root as? String else {
        throw UsageError("config file '\(path)': 'data.root' must be a string naming a folder")
    }
    return text
}

/// `fewshot data check`: validates the dataset and prints what each split contains.
enum DataCheckCommand: Command {
    static let name = "check"
    static let abstract = "Validate the CIFAR-100 files and print each benchmark split's classes and images."
    static let options: [OptionSpec] = dataSectionOptions + [
        .flag("skip-checksums", help: "Do not verify SHA256SUMS, even when the folder has one."),
    ]
    static let discussion = """
        Checks record counts, labels and names, verifies SHA256SUMS when present, and lists CIFAR-FS and FC100.
        With --config it lists the configured dataset only: CIFAR-FS, FC100 or the custom data.split, or, for data.format png-folders, the train, val and test folders after decoding every image.
        """

    static func run(_ arguments: ParsedArguments) throws {
        try arguments.rejectPositionals()
        guard let configPath = arguments.string("config") else {
            let locator = try makeDataLocator(arguments)
            let dataset = try checkBinaryFiles(locator, skipChecksums: arguments.flag("skip-checksums"))
            for benchmark in FewShotBenchmark.allCases {
                try printBenchmarkSplits(benchmark, in: dataset)
            }
            return
        }

        let data = try TrainingConfig.load(from: URL(fileURLWithPath: configPath)).data
        let locator = DataLocator(flag: arguments.string("data"), configRoot: data.root)
        if data.format == "png-folders" {
            let (root, origin) = locator.candidate()
            print("data: \(root.path) (from \(origin)), format png-folders")
            let benchmarkData = try BenchmarkData.load(data, dataFlag: arguments.string("data"))
            var imageCount = 0
            for split in DataSplit.allCases {
                let source = benchmarkData.source(split)
                print(splitSummary(benchmarkData.displayName, split, source))
                imageCount += source.totalImageCount
            }
            print("\(benchmarkData.displayName): all \(counted(imageCount, "image")) decoded, each \(benchmarkData.train.width) x \(benchmarkData.train.height) pixels")
            return
        }

        let dataset = try checkBinaryFiles(locator, skipChecksums: arguments.flag("skip-checksums"))
        if let custom = data.split {
            let labels = try custom.resolvedLabels(in: dataset)
            for split in DataSplit.allCases {
                print(splitSummary("custom split", split, try custom.source(split, in: dataset)))
            }
            print("custom split: splits are disjoint, \(labels.values.map(\.count).reduce(0, +)) classes in all")
        } else if let benchmark = FewShotBenchmark(rawValue: data.dataset) {
            try printBenchmarkSplits(benchmark, in: dataset)
        } else {
            throw CommandFailure("config file '\(configPath)': data.dataset '\(data.dataset)' names no benchmark and the config has no data.split; set data.dataset to cifarfs or fc100, or give data.split")
        }
    }

    /// Loads and validates the CIFAR-100 binary files, printing what was checked.
    static func checkBinaryFiles(_ locator: DataLocator, skipChecksums: Bool) throws -> CIFAR100 {
        let directory = try locator.locate()
        print("data: \(directory.path) (from \(locator.candidate().source))")

        let dataset = try CIFAR100.load(from: directory)
        try dataset.verifyOfficialCounts(directory: directory)
        print("records: train.bin \(dataset.trainCount), test.bin \(dataset.testCount); \(dataset.fineLabelNames.count) fine and \(dataset.coarseLabelNames.count) coarse classes, 600 images in every fine class")

        if skipChecksums {
            print("SHA256SUMS: skipped (--skip-checksums)")
        } else if let results = try SHA256.verifyChecksums(in: directory) {
            print("SHA256SUMS: \(counted(results.count, "file")) \(results.count == 1 ? "matches" : "match") (\(results.map(\.fileName).joined(separator: ", ")))")
        } else {
            print("SHA256SUMS: none in the folder, checksums not verified")
        }
        return dataset
    }

    /// Prints a benchmark's three splits and checks that no class is in two of them.
    static func printBenchmarkSplits(_ benchmark: FewShotBenchmark, in dataset: CIFAR100) throws {
        var seen: [Int: DataSplit] = [:]
        for split in DataSplit.allCases {
            var line = splitSummary(benchmark.displayName, split, try benchmark.source(split, in: dataset))
            let superclasses = benchmark.superclasses(split)
            if !superclasses.isEmpty {
                line += "; superclasses: \(superclasses.map(\.name).joined(separator: ", "))"
            }
            print(line)
            for fineClass in benchmark.classes(split) {
                if let other = seen[fineClass.label] {
                    throw CommandFailure("\(benchmark.displayName): class '\(fineClass.name)' is in both \(other.rawValue) and \(split.rawValue)")
                }
                seen[fineClass.label] = split
            }
        }
        print("\(benchmark.displayName): splits are disjoint, \(seen.count) classes in all")
    }

    /// One split's classes and images, such as "CIFAR-FS val: 16 classes x 600 images = 9600".
    static func splitSummary(_ name: String, _ split: DataSplit, _ source: ImageSource) -> String {
        let counts = (0..<source.classCount).map { source.imageCount(inClass: $0) }
        let perClass = Set(counts).count == 1 ? "\(counts[0])" : "\(counts.min()!)-\(counts.max()!)"
        let imageWord = perClass == "1" ? "image" : "images"
        return "\(name) \(split.rawValue): \(source.classCount) \(source.classCount == 1 ? "class" : "classes") x \(perClass) \(imageWord) = \(source.totalImageCount)"
    }
}

extension BenchmarkData {
    /// The image source of one split.
    func source(_ split: DataSplit) -> ImageSource {
        switch split {
        case .train: return train
        case .validation: return validation
        case .test: return test
        }
    }
}

/// `fewshot data show`: writes one sampled episode as a PNG grid.
enum DataShowCommand: Command {
    static let name = "show"
    static let abstract = "Write a PNG grid of one sampled episode, as the network sees it."
    static let options: [OptionSpec] = dataSectionOptions + [
        OptionSpec(name: "benchmark", valueName: "<name>", help: "Benchmark to sample from; not with --config, whose data section chooses the dataset.", defaultValue: "cifarfs", allowedValues: FewShotBenchmark.allCases.map(\.rawValue)),
        OptionSpec(name: "split", valueName: "<name>", help: "Split to sample from.", defaultValue: "train", allowedValues: DataSplit.allCases.map(\.rawValue)),
        OptionSpec(name: "images", valueName: "<dir>", help: "Sample from a PNG folder <dir>/<class>/*.png instead of a benchmark split."),
        OptionSpec(name: "way", valueName: "<n>", help: "Classes in the episode.", defaultValue: "5"),
        OptionSpec(name: "shot", valueName: "<n>", help: "Support images per class.", defaultValue: "5"),
        OptionSpec(name: "query", valueName: "<n>", help: "Query images per class.", defaultValue: "6"),
        OptionSpec(name: "seed", valueName: "<n>", help: "Seed of the episode and augmentation draws.", defaultValue: "1"),
        OptionSpec(name: "scale", valueName: "<n>", help: "Pixel magnification of the grid.", defaultValue: "3"),
        .flag("augment", help: "Apply the training augmentation (crop, jitter, flip) before showing."),
        OptionSpec(name: "output", valueName: "<file>", help: "PNG file to write.", defaultValue: "episode.png"),
    ]
    static let discussion = """
        Each row is one class of the episode: its support images, a gap, then its query images.
        The images are the loader's normalised output mapped back to 8 bits, so padding and jitter show as they reach the network.
        """

    static func run(_ arguments: ParsedArguments) throws {
        try arguments.rejectPositionals()
        let way = try arguments.int("way", range: 2...100) ?? 5
        let shot = try arguments.int("shot", range: 1...600) ?? 5
        let query = try arguments.int("query", range: 0...600) ?? 6
        let seed = try arguments.int("seed", range: 0...Int.max) ?? 1
        let scale = try arguments.int("scale", range: 1...16) ?? 3
        let output = arguments.string("output") ?? "episode.png"
        let split = DataSplit(rawValue: arguments.string("split") ?? "train")!
        let benchmark = FewShotBenchmark(rawValue: arguments.string("benchmark") ?? "cifarfs")!

        let source: ImageSource
        let sourceName: String
        if let folder = arguments.string("images") {
            source = try ImageSource.pngFolder(URL(fileURLWithPath: folder))
            sourceName = folder
        } else if let configPath = arguments.string("config") {
            if arguments.string("benchmark") != nil {
                throw UsageError("'--benchmark' and '--config' both choose the dataset; drop '--benchmark' to use the config's data section, or drop '--config'")
            }
            let data = try TrainingConfig.load(from: URL(fileURLWithPath: configPath)).data
            let benchmarkData = try BenchmarkData.load(data, dataFlag: arguments.string("data"))
            source = benchmarkData.source(split)
            sourceName = "\(benchmarkData.displayName) \(split.rawValue)"
        } else {
            let directory = try makeDataLocator(arguments).locate()
            source = try benchmark.source(split, in: CIFAR100.load(from: directory))
            sourceName = "\(benchmark.displayName) \(split.rawValue)"
        }
        let loader = try EpisodeLoader(
            source: source, shape: EpisodeShape(way: way, shot: shot, queryCount: query), episodesPerBatch: 1,
            augmentation: arguments.flag("augment") ? .standard : nil, seed: UInt64(seed), prefetch: false)
        let batch = loader.next()
        let grid = episodeGrid(batch, height: source.height, width: source.width, scale: scale, normalization: loader.normalization)
        try PNG.write(grid, to: URL(fileURLWithPath: output))

        print("wrote \(output): \(grid.width) x \(grid.height) pixels, \(sourceName), \(way)-way \(shot)-shot \(query)-query, \(arguments.flag("augment") ? "augmented" : "not augmented"), seed \(seed)")
        for (label, classIndex) in batch.episodes[0].classes.enumerated() {
            print("row \(label + 1): \(source.classNames[classIndex])")
        }
    }

    /// Lays out one episode: a row per label with its support images, a gap, then its query images.
    static func episodeGrid(_ batch: EpisodeBatch, height: Int, width: Int, scale: Int, normalization: Normalization) -> RGBImage {
        let shape = batch.episodes[0].shape
        let margin = 2, gap = 10
        let cellHeight = height * scale, cellWidth = width * scale
        let gridWidth = margin + shape.shot * (cellWidth + margin) + (shape.queryCount > 0 ? gap + shape.queryCount * (cellWidth + margin) : 0)
        let gridHeight = margin + shape.way * (cellHeight + margin)
        var pixels = [UInt8](repeating: 96, count: 3 * gridWidth * gridHeight)
        let plane = gridWidth * gridHeight

        func paste(_ tensor: Tensor, image: Int, top: Int, left: Int) {
            let imageFloats = 3 * height * width
            for channel in 0..<3 {
                for y in 0..<cellHeight {
                    for x in 0..<cellWidth {
                        let value = tensor.scalars[image * imageFloats + (channel * height + y / scale) * width + x / scale]
                        let unit = value * normalization.std[channel] + normalization.mean[channel]
                        pixels[channel * plane + (top + y) * gridWidth + left + x] = UInt8(max(0, min(255, (unit * 255).rounded())))
                    }
                }
            }
        }

        for label in 0..<shape.way {
            let top = margin + label * (cellHeight + margin)
            for index in 0..<shape.shot {
                paste(batch.support, image: label * shape.shot + index, top: top, left: margin + index * (cellWidth + margin))
            }
            let queryLeft = margin + shape.shot * (cellWidth + margin) + gap
            for index in 0..<shape.queryCount {
                paste(batch.query, image: label * shape.queryCount + index, top: top, left: queryLeft + index * (cellWidth + margin))
            }
        }
        return RGBImage(height: gridHeight, width: gridWidth, pixels: pixels)
    }
}

/// `fewshot data fetch`: downloads and unpacks the official CIFAR-100 binary release.
enum DataFetchCommand: Command {
    static let name = "fetch"
    static let abstract = "Download cifar-100-binary.tar.gz, unpack it and check it before use."
    static let options: [OptionSpec] = dataLocationOptions + [
        OptionSpec(name: "url", valueName: "<url>", help: "HTTP or HTTPS address of the archive.", defaultValue: DatasetDownload.officialURL.absoluteString),
        OptionSpec(name: "timeout", valueName: "<seconds>", help: "Give up when the server sends nothing for this long.", defaultValue: "60"),
    ]
    static let discussion = """
        The files go to the folder that --data, FEWSHOT_DATA_DIR or the config's data.root names (default \(DataLocator.defaultRoot)).
        The archive is unpacked beside it and checked (50,000 + 10,000 records, 600 images per class) before the folder appears.
        """

    static func run(_ arguments: ParsedArguments) throws {
        try arguments.rejectPositionals()
        let locator = try makeDataLocator(arguments)
        let text = arguments.string("url") ?? DatasetDownload.officialURL.absoluteString
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil else {
            throw UsageError("invalid value '\(text)' for '--url': expected an http:// or https:// address")
        }
        let timeout = try arguments.double("timeout") ?? 60
        guard timeout > 0 else {
            throw UsageError("invalid value \(timeout) for '--timeout': expected a positive number of seconds")
        }
        let (directory, source) = locator.candidate()
        if DataLocator.missingFiles(in: directory) == [] {
            // Repeat the option that chose the folder, so the suggested commands read the same one.
            var location = ""
            if let dataFlag = arguments.string("data") {
                location = " --data \(shellQuoted(dataFlag))"
            } else if let configPath = arguments.string("config") {
                location = " --config \(shellQuoted(configPath))"
            }
            print("\(directory.path) (from \(source)) already contains \(CIFAR100.fileNames.joined(separator: ", ")); nothing to download. Run 'fewshot data check\(location)' to validate the files, or delete the folder and run 'fewshot data fetch\(location)' again to download a fresh copy.")
            return
        }
        printDiagnostic("downloading \(url.absoluteString) to \(directory.path) (from \(source))")

        let bar = ProgressBar()
        let result: DatasetDownload.Result
        do {
            result = try DatasetDownload.fetch(from: url, into: directory, timeout: timeout) { received, expected in
                bar.update(received: received, expected: expected)
            }
        } catch {
            bar.finish()
            throw error
        }
        bar.finish()
        print("fetched \(result.downloadedBytes) bytes into \(result.directory.path): train.bin \(result.trainCount) records, test.bin \(result.testCount) records, checked")
    }
}

/// Returns `text` as one shell word: unchanged when it is plain, else in single quotes.
func shellQuoted(_ text: String) -> String {
    let plain = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@+,")
    if !text.isEmpty && text.unicodeScalars.allSatisfy({ plain.contains($0) }) { return text }
    return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// Download progress on stderr. On a terminal it is one line, redrawn with a
/// carriage return when the percentage (or, without a known total, the count
/// of whole megabytes) changes. Elsewhere, such as a pipe or a log file, it
/// writes a whole line at every 10 percent (or every 10 MB) instead.
final class ProgressBar: @unchecked Sendable {
    private var lastDrawn = -1
    private var drewSomething = false
    private var finished = false
    private let isTerminal: Bool
    private let lock = NSLock()

    init(isTerminal: Bool = isatty(STDERR_FILENO) == 1) {
        self.isTerminal = isTerminal
    }

    func update(received: Int64, expected: Int64?) {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        let megabytes = Double(received) / 1e6
        let granularity = isTerminal ? 1 : 10
        if let expected, expected > 0 {
            let percent = Int(100 * received / expected) / granularity * granularity
            guard percent != lastDrawn else { return }
            lastDrawn = percent
            let filled = percent * 30 / 100
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: 30 - filled)
            draw(String(format: "[%@] %3d%% %.1f / %.1f MB", bar, percent, megabytes, Double(expected) / 1e6))
        } else {
            let step = Int(megabytes) / granularity * granularity
            guard step != lastDrawn else { return }
            lastDrawn = step
            draw(String(format: "%.1f MB received", megabytes))
        }
    }

    /// Ends the progress line, so that what follows on stderr starts a line of its own.
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if drewSomething && isTerminal && !finished { FileHandle.standardError.write(Data("\n".utf8)) }
        finished = true
    }

    private func draw(_ line: String) {
        drewSomething = true
        FileHandle.standardError.write(Data((isTerminal ? "\r\(line)" : "\(line)\n").utf8))
    }
}
