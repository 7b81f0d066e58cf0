import XCTest
import TensorCore
@testable import NeuralNetwork

final class ResNet12Tests: XCTestCase {
    /// See `LayerGradientTests.gradientTolerance`; the network chains about
    /// 20 layers, so the Float32 error grows but stays well below this.
    let gradientTolerance = 1e-3

    override func setUp() {
        Parallel.workerCount = 2
    }

    /// Returns a narrow network with non-trivial batch-norm parameters and running statistics.
    func makeNarrowNetwork(seed: UInt64) -> ResNet12 {
        let network = ResNet12(widths: [3, 4, 5, 6], dropRate: 0, seed: seed)
        var random = SeededRandom(seed: seed + 100)
        for norm in network.batchNorms {
            norm.weight.value = Tensor(shape: [norm.channels], scalars: (0..<norm.channels).map { _ in Float(0.5 + random.nextDouble()) })
            norm.bias.value = randomTensor([norm.channels], &random, scale: 0.2)
            norm.runningMean = randomTensor([norm.channels], &random, scale: 0.3)
            norm.runningVariance = Tensor(shape: [norm.channels], scalars: (0..<norm.channels).map { _ in Float(0.5 + random.nextDouble()) })
        }
        return network
    }

    func stateValues(_ network: ResNet12) -> (values: [String: [Double]], shapes: [String: [Int]]) {
        var values: [String: [Double]] = [:]
        var shapes: [String: [Int]] = [:]
        for (name, tensor) in network.stateDict() {
            values[name] = tensor.scalars.map(Double.init)
            shapes[name] = tensor.shape
        }
        return (values, shapes)
    }

    /// Checks the network's forward against the Float64 reference and its
    /// input and parameter gradients against central differences of it.
    func checkEndToEnd(training: Bool, groups: [Int]?) {
        let network = makeNarrowNetwork(seed: 5)
        network.isTraining = training
        let (state, shapes) = stateValues(network)
        var random = SeededRandom(seed: 6)
        let images = randomTensor([5, 3, 16, 16], &random)
        let groupList = groups ?? [5]

        let embeddings = network.forward(images, normalizationGroups: groups)
        XCTAssertEqual(embeddings.shape, [5, network.embeddingDimension(imageSize: 16)])
        let reference = Reference.resNet12(.init(images), state: state, shapes: shapes, groups: groupList, training: training)
        XCTAssertLessThanOrEqual(maxAbsDifference(embeddings.scalars.map(Double.init), reference), 1e-4, "forward against the Float64 reference")

        let lossWeights = randomTensor(embeddings.shape, &random)
        let weights = lossWeights.scalars.map(Double.init)
        let dImages = network.backward(lossWeights)
        XCTAssertEqual(dImages.shape, images.shape)

        func loss(images imageValues: [Double], state: [String: [Double]]) -> Double {
            Reference.dot(Reference.resNet12(.init(shape: images.shape, values: imageValues), state: state, shapes: shapes,
                                             groups: groupList, training: training), weights)
        }
        func assertClose(_ analytic: Double, _ numeric: Double, scale: Double, _ what: String) {
            XCTAssertLessThanOrEqual(abs(analytic - numeric), gradientTolerance * max(1, scale),
                                     "\(what): analytic \(analytic), numeric \(numeric)")
        }

        var imageValues = images.scalars.map(Double.init)
        let imageScale = dImages.scalars.map { abs(Double($0)) }.max()!
        for index in stride(from: 7, to: imageValues.count, by: 97) {
            let numeric = Reference.centralDifference(&imageValues, index: index) { loss(images: $0, state: state) }
            assertClose(Double(dImages.scalars[index]), numeric, scale: imageScale, "dImages[\(index)]")
        }

        let originalImages = images.scalars.map(Double.init)
        for parameter in network.parameters {
            var values = state[parameter.name]!
            let scale = parameter.gradient.scalars.map { abs(Double($0)) }.max()!
            for index in Set([0, values.count / 2, values.count - 1]) {
                let numeric = Reference.centralDifference(&values, index: index) { changed in
                    var changedState = state
                    changedState[parameter.name] = changed
                    return loss(images: originalImages, state: changedState)
                }
                assertClose(Double(parameter.gradient.scalars[index]), numeric, scale: scale, "\(parameter.name)[\(index)]")
            }
        }
    }

    func testEndToEndGradientTrainingWithGroups() { checkEndToEnd(training: true, groups: [2, 3]) }
    func testEndToEndGradientTraining() { checkEndToEnd(training: true, groups: nil) }
    func testEndToEndGradientEvaluation() { checkEndToEnd(training: false, groups: nil) }

    func testEmbeddingDimensionDefaultWidths() {
        let network = ResNet12(widths: [2, 2, 2, 640], seed: 1)
        XCTAssertEqual(network.embeddingDimension(), 2560)
        XCTAssertEqual(network.embeddingDimension(imageSize: 84), 640 * 5 * 5)
    }

    func testStateDictNamesFollowPyTorch() {
        let network = ResNet12(widths: [2, 3, 4, 5], seed: 1)
        let names = network.stateDict().map(\.name)
        XCTAssertEqual(names.count, 4 * (4 * 5))
        XCTAssertEqual(Array(names.prefix(7)), [
            "layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.bn1.running_mean",
            "layer1.0.bn1.running_var", "layer1.0.conv2.weight", "layer1.0.bn2.weight",
        ])
        XCTAssertTrue(names.contains("layer4.0.downsample.0.weight"))
        XCTAssertEqual(names.last, "layer4.0.downsample.1.running_var")
        XCTAssertEqual(network.parameters.map(\.name).prefix(4), ["layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.conv2.weight"])
        XCTAssertEqual(network.parameters.count, 4 * 12)
        let shapes = Dictionary(uniqueKeysWithValues: network.stateDict().map { ($0.name, $0.tensor.shape) })
        XCTAssertEqual(shapes["layer2.0.conv1.weight"], [3, 2, 3, 3])
        XCTAssertEqual(shapes["layer2.0.downsample.0.weight"], [3, 2, 1, 1])
        XCTAssertEqual(network.batchNormCounts.first?.name, "layer1.0.bn1.num_batches_tracked")
    }

    func testFullWidthParameterCount() {
        let network = ResNet12(seed: 1)
        let count = network.parameters.map(\.value.count).reduce(0, +)
        // Per block: 9 * Cin * C + 2 * 9 * C^2 (3x3 convolutions) + Cin * C (shortcut) + 4 * 2 * C (batch norms).
        XCTAssertEqual(count, 76_160 + 564_480 + 2_357_760 + 9_425_920)
    }

    func testKaimingFanOutInitialisation() {
        let network = ResNet12(widths: [64, 8, 8, 8], seed: 3)
        let weights = network.parameters[9].value  // layer1.0.downsample.0.weight, [64, 3, 1, 1]
        XCTAssertEqual(network.parameters[9].name, "layer1.0.downsample.0.weight")
        let conv2 = network.parameters[3].value.scalars.map(Double.init)  // [64, 64, 3, 3], std sqrt(2 / 576)
        let std = (conv2.map { $0 * $0 }.reduce(0, +) / Double(conv2.count)).squareRoot()
        XCTAssertEqual(std, (2.0 / 576).squareRoot(), accuracy: 0.003)
        XCTAssertEqual(weights.shape, [64, 3, 1, 1])
        XCTAssertEqual(ResNet12(widths: [64, 8, 8, 8], seed: 3).parameters[3].value, network.parameters[3].value)
    }

    func testLoadStateDictRoundTrip() throws {
        let source = makeNarrowNetwork(seed: 8)
        let target = ResNet12(widths: [3, 4, 5, 6], dropRate: 0, seed: 9)
        try target.loadStateDict(source.stateDict())
        for (a, b) in zip(source.stateDict(), target.stateDict()) {
            XCTAssertEqual(a.name, b.name)
            XCTAssertEqual(a.tensor, b.tensor)
        }
    }

    func testLoadStateDictMissingKeyThrows() {
        let network = ResNet12(widths: [3, 4, 5, 6], seed: 1)
        let entries = network.stateDict().filter { $0.name != "layer3.0.bn2.running_var" }
        XCTAssertThrowsError(try network.loadStateDict(entries)) { error in
            XCTAssertEqual(error as? StateDictError, .missingKey("layer3.0.bn2.running_var"))
            XCTAssertTrue("\(error)".contains("layer3.0.bn2.running_var"))
        }
    }

    func testLoadStateDictWrongShapeThrows() {
        let network = ResNet12(widths: [3, 4, 5, 6], seed: 1)
        let wider = ResNet12(widths: [3, 4, 5, 7], seed: 1)
        XCTAssertThrowsError(try network.loadStateDict(wider.stateDict())) { error in
            XCTAssertEqual(error as? StateDictError, .shapeMismatch(key: "layer4.0.conv1.weight", expected: [6, 5, 3, 3], actual: [7, 5, 3, 3]))
        }
    }

    func testLoadStateDictUnexpectedKeyThrows() {
        let network = ResNet12(widths: [3, 4, 5, 6], seed: 1)
        let entries = network.stateDict() + [(name: "fc.weight", tensor: Tensor(shape: [1]))]
        XCTAssertThrowsError(try network.loadStateDict(entries)) { error in
            XCTAssertEqual(error as? StateDictError, .unexpectedKey("fc.weight"))
        }
    }

    func testBatchNormCountsRoundTrip() throws {
        let network = ResNet12(widths: [3, 4, 5, 6], dropRate: 0, seed: 1)
        var random = SeededRandom(seed: 2)
        _ = network.forward(randomTensor([4, 3, 16, 16], &random), normalizationGroups: [1, 3])
        XCTAssertTrue(network.batchNormCounts.allSatisfy { $0.count == 2 })
        try network.setBatchNormCounts([(name: "layer2.0.bn3.num_batches_tracked", count: 41)])
        XCTAssertEqual(network.batchNorms[6].numBatchesTracked, 41)
        XCTAssertThrowsError(try network.setBatchNormCounts([(name: "layer9.0.bn1.num_batches_tracked", count: 1)]))
    }

    func testDropBlockKeepRateRamp() throws {
        let network = ResNet12(widths: [3, 4, 5, 6], dropRate: 0.1, dropBlockRampPasses: 100, seed: 1)
        let block = network.blocks[2]
        XCTAssertEqual(block.dropBlockKeepRate(passes: 0), 1)
        XCTAssertEqual(Double(block.dropBlockKeepRate(passes: 50)), 0.95, accuracy: 1e-6)
        XCTAssertEqual(Double(block.dropBlockKeepRate(passes: 100)), 0.9, accuracy: 1e-6)
        XCTAssertEqual(Double(block.dropBlockKeepRate(passes: 5000)), 0.9, accuracy: 1e-6)

        var random = SeededRandom(seed: 2)
        _ = network.forward(randomTensor([4, 3, 32, 32], &random), normalizationGroups: [2, 2])
        XCTAssertEqual(network.blockForwardPasses, [2, 2, 2, 2])
        network.isTraining = false
        _ = network.forward(randomTensor([2, 3, 32, 32], &random))
        XCTAssertEqual(network.blockForwardPasses, [2, 2, 2, 2])
        try network.setBlockForwardPasses([7, 7, 7, 7])
        XCTAssertEqual(network.blockForwardPasses, [7, 7, 7, 7])
        XCTAssertThrowsError(try network.setBlockForwardPasses([1, 2]))
    }

    func testDropoutStreamResumes() throws {
        var random = SeededRandom(seed: 2)
        let images = randomTensor([4, 3, 16, 16], &random)
        let first = ResNet12(widths: [3, 4, 5, 6], seed: 1)
        _ = first.forward(images)
        let saved = first.randomState
        let continued = first.forward(images)

        let second = ResNet12(widths: [3, 4, 5, 6], seed: 1)
        _ = second.forward(images)
        try second.setRandomState(saved)
        XCTAssertEqual(second.forward(images), continued)
        XCTAssertThrowsError(try second.setRandomState([0, 0, 0, 0]))
    }

    func testEvaluationIsDeterministic() {
        let network = ResNet12(widths: [3, 4, 5, 6], seed: 1)
        network.isTraining = false
        var random = SeededRandom(seed: 2)
        let images = randomTensor([3, 3, 16, 16], &random)
        XCTAssertEqual(network.forward(images), network.forward(images))
    }
}
