import Foundation
import XCTest
import TensorCore
@testable import NeuralNetwork

/// Compares a narrow ResNet-12 (widths 4-8-12-16, six 32 x 32 images) with
/// PyTorch results exported by `Scripts/backbone_reference.py`. The compared
/// tensors are the embeddings and the image and parameter gradients in
/// evaluation and training mode, the running statistics after training, and
/// the parameters after two SGD steps. Dropout is off, and training
/// normalises the groups [2, 4] as two PyTorch calls would.
///
/// Tolerance: every compared tensor satisfies
/// `max |ours - PyTorch| <= agreementTolerance * max(1, max |PyTorch|)`.
/// Both sides compute in Float32 with different summation orders
/// (SGEMM blocking, batch-norm reductions). Measured against torch 2.13.0:
/// at most 3.1e-6 for the embeddings and gradients and 1e-6 for the SGD
/// steps, so the bound leaves a margin of 30; a wrong formula, shape or
/// layout misses by orders of magnitude more.
final class PyTorchAgreementTests: XCTestCase {
    let agreementTolerance: Float = 1e-4

    struct Fixture {
        let manifest: [String: Any]
        let tensors: [String: Tensor]
        var widths: [Int] { manifest["widths"] as! [Int] }
        var groups: [Int] { manifest["groups"] as! [Int] }
        subscript(name: String) -> Tensor {
            guard let tensor = tensors[name] else { preconditionFailure("fixture has no tensor '\(name)'") }
            return tensor
        }
    }

    func loadFixture() throws -> Fixture {
        let directory = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil),
                                      "the Fixtures folder is missing from the test bundle")
        let manifestData = try Data(contentsOf: directory.appendingPathComponent("resnet12_reference.json"))
        let manifest = try XCTUnwrap(JSONSerialization.jsonObject(with: manifestData) as? [String: Any])
        let data = try Data(contentsOf: directory.appendingPathComponent("resnet12_reference.f32"))
        let floats: [Float] = data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
        var tensors: [String: Tensor] = [:]
        let entries = try XCTUnwrap(manifest["tensors"] as? [String: [String: Any]])
        for (name, entry) in entries {
            let shape = try XCTUnwrap(entry["shape"] as? [Int])
            let offset = try XCTUnwrap(entry["offset"] as? Int)
            let count = shape.reduce(1, *)
            tensors[name] = Tensor(shape: shape, scalars: Array(floats[offset..<(offset + count)]))
        }
        return Fixture(manifest: manifest, tensors: tensors)
    }

    func makeNetwork(_ fixture: Fixture) throws -> ResNet12 {
        Parallel.workerCount = 2
        let network = ResNet12(widths: fixture.widths, dropRate: 0, seed: 1)
        let state = network.stateDict().map { (name: $0.name, tensor: fixture["initial/" + $0.name]) }
        try network.loadStateDict(state)
        return network
    }

    func assertAgrees(_ ours: Tensor, _ reference: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(ours.shape, reference.shape, "\(what): shape", file: file, line: line)
        guard ours.shape == reference.shape else { return }
        let error = zip(ours.scalars, reference.scalars).map { abs($0 - $1) }.max() ?? 0
        let scale = max(1, reference.scalars.map(abs).max() ?? 0)
        XCTAssertLessThanOrEqual(error, agreementTolerance * scale, "\(what): max error \(error) at scale \(scale)", file: file, line: line)
    }

    func checkMode(_ mode: String, training: Bool) throws -> (ResNet12, Fixture) {
        let fixture = try loadFixture()
        let network = try makeNetwork(fixture)
        network.isTraining = training
        let embeddings = network.forward(fixture["images"], normalizationGroups: training ? fixture.groups : nil)
        assertAgrees(embeddings, fixture["\(mode)/embeddings"], "\(mode) embeddings")
        let dImages = network.backward(fixture["loss_weights"])
        assertAgrees(dImages, fixture["\(mode)/d_images"], "\(mode) dImages")
        for parameter in network.parameters {
            assertAgrees(parameter.gradient, fixture["\(mode)/grad/\(parameter.name)"], "\(mode) gradient of \(parameter.name)")
        }
        return (network, fixture)
    }

    func testEvaluationModeAgrees() throws {
        _ = try checkMode("eval", training: false)
    }

    func testTrainingModeWithGroupsAgrees() throws {
        let (network, fixture) = try checkMode("train", training: true)
        for (name, tensor) in network.stateDict() where name.hasSuffix("running_mean") || name.hasSuffix("running_var") {
            assertAgrees(tensor, fixture["train/state/" + name], "running statistic \(name)")
        }
        let counts = try XCTUnwrap(fixture.manifest["num_batches_tracked_after_train"] as? [String: Int])
        for (name, count) in network.batchNormCounts {
            XCTAssertEqual(Int(count), counts[name], "\(name)")
        }
    }

    /// Starts from PyTorch's own gradients so that only the update rule is
    /// compared; the gradients themselves are checked above.
    func testSGDStepsAgree() throws {
        let fixture = try loadFixture()
        let network = try makeNetwork(fixture)
        for parameter in network.parameters {
            parameter.gradient = fixture["train/grad/\(parameter.name)"]
        }
        let optimizer = SGD(parameters: network.parameters, learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4, nesterov: true)
        for step in 1...2 {
            optimizer.step()
            for parameter in network.parameters {
                assertAgrees(parameter.value, fixture["sgd\(step)/\(parameter.name)"], "\(parameter.name) after SGD step \(step)")
            }
        }
    }
}
