import FewShotData
import Foundation
import NeuralNetwork
import TensorCore

/// The image sources a run trains and validates on.
public struct TrainingSources: Sendable {
    public var train: ImageSource
    public var validation: ImageSource

    public init(train: ImageSource, validation: ImageSource) {
        self.train = train
        self.validation = validation
    }
}

/// The position and rates of a run after one optimizer step, for progress display.
public struct StepProgress: Sendable {
    public var epoch: Int
    public var epochs: Int
    /// Steps finished in this epoch (1-based).
    public var stepInEpoch: Int
    public var stepsPerEpoch: Int
    /// Steps finished in the run.
    public var step: Int
    public var totalSteps: Int
    /// Mean training loss of the epoch so far.
    public var loss: Double
    /// Mean training accuracy of the epoch so far, in percent.
    public var accuracyPercent: Double
    /// Training images per second over this epoch's steps so far, validation
    /// excluded; its value after the last step is metrics.csv's images_per_second.
    public var imagesPerSecond: Double
    /// Estimated seconds until the run ends, validation included.
    public var etaSeconds: Double
}

/// The subject of a log line, so a terminal display can skip per-step lines
/// that its progress bar already shows.
public enum LogKind: Sendable {
    case step
    case summary
}

/// Meta-trains a `FewShotModel` episode by episode and keeps its run folder up to date.
///
/// Per optimizer step: one batch of `episodesPerStep` augmented training
/// episodes, the backbone over support and query images, the head, the
/// cross-entropy on the query logits, backward, and SGD (Nesterov momentum,
/// weight decay, the multistep learning rate of the epoch). After each epoch:
/// validation episodes with the 95% interval, a metrics row, the last
/// checkpoint and, when validation accuracy improved, the best checkpoint.
///
/// Everything random depends only on the seed and the step. Batch k of the
/// episode loader is a function of (seed, k), and so are the LP start points
/// of step k. The dropout generator's state is saved in checkpoints, so
/// `resume` continues a run exactly as if it had not stopped.
///
/// A non-finite loss, embedding or LP diagnostic stops training with
/// `RunError.nonFinite`, which names the epoch and step. Checkpoints are
/// written only with finite parameters, after an epoch finishes or on
/// interruption, so the last good one stays as it was.
public final class Trainer {
    public let config: TrainingConfig
    public let run: RunDirectory
    public let model: FewShotModel
    public let optimizer: SGD
    /// Receives every log line (also written to the run's log.txt).
    public var onLog: (String, LogKind) -> Void = { _, _ in }
    /// Receives the state after every optimizer step.
    public var onProgress: (StepProgress) -> Void = { _ in }
    /// Polled after every optimizer step and after every epoch's checkpoint.
    /// Returning true writes the last checkpoint (inside an epoch, with its
    /// running sums) and stops training with `RunError.interrupted`.
    public var isInterrupted: () -> Bool = { false }
    /// Test hook: returning true for a step index makes that step's loss NaN.
    var faultInjection: ((Int) -> Bool)? = nil

    private let sources: TrainingSources
    private var startEpoch = 0
    /// Steps finished before this session: `startEpoch` whole epochs, plus the
    /// steps of `partialEpoch` when the run was interrupted inside an epoch.
    private var startStep = 0
    private var partialEpoch: PartialEpoch? = nil
    /// True when a resumed run had no checkpoint and starts again from step 0.
    private var restartsFromStepZero = false
    private var bestAccuracy = -Double.infinity
    private let trainSeed: UInt64
    private let validationSeed: UInt64
    private let headSeed: UInt64

    static let bestAccuracyKey = "best_validation_accuracy_percent"
    static let partialEpochKey = "partial_epoch"

    /// The running sums of an epoch that an interruption stopped, stored in
    /// the interruption's checkpoint so that resuming finishes the epoch with
    /// the same metrics row as an uninterrupted run.
    struct PartialEpoch: Equatable {
        var lossSum = 0.0
        var accuracySum = 0.0
        var residualSum = 0.0
        var residualCount = 0
        var trainSeconds = 0.0

        /// The sums as bit patterns, so they round-trip exactly.
        var text: String {
            [lossSum.bitPattern, accuracySum.bitPattern, residualSum.bitPattern, UInt64(residualCount), trainSeconds.bitPattern]
                .map(String.init).joined(separator: ",")
        }

        init() {}

        init?(text: String) {
            let words = text.split(separator: ",").compactMap { UInt64($0) }
            guard words.count == 5 else { return nil }
            lossSum = Double(bitPattern: words[0])
            accuracySum = Double(bitPattern: words[1])
            residualSum = Double(bitPattern: words[2])
            residualCount = Int(words[3])
            trainSeconds = Double(bitPattern: words[4])
        }
    }

    /// Prepares a run: a new one, or with `resume` the continuation of the
    /// run's last checkpoint (with its steps.csv and metrics.csv cut back to it).
    /// A resumed run without a checkpoint, stopped in its first epoch, starts
    /// again from step 0 in the same folder.
    public init(config: TrainingConfig, sources: TrainingSources, run: RunDirectory, resume: Bool) throws {
        self.config = config
        self.sources = sources
        self.run = run
        model = FewShotModel(config: config)
        optimizer = SGD(
            parameters: model.trainableParameters, learningRate: Float(config.optimizer.learningRate(epoch: 1)),
            momentum: Float(config.optimizer.momentum), weightDecay: Float(config.optimizer.weightDecay),
            nesterov: config.optimizer.nesterov)
        trainSeed = mixSeed(UInt64(config.seed), 1)
        validationSeed = mixSeed(UInt64(config.seed), 2)
        headSeed = mixSeed(UInt64(config.seed), 3)

        if resume && !FileManager.default.fileExists(atPath: run.lastCheckpointURL.path) {
            restartsFromStepZero = true
            try run.truncateRows(of: run.stepsURL, header: RunDirectory.stepsHeader, keepingFirstColumnAtMost: 0)
            try run.truncateRows(of: run.metricsURL, header: RunDirectory.metricsHeader, keepingFirstColumnAtMost: 0)
        } else if resume {
            let checkpoint = try model.load(from: run.lastCheckpointURL, optimizer: optimizer)
            startEpoch = checkpoint.epoch
            startStep = checkpoint.step
            if startStep > startEpoch * config.training.stepsPerEpoch {
                guard let text = checkpoint.extra[Self.partialEpochKey], let partial = PartialEpoch(text: text) else {
                    throw CheckpointError.invalidMetadata(
                        path: run.lastCheckpointURL.path, key: Self.partialEpochKey,
                        reason: "step \(startStep) lies inside epoch \(startEpoch + 1) but the epoch's running sums are missing or invalid")
                }
                partialEpoch = partial
            }
            bestAccuracy = checkpoint.metrics[Self.bestAccuracyKey] ?? -Double.infinity
            try run.truncateRows(of: run.stepsURL, header: RunDirectory.stepsHeader, keepingFirstColumnAtMost: checkpoint.step)
            try run.truncateRows(of: run.metricsURL, header: RunDirectory.metricsHeader, keepingFirstColumnAtMost: checkpoint.epoch)
        }
    }

    /// Trains from the current position to the last epoch. Returns the best validation accuracy in percent.
    @discardableResult
    public func train() throws -> Double {
        let training = config.training
        let totalSteps = training.epochs * training.stepsPerEpoch
        let imagesPerStep = training.episodesPerStep * training.way * (training.shot + training.query)

        if partialEpoch != nil {
            try log("resuming \(run.url.lastPathComponent) at step \(startStep), inside epoch \(startEpoch + 1), from \(run.lastCheckpointURL.path)")
        } else if startEpoch > 0 {
            try log("resuming \(run.url.lastPathComponent) after epoch \(startEpoch) (step \(startStep)) from \(run.lastCheckpointURL.path)")
        } else {
            if restartsFromStepZero {
                try log("restarting \(run.url.lastPathComponent) from step 0: it has no checkpoint because its first epoch did not finish")
            }
            try log("run \(run.url.path): \(config.head.kind) head, backbone widths \(config.backbone.widths), \(counted(training.epochs, "epoch")) of \(counted(training.stepsPerEpoch, "step")), \(counted(training.episodesPerStep, "episode")) of \(training.way)-way \(training.shot)-shot \(training.query)-query per step")
            try log("resolved config:\n" + config.jsonText())
        }
        guard startEpoch < training.epochs else {
            try log(training.epochs == 1 ? "the run already finished its 1 epoch" : "the run already finished all \(training.epochs) epochs")
            return bestAccuracy
        }

        let loader = try EpisodeLoader(
            source: sources.train,
            shape: EpisodeShape(way: training.way, shot: training.shot, queryCount: training.query),
            episodesPerBatch: training.episodesPerStep, augmentation: config.data.augment ? .standard : nil,
            seed: trainSeed, startBatch: startStep, prefetch: true, workerCount: 1)

        let sessionStart = Date()
        var sessionSteps = 0
        var lastValidationSeconds = 0.0
        for epoch in (startEpoch + 1)...training.epochs {
            let learningRate = config.optimizer.learningRate(epoch: epoch)
            optimizer.learningRate = Float(learningRate)
            let epochStart = Date()
            // An interrupted epoch continues with its running sums.
            let resumed = epoch == startEpoch + 1 ? partialEpoch : nil
            var sums = resumed ?? PartialEpoch()
            let firstStep = startStep - (epoch - 1) * training.stepsPerEpoch + 1
            let earlierSeconds = sums.trainSeconds

            for stepInEpoch in stride(from: resumed == nil ? 1 : firstStep, through: training.stepsPerEpoch, by: 1) {
                let step = (epoch - 1) * training.stepsPerEpoch + stepInEpoch
                let batch = loader.next()
                let result = try trainStep(batch, epoch: epoch, step: step)
                sums.lossSum += result.loss
                sums.accuracySum += result.accuracy
                if let residual = result.meanResidual {
                    sums.residualSum += residual
                    sums.residualCount += 1
                }
                let residualText = result.maximumResidual.map { String(format: "%.6g", $0) } ?? ""
                try run.append(String(format: "%d,%d,%.6f,%.4f,%.6g,", step, epoch, result.loss, result.accuracy * 100, learningRate) + residualText + "\n", to: run.stepsURL)

                sessionSteps += 1
                sums.trainSeconds = earlierSeconds + Date().timeIntervalSince(epochStart)
                let elapsed = Date().timeIntervalSince(sessionStart)
                let secondsPerStep = elapsed / Double(sessionSteps)
                let epochsLeft = Double(training.epochs - epoch)
                let progress = StepProgress(
                    epoch: epoch, epochs: training.epochs, stepInEpoch: stepInEpoch, stepsPerEpoch: training.stepsPerEpoch,
                    step: step, totalSteps: totalSteps, loss: sums.lossSum / Double(stepInEpoch),
                    accuracyPercent: sums.accuracySum / Double(stepInEpoch) * 100,
                    imagesPerSecond: Double(imagesPerStep * stepInEpoch) / sums.trainSeconds,
                    etaSeconds: Double(totalSteps - step) * secondsPerStep + (epochsLeft + 1) * lastValidationSeconds)
                onProgress(progress)
                if stepInEpoch % training.logEverySteps == 0 || stepInEpoch == training.stepsPerEpoch {
                    try log(String(
                        format: "epoch %d/%d step %d/%d loss %.4f accuracy %.2f%% lr %.5g %.1f images/s",
                        epoch, training.epochs, stepInEpoch, training.stepsPerEpoch, progress.loss,
                        progress.accuracyPercent, learningRate, progress.imagesPerSecond)
                        + " ETA " + formatDuration(progress.etaSeconds), kind: .step)
                }
                if isInterrupted() {
                    try saveInterruptionCheckpoint(epoch: epoch, step: step, sums: sums)
                    throw try interruption(epoch: epoch, step: step)
                }
            }
            let (lossSum, accuracySum, trainSeconds) = (sums.lossSum, sums.accuracySum, sums.trainSeconds)
            let (residualSum, residualCount) = (sums.residualSum, sums.residualCount)

            let validationStart = Date()
            let validation = try evaluate(
                model, source: sources.validation, way: config.validation.way, shot: config.validation.shot,
                query: config.validation.query, episodes: config.validation.episodes, seed: validationSeed)
            lastValidationSeconds = Date().timeIntervalSince(validationStart)

            let steps = Double(training.stepsPerEpoch)
            let isBest = validation.meanPercent > bestAccuracy
            if isBest { bestAccuracy = validation.meanPercent }
            let metrics: [String: Double] = [
                "learning_rate": learningRate,
                "train_loss": lossSum / steps,
                "train_accuracy_percent": accuracySum / steps * 100,
                "val_accuracy_percent": validation.meanPercent,
                "val_interval95_percent": validation.intervalPercent,
                Self.bestAccuracyKey: bestAccuracy,
            ]
            let residualText = residualCount > 0 ? String(format: "%.6g", residualSum / Double(residualCount)) : ""
            try run.append(
                String(format: "%d,%d,%.6g,%.6f,%.4f,%.4f,%.4f,", epoch, epoch * training.stepsPerEpoch, learningRate,
                       lossSum / steps, accuracySum / steps * 100, validation.meanPercent, validation.intervalPercent)
                    + residualText
                    + String(format: ",%.2f,%.2f\n", trainSeconds + lastValidationSeconds, Double(imagesPerStep) * steps / trainSeconds),
                to: run.metricsURL)

            try saveCheckpoints(epoch: epoch, step: epoch * training.stepsPerEpoch, metrics: metrics, isBest: isBest)
            try? CurvesPicture.write(run.readMetrics(), to: run.curvesURL)
            try log(String(
                format: "epoch %d/%d finished: train loss %.4f, train accuracy %.2f%%, validation accuracy %.2f%% ± %.2f%% (%d episodes), %.1f s training + %.1f s validation",
                epoch, training.epochs, lossSum / steps, accuracySum / steps * 100, validation.meanPercent,
                validation.intervalPercent, config.validation.episodes, trainSeconds, lastValidationSeconds)
                + (residualCount > 0 ? ", mean LP residual " + residualText : "")
                + (isBest ? ", new best" : ""))
            if isInterrupted() { throw try interruption(epoch: epoch, step: epoch * training.stepsPerEpoch) }
        }
        try log(String(format: "training finished: best validation accuracy %.2f%%", bestAccuracy)
                + "; checkpoints \(run.bestCheckpointURL.path) and \(run.lastCheckpointURL.path)")
        return bestAccuracy
    }

    /// The loss, accuracy and LP residuals of one step.
    struct StepResult {
        var loss: Double
        var accuracy: Double
        var maximumResidual: Double?
        var meanResidual: Double?
    }

    /// Runs forward, backward and the SGD update on one batch; `step` is 1-based.
    func trainStep(_ batch: EpisodeBatch, epoch: Int, step: Int) throws -> StepResult {
        let way = config.training.way
        func stop(_ what: String) -> RunError {
            let last = FileManager.default.fileExists(atPath: run.lastCheckpointURL.path) ? run.lastCheckpointURL.path : nil
            return RunError.nonFinite(epoch: epoch, step: step, what: what, lastCheckpoint: last)
        }

        model.backbone.isTraining = true
        model.synchronizeScale()
        if let svm = model.head as? L1SVMHead { svm.startSeed = mixSeed(headSeed, UInt64(step)) }
        let embeddings = model.embed(
            support: batch.support, query: batch.query, supportLabels: batch.supportLabels,
            episodeCount: batch.episodes.count, way: way)

        let logits: [Double]
        let diagnostics: HeadDiagnostics
        do {
            (logits, diagnostics) = try model.head.forward(embeddings)
        } catch HeadError.nonFiniteEmbeddings {
            throw stop("the backbone produced non-finite embeddings")
        }
        if diagnostics.nonFinite {
            throw stop("the LP layer reported a non-finite value or a failed Cholesky factorisation")
        }
        var result = crossEntropy(logits: logits, labels: batch.queryLabels, way: way, labelSmoothing: config.training.labelSmoothing)
        if faultInjection?(step) == true { result.loss = .nan }
        guard result.loss.isFinite else { throw stop("the loss is \(result.loss)") }

        optimizer.zeroGradients()
        let gradients = model.head.backward(result.dLogits)
        model.backwardEmbeddings(gradients, dimension: embeddings.dimension)
        if config.head.learnScale {
            model.scaleParameter.gradient = Tensor(shape: [1], scalars: [Float(model.head.dScale)])
        }
        optimizer.step()
        return StepResult(loss: result.loss, accuracy: result.accuracy,
                          maximumResidual: diagnostics.maximumResidual, meanResidual: diagnostics.meanResidual)
    }

    /// Writes the last checkpoint, and the best one when `isBest`, after
    /// checking that every parameter is finite.
    private func saveCheckpoints(epoch: Int, step: Int, metrics: [String: Double], isBest: Bool) throws {
        try checkParametersFinite(epoch: epoch, step: step)
        let checkpoint = model.checkpoint(optimizer: optimizer, epoch: epoch, step: step, metrics: metrics, extra: [:])
        let file = checkpoint.safetensorsFile()
        // Best before last: a crash between the two writes then leaves a last
        // checkpoint from the epoch before, whose resume redoes this epoch and its best write.
        if isBest { try file.write(to: run.bestCheckpointURL) }
        try file.write(to: run.lastCheckpointURL)
    }

    private func checkParametersFinite(epoch: Int, step: Int) throws {
        for parameter in model.trainableParameters where !parameter.value.scalars.allSatisfy(\.isFinite) {
            let last = FileManager.default.fileExists(atPath: run.lastCheckpointURL.path) ? run.lastCheckpointURL.path : nil
            throw RunError.nonFinite(epoch: epoch, step: step, what: "parameter \(parameter.name) is not finite", lastCheckpoint: last)
        }
    }

    /// Writes the last checkpoint after `step` inside `epoch`, with the
    /// epoch's running sums, so that resuming continues at the next step.
    /// The best checkpoint is left alone: it needs a validation at an epoch end.
    private func saveInterruptionCheckpoint(epoch: Int, step: Int, sums: PartialEpoch) throws {
        try checkParametersFinite(epoch: epoch, step: step)
        let metrics = bestAccuracy.isFinite ? [Self.bestAccuracyKey: bestAccuracy] : [:]
        let checkpoint = model.checkpoint(
            optimizer: optimizer, epoch: epoch - 1, step: step, metrics: metrics, extra: [Self.partialEpochKey: sums.text])
        try checkpoint.safetensorsFile().write(to: run.lastCheckpointURL)
    }

    /// Writes the interruption to log.txt (not to `onLog`: the caller reports the
    /// returned error) and returns it.
    private func interruption(epoch: Int, step: Int) throws -> RunError {
        let error = RunError.interrupted(epoch: epoch, step: step, path: run.url.path)
        try run.appendLog("[\(timestamp())] \(error)")
        return error
    }

    private func log(_ line: String, kind: LogKind = .summary) throws {
        let stamped = "[\(timestamp())] " + line
        try run.appendLog(stamped)
        onLog(line, kind)
    }
}

/// Formats seconds as `1h02m`, `4m05s` or `12s`.
public func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "?" }
    let total = Int(seconds.rounded())
    if total >= 3600 { return String(format: "%dh%02dm", total / 3600, (total % 3600) / 60) }
    if total >= 60 { return String(format: "%dm%02ds", total / 60, total % 60) }
    return "\(total)s"
}

/// Returns the UTC time as `2026-12-04 21:50:03`.
func timestamp(_ date: Date = Date()) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
    return formatter.string(from: date)
}

/// Returns `count` with `noun`, plural unless `count` is 1: "1 epoch", "3 steps".
func counted(_ count: Int, _ noun: String) -> String {
    "\(count) \(noun)\(count == 1 ? "" : "s")"
}
