import Foundation
import TensorCore

/// The names and shapes a checkpoint must contain for one model, used to
/// verify a file before any tensor is copied into the model.
public struct CheckpointLayout: Equatable, Sendable {
    /// Float32 tensors by full name (backbone names unprefixed, then `head.*`, `optimizer.*`).
    public var floatShapes: [String: [Int]]
    /// Int64 scalars by full name (`num_batches_tracked` of every batch norm).
    public var counterNames: Set<String>

    public init(floatShapes: [String: [Int]], counterNames: Set<String>) {
        self.floatShapes = floatShapes
        self.counterNames = counterNames
    }
}

/// A training checkpoint: backbone, head and optimizer tensors plus the run's
/// position, random state, configuration and metrics.
///
/// Stored as safetensors. Backbone tensors carry exactly the names of
/// MetaOptNet's PyTorch ResNet-12 `state_dict` (`layer1.0.conv1.weight` in
/// OIHW, `layer1.0.bn1.running_mean`, `layer1.0.bn1.num_batches_tracked` as an
/// I64 scalar, ...), so `model.load_state_dict(tensors, strict=False)` in
/// PyTorch takes them directly. Head tensors are prefixed `head.` and optimizer
/// state `optimizer.`. The metadata map holds:
///
/// | key | value |
/// |---|---|
/// | `format` | `physarum-fewshot-checkpoint` |
/// | `format_version` | `1` |
/// | `config` | the resolved configuration as JSON |
/// | `epoch`, `step` | completed epochs and optimizer steps |
/// | `rng_state` | trainer generator state, four 64-bit words in hex, comma-separated |
/// | `metrics` | JSON object of numbers (losses, accuracies) |
/// | `data_checksum` | FNV-1a 64 of all tensor bytes in name order, in hex |
///
/// Other `extra.*` keys are kept as they are.
public struct Checkpoint: Equatable, Sendable {
    public static let formatName = "physarum-fewshot-checkpoint"
    public static let formatVersion = "1"
    public static let headPrefix = "head."
    public static let optimizerPrefix = "optimizer."

    /// Float32 tensors by full name.
    public var tensors: [String: Tensor]
    /// Int64 scalars by full name.
    public var counters: [String: Int64]
    /// The resolved configuration, as JSON text.
    public var configJSON: String
    public var epoch: Int
    public var step: Int
    public var randomState: [UInt64]
    public var metrics: [String: Double]
    /// Further metadata, stored under `extra.<key>`.
    public var extra: [String: String]

    public init(
        tensors: [String: Tensor], counters: [String: Int64], configJSON: String,
        epoch: Int, step: Int, randomState: [UInt64], metrics: [String: Double] = [:],
        extra: [String: String] = [:]
    ) {
        self.tensors = tensors
        self.counters = counters
        self.configJSON = configJSON
        self.epoch = epoch
        self.step = step
        self.randomState = randomState
        self.metrics = metrics
        self.extra = extra
    }

    /// The layout this checkpoint has, for comparing with a model's.
    public var layout: CheckpointLayout {
        CheckpointLayout(floatShapes: tensors.mapValues(\.shape), counterNames: Set(counters.keys))
    }

    // MARK: Writing

    /// Returns the safetensors form of the checkpoint.
    public func safetensorsFile() -> SafetensorsFile {
        var stored: [String: SafetensorsTensor] = [:]
        for (name, tensor) in tensors { stored[name] = SafetensorsTensor(tensor) }
        for (name, value) in counters { stored[name] = SafetensorsTensor(int64: [value], shape: []) }

        var metadata: [String: String] = [
            "format": Self.formatName,
            "format_version": Self.formatVersion,
            "config": configJSON,
            "epoch": String(epoch),
            "step": String(step),
            "rng_state": randomState.map { String($0, radix: 16) }.joined(separator: ","),
            "metrics": metricsJSON(metrics),
        ]
        for (key, value) in extra { metadata["extra.\(key)"] = value }
        metadata["data_checksum"] = String(dataChecksum(stored), radix: 16)
        return SafetensorsFile(tensors: stored, metadata: metadata)
    }

    /// Writes the checkpoint atomically (see `writeAtomically`).
    public func write(to url: URL) throws {
        try safetensorsFile().write(to: url)
    }

    // MARK: Reading

    /// Reads a checkpoint and verifies its structure and checksum. When
    /// `expected` is given, also verifies that the names, dtypes and shapes
    /// are exactly those of the model.
    public static func read(from url: URL, expected: CheckpointLayout? = nil) throws -> Checkpoint {
        let file = try SafetensorsFile.read(from: url)
        return try Checkpoint(file, path: url.path, expected: expected)
    }

    /// Interprets and verifies an already parsed safetensors file.
    public init(_ file: SafetensorsFile, path: String, expected: CheckpointLayout? = nil) throws {
        let metadata = file.metadata
        func required(_ key: String) throws -> String {
            guard let value = metadata[key] else { throw CheckpointError.missingMetadata(path: path, key: key) }
            return value
        }

        guard try required("format") == Self.formatName else {
            throw CheckpointError.invalidMetadata(path: path, key: "format", reason: "expected '\(Self.formatName)', found '\(metadata["format"]!)'")
        }
        guard try required("format_version") == Self.formatVersion else {
            throw CheckpointError.invalidMetadata(
                path: path, key: "format_version",
                reason: "this tool reads version \(Self.formatVersion), the file has \(metadata["format_version"]!)")
        }
        let storedChecksum = try required("data_checksum")
        guard UInt64(storedChecksum, radix: 16) == dataChecksum(file.tensors) else {
            throw CheckpointError.checksumMismatch(path: path)
        }

        if let expected { try Self.verify(file, against: expected, path: path) }

        var tensors: [String: Tensor] = [:]
        var counters: [String: Int64] = [:]
        for (name, stored) in file.tensors {
            switch stored.dtype {
            case .float32, .float64:
                tensors[name] = Tensor(shape: stored.shape, scalars: stored.floatScalars!)
            case .int64:
                guard stored.elementCount == 1 else {
                    throw CheckpointError.wrongShape(path: path, name: name, expected: [], actual: stored.shape)
                }
                counters[name] = stored.int64Values![0]
            }
        }

        guard let epoch = Int(try required("epoch")), epoch >= 0 else {
            throw CheckpointError.invalidMetadata(path: path, key: "epoch", reason: "expected a non-negative integer, found '\(metadata["epoch"]!)'")
        }
        guard let step = Int(try required("step")), step >= 0 else {
            throw CheckpointError.invalidMetadata(path: path, key: "step", reason: "expected a non-negative integer, found '\(metadata["step"]!)'")
        }
        let stateWords = try required("rng_state").split(separator: ",").compactMap { UInt64($0, radix: 16) }
        guard stateWords.count == 4, stateWords.contains(where: { $0 != 0 }) else {
            throw CheckpointError.invalidMetadata(path: path, key: "rng_state", reason: "expected four hexadecimal words, not all zero")
        }
        let metricsText = try required("metrics")
        guard let metricsObject = try? JSONSerialization.jsonObject(with: Data(metricsText.utf8)) as? [String: Any] else {
            throw CheckpointError.invalidMetadata(path: path, key: "metrics", reason: "expected a JSON object of numbers")
        }
        var metrics: [String: Double] = [:]
        for (key, value) in metricsObject {
            if let number = value as? NSNumber { metrics[key] = number.doubleValue }
        }
        var extra: [String: String] = [:]
        for (key, value) in metadata where key.hasPrefix("extra.") {
            extra[String(key.dropFirst("extra.".count))] = value
        }

        self.init(
            tensors: tensors, counters: counters, configJSON: try required("config"),
            epoch: epoch, step: step, randomState: stateWords, metrics: metrics, extra: extra)
    }

    /// Checks names, dtypes and shapes against a model's layout.
    static func verify(_ file: SafetensorsFile, against expected: CheckpointLayout, path: String) throws {
        let expectedNames = Set(expected.floatShapes.keys).union(expected.counterNames)
        let actualNames = Set(file.tensors.keys)
        let missing = expectedNames.subtracting(actualNames).sorted()
        if !missing.isEmpty { throw CheckpointError.missingTensors(path: path, names: missing) }
        let unexpected = actualNames.subtracting(expectedNames).sorted()
        if !unexpected.isEmpty { throw CheckpointError.unexpectedTensors(path: path, names: unexpected) }

        for name in expected.floatShapes.keys.sorted() {
            let stored = file.tensors[name]!
            guard stored.dtype == .float32 else {
                throw CheckpointError.wrongDType(path: path, name: name, expected: "F32", actual: stored.dtype.rawValue)
            }
            guard stored.shape == expected.floatShapes[name]! else {
                throw CheckpointError.wrongShape(path: path, name: name, expected: expected.floatShapes[name]!, actual: stored.shape)
            }
        }
        for name in expected.counterNames.sorted() {
            let stored = file.tensors[name]!
            guard stored.dtype == .int64 else {
                throw CheckpointError.wrongDType(path: path, name: name, expected: "I64", actual: stored.dtype.rawValue)
            }
            guard stored.shape == [] else {
                throw CheckpointError.wrongShape(path: path, name: name, expected: [], actual: stored.shape)
            }
        }
    }
}

/// FNV-1a 64 over the tensors' bytes in name order, with each name hashed
/// first so that renaming or reordering tensors also changes the value.
func dataChecksum(_ tensors: [String: SafetensorsTensor]) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    let prime: UInt64 = 0x0000_0100_0000_01b3
    for name in tensors.keys.sorted() {
        for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* prime }
        tensors[name]!.bytes.withUnsafeBufferPointer { buffer in
            for byte in buffer { hash = (hash ^ UInt64(byte)) &* prime }
        }
    }
    return hash
}

/// Encodes metrics as a JSON object with keys in sorted order; non-finite values become null.
func metricsJSON(_ metrics: [String: Double]) -> String {
    let entries = metrics.keys.sorted().map { key -> String in
        let value = metrics[key]!
        return "\(jsonString(key)):\(value.isFinite ? "\(value)" : "null")"
    }
    return "{\(entries.joined(separator: ","))}"
}
