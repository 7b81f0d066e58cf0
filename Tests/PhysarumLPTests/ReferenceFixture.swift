import Foundation
import XCTest

/// The HiGHS reference solutions written by Scripts/lp_reference_fixtures.py.
struct ReferenceFixture: Decodable {
    struct SVMProblem: Decodable {
        let kernel: [Double]
        let labels: [Double]
        let x: [Double]
        let perturbedObjective: Double
        let objective: Double
        let A: [Double]?
        let b: [Double]?
        let c: [Double]?
    }

    struct SVMSet: Decodable {
        let penalty: Double
        let marginShift: Double
        let gamma: Double
        let supportCount: Int
        let problems: [SVMProblem]
    }

    struct MatchingProblem: Decodable {
        let costs: [Double]
        let x: [Double]
        let assignment: [Int]
        let perturbedObjective: Double
    }

    struct MatchingSet: Decodable {
        let templates: Int
        let proposals: Int
        let gamma: Double
        let problems: [MatchingProblem]
    }

    let svm: [SVMSet]
    let matching: MatchingSet

    static func load() throws -> ReferenceFixture {
        guard let url = Bundle.module.url(forResource: "lp_reference", withExtension: "json", subdirectory: "Fixtures") else {
            throw XCTSkip("Fixtures/lp_reference.json is missing; run Scripts/lp_reference_fixtures.py")
        }
        return try JSONDecoder().decode(ReferenceFixture.self, from: Data(contentsOf: url))
    }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
