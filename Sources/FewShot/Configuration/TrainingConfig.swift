import FewShotData
import Foundation

/// Everything that defines a training run, read from a JSON file.
///
/// Every key is optional; an absent key takes the default, which is the full
/// CIFAR-FS recipe (MetaOptNet's, as the gamma-AuxPD paper trains it). Keys
/// are camelCase and grouped in sections. Unknown keys and out-of-range
/// values are rejected with the key's dotted name and the allowed values.
/// `jsonText()` writes the resolved configuration, which `parse` reads back
/// to an equal value.
public struct TrainingConfig: Equatable, Sendable {
    /// The run's name: run folders are `Runs/<name>-<UTC time>`.
    public var name = "cifarfs"
    /// Seed of every random choice: initial weights, episodes, augmentation, dropout, LP starts.
    public var seed = 1
    /// Worker threads for the network and the LP layer; 0 uses every processor.
    public var threads = 0
    public var data = DataSection()
    public var backbone = BackboneSection()
    public var head = HeadSection()
    public var training = TrainingSection()
    public var optimizer = OptimizerSection()
    public var validation = EpisodeSection(episodes: 2000, way: 5, shot: 5, query: 15)
    public var test = EpisodeSection(episodes: 1000, way: 5, shot: 5, query: 15)

    public init() {}

    public struct DataSection: Equatable, Sendable {
        /// The data folder, used when neither `--data` nor FEWSHOT_DATA_DIR
        /// names one; relative paths start at the working folder.
        public var root = "Data/cifar-100-binary"
        /// `cifar100-binary` (the official CIFAR-100 binary files) or
        /// `png-folders` (`<root>/{train,val,test}/<class>/*.png`, 32 x 32).
        public var format = "cifar100-binary"
        /// `cifarfs` (CIFAR-FS, 64/16/20 classes), `fc100` (60/20/20, split by
        /// superclass) or `custom` (the classes of `split`); binary format only.
        public var dataset = "cifarfs"
        /// The classes of a `custom` dataset: CIFAR-100 fine labels or names per split.
        public var split: CustomSplit? = nil
        /// Random crop, colour jitter and flip on training episodes.
        public var augment = true
    }

    public struct BackboneSection: Equatable, Sendable {
        /// Output channels of the four residual blocks.
        public var widths = [64, 160, 320, 640]
        /// Dropout probability after blocks 1-2 and DropBlock's final drop rate after blocks 3-4.
        public var dropRate = 0.1
        /// DropBlock block side length.
        public var dropBlockSize = 2
        /// Training forward passes over which DropBlock's keep rate ramps from 1 to
        /// `1 - dropRate`. Each optimizer step makes two, one for the support and
        /// one for the query images, as MetaOptNet does.
        public var dropBlockRampSteps = 40_000
    }

    public struct HeadSection: Equatable, Sendable {
        /// `l1-svm` (pairwise l1-SVMs through the physarum LP layer),
        /// `prototypical` or `ridge`.
        public var kind = "l1-svm"
        /// Initial value of the scalar that multiplies every logit.
        public var initialScale = 1.0
        /// Whether the logit scale is trained.
        public var learnScale = true
        /// l1-SVM: divide every embedding of an episode by the largest support
        /// embedding norm, so support points satisfy `||x|| <= 1` as the physarum
        /// convergence analysis assumes. Off by default because with it the
        /// kernel entries of ReLU features all lie close to 1 and training starts far slower.
        public var scaleEmbeddings = false
        /// l1-SVM slack cost C. With C = 1 (the value of Meng et al., AAAI 2021) and balanced
        /// classes the trivial classifier u = 0 is the LP optimum, and in this
        /// pipeline the head then barely depends on the query; C > 1 avoids that.
        public var C = 1.0
        /// l1-SVM ramp constant M.
        public var M = 0.001
        /// l1-SVM sign of the `M z` term in the margin row: `minus` as Meng et al.
        /// print it, or `plus` (Hess and Brooks' ramp loss).
        public var zSign = "minus"
        /// Physarum cost perturbation gamma for zero costs, the alpha variables'
        /// costs among them. In 40-step CIFAR-FS pilot runs with C = 1, gamma = 0.1
        /// kept the loss at ln 5 (the iterations shrink u to 0), gamma = 1e-3 learned.
        public var gamma = 0.001
        /// Physarum iterations K.
        public var iterations = 10
        /// Physarum step size h.
        public var stepSize = 1.0
        /// Ridge regularisation lambda.
        public var lambda = 50.0
    }

    public struct TrainingSection: Equatable, Sendable {
        public var way = 5
        public var shot = 5
        /// Query images per class in training episodes.
        public var query = 6
        public var episodesPerStep = 8
        public var stepsPerEpoch = 1000
        public var epochs = 60
        /// Label smoothing epsilon of the cross-entropy loss; 0 disables it.
        public var labelSmoothing = 0.0
        /// Steps between plain log lines (when standard error is not a terminal).
        public var logEverySteps = 50
    }

    /// One entry of the multistep learning-rate schedule.
    public struct LearningRateStage: Equatable, Sendable {
        /// First epoch (1-based) at which `learningRate` applies.
        public var fromEpoch: Int
        public var learningRate: Double

        public init(fromEpoch: Int, learningRate: Double) {
            self.fromEpoch = fromEpoch
            self.learningRate = learningRate
        }
    }

    public struct OptimizerSection: Equatable, Sendable {
        public var momentum = 0.9
        public var nesterov = true
        public var weightDecay = 5e-4
        /// Stages in increasing `fromEpoch` order; the first starts at epoch 1.
        public var schedule = [
            LearningRateStage(fromEpoch: 1, learningRate: 0.1),
            LearningRateStage(fromEpoch: 21, learningRate: 0.006),
            LearningRateStage(fromEpoch: 41, learningRate: 0.0012),
            LearningRateStage(fromEpoch: 51, learningRate: 0.00024),
        ]

        /// Returns the learning rate of a 1-based epoch.
        public func learningRate(epoch: Int) -> Double {
            schedule.last(where: { $0.fromEpoch <= epoch })?.learningRate ?? schedule[0].learningRate
        }
    }

    /// Episodes for validation or testing.
    public struct EpisodeSection: Equatable, Sendable {
        public var episodes: Int
        public var way: Int
        public var shot: Int
        public var query: Int
    }

    public static let headKinds = ["l1-svm", "prototypical", "ridge"]
    public static let datasets = ["cifarfs", "fc100", "custom"]
    public static let dataFormats = ["cifar100-binary", "png-folders"]
    public static let zSigns = ["minus", "plus"]
}

// MARK: Reading

extension TrainingConfig {
    /// Reads and validates a configuration file.
    public static func load(from url: URL) throws -> TrainingConfig {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ConfigError.unreadable(path: url.path, reason: "\(describeFileError(error)); check the --config path")
        }
        return try parse(data, path: url.path)
    }

    /// Parses and validates configuration JSON; `path` names the source in errors.
    public static func parse(_ data: Data, path: String) throws -> TrainingConfig {
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw ConfigError.invalidJSON(path: path, reason: "\((error as NSError).userInfo["NSDebugDescription"] as? String ?? "parse error")")
        }
        guard let object = json as? [String: Any] else {
            throw ConfigError.invalidJSON(path: path, reason: "the top level must be an object")
        }
        var reader = ConfigReader(object: object, path: path)
        let config = try read(&reader)
        try reader.finish()
        return config
    }

    private static func read(_ reader: inout ConfigReader) throws -> TrainingConfig {
        var config = TrainingConfig()
        let defaults = config

        config.name = try reader.string("name", default: defaults.name)
        let nameCharacters = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        guard !config.name.isEmpty, config.name.count <= 100, !config.name.hasPrefix("."),
              config.name.unicodeScalars.allSatisfy({ nameCharacters.contains($0) })
        else {
            throw ConfigError.outOfRange(path: reader.path, key: "name", value: "'\(config.name)'", allowed: "1-100 letters, digits, '.', '_' or '-', not starting with '.'")
        }
        config.seed = try reader.int("seed", default: defaults.seed, range: 0...(1 << 53))
        config.threads = try reader.int("threads", default: defaults.threads, range: 0...256)

        config.data = try reader.section("data") { section in
            var data = defaults.data
            data.root = try section.string("root", default: data.root)
            data.format = try section.choice("format", default: data.format, allowed: dataFormats)
            data.dataset = try section.choice("dataset", default: data.dataset, allowed: datasets)
            data.split = try section.optionalSection("split") { split in
                CustomSplit(
                    train: try split.classList("train"), validation: try split.classList("val"),
                    test: try split.classList("test"))
            }
            data.augment = try section.bool("augment", default: data.augment)
            if data.format == "cifar100-binary", data.dataset == "custom", data.split == nil {
                throw ConfigError.inconsistent(
                    path: section.path,
                    reason: "'data.split' is missing, and data.dataset custom needs it: an object that lists class names or fine-label indices for each split, for example \"split\": {\"train\": [\"apple\", 1, 2], \"val\": [3, 4, 5], \"test\": [6, 7, 8]}")
            }
            if data.format == "cifar100-binary", data.dataset != "custom", data.split != nil {
                throw ConfigError.inconsistent(
                    path: section.path,
                    reason: "'data.split' is given, but data.dataset is \(data.dataset), which has its own split; set data.dataset to custom to use data.split, or remove data.split")
            }
            if data.format == "png-folders", data.split != nil {
                throw ConfigError.outOfRange(
                    path: section.path, key: "data.split", value: "given",
                    allowed: "no split with data.format png-folders, whose classes are the folders under train, val and test")
            }
            return data
        }

        config.backbone = try reader.section("backbone") { section in
            var backbone = defaults.backbone
            backbone.widths = try section.intList("widths", default: backbone.widths, count: 4...4, range: 1...4096)
            backbone.dropRate = try section.double("dropRate", default: backbone.dropRate, range: 0...1, openAbove: true)
            backbone.dropBlockSize = try section.int("dropBlockSize", default: backbone.dropBlockSize, range: 1...4)
            backbone.dropBlockRampSteps = try section.int("dropBlockRampSteps", default: backbone.dropBlockRampSteps, range: 0...100_000_000)
            return backbone
        }

        config.head = try reader.section("head") { section in
            var head = defaults.head
            head.kind = try section.choice("kind", default: head.kind, allowed: headKinds)
            head.initialScale = try section.double("initialScale", default: head.initialScale, range: 0...1000, openBelow: true)
            head.learnScale = try section.bool("learnScale", default: head.learnScale)
            head.scaleEmbeddings = try section.bool("scaleEmbeddings", default: head.scaleEmbeddings)
            head.C = try section.double("C", default: head.C, range: 0...1e6, openBelow: true)
            head.M = try section.double("M", default: head.M, range: 0...1e6)
            head.zSign = try section.choice("zSign", default: head.zSign, allowed: zSigns)
            head.gamma = try section.double("gamma", default: head.gamma, range: 0...10, openBelow: true)
            head.iterations = try section.int("iterations", default: head.iterations, range: 1...1000)
            head.stepSize = try section.double("stepSize", default: head.stepSize, range: 0...1, openBelow: true)
            head.lambda = try section.double("lambda", default: head.lambda, range: 0...1e6, openBelow: true)
            return head
        }

        config.training = try reader.section("training") { section in
            var training = defaults.training
            training.way = try section.int("way", default: training.way, range: 2...64)
            training.shot = try section.int("shot", default: training.shot, range: 1...100)
            training.query = try section.int("query", default: training.query, range: 1...100)
            training.episodesPerStep = try section.int("episodesPerStep", default: training.episodesPerStep, range: 1...256)
            training.stepsPerEpoch = try section.int("stepsPerEpoch", default: training.stepsPerEpoch, range: 1...1_000_000)
            training.epochs = try section.int("epochs", default: training.epochs, range: 1...10_000)
            training.labelSmoothing = try section.double("labelSmoothing", default: training.labelSmoothing, range: 0...1, openAbove: true)
            training.logEverySteps = try section.int("logEverySteps", default: training.logEverySteps, range: 1...1_000_000)
            return training
        }

        config.optimizer = try reader.section("optimizer") { section in
            var optimizer = defaults.optimizer
            optimizer.momentum = try section.double("momentum", default: optimizer.momentum, range: 0...1, openAbove: true)
            optimizer.nesterov = try section.bool("nesterov", default: optimizer.nesterov)
            optimizer.weightDecay = try section.double("weightDecay", default: optimizer.weightDecay, range: 0...1)
            optimizer.schedule = try section.objectList("schedule", default: optimizer.schedule) { stage in
                LearningRateStage(
                    fromEpoch: try stage.int("fromEpoch", default: 1, range: 1...10_000),
                    learningRate: try stage.double("learningRate", default: 0.1, range: 0...10, openBelow: true))
            }
            let epochs = optimizer.schedule.map(\.fromEpoch)
            guard epochs.first == 1, zip(epochs, epochs.dropFirst()).allSatisfy({ $0 < $1 }) else {
                throw ConfigError.outOfRange(
                    path: section.path, key: "optimizer.schedule", value: "fromEpoch \(epochs)",
                    allowed: "a non-empty list whose fromEpoch values increase strictly and start at 1")
            }
            return optimizer
        }
        if config.optimizer.nesterov && config.optimizer.momentum == 0 {
            throw ConfigError.outOfRange(path: reader.path, key: "optimizer.momentum", value: "0", allowed: "a number in (0, 1) when optimizer.nesterov is true")
        }

        config.validation = try readEpisodes(&reader, key: "validation", defaults: defaults.validation)
        config.test = try readEpisodes(&reader, key: "test", defaults: defaults.test)
        return config
    }

    private static func readEpisodes(_ reader: inout ConfigReader, key: String, defaults: EpisodeSection) throws -> EpisodeSection {
        try reader.section(key) { section in
            EpisodeSection(
                episodes: try section.int("episodes", default: defaults.episodes, range: 1...1_000_000),
                way: try section.int("way", default: defaults.way, range: 2...64),
                shot: try section.int("shot", default: defaults.shot, range: 1...100),
                query: try section.int("query", default: defaults.query, range: 1...100))
        }
    }
}

// MARK: Writing

extension TrainingConfig {
    /// The resolved configuration as a JSON object.
    public var jsonObject: [String: Any] {
        [
            "name": name,
            "seed": seed,
            "threads": threads,
            "data": dataObject,
            "backbone": [
                "widths": backbone.widths, "dropRate": backbone.dropRate,
                "dropBlockSize": backbone.dropBlockSize, "dropBlockRampSteps": backbone.dropBlockRampSteps,
            ],
            "head": [
                "kind": head.kind, "initialScale": head.initialScale, "learnScale": head.learnScale,
                "scaleEmbeddings": head.scaleEmbeddings, "C": head.C, "M": head.M, "zSign": head.zSign,
                "gamma": head.gamma, "iterations": head.iterations, "stepSize": head.stepSize,
                "lambda": head.lambda,
            ],
            "training": [
                "way": training.way, "shot": training.shot, "query": training.query,
                "episodesPerStep": training.episodesPerStep, "stepsPerEpoch": training.stepsPerEpoch,
                "epochs": training.epochs, "labelSmoothing": training.labelSmoothing,
                "logEverySteps": training.logEverySteps,
            ],
            "optimizer": [
                "momentum": optimizer.momentum, "nesterov": optimizer.nesterov,
                "weightDecay": optimizer.weightDecay,
                "schedule": optimizer.schedule.map { ["fromEpoch": $0.fromEpoch, "learningRate": $0.learningRate] },
            ],
            "validation": episodeObject(validation),
            "test": episodeObject(test),
        ]
    }

    private var dataObject: [String: Any] {
        var object: [String: Any] = ["root": data.root, "format": data.format, "dataset": data.dataset, "augment": data.augment]
        if let split = data.split {
            func list(_ references: [ClassReference]) -> [Any] {
                references.map { reference -> Any in
                    switch reference {
                    case .label(let label): return label
                    case .name(let name): return name
                    }
                }
            }
            object["split"] = ["train": list(split.train), "val": list(split.validation), "test": list(split.test)]
        }
        return object
    }

    private func episodeObject(_ section: EpisodeSection) -> [String: Any] {
        ["episodes": section.episodes, "way": section.way, "shot": section.shot, "query": section.query]
    }

    /// Returns the resolved configuration as pretty-printed JSON with sorted keys.
    public func jsonText() -> String {
        let data = try! JSONSerialization.data(withJSONObject: jsonObject, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    /// Keys whose values must agree between a checkpoint and the config that
    /// loads it, because they change the tensors or their meaning.
    public func modelDefiningValues() -> [(key: String, value: String)] {
        [
            ("backbone.widths", "\(backbone.widths)"),
            ("head.kind", head.kind),
        ]
    }
}
