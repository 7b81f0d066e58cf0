import FewShot
import FewShotData
import Foundation

/// `fewshot eval`: test accuracy of a checkpoint on the benchmark's test classes.
enum EvalCommand: Command {
    static let name = "eval"
    static let abstract = "Test a checkpoint on test-class episodes: mean accuracy with the 95% interval."
    static let options: [OptionSpec] = [
        OptionSpec(name: "shots", valueName: "<n>", help: "Support examples per class.", defaultValue: "1", allowedValues: ["1", "5"]),
        OptionSpec(name: "episodes", valueName: "<n>", help: "Test episodes.", defaultValue: "the checkpoint config's test.episodes"),
        OptionSpec(name: "way", valueName: "<n>", help: "Classes per episode.", defaultValue: "the checkpoint config's test.way"),
        OptionSpec(name: "query", valueName: "<n>", help: "Query images per class.", defaultValue: "the checkpoint config's test.query"),
        OptionSpec(name: "checkpoint", valueName: "<file>", help: "Checkpoint to test.", defaultValue: "best.safetensors of the most recent run that has one"),
        OptionSpec(name: "runs", valueName: "<dir>", help: "Folder searched for the most recent run.", defaultValue: "Runs"),
        OptionSpec(name: "data", valueName: "<dir>", help: "Data folder (CIFAR-100 binary, or the PNG root for data.format png-folders); overrides FEWSHOT_DATA_DIR and the config's data.root."),
        OptionSpec(name: "seed", valueName: "<n>", help: "Seed of the test episodes.", defaultValue: "1"),
        OptionSpec(name: "threads", valueName: "<n>", help: "Worker threads (0: every processor).", defaultValue: "the checkpoint config's threads"),
    ]
    static let discussion = """
        The model, dataset and head come from the config stored in the checkpoint, and so
        do the defaults of --episodes, --way and --query (its test section, which defaults
        to 1000 episodes, 5-way, 15 queries); the shot count is always --shots.
        Episode k depends only on the seed and k, so runs with the same seed see the same
        episodes. When the checkpoint lies in a run folder, the result is also written
        there as eval-<checkpoint>-<shots>shot.json, for example eval-best-5shot.json
        for best.safetensors and eval-last-5shot.json for last.safetensors.
        """

    static func run(_ arguments: ParsedArguments) throws {
        try arguments.rejectPositionals()
        let shot = try arguments.int("shots") ?? 1
        let episodesOption = try arguments.int("episodes", range: 1...1_000_000)
        let wayOption = try arguments.int("way", range: 2...64)
        let queryOption = try arguments.int("query", range: 1...100)
        let seed = try arguments.int("seed", range: 0...(1 << 53)) ?? 1
        let threads = try arguments.int("threads", range: 0...256)

        let checkpointURL: URL
        if let path = arguments.string("checkpoint") {
            checkpointURL = URL(fileURLWithPath: path)
        } else {
            let runs = URL(fileURLWithPath: arguments.string("runs") ?? "Runs")
            let run = try RunDirectory.mostRecent(in: runs, requiringBestCheckpoint: true)
            checkpointURL = run.bestCheckpointURL
            printDiagnostic("using \(checkpointURL.path), the best checkpoint of the most recent run that has one")
        }

        let config = try FewShotModel.storedConfig(at: checkpointURL)
        let episodes = episodesOption ?? config.test.episodes
        let way = wayOption ?? config.test.way
        let query = queryOption ?? config.test.query
        applyThreadCount(threads ?? config.threads)
        let model = FewShotModel(config: config)
        let checkpoint = try model.load(from: checkpointURL)
        print("checkpoint: \(checkpointURL.path) (epoch \(checkpoint.epoch), step \(checkpoint.step), \(config.head.kind) head, widths \(config.backbone.widths))")

        let data = try BenchmarkData.load(config.data, dataFlag: arguments.string("data"))
        if let shortfall = evaluationShortfall(data.test, way: way, shot: shot, query: query) {
            throw CommandFailure(shortfall)
        }
        let isTerminal = isatty(STDERR_FILENO) != 0
        var lastShown = Date.distantPast
        let result = try evaluate(
            model, source: data.test, way: way, shot: shot, query: query, episodes: episodes, seed: UInt64(seed)
        ) { done in
            guard isTerminal, Date().timeIntervalSince(lastShown) >= 0.2 || done == episodes else { return }
            lastShown = Date()
            FileHandle.standardError.write(Data("\r\u{1B}[Kepisode \(done)/\(episodes)".utf8))
        }
        if isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }

        print(data.displayName + String(
            format: " test, %d-way %d-shot, %d queries per class, %d episodes: accuracy %.2f%% ± %.2f%% (95%% interval), %.1f s",
            way, shot, query, episodes, result.meanPercent, result.intervalPercent, result.seconds))

        let runFolder = checkpointURL.deletingLastPathComponent()
        if let run = try? RunDirectory.open(runFolder) {
            let object = result.jsonObject(extra: [
                "checkpoint": checkpointURL.path, "checkpoint_epoch": checkpoint.epoch, "checkpoint_step": checkpoint.step,
                "dataset": config.data.dataset, "head": config.head.kind, "seed": seed,
            ])
            let json = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            let url = run.evaluationURL(checkpoint: checkpointURL, shot: shot)
            try (json + Data("\n".utf8)).write(to: url, options: .atomic)
            print("wrote \(url.path)")
        }
    }
}

/// Returns why `source` cannot supply the requested test episodes, naming
/// the options that change them, or nil when it can.
private func evaluationShortfall(_ source: ImageSource, way: Int, shot: Int, query: Int) -> String? {
    guard let shortfall = BenchmarkData.episodeShortfall(split: "test", source: source, section: "test", way: way, shot: shot, query: query) else {
        return nil
    }
    switch shortfall {
    case let .tooFewClasses(_, classCount, _, _):
        return "test split has \(classCount) classes, but \(way)-way episodes need \(way); lower --way to \(classCount) or less"
    case let .tooFewImages(_, className, imageCount, _, _, _):
        return "test split: class '\(className)' has \(imageCount) images, but --shots \(shot) + --query \(query) need \(shot + query); lower --shots or --query"
    }
}
