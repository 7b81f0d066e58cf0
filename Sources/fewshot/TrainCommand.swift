import FewShot
import FewShotData
import Foundation

/// `fewshot train`: meta-trains a backbone and head from a config, or resumes a run.
enum TrainCommand: Command {
    static let name = "train"
    static let abstract = "Meta-train a ResNet-12 with a few-shot head; writes a run folder under Runs/."
    static let options: [OptionSpec] = [
        OptionSpec(name: "config", valueName: "<file>", help: "Training config (JSON), for example Configs/cifarfs-quick.json. Either --config or --resume is required."),
        OptionSpec(name: "resume", valueName: "<run folder>", help: "Continue this run from its last checkpoint, with its own config; a run with no checkpoint starts again from step 0. Either --config or --resume is required."),
        OptionSpec(name: "data", valueName: "<dir>", help: "Data folder (CIFAR-100 binary, or the PNG root for data.format png-folders); overrides FEWSHOT_DATA_DIR and the config's data.root. A new run records the folder it used as data.root in its config.json, so --resume finds it without --data."),
        OptionSpec(name: "runs", valueName: "<dir>", help: "Folder that contains the run folders.", defaultValue: "Runs"),
        OptionSpec(name: "name", valueName: "<name>", help: "Run folder name.", defaultValue: "<config name>-<UTC time>, with -2, -3 and so on added when that folder exists"),
        OptionSpec(name: "head", valueName: "<kind>", help: "Override the config's head.kind.", allowedValues: TrainingConfig.headKinds),
        OptionSpec(name: "threads", valueName: "<n>", help: "Override the config's threads (0: every processor)."),
        .flag("fetch", help: "When the CIFAR-100 folder is missing, download the official release there first (about 161 MB)."),
        OptionSpec(name: "fetch-url", valueName: "<url>", help: "Address --fetch downloads from.", defaultValue: DatasetDownload.officialURL.absoluteString),
    ]
    static let discussion = """
        Writes Runs/<name>/: config.json (resolved), log.txt, metrics.csv (one row per
        epoch), steps.csv (one row per step), last.safetensors, best.safetensors (best
        validation accuracy) and curves.png. On a terminal a progress bar shows rate
        and ETA on stderr; otherwise a log line is printed every training.logEverySteps.
        Both report training images per second over the epoch's steps, as metrics.csv does.

        SIGINT (Ctrl-C) or SIGTERM stops the run after the current step, writes
        last.safetensors, logs where it stopped and exits with 130 or 143; a second
        signal ends it at once, after one line on stderr and in log.txt, and the run
        resumes from its last checkpoint. Resuming continues at the next step, exactly
        as if the run had not stopped.

        EXAMPLES:
          fewshot train --config Configs/cifarfs-quick.json
          fewshot train --resume Runs/cifarfs-quick-20261204-215000
        """

    static func run(_ arguments: ParsedArguments) throws {
        try arguments.rejectPositionals()
        let threads = try arguments.int("threads", range: 0...256)
        let resumePath = arguments.string("resume")
        let configPath = arguments.string("config")
        switch (configPath, resumePath) {
        case (nil, nil): throw UsageError("'fewshot train' needs --config <file> or --resume <run folder>")
        case (.some, .some): throw UsageError("'fewshot train' takes either --config or --resume, not both (a resumed run uses its own config.json)")
        default: break
        }
        if resumePath != nil, arguments.string("name") != nil || arguments.string("head") != nil {
            throw UsageError("--name and --head cannot change a resumed run")
        }

        let run: RunDirectory?
        var config: TrainingConfig
        if let resumePath {
            let opened = try RunDirectory.open(URL(fileURLWithPath: resumePath))
            run = opened
            config = try opened.loadConfig()
        } else {
            run = nil
            config = try TrainingConfig.load(from: URL(fileURLWithPath: configPath!))
            if let head = arguments.string("head") { config.head.kind = head }
        }
        if let threads { config.threads = threads }

        applyThreadCount(config.threads)
        try fetchDataIfMissing(config.data, arguments: arguments)
        let data = try BenchmarkData.load(config.data, dataFlag: arguments.string("data"))
        printDiagnostic("data: \(data.displayName), \(data.train.classCount) training, \(data.validation.classCount) validation and \(data.test.classCount) test classes")
        // Too small a split stops the run here, before a run folder exists.
        try data.checkTrainingEpisodes(config)
        if let shortfall = data.testEpisodeShortfall(config) {
            printDiagnostic("warning: \(shortfall); training goes on, but 'fewshot eval' needs --shots, --way or --query to fit")
        }

        let runDirectory: RunDirectory
        if let run {
            runDirectory = run
        } else {
            // A resumed run finds its data again through the absolute data.root
            // in its config.json, unless --data or FEWSHOT_DATA_DIR is given.
            config.data.root = data.root.path
            let root = URL(fileURLWithPath: arguments.string("runs") ?? "Runs")
            if let runName = arguments.string("name") {
                runDirectory = try RunDirectory.create(root: root, name: runName, config: config)
            } else {
                runDirectory = try RunDirectory.createUnique(root: root, baseName: "\(config.name)-\(compactTimestamp())", config: config)
            }
        }

        let trainer = try Trainer(config: config, sources: data.trainingSources, run: runDirectory, resume: run != nil)
        let display = ProgressDisplay()
        trainer.onLog = { line, kind in display.log(line, kind: kind) }
        trainer.onProgress = { display.show($0) }
        let interruption = InterruptionMonitor(signals: [SIGINT, SIGTERM])
        trainer.isInterrupted = { interruption.receivedSignal != nil }
        // The monitor calls this on a dispatch queue, not in a signal handler,
        // so writing to stderr and appending to log.txt are safe here.
        let runPath = runDirectory.url.path
        let logDirectory = runDirectory
        interruption.onSecondSignal = { signalNumber in
            let name: String
            switch signalNumber {
            case SIGINT: name = "SIGINT"
            case SIGTERM: name = "SIGTERM"
            default: name = "signal \(signalNumber)"
            }
            let line = "second \(name) received: stopping at once without saving the current epoch; resume from the last checkpoint with: fewshot train --resume \(runPath)"
            let clear = isatty(STDERR_FILENO) != 0 ? "\r\u{1B}[K" : ""
            FileHandle.standardError.write(Data((clear + line + "\n").utf8))
            try? logDirectory.appendLog(line)
        }
        do {
            try trainer.train()
        } catch {
            display.finish()
            if case RunError.interrupted = error, let signal = interruption.receivedSignal {
                printDiagnostic("\(error)")
                exit(128 + signal)
            }
            throw error
        }
        display.finish()
        print("run folder: \(runDirectory.url.path)")
    }
}

/// Downloads CIFAR-100 into the located data folder when it is missing and
/// either `--fetch` is given or the user accepts the offer on a terminal.
private func fetchDataIfMissing(_ data: TrainingConfig.DataSection, arguments: ParsedArguments) throws {
    guard data.format == "cifar100-binary" else { return }
    let locator = BenchmarkData.locator(for: data, dataFlag: arguments.string("data"))
    let (directory, source) = locator.candidate()
    guard DataLocator.missingFiles(in: directory).map({ !$0.isEmpty }) ?? true else { return }

    let text = arguments.string("fetch-url") ?? DatasetDownload.officialURL.absoluteString
    guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil else {
        throw UsageError("invalid value '\(text)' for '--fetch-url': expected an http:// or https:// address")
    }
    var accepted = arguments.flag("fetch")
    if !accepted, isatty(STDIN_FILENO) != 0, isatty(STDERR_FILENO) != 0 {
        FileHandle.standardError.write(Data("CIFAR-100 binary data not found at \(directory.path) (from \(source)). Download it from \(url.absoluteString) (about 161 MB)? [y/N] ".utf8))
        accepted = (readLine() ?? "").lowercased().hasPrefix("y")
    }
    guard accepted else { return }

    printDiagnostic("downloading \(url.absoluteString) to \(directory.path) (from \(source))")
    let bar = ProgressBar()
    let result = try DatasetDownload.fetch(from: url, into: directory) { received, expected in
        bar.update(received: received, expected: expected)
    }
    bar.finish()
    printDiagnostic("fetched \(result.downloadedBytes) bytes: train.bin \(result.trainCount) records, test.bin \(result.testCount) records, checked")
}

/// Records the first SIGINT or SIGTERM so training can stop after its current
/// step; a second signal of either kind calls `onSecondSignal`, then ends the
/// process at once, as if no handler were installed.
final class InterruptionMonitor: @unchecked Sendable {
    private let lock = NSLock()
    private var signalNumber: Int32? = nil
    private var sources: [DispatchSourceSignal] = []
    private var secondSignalHandler: (@Sendable (Int32) -> Void)? = nil

    init(signals: [Int32]) {
        for signalNumber in signals {
            // Dispatch sources see a signal only while its default action is ignored.
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            // `data` counts the signals merged into one event, so two quick ones still count as two.
            // The handler keeps its source alive, as the monitor does for the whole run.
            source.setEventHandler { [weak self, source] in self?.record(signalNumber, count: Int(source.data)) }
            source.resume()
            sources.append(source)
        }
    }

    /// Called with the signal number just before a second signal ends the process.
    /// It runs on a dispatch queue, not in a signal handler, so it may write files.
    var onSecondSignal: (@Sendable (Int32) -> Void)? {
        get {
            lock.lock()
            defer { lock.unlock() }
            return secondSignalHandler
        }
        set {
            lock.lock()
            secondSignalHandler = newValue
            lock.unlock()
        }
    }

    /// The first signal received, or nil.
    var receivedSignal: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return signalNumber
    }

    private func record(_ received: Int32, count: Int) {
        lock.lock()
        let isSecond = signalNumber != nil || count > 1
        if signalNumber == nil { signalNumber = received }
        let handler = secondSignalHandler
        lock.unlock()
        if isSecond {
            handler?(received)
            signal(received, SIG_DFL)
            kill(getpid(), received)
        }
    }
}

/// Returns the UTC time as `20261204-215003`, for run folder names.
func compactTimestamp() -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyyMMdd-HHmmss"
    return formatter.string(from: Date())
}

/// Shows training progress: a single redrawn bar on stderr when stderr is a
/// terminal, otherwise plain log lines on stdout.
final class ProgressDisplay {
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private var barVisible = false
    private var lastDraw = Date.distantPast

    func log(_ line: String, kind: LogKind) {
        if isTerminal && kind == .step { return }
        clearBar()
        print(line)
    }

    func show(_ progress: StepProgress) {
        guard isTerminal else { return }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) >= 0.2 || progress.stepInEpoch == progress.stepsPerEpoch else { return }
        lastDraw = now
        let width = 24
        let filled = width * progress.stepInEpoch / progress.stepsPerEpoch
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        let text = String(format: "epoch %d/%d [", progress.epoch, progress.epochs) + bar
            + String(format: "] %d/%d loss %.4f acc %.1f%% %.1f img/s ETA ", progress.stepInEpoch, progress.stepsPerEpoch,
                     progress.loss, progress.accuracyPercent, progress.imagesPerSecond)
            + formatDuration(progress.etaSeconds)
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + text).utf8))
        barVisible = true
    }

    func finish() {
        clearBar()
    }

    private func clearBar() {
        guard barVisible else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        barVisible = false
    }
}
