import Foundation

/// Statistics of one stored tensor, over its finite elements.
public struct TensorStatistics: Equatable, Sendable {
    public var name: String
    public var dtype: String
    public var shape: [Int]
    public var minimum: Double
    public var maximum: Double
    public var mean: Double
    /// Population standard deviation (n in the denominator).
    public var standardDeviation: Double
    public var nonFiniteCount: Int

    public init(name: String, tensor: SafetensorsTensor) {
        self.name = name
        dtype = tensor.dtype.rawValue
        shape = tensor.shape
        var minimum = Double.infinity
        var maximum = -Double.infinity
        var sum = 0.0
        var sumOfSquares = 0.0
        var finiteCount = 0
        var nonFiniteCount = 0
        for value in tensor.doubleValues {
            guard value.isFinite else {
                nonFiniteCount += 1
                continue
            }
            minimum = Swift.min(minimum, value)
            maximum = Swift.max(maximum, value)
            sum += value
            sumOfSquares += value * value
            finiteCount += 1
        }
        let mean = finiteCount > 0 ? sum / Double(finiteCount) : .nan
        self.minimum = finiteCount > 0 ? minimum : .nan
        self.maximum = finiteCount > 0 ? maximum : .nan
        self.mean = mean
        standardDeviation = finiteCount > 0 ? Swift.max(0, sumOfSquares / Double(finiteCount) - mean * mean).squareRoot() : .nan
        self.nonFiniteCount = nonFiniteCount
    }
}

/// The view `inspect` gives of a checkpoint file: its metadata, statistics of
/// every tensor, and whether it passed verification.
public struct CheckpointSummary: Sendable {
    public var path: String
    public var metadata: [String: String]
    public var tensors: [TensorStatistics]
    /// Nil when the file verified; otherwise the reason it did not.
    public var verificationFailure: String?
    /// True when the file carries training-checkpoint metadata (format, config
    /// or data checksum) and so was verified as a checkpoint, not only as safetensors.
    public var isTrainingCheckpoint: Bool

    /// Metadata keys that only a training checkpoint writes.
    static let checkpointMetadataKeys: Set<String> = ["format", "config", "data_checksum"]

    /// Reads a file for inspection. A file that is not readable safetensors
    /// throws. A readable file that fails the checkpoint checks (checksum,
    /// metadata) is summarised with `verificationFailure` set, so its contents
    /// can still be looked at. A safetensors file without any checkpoint
    /// metadata, such as the output of `fewshot embed`, verifies as plain safetensors.
    public init(contentsOf url: URL) throws {
        let file = try SafetensorsFile.read(from: url)
        path = url.path
        metadata = file.metadata
        tensors = file.tensors.keys.sorted().map { TensorStatistics(name: $0, tensor: file.tensors[$0]!) }
        isTrainingCheckpoint = !Self.checkpointMetadataKeys.isDisjoint(with: file.metadata.keys)
        guard isTrainingCheckpoint else {
            verificationFailure = nil
            return
        }
        do {
            _ = try Checkpoint(file, path: url.path)
            verificationFailure = nil
        } catch {
            verificationFailure = "\(error)"
        }
    }

    /// Summarises a file that could not be read as safetensors at all: no
    /// metadata, no tensors, and `reason` as the verification failure.
    public init(path: String, unreadableBecause reason: String) {
        self.path = path
        metadata = [:]
        tensors = []
        verificationFailure = reason
        isTrainingCheckpoint = false
    }

    /// The total number of elements in all tensors.
    public var elementCount: Int { tensors.reduce(0) { $0 + $1.shape.reduce(1, *) } }

    /// The summary as a JSON object (non-finite statistics become null).
    public var jsonObject: [String: Any] {
        func number(_ value: Double) -> Any { value.isFinite ? value : NSNull() }
        var parsedMetadata: [String: Any] = metadata
        for key in ["config", "metrics"] {
            if let text = metadata[key], let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) {
                parsedMetadata[key] = object
            }
        }
        return [
            "path": path,
            "verified": verificationFailure == nil,
            "verification_error": verificationFailure ?? NSNull(),
            "training_checkpoint": isTrainingCheckpoint,
            "metadata": parsedMetadata,
            "tensors": tensors.map { statistics -> [String: Any] in
                [
                    "name": statistics.name, "dtype": statistics.dtype, "shape": statistics.shape,
                    "min": number(statistics.minimum), "max": number(statistics.maximum),
                    "mean": number(statistics.mean), "std": number(statistics.standardDeviation),
                    "non_finite": statistics.nonFiniteCount,
                ]
            },
        ]
    }
}
