/// An error from reading, verifying or writing a checkpoint.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case truncated(path: String, expectedBytes: Int, actualBytes: Int)
    case badHeader(path: String, reason: String)
    case checksumMismatch(path: String)
    case missingMetadata(path: String, key: String)
    case invalidMetadata(path: String, key: String, reason: String)
    case missingTensors(path: String, names: [String])
    case unexpectedTensors(path: String, names: [String])
    case wrongShape(path: String, name: String, expected: [Int], actual: [Int])
    case wrongDType(path: String, name: String, expected: String, actual: String)
    case configMismatch(path: String, key: String, checkpointValue: String, configValue: String)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "cannot read checkpoint \(path): \(reason); check the path"
        case let .truncated(path, expected, actual):
            return "checkpoint \(path) is truncated: the header describes at least \(expected) bytes but the file has \(actual); use another checkpoint of the run (last or best) or copy the file again"
        case let .badHeader(path, reason):
            return "checkpoint \(path) has an invalid safetensors header: \(reason); the file is damaged or not a safetensors file"
        case let .checksumMismatch(path):
            return "checkpoint \(path) is corrupted: its tensor data does not match the checksum stored when it was written; use another checkpoint of the run"
        case let .missingMetadata(path, key):
            return "checkpoint \(path) has no '\(key)' metadata entry; it was not written by this tool's trainer"
        case let .invalidMetadata(path, key, reason):
            return "checkpoint \(path) has invalid '\(key)' metadata: \(reason)"
        case let .missingTensors(path, names):
            return "checkpoint \(path) lacks \(names.count) expected tensor(s): \(listed(names)); it was saved by a different model or is damaged"
        case let .unexpectedTensors(path, names):
            return "checkpoint \(path) contains \(names.count) tensor(s) the model does not have: \(listed(names)); it was saved by a different model"
        case let .wrongShape(path, name, expected, actual):
            return "checkpoint \(path): tensor '\(name)' has shape \(actual), expected \(expected); the checkpoint was trained with other backbone widths than the config"
        case let .wrongDType(path, name, expected, actual):
            return "checkpoint \(path): tensor '\(name)' has dtype \(actual), expected \(expected)"
        case let .configMismatch(path, key, checkpointValue, configValue):
            return "checkpoint \(path) was trained with \(key) = \(checkpointValue) but the config sets \(configValue); use the run's own config or a matching checkpoint"
        case let .writeFailed(path, reason):
            return "cannot write checkpoint \(path): \(reason); check free disk space and permissions"
        }
    }
}

private func listed(_ names: [String]) -> String {
    let shown = names.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
    return names.count > 5 ? shown + " and \(names.count - 5) more" : shown
}
