import XCTest
import TensorCore
@testable import NeuralNetwork

/// Finite-difference gradient checks: each layer's Float32 backward against
/// central differences (step 1e-6) of the Float64 reference forward in
/// `Reference`, for the loss `sum(output * weights)` with random weights.
///
/// Tolerance: the largest error may be `gradientTolerance` times the largest
/// gradient magnitude (at least 1). Float32 has a unit roundoff of 6e-8 and
/// these layers sum at most a few hundred terms per value, so correct code
/// stays near 1e-5; a wrong formula misses by far more.
final class LayerGradientTests: XCTestCase {
    let gradientTolerance = 1e-4
    let forwardTolerance = 1e-5

    override func setUp() {
        Parallel.workerCount = 2
    }

    func assertClose(_ analytic: [Double], _ numeric: [Double], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let scale = max(1, numeric.map(abs).max() ?? 0)
        let error = maxAbsDifference(analytic, numeric)
        XCTAssertLessThanOrEqual(error, gradientTolerance * scale, "\(what): max error \(error) at gradient scale \(scale)", file: file, line: line)
    }

    func checkConvolution(inputShape: [Int], outputChannels: Int, kernelSize: Int, stride: Int, padding: Int) {
        var random = SeededRandom(seed: 11)
        let conv = Conv2d(name: "conv", inputChannels: inputShape[1], outputChannels: outputChannels,
                          kernelSize: kernelSize, stride: stride, padding: padding)
        conv.weight.value = randomTensor(conv.weight.value.shape, &random)
        conv.targetColumns = 20  // several images per chunk, to cover the chunk gather and scatter
        let input = randomTensor(inputShape, &random)
        let output = conv.forward(input)
        let reference = Reference.conv2d(.init(input), weight: .init(conv.weight.value), stride: stride, padding: padding)
        XCTAssertEqual(output.shape, reference.shape)
        XCTAssertLessThanOrEqual(maxAbsDifference(output.scalars.map(Double.init), reference.values), forwardTolerance * 10)

        let lossWeights = randomTensor(output.shape, &random)
        let dInput = conv.backward(lossWeights)
        let weights = lossWeights.scalars.map(Double.init)
        var inputValues = input.scalars.map(Double.init)
        let numericInput = (0..<inputValues.count).map { index in
            Reference.centralDifference(&inputValues, index: index) { values in
                Reference.dot(Reference.conv2d(.init(shape: inputShape, values: values), weight: .init(conv.weight.value),
                                               stride: stride, padding: padding).values, weights)
            }
        }
        assertClose(dInput.scalars.map(Double.init), numericInput, "Conv2d dInput k\(kernelSize) s\(stride) p\(padding)")

        var weightValues = conv.weight.value.scalars.map(Double.init)
        let numericWeight = (0..<weightValues.count).map { index in
            Reference.centralDifference(&weightValues, index: index) { values in
                Reference.dot(Reference.conv2d(.init(input), weight: .init(shape: conv.weight.value.shape, values: values),
                                               stride: stride, padding: padding).values, weights)
            }
        }
        assertClose(conv.weight.gradient.scalars.map(Double.init), numericWeight, "Conv2d dWeight k\(kernelSize) s\(stride) p\(padding)")
    }

    func testConv2d3x3Padding1Gradient() {
        checkConvolution(inputShape: [5, 3, 6, 5], outputChannels: 4, kernelSize: 3, stride: 1, padding: 1)
    }

    func testConv2dStride2Gradient() {
        checkConvolution(inputShape: [3, 2, 7, 6], outputChannels: 3, kernelSize: 3, stride: 2, padding: 0)
    }

    func testConv2d1x1Gradient() {
        checkConvolution(inputShape: [4, 3, 4, 4], outputChannels: 5, kernelSize: 1, stride: 1, padding: 0)
    }

    func testConv2dWideKernelPaddingGradient() {
        checkConvolution(inputShape: [2, 2, 5, 5], outputChannels: 2, kernelSize: 5, stride: 2, padding: 2)
    }

    func checkBatchNorm(training: Bool, groups: [Int]?) {
        var random = SeededRandom(seed: 12)
        let shape = [5, 3, 3, 2]
        let norm = BatchNorm2d(name: "bn", channels: 3)
        norm.isTraining = training
        norm.weight.value = randomTensor([3], &random)
        norm.bias.value = randomTensor([3], &random)
        norm.runningMean = randomTensor([3], &random)
        norm.runningVariance = Tensor(shape: [3], scalars: [0.5, 1.5, 2.0])
        let runningMean = norm.runningMean.scalars.map(Double.init)
        let runningVariance = norm.runningVariance.scalars.map(Double.init)
        let input = randomTensor(shape, &random, scale: 2)
        let output = norm.forward(input, normalizationGroups: groups)
        let groupList = groups ?? [shape[0]]
        func reference(_ x: [Double], _ weight: [Double], _ bias: [Double]) -> [Double] {
            Reference.batchNorm(.init(shape: shape, values: x), weight: weight, bias: bias, groups: groupList, training: training,
                                runningMean: runningMean, runningVariance: runningVariance).values
        }
        var x = input.scalars.map(Double.init)
        var gamma = norm.weight.value.scalars.map(Double.init)
        var beta = norm.bias.value.scalars.map(Double.init)
        XCTAssertLessThanOrEqual(maxAbsDifference(output.scalars.map(Double.init), reference(x, gamma, beta)), forwardTolerance * 10)

        let lossWeights = randomTensor(shape, &random)
        let weights = lossWeights.scalars.map(Double.init)
        let dInput = norm.backward(lossWeights)
        let numericInput = (0..<x.count).map { index in
            Reference.centralDifference(&x, index: index) { Reference.dot(reference($0, gamma, beta), weights) }
        }
        assertClose(dInput.scalars.map(Double.init), numericInput, "BatchNorm2d dInput training \(training)")
        let numericGamma = (0..<3).map { index in
            Reference.centralDifference(&gamma, index: index) { Reference.dot(reference(x, $0, beta), weights) }
        }
        assertClose(norm.weight.gradient.scalars.map(Double.init), numericGamma, "BatchNorm2d dWeight")
        let numericBeta = (0..<3).map { index in
            Reference.centralDifference(&beta, index: index) { Reference.dot(reference(x, gamma, $0), weights) }
        }
        assertClose(norm.bias.gradient.scalars.map(Double.init), numericBeta, "BatchNorm2d dBias")
    }

    func testBatchNormTrainingGradient() { checkBatchNorm(training: true, groups: nil) }
    func testBatchNormTrainingGroupsGradient() { checkBatchNorm(training: true, groups: [2, 3]) }
    func testBatchNormEvaluationGradient() { checkBatchNorm(training: false, groups: nil) }

    func testBatchNormRunningStatisticsPerGroup() {
        let norm = BatchNorm2d(name: "bn", channels: 1)
        // Group 1: values 1, 3 (mean 2, unbiased variance 2); group 2: 10, 14, 18 (mean 14, unbiased variance 16).
        _ = norm.forward(Tensor(shape: [5, 1, 1, 1], scalars: [1, 3, 10, 14, 18]), normalizationGroups: [2, 3])
        let mean1 = 0.9 * 0 + 0.1 * 2.0, variance1 = 0.9 * 1 + 0.1 * 2.0
        XCTAssertEqual(Double(norm.runningMean.scalars[0]), 0.9 * mean1 + 0.1 * 14, accuracy: 1e-6)
        XCTAssertEqual(Double(norm.runningVariance.scalars[0]), 0.9 * variance1 + 0.1 * 16, accuracy: 1e-5)
        XCTAssertEqual(norm.numBatchesTracked, 2)
    }

    func testLeakyReLUGradient() {
        var random = SeededRandom(seed: 13)
        let input = randomTensor([2, 3, 4, 4], &random)
        let layer = LeakyReLU(negativeSlope: 0.1)
        let output = layer.forward(input)
        var x = input.scalars.map(Double.init)
        XCTAssertLessThanOrEqual(maxAbsDifference(output.scalars.map(Double.init), Reference.leakyReLU(.init(input)).values), forwardTolerance)
        let lossWeights = randomTensor(input.shape, &random)
        let weights = lossWeights.scalars.map(Double.init)
        let dInput = layer.backward(lossWeights)
        let numeric = (0..<x.count).map { index in
            Reference.centralDifference(&x, index: index) { Reference.dot(Reference.leakyReLU(.init(shape: input.shape, values: $0)).values, weights) }
        }
        assertClose(dInput.scalars.map(Double.init), numeric, "LeakyReLU dInput")
    }

    func testMaxPoolGradient() {
        var random = SeededRandom(seed: 14)
        let input = randomTensor([2, 3, 5, 6], &random)  // odd height: the last row is dropped
        let layer = MaxPool2d()
        let output = layer.forward(input)
        XCTAssertEqual(output.shape, [2, 3, 2, 3])
        XCTAssertEqual(output.scalars.map(Double.init), Reference.maxPool(.init(input)).values)
        let lossWeights = randomTensor(output.shape, &random)
        let weights = lossWeights.scalars.map(Double.init)
        let dInput = layer.backward(lossWeights)
        var x = input.scalars.map(Double.init)
        let numeric = (0..<x.count).map { index in
            Reference.centralDifference(&x, index: index) { Reference.dot(Reference.maxPool(.init(shape: input.shape, values: $0)).values, weights) }
        }
        assertClose(dInput.scalars.map(Double.init), numeric, "MaxPool2d dInput")
    }

    func testMaxPoolSmallCaseByHand() {
        let layer = MaxPool2d()
        let output = layer.forward(Tensor(shape: [1, 1, 2, 4], scalars: [1, 5, 2, 2, 3, 4, 7, 0]))
        XCTAssertEqual(output.scalars, [5, 7])
        let dInput = layer.backward(Tensor(shape: [1, 1, 1, 2], scalars: [10, 20]))
        XCTAssertEqual(dInput.scalars, [0, 10, 0, 0, 0, 0, 20, 0])
    }

    /// Dropout and DropBlock are linear for a fixed mask: replaying the same
    /// generator state gives the same mask, so the finite difference of the
    /// Float32 layer itself (summed in Float64) checks backward.
    func checkMaskedLayer(_ forward: (Tensor, inout SeededRandom) -> Tensor, backward: (Tensor) -> Tensor, shape: [Int], name: String) {
        var random = SeededRandom(seed: 15)
        let input = randomTensor(shape, &random)
        let lossWeights = randomTensor(shape, &random)
        let weights = lossWeights.scalars.map(Double.init)
        let maskSeed = SeededRandom(seed: 16)
        var maskRandom = maskSeed
        _ = forward(input, &maskRandom)
        let dInput = backward(lossWeights)
        var x = input.scalars
        let numeric = (0..<x.count).map { index -> Double in
            let original = x[index]
            let step: Float = 1e-2
            x[index] = original + step
            var plusRandom = maskSeed
            let plus = Reference.dot(forward(Tensor(shape: shape, scalars: x), &plusRandom).scalars.map(Double.init), weights)
            x[index] = original - step
            var minusRandom = maskSeed
            let minus = Reference.dot(forward(Tensor(shape: shape, scalars: x), &minusRandom).scalars.map(Double.init), weights)
            x[index] = original
            return (plus - minus) / Double(2 * step)
        }
        assertClose(dInput.scalars.map(Double.init), numeric, name)
        XCTAssertTrue(dInput.scalars.contains(0), "\(name): the mask should drop some elements")
    }

    func testDropoutGradient() {
        let layer = Dropout(probability: 0.3)
        checkMaskedLayer({ layer.forward($0, random: &$1) }, backward: layer.backward, shape: [2, 3, 4, 4], name: "Dropout")
    }

    func testDropBlockGradient() {
        let layer = DropBlock(blockSize: 2)
        checkMaskedLayer({ layer.forward($0, seedProbability: 0.1, random: &$1) }, backward: layer.backward,
                         shape: [2, 3, 5, 5], name: "DropBlock")
    }

    func testDropoutEvaluationIsIdentity() {
        var random = SeededRandom(seed: 17)
        let input = randomTensor([2, 2, 3, 3], &random)
        let dropout = Dropout(probability: 0.5)
        dropout.isTraining = false
        XCTAssertEqual(dropout.forward(input, random: &random), input)
        let dropBlock = DropBlock(blockSize: 2)
        dropBlock.isTraining = false
        XCTAssertEqual(dropBlock.forward(input, seedProbability: 0.5, random: &random), input)
    }

    func testDropoutKeepsExpectedValue() {
        var random = SeededRandom(seed: 18)
        let input = Tensor(shape: [1, 1, 200, 200], repeating: 1)
        let output = Dropout(probability: 0.1).forward(input, random: &random)
        let dropped = output.scalars.filter { $0 == 0 }.count
        XCTAssertEqual(Double(dropped) / Double(input.count), 0.1, accuracy: 0.01)
        XCTAssertTrue(output.scalars.allSatisfy { $0 == 0 || abs($0 - 1 / 0.9) < 1e-6 })
    }

    func testDropBlockDropsWholeSquares() {
        var random = SeededRandom(seed: 19)
        let input = Tensor(shape: [4, 8, 6, 6], repeating: 1)
        let output = DropBlock(blockSize: 2).forward(input, seedProbability: 0.05, random: &random)
        let dropped = output.scalars.filter { $0 == 0 }.count
        XCTAssertGreaterThan(dropped, 0)
        // Every dropped element lies in some fully dropped 2 x 2 square of its plane.
        for plane in 0..<32 {
            let values = Array(output.scalars[(plane * 36)..<((plane + 1) * 36)])
            for row in 0..<6 {
                for column in 0..<6 where values[row * 6 + column] == 0 {
                    let covered = [(0, 0), (-1, 0), (0, -1), (-1, -1)].contains { dy, dx in
                        let (top, left) = (row + dy, column + dx)
                        guard top >= 0, left >= 0, top + 1 < 6, left + 1 < 6 else { return false }
                        return [0, 1, 6, 7].allSatisfy { values[top * 6 + left + $0] == 0 }
                    }
                    XCTAssertTrue(covered, "plane \(plane) element (\(row), \(column)) is dropped outside any 2 x 2 block")
                }
            }
        }
        // Survivors are scaled so that the sum is kept.
        XCTAssertEqual(Double(output.scalars.reduce(0, +)), Double(input.count), accuracy: 1e-2)
    }

    func testDropBlockSeedProbabilityFormula() {
        // (1 - 0.9) / 4 * 16 / 9 for a 4 x 4 map and block size 2.
        XCTAssertEqual(Double(DropBlock.seedProbability(keepRate: 0.9, blockSize: 2, featureSize: 4)), 0.1 / 4 * 16 / 9, accuracy: 1e-7)
    }
}
