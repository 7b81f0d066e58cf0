import Foundation
import TensorCore

/// An element type that a safetensors file can hold; the raw value is the
/// header's `dtype` string.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case float32 = "F32"
    case float64 = "F64"
    case int64 = "I64"

    /// Bytes per element.
    public var byteCount: Int {
        switch self {
        case .float32: return 4
        case .float64, .int64: return 8
        }
    }
}

/// One tensor of a safetensors file: element type, shape and little-endian bytes.
public struct SafetensorsTensor: Equatable, Sendable {
    public var dtype: SafetensorsDType
    public var shape: [Int]
    /// Raw little-endian element bytes; `count == shape.product * dtype.byteCount`.
    public var bytes: [UInt8]

    /// Creates a tensor from raw bytes, checking that their count fits the shape.
    public init(dtype: SafetensorsDType, shape: [Int], bytes: [UInt8]) {
        precondition(
            shape.reduce(1, *) * dtype.byteCount == bytes.count,
            "safetensors tensor of shape \(shape) and dtype \(dtype.rawValue) needs \(shape.reduce(1, *) * dtype.byteCount) bytes, got \(bytes.count)")
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    /// Stores a Float32 tensor.
    public init(_ tensor: Tensor) {
        let bytes = tensor.scalars.withUnsafeBufferPointer { buffer in
            [UInt8](UnsafeRawBufferPointer(buffer))
        }
        self.init(dtype: .float32, shape: tensor.shape, bytes: bytes)
    }

    /// Stores Int64 values with the given shape (`[]` for a scalar).
    public init(int64 values: [Int64], shape: [Int]) {
        let bytes = values.withUnsafeBufferPointer { [UInt8](UnsafeRawBufferPointer($0)) }
        self.init(dtype: .int64, shape: shape, bytes: bytes)
    }

    /// The number of elements.
    public var elementCount: Int { shape.reduce(1, *) }

    /// The elements as Float32 values, converting from F64 when needed; nil for I64.
    public var floatScalars: [Float]? {
        switch dtype {
        case .float32:
            return [Float](unsafeUninitializedCapacity: elementCount) { buffer, count in
                _ = bytes.withUnsafeBytes { raw in raw.copyBytes(to: UnsafeMutableRawBufferPointer(buffer)) }
                count = elementCount
            }
        case .float64:
            return int64OrDoubleWords().map { Float(Double(bitPattern: $0)) }
        case .int64:
            return nil
        }
    }

    /// The elements as Int64 values; nil unless the dtype is I64.
    public var int64Values: [Int64]? {
        guard dtype == .int64 else { return nil }
        return int64OrDoubleWords().map { Int64(bitPattern: $0) }
    }

    /// The elements as Double values, for any dtype (statistics in `inspect`).
    public var doubleValues: [Double] {
        switch dtype {
        case .float32: return (floatScalars ?? []).map(Double.init)
        case .float64: return int64OrDoubleWords().map { Double(bitPattern: $0) }
        case .int64: return (int64Values ?? []).map(Double.init)
        }
    }

    private func int64OrDoubleWords() -> [UInt64] {
        [UInt64](unsafeUninitializedCapacity: elementCount) { buffer, count in
            _ = bytes.withUnsafeBytes { raw in raw.copyBytes(to: UnsafeMutableRawBufferPointer(buffer)) }
            count = elementCount
        }.map { UInt64(littleEndian: $0) }
    }
}

/// A safetensors file in memory: named tensors and a string-to-string metadata map.
///
/// Layout (the format of Hugging Face's `safetensors` library): an 8-byte
/// little-endian header length N, then N bytes of JSON. The JSON maps each
/// tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}` and may
/// add a `"__metadata__"` object of strings. The data buffer follows, and
/// offsets are relative to its start. This writer orders tensors by name, lays them out
/// back to back, and pads the header with spaces to a multiple of 8 bytes as
/// the reference writer does. `read` rejects anything the format forbids:
/// overlapping or gapped data ranges, byte counts that disagree with the shape,
/// and a file whose length differs from what the header describes.
public struct SafetensorsFile: Equatable, Sendable {
    public var tensors: [String: SafetensorsTensor]
    public var metadata: [String: String]

    public init(tensors: [String: SafetensorsTensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The largest header this reader accepts (100 MB, the reference library's limit).
    public static let maximumHeaderLength = 100_000_000

    // MARK: Writing

    /// Returns the file's bytes.
    public func serialized() throws -> [UInt8] {
        let names = tensors.keys.sorted()
        var headerEntries: [String] = []
        var offset = 0
        for name in names {
            let tensor = tensors[name]!
            let end = offset + tensor.bytes.count
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            headerEntries.append(
                "\(jsonString(name)):{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        if !metadata.isEmpty {
            let entries = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            headerEntries.insert("\"__metadata__\":{\(entries.joined(separator: ","))}", at: 0)
        }
        var header = Array("{\(headerEntries.joined(separator: ","))}".utf8)
        while (8 + header.count) % 8 != 0 { header.append(UInt8(ascii: " ")) }

        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: header)
        for name in names { bytes.append(contentsOf: tensors[name]!.bytes) }
        return bytes
    }

    /// Writes the file atomically: the bytes go to a temporary file in the same
    /// folder, which is flushed to disk (`fsync`) and then renamed over `url`,
    /// and the folder is flushed so the rename itself survives a crash. A crash
    /// at any point leaves either the old file or the new one, never a torn one.
    public func write(to url: URL) throws {
        let bytes = try serialized()
        try writeAtomically(bytes, to: url)
    }

    // MARK: Reading

    /// Reads and verifies a safetensors file.
    public static func read(from url: URL) throws -> SafetensorsFile {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw CheckpointError.unreadable(path: url.path, reason: describeFileError(error))
        }
        return try parse([UInt8](data), path: url.path)
    }

    /// Parses and verifies the bytes of a safetensors file; `path` names it in errors.
    public static func parse(_ bytes: [UInt8], path: String) throws -> SafetensorsFile {
        guard bytes.count >= 8 else {
            throw CheckpointError.truncated(path: path, expectedBytes: 8, actualBytes: bytes.count)
        }
        var headerLength: UInt64 = 0
        for index in (0..<8).reversed() { headerLength = headerLength << 8 | UInt64(bytes[index]) }
        guard headerLength >= 2, headerLength <= UInt64(maximumHeaderLength) else {
            throw CheckpointError.badHeader(path: path, reason: "the header length field is \(headerLength) bytes, expected 2 to \(maximumHeaderLength)")
        }
        let dataStart = 8 + Int(headerLength)
        guard bytes.count >= dataStart else {
            throw CheckpointError.truncated(path: path, expectedBytes: dataStart, actualBytes: bytes.count)
        }

        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart]))
        } catch {
            throw CheckpointError.badHeader(path: path, reason: "the header is not valid JSON")
        }
        guard let header = json as? [String: Any] else {
            throw CheckpointError.badHeader(path: path, reason: "the header is not a JSON object")
        }

        var metadata: [String: String] = [:]
        if let rawMetadata = header["__metadata__"] {
            guard let map = rawMetadata as? [String: Any] else {
                throw CheckpointError.badHeader(path: path, reason: "__metadata__ is not an object")
            }
            for (key, value) in map {
                guard let string = value as? String else {
                    throw CheckpointError.badHeader(path: path, reason: "__metadata__ value of '\(key)' is not a string")
                }
                metadata[key] = string
            }
        }

        var entries: [(name: String, dtype: SafetensorsDType, shape: [Int], begin: Int, end: Int)] = []
        for (name, rawEntry) in header where name != "__metadata__" {
            entries.append(try parseEntry(name: name, rawEntry, path: path))
        }
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }

        let dataLength = bytes.count - dataStart
        var expectedBegin = 0
        for entry in entries {
            guard entry.begin == expectedBegin else {
                throw CheckpointError.badHeader(
                    path: path,
                    reason: "tensor '\(entry.name)' starts at data offset \(entry.begin), expected \(expectedBegin) (ranges overlap or leave a gap)")
            }
            expectedBegin = entry.end
        }
        guard dataLength >= expectedBegin else {
            throw CheckpointError.truncated(path: path, expectedBytes: dataStart + expectedBegin, actualBytes: bytes.count)
        }
        guard dataLength == expectedBegin else {
            throw CheckpointError.badHeader(
                path: path,
                reason: "the file has \(dataLength - expectedBegin) bytes after the last tensor's data")
        }

        var tensors: [String: SafetensorsTensor] = [:]
        for entry in entries {
            let slice = Array(bytes[(dataStart + entry.begin)..<(dataStart + entry.end)])
            tensors[entry.name] = SafetensorsTensor(dtype: entry.dtype, shape: entry.shape, bytes: slice)
        }
        return SafetensorsFile(tensors: tensors, metadata: metadata)
    }

    private static func parseEntry(
        name: String, _ rawEntry: Any, path: String
    ) throws -> (name: String, dtype: SafetensorsDType, shape: [Int], begin: Int, end: Int) {
        guard let entry = rawEntry as? [String: Any] else {
            throw CheckpointError.badHeader(path: path, reason: "the entry of tensor '\(name)' is not an object")
        }
        guard let dtypeName = entry["dtype"] as? String else {
            throw CheckpointError.badHeader(path: path, reason: "tensor '\(name)' has no dtype")
        }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            let allowed = SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            throw CheckpointError.badHeader(path: path, reason: "tensor '\(name)' has dtype \(dtypeName), expected one of \(allowed)")
        }
        guard let shapeNumbers = entry["shape"] as? [NSNumber],
              let shape = integers(shapeNumbers), shape.allSatisfy({ $0 >= 0 })
        else {
            throw CheckpointError.badHeader(path: path, reason: "tensor '\(name)' has no valid shape (expected a list of non-negative integers)")
        }
        guard let offsetNumbers = entry["data_offsets"] as? [NSNumber],
              let offsets = integers(offsetNumbers), offsets.count == 2,
              offsets[0] >= 0, offsets[1] >= offsets[0]
        else {
            throw CheckpointError.badHeader(path: path, reason: "tensor '\(name)' has no valid data_offsets (expected [begin, end] with 0 <= begin <= end)")
        }
        let (elementCount, overflow) = shape.reduce((1, false)) { partial, extent in
            let product = partial.0.multipliedReportingOverflow(by: extent)
            return (product.partialValue, partial.1 || product.overflow)
        }
        guard !overflow, offsets[1] - offsets[0] == elementCount * dtype.byteCount else {
            throw CheckpointError.badHeader(
                path: path,
                reason: "tensor '\(name)' of shape \(shape) and dtype \(dtype.rawValue) spans \(offsets[1] - offsets[0]) bytes, expected \(elementCount * dtype.byteCount)")
        }
        return (name, dtype, shape, offsets[0], offsets[1])
    }

    private static func integers(_ numbers: [NSNumber]) -> [Int]? {
        var result: [Int] = []
        for number in numbers {
            let double = number.doubleValue
            guard double == double.rounded(), abs(double) < 9e15 else { return nil }
            result.append(number.intValue)
        }
        return result
    }
}

/// Returns `text` as a JSON string literal.
func jsonString(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        default:
            if scalar.value < 0x20 {
                result += String(format: "\\u%04x", scalar.value)
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
    }
    return result + "\""
}

/// Writes `bytes` to `url` through a temporary file, `fsync` and `rename`.
public func writeAtomically(_ bytes: [UInt8], to url: URL) throws {
    let folder = url.deletingLastPathComponent()
    let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
    let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard descriptor >= 0 else {
        throw CheckpointError.writeFailed(path: url.path, reason: String(cString: strerror(errno)))
    }
    var written = 0
    var failure: String? = nil
    bytes.withUnsafeBytes { raw in
        while written < raw.count {
            let result = Foundation.write(descriptor, raw.baseAddress! + written, raw.count - written)
            if result < 0 {
                if errno == EINTR { continue }
                failure = String(cString: strerror(errno))
                return
            }
            written += result
        }
    }
    if failure == nil, fsync(descriptor) != 0 { failure = String(cString: strerror(errno)) }
    close(descriptor)
    if let failure {
        unlink(temporary.path)
        throw CheckpointError.writeFailed(path: url.path, reason: failure)
    }
    guard rename(temporary.path, url.path) == 0 else {
        let reason = String(cString: strerror(errno))
        unlink(temporary.path)
        throw CheckpointError.writeFailed(path: url.path, reason: reason)
    }
    let folderDescriptor = open(folder.path, O_RDONLY)
    if folderDescriptor >= 0 {
        fsync(folderDescriptor)
        close(folderDescriptor)
    }
}

func describeFileError(_ error: Error) -> String {
    let nsError = error as NSError
    if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError,
       underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    if nsError.domain == NSCocoaErrorDomain, nsError.code == NSFileReadNoSuchFileError {
        return "no such file"
    }
    return nsError.localizedDescription
}
