import XCTest
import TensorCore
@testable import NeuralNetwork

final class SGDTests: XCTestCase {
    func testNesterovStepsByHand() {
        let parameter = Parameter(name: "w", value: Tensor(shape: [2], scalars: [1, -2]))
        let optimizer = SGD(parameters: [parameter], learningRate: 0.5, momentum: 0.9, weightDecay: 0.1, nesterov: true)
        parameter.gradient = Tensor(shape: [2], scalars: [0.2, 0.4])

        // Step 1: g = grad + 0.1 w = [0.3, 0.2]; buffer = g; step = g + 0.9 g = [0.57, 0.38].
        optimizer.step()
        XCTAssertEqual(Double(parameter.value.scalars[0]), 1 - 0.5 * 0.57, accuracy: 1e-6)
        XCTAssertEqual(Double(parameter.value.scalars[1]), -2 - 0.5 * 0.38, accuracy: 1e-6)
        XCTAssertEqual(optimizer.momentumBuffer(named: "w")!.scalars.map(Double.init), [0.3, 0.2].map { Double(Float($0)) })

        // Step 2 with the same gradient: w = [0.715, -2.19]; g = [0.2715, 0.181];
        // buffer = 0.9 * [0.3, 0.2] + g = [0.5415, 0.361]; step = g + 0.9 * buffer.
        optimizer.step()
        XCTAssertEqual(Double(parameter.value.scalars[0]), 0.715 - 0.5 * (0.2715 + 0.9 * 0.5415), accuracy: 1e-6)
        XCTAssertEqual(Double(parameter.value.scalars[1]), -2.19 - 0.5 * (0.181 + 0.9 * 0.361), accuracy: 1e-6)
    }

    func testPlainMomentumAndZeroGradients() {
        let parameter = Parameter(name: "w", value: Tensor(shape: [1], scalars: [1]))
        let optimizer = SGD(parameters: [parameter], learningRate: 0.1, momentum: 0.5, weightDecay: 0, nesterov: false)
        parameter.gradient = Tensor(shape: [1], scalars: [1])
        optimizer.step()  // buffer 1, w = 0.9
        optimizer.step()  // buffer 1.5, w = 0.75
        XCTAssertEqual(Double(parameter.value.scalars[0]), 0.75, accuracy: 1e-6)
        optimizer.zeroGradients()
        XCTAssertEqual(parameter.gradient.scalars, [0])
    }

    func testMomentumBufferRestore() throws {
        let parameter = Parameter(name: "w", value: Tensor(shape: [1], scalars: [1]))
        let optimizer = SGD(parameters: [parameter], learningRate: 0.1, weightDecay: 0)
        XCTAssertNil(optimizer.momentumBuffer(named: "w"))
        try optimizer.setMomentumBuffer(Tensor(shape: [1], scalars: [2]), named: "w")
        XCTAssertEqual(optimizer.momentumBufferNames, ["w"])
        parameter.gradient = Tensor(shape: [1], scalars: [1])
        optimizer.step()  // buffer = 0.9 * 2 + 1 = 2.8; step = 1 + 0.9 * 2.8 = 3.52
        XCTAssertEqual(Double(parameter.value.scalars[0]), 1 - 0.352, accuracy: 1e-6)
        XCTAssertThrowsError(try optimizer.setMomentumBuffer(Tensor(shape: [2]), named: "w")) { error in
            XCTAssertEqual(error as? SGDError, .shapeMismatch(name: "w", expected: [1], actual: [2]))
        }
        XCTAssertThrowsError(try optimizer.setMomentumBuffer(Tensor(shape: [1]), named: "v")) { error in
            XCTAssertEqual(error as? SGDError, .unknownParameter("v"))
        }
    }
}
