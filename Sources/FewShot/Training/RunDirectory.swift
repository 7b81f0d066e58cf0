import Foundation

/// An error that stops a run folder from being created, found or updated, or a run from continuing.
public enum RunError: Error, CustomStringConvertible, Equatable {
    case alreadyExists(path: String)
    case notARun(path: String)
    /// The folder given to `--resume` does not exist.
    case runFolderNotFound(path: String)
    case noRuns(root: String)
    case runsFolderNotFound(root: String)
    /// Run folders exist under `root`, but none has a best checkpoint; `newest` is the most recently started.
    case noCheckpoint(root: String, newest: String)
    case writeFailed(path: String, reason: String)
    case nonFinite(epoch: Int, step: Int, what: String, lastCheckpoint: String?)
    /// The run stopped on request (SIGINT or SIGTERM) after finishing `step`.
    case interrupted(epoch: Int, step: Int, path: String)

    public var description: String {
        switch self {
        case let .alreadyExists(path):
            return "run folder \(path) already exists; resume it with 'fewshot train --resume \(path)' or choose another --name"
        case let .notARun(path):
            return "\(path) is not a run folder (it has no config.json); pass a folder under Runs/ that 'fewshot train' created"
        case let .runFolderNotFound(path):
            return "run folder \(path) does not exist; pass a folder under Runs/ that 'fewshot train' created, or start a new run with --config"
        case let .runsFolderNotFound(root):
            return "no runs found: the folder \(root) does not exist; train one with 'fewshot train --config Configs/cifarfs-quick.json', or pass --runs <dir> or --checkpoint <file>"
        case let .noRuns(root):
            return "no runs found in \(root); train one with 'fewshot train --config Configs/cifarfs-quick.json' or pass --checkpoint"
        case let .noCheckpoint(root, newest):
            return "no run in \(root) has a best checkpoint yet (none finished its first epoch); continue the newest with 'fewshot train --resume \(newest)' or pass --checkpoint <file>"
        case let .writeFailed(path, reason):
            return "cannot write \(path): \(reason)"
        case let .nonFinite(epoch, step, what, lastCheckpoint):
            let kept = lastCheckpoint.map { "the last good checkpoint \($0) is intact" } ?? "no checkpoint was written yet"
            return "training stopped at epoch \(epoch), step \(step): \(what); \(kept). Lower the learning rate or check the data, then resume with 'fewshot train --resume'"
        case let .interrupted(epoch, step, path):
            return "interrupted at epoch \(epoch), step \(step); resume with: fewshot train --resume \(path)"
        }
    }
}

/// The files of one training run under `Runs/<name>/`:
///
/// | file | contents |
/// |---|---|
/// | `config.json` | the resolved configuration |
/// | `log.txt` | every log line of the run, resumes included |
/// | `metrics.csv` | one row per epoch: losses, accuracies, validation interval, timing |
/// | `steps.csv` | one row per optimizer step: loss and accuracy, with the digits metrics.csv uses |
/// | `last.safetensors` | the checkpoint after the latest finished epoch, or after the step at which the run was interrupted |
/// | `best.safetensors` | the checkpoint with the best validation accuracy so far |
/// | `curves.png` | loss and accuracy per epoch |
/// | `eval-<checkpoint>-<shot>shot.json` | results of `fewshot eval` on this run, for example `eval-best-5shot.json` |
public struct RunDirectory: Sendable {
    public let url: URL

    public init(url: URL) {
        self.url = url
    }

    public var configURL: URL { url.appendingPathComponent("config.json") }
    public var logURL: URL { url.appendingPathComponent("log.txt") }
    public var metricsURL: URL { url.appendingPathComponent("metrics.csv") }
    public var stepsURL: URL { url.appendingPathComponent("steps.csv") }
    public var lastCheckpointURL: URL { url.appendingPathComponent("last.safetensors") }
    public var bestCheckpointURL: URL { url.appendingPathComponent("best.safetensors") }
    public var curvesURL: URL { url.appendingPathComponent("curves.png") }

    /// Returns where `fewshot eval` writes the result of `checkpoint` at `shot`
    /// shots: `eval-best-5shot.json` for best.safetensors, `eval-last-5shot.json` for last.safetensors.
    public func evaluationURL(checkpoint: URL, shot: Int) -> URL {
        url.appendingPathComponent("eval-\(checkpoint.deletingPathExtension().lastPathComponent)-\(shot)shot.json")
    }

    public static let metricsHeader = "epoch,step,learning_rate,train_loss,train_accuracy_percent,val_accuracy_percent,val_interval95_percent,lp_mean_residual,epoch_seconds,images_per_second"
    public static let stepsHeader = "step,epoch,loss,accuracy_percent,learning_rate,lp_max_residual"

    /// Creates `root/name` with the resolved config and empty CSV files; the folder must not exist.
    public static func create(root: URL, name: String, config: TrainingConfig) throws -> RunDirectory {
        let run = RunDirectory(url: root.appendingPathComponent(name))
        guard try claimFolder(run.url) else { throw RunError.alreadyExists(path: run.url.path) }
        try run.writeInitialFiles(config: config)
        return run
    }

    /// Creates `root/baseName` like `create`, or `baseName-2`, `baseName-3` and
    /// so on when that folder exists, as it does for runs started in the same second.
    public static func createUnique(root: URL, baseName: String, config: TrainingConfig) throws -> RunDirectory {
        for suffix in 1...10_000 {
            let run = RunDirectory(url: root.appendingPathComponent(suffix == 1 ? baseName : "\(baseName)-\(suffix)"))
            if try claimFolder(run.url) {
                try run.writeInitialFiles(config: config)
                return run
            }
        }
        throw RunError.alreadyExists(path: root.appendingPathComponent("\(baseName)-10000").path)
    }

    /// Creates the folder `url` and its parents. Returns false when `url`
    /// already exists; the final mkdir fails if another process made it first,
    /// so two runs never share a folder.
    private static func claimFolder(_ url: URL) throws -> Bool {
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            if FileManager.default.fileExists(atPath: url.path) { return false }
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
            return true
        } catch {
            if FileManager.default.fileExists(atPath: url.path) { return false }
            throw RunError.writeFailed(path: url.path, reason: describeFileError(error))
        }
    }

    private func writeInitialFiles(config: TrainingConfig) throws {
        do {
            try Data((config.jsonText() + "\n").utf8).write(to: configURL)
            try Data((Self.metricsHeader + "\n").utf8).write(to: metricsURL)
            try Data((Self.stepsHeader + "\n").utf8).write(to: stepsURL)
        } catch {
            throw RunError.writeFailed(path: url.path, reason: describeFileError(error))
        }
    }

    /// Opens an existing run folder, checking that it exists and has a config.
    public static func open(_ url: URL) throws -> RunDirectory {
        let run = RunDirectory(url: url.standardizedFileURL)
        guard FileManager.default.fileExists(atPath: run.url.path) else { throw RunError.runFolderNotFound(path: url.path) }
        guard FileManager.default.fileExists(atPath: run.configURL.path) else { throw RunError.notARun(path: url.path) }
        return run
    }

    /// Returns the run under `root` whose config.json was written last, that
    /// is the most recently started run. With `requiringBestCheckpoint`, only
    /// runs that have a best.safetensors count, so a run stopped in its first
    /// epoch does not hide an older finished one.
    public static func mostRecent(in root: URL, requiringBestCheckpoint: Bool = false) throws -> RunDirectory {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RunError.runsFolderNotFound(root: root.path)
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        var newest: (date: Date, run: RunDirectory)? = nil
        var newestWithCheckpoint: (date: Date, run: RunDirectory)? = nil
        for name in names {
            let run = RunDirectory(url: root.appendingPathComponent(name))
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: run.configURL.path),
                  let date = attributes[.modificationDate] as? Date
            else { continue }
            func isNewer(than other: (date: Date, run: RunDirectory)?) -> Bool {
                guard let other else { return true }
                return date > other.date || (date == other.date && name > other.run.url.lastPathComponent)
            }
            if isNewer(than: newest) { newest = (date, run) }
            if FileManager.default.fileExists(atPath: run.bestCheckpointURL.path), isNewer(than: newestWithCheckpoint) {
                newestWithCheckpoint = (date, run)
            }
        }
        guard let newest else { throw RunError.noRuns(root: root.path) }
        guard requiringBestCheckpoint else { return newest.run }
        guard let newestWithCheckpoint else { throw RunError.noCheckpoint(root: root.path, newest: newest.run.url.path) }
        return newestWithCheckpoint.run
    }

    /// Reads the resolved configuration.
    public func loadConfig() throws -> TrainingConfig {
        try TrainingConfig.load(from: configURL)
    }

    // MARK: Appending

    public func appendLog(_ line: String) throws {
        try append(line + "\n", to: logURL)
    }

    func append(_ text: String, to file: URL) throws {
        do {
            if !FileManager.default.fileExists(atPath: file.path) {
                try Data().write(to: file)
            }
            let handle = try FileHandle(forWritingTo: file)
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(text.utf8))
        } catch {
            throw RunError.writeFailed(path: file.path, reason: describeFileError(error))
        }
    }

    /// Removes CSV rows whose first column exceeds `limit`, so a resumed run
    /// does not repeat rows that the interrupted run wrote after its last checkpoint.
    func truncateRows(of file: URL, header: String, keepingFirstColumnAtMost limit: Int) throws {
        let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        var lines = [header]
        for line in text.split(separator: "\n").dropFirst() {
            guard let first = line.split(separator: ",").first, let value = Int(first), value <= limit else { continue }
            lines.append(String(line))
        }
        do {
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: file, options: .atomic)
        } catch {
            throw RunError.writeFailed(path: file.path, reason: describeFileError(error))
        }
    }

    /// Reads metrics.csv into rows of named numbers.
    public func readMetrics() -> [[String: Double]] {
        guard let text = try? String(contentsOf: metricsURL, encoding: .utf8) else { return [] }
        let lines = text.split(separator: "\n")
        guard let header = lines.first?.split(separator: ",").map(String.init) else { return [] }
        return lines.dropFirst().map { line in
            var row: [String: Double] = [:]
            for (key, value) in zip(header, line.split(separator: ",", omittingEmptySubsequences: false)) {
                row[key] = Double(value) ?? .nan
            }
            return row
        }
    }

    /// Reads the losses of steps.csv in step order.
    public func readStepLosses() -> [(step: Int, loss: Double)] {
        guard let text = try? String(contentsOf: stepsURL, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: ",")
            guard fields.count >= 3, let step = Int(fields[0]), let loss = Double(fields[2]) else { return nil }
            return (step, loss)
        }
    }
}
