import PhysarumLP
import XCTest

final class LPErrorMessageTests: XCTestCase {
    func testBatchDescriptionNamesProblem() {
        let error = LPError.negativeCost(problem: 3, index: 1, value: -0.5)
        XCTAssertTrue(error.description.contains("c[1] of problem 3 is -0.5"), error.description)
    }

    func testSingleProblemDescriptionOmitsIndex() {
        let errors: [LPError] = [
            .negativeCost(problem: 0, index: 1, value: -0.5),
            .nonFiniteInput(field: "b", problem: 0, index: 0, value: .nan),
            .rankDeficient(problem: 0, row: 1),
            .invalidLabel(problem: 0, index: 2, value: 0),
        ]
        for error in errors {
            XCTAssertFalse(error.singleProblemDescription.contains("problem 0"), error.singleProblemDescription)
        }
        XCTAssertTrue(LPError.rankDeficient(problem: 0, row: 1).singleProblemDescription.hasPrefix("constraint matrix A is rank deficient"))
    }

    func testEntryCountsUseSingularForOne() {
        let one = LPError.shapeMismatch(field: "b", expected: 2, actual: 1).description
        XCTAssertTrue(one.contains("LP field b has 1 entry but"), one)
        let two = LPError.shapeMismatch(field: "b", expected: 1, actual: 2).description
        XCTAssertTrue(two.contains("LP field b has 2 entries but"), two)
    }

    func testNegativeCostAdviceStatesRule() {
        let message = LPError.negativeCost(problem: 0, index: 1, value: -0.5).singleProblemDescription
        XCTAssertFalse(message.contains("matching builder"), message)
        XCTAssertTrue(message.contains("costs >= 0"), message)
        XCTAssertTrue(message.contains("adding one constant"), message)
    }
}
