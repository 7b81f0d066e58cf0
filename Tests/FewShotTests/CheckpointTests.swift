import Foundation
import TensorCore
import XCTest
@testable import FewShot

final class CheckpointTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoint-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    private func sampleCheckpoint() -> Checkpoint {
        var random = SeededRandom(seed: 7)
        func tensor(_ shape: [Int]) -> Tensor {
            Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in random.nextFloat() - 0.5 })
        }
        return Checkpoint(
            tensors: [
                "layer1.0.conv1.weight": tensor([4, 3, 3, 3]),
                "layer1.0.bn1.running_mean": tensor([4]),
                "head.scale": Tensor(shape: [1], scalars: [1.5]),
                "optimizer.momentum.layer1.0.conv1.weight": tensor([4, 3, 3, 3]),
            ],
            counters: ["layer1.0.bn1.num_batches_tracked": 42],
            configJSON: TrainingConfig().jsonText(),
            epoch: 3, step: 300, randomState: [1, 2, 3, 0xFFFF_FFFF_FFFF_FFFF],
            metrics: ["train_loss": 1.25, "val_accuracy": 0.5],
            extra: ["run": "unit"])
    }

    private func write(_ checkpoint: Checkpoint) throws -> URL {
        let url = folder.appendingPathComponent("model.safetensors")
        try checkpoint.write(to: url)
        return url
    }

    func testRoundTripKeepsEverything() throws {
        let checkpoint = sampleCheckpoint()
        let url = try write(checkpoint)
        let loaded = try Checkpoint.read(from: url, expected: checkpoint.layout)
        XCTAssertEqual(loaded, checkpoint)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0 != "model.safetensors" }
        XCTAssertEqual(leftovers, [], "the atomic write leaves no temporary file")
    }

    func testFileLayoutFollowsSafetensors() throws {
        let url = try write(sampleCheckpoint())
        let bytes = [UInt8](try Data(contentsOf: url))
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual((8 + headerLength) % 8, 0, "header padded to 8 bytes")
        let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as! [String: Any]
        let counter = header["layer1.0.bn1.num_batches_tracked"] as! [String: Any]
        XCTAssertEqual(counter["dtype"] as? String, "I64")
        XCTAssertEqual((counter["shape"] as? [Int]), [])
        let weight = header["layer1.0.conv1.weight"] as! [String: Any]
        XCTAssertEqual(weight["dtype"] as? String, "F32")
        XCTAssertEqual(weight["shape"] as? [Int], [4, 3, 3, 3])
        let metadata = header["__metadata__"] as! [String: String]
        XCTAssertEqual(metadata["epoch"], "3")
        XCTAssertEqual(metadata["step"], "300")
        XCTAssertEqual(metadata["format"], "physarum-fewshot-checkpoint")
        XCTAssertNotNil(metadata["config"])
        XCTAssertEqual(metadata["rng_state"], "1,2,3,ffffffffffffffff")
    }

    func testOverwriteReplacesWholeFile() throws {
        var checkpoint = sampleCheckpoint()
        let url = try write(checkpoint)
        checkpoint.tensors["head.scale"] = Tensor(shape: [1], scalars: [2])
        checkpoint.step = 400
        try checkpoint.write(to: url)
        XCTAssertEqual(try Checkpoint.read(from: url).step, 400)
    }

    func testTruncatedFileIsRejected() throws {
        let url = try write(sampleCheckpoint())
        let bytes = [UInt8](try Data(contentsOf: url))
        for length in [0, 5, 100, bytes.count - 1] {
            try Data(bytes.prefix(length)).write(to: url)
            XCTAssertThrowsError(try Checkpoint.read(from: url)) { error in
                guard case CheckpointError.truncated = error else {
                    return XCTFail("length \(length): expected truncated, got \(error)")
                }
                XCTAssertTrue("\(error)".contains("is truncated"), "\(error)")
            }
        }
    }

    func testBadHeaderIsRejected() throws {
        let url = try write(sampleCheckpoint())
        let bytes = [UInt8](try Data(contentsOf: url))
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }

        var notJSON = bytes
        notJSON[8] = UInt8(ascii: "[")
        try Data(notJSON).write(to: url)
        XCTAssertThrowsError(try Checkpoint.read(from: url)) { error in
            guard case CheckpointError.badHeader = error else { return XCTFail("expected badHeader, got \(error)") }
        }

        var hugeLength = bytes
        hugeLength[7] = 0x7F
        try Data(hugeLength).write(to: url)
        XCTAssertThrowsError(try Checkpoint.read(from: url)) { error in
            guard case CheckpointError.badHeader(_, let reason) = error else { return XCTFail("expected badHeader, got \(error)") }
            XCTAssertTrue(reason.contains("header length"), reason)
            XCTAssertTrue(reason.contains("expected 2 to "), reason)
        }

        var header = String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self)
        header = header.replacingOccurrences(of: "\"shape\":[4,3,3,3]", with: "\"shape\":[4,3,3,4]")
        try Data(Array(bytes[0..<8]) + Array(header.utf8) + Array(bytes[(8 + headerLength)...])).write(to: url)
        XCTAssertThrowsError(try Checkpoint.read(from: url)) { error in
            guard case CheckpointError.badHeader(_, let reason) = error else { return XCTFail("expected badHeader, got \(error)") }
            XCTAssertTrue(reason.contains("layer1.0.conv1.weight"), reason)
        }

        try Data(bytes + [0, 0, 0, 0]).write(to: url)
        XCTAssertThrowsError(try Checkpoint.read(from: url)) { error in
            guard case CheckpointError.badHeader(_, let reason) = error else { return XCTFail("expected badHeader, got \(error)") }
            XCTAssertTrue(reason.contains("after the last tensor"), reason)
        }
    }

    func testFlippedDataByteFailsChecksum() throws {
        let url = try write(sampleCheckpoint())
        var bytes = [UInt8](try Data(contentsOf: url))
        bytes[bytes.count - 3] ^= 0x10
        try Data(bytes).write(to: url)
        XCTAssertThrowsError(try Checkpoint.read(from: url)) { error in
            XCTAssertEqual(error as? CheckpointError, .checksumMismatch(path: url.path))
        }
    }

    func testMissingTensorIsNamed() throws {
        var checkpoint = sampleCheckpoint()
        let layout = checkpoint.layout
        checkpoint.tensors["layer1.0.bn1.running_mean"] = nil
        let url = try write(checkpoint)
        XCTAssertThrowsError(try Checkpoint.read(from: url, expected: layout)) { error in
            XCTAssertEqual(error as? CheckpointError, .missingTensors(path: url.path, names: ["layer1.0.bn1.running_mean"]))
        }
    }

    func testUnexpectedTensorIsNamed() throws {
        var checkpoint = sampleCheckpoint()
        let layout = checkpoint.layout
        checkpoint.tensors["layer9.0.conv1.weight"] = Tensor(shape: [1], scalars: [0])
        let url = try write(checkpoint)
        XCTAssertThrowsError(try Checkpoint.read(from: url, expected: layout)) { error in
            XCTAssertEqual(error as? CheckpointError, .unexpectedTensors(path: url.path, names: ["layer9.0.conv1.weight"]))
        }
    }

    func testWrongShapeIsNamed() throws {
        let checkpoint = sampleCheckpoint()
        var layout = checkpoint.layout
        layout.floatShapes["layer1.0.conv1.weight"] = [8, 3, 3, 3]
        let url = try write(checkpoint)
        XCTAssertThrowsError(try Checkpoint.read(from: url, expected: layout)) { error in
            XCTAssertEqual(error as? CheckpointError,
                           .wrongShape(path: url.path, name: "layer1.0.conv1.weight", expected: [8, 3, 3, 3], actual: [4, 3, 3, 3]))
        }
    }

    func testCounterStoredAsFloatIsRejected() throws {
        var checkpoint = sampleCheckpoint()
        let layout = checkpoint.layout
        checkpoint.counters["layer1.0.bn1.num_batches_tracked"] = nil
        checkpoint.tensors["layer1.0.bn1.num_batches_tracked"] = Tensor(shape: [], scalars: [42])
        let url = try write(checkpoint)
        XCTAssertThrowsError(try Checkpoint.read(from: url, expected: layout)) { error in
            XCTAssertEqual(error as? CheckpointError,
                           .wrongDType(path: url.path, name: "layer1.0.bn1.num_batches_tracked", expected: "I64", actual: "F32"))
        }
    }

    func testMissingAndInvalidMetadataAreRejected() throws {
        let file = sampleCheckpoint().safetensorsFile()
        var withoutStep = file
        withoutStep.metadata["step"] = nil
        XCTAssertThrowsError(try Checkpoint(withoutStep, path: "x")) { error in
            XCTAssertEqual(error as? CheckpointError, .missingMetadata(path: "x", key: "step"))
        }
        var badState = file
        badState.metadata["rng_state"] = "0,0,0,0"
        XCTAssertThrowsError(try Checkpoint(badState, path: "x")) { error in
            guard case CheckpointError.invalidMetadata(_, "rng_state", _) = error else { return XCTFail("\(error)") }
        }
        var otherFormat = file
        otherFormat.metadata["format"] = "something-else"
        XCTAssertThrowsError(try Checkpoint(otherFormat, path: "x")) { error in
            guard case CheckpointError.invalidMetadata(_, "format", _) = error else { return XCTFail("\(error)") }
        }
    }

    func testPlainSafetensorsVerifiesAsStructureOnly() throws {
        let url = folder.appendingPathComponent("embeddings.safetensors")
        try SafetensorsFile(tensors: ["embeddings": SafetensorsTensor(Tensor(shape: [2, 3], repeating: 0.25))]).write(to: url)
        let summary = try CheckpointSummary(contentsOf: url)
        XCTAssertNil(summary.verificationFailure)
        XCTAssertFalse(summary.isTrainingCheckpoint)
        XCTAssertEqual(summary.tensors.map(\.name), ["embeddings"])
        XCTAssertEqual(summary.jsonObject["training_checkpoint"] as? Bool, false)
    }

    func testCheckpointWithoutConfigStillFails() throws {
        var file = sampleCheckpoint().safetensorsFile()
        file.metadata["config"] = nil
        let url = folder.appendingPathComponent("damaged.safetensors")
        try file.write(to: url)
        let summary = try CheckpointSummary(contentsOf: url)
        XCTAssertTrue(summary.isTrainingCheckpoint)
        XCTAssertNotNil(summary.verificationFailure)
    }

    func testMissingFileIsUnreadable() {
        let url = folder.appendingPathComponent("absent.safetensors")
        XCTAssertThrowsError(try Checkpoint.read(from: url)) { error in
            guard case CheckpointError.unreadable(let path, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, url.path)
        }
    }
}
