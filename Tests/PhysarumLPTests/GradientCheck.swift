import PhysarumLP
import TensorCore

/// Five-point central finite difference of a scalar function along one
/// direction, in Float64: `(8 (f(h) - f(-h)) - (f(2h) - f(-2h))) / (12 h)`.
/// Its truncation error is O(h^4), so the unrolled iteration's large third
/// derivatives (near a vertex the iterate bends sharply) do not swamp the check,
/// and h = 1e-6 keeps the rounding error near 1e-10 relative.
func directionalDerivative(step: Double = 1e-6, _ f: (Double) throws -> Double) rethrows -> Double {
    let near = try f(step) - f(-step)
    let far = try f(2 * step) - f(-2 * step)
    return (8 * near - far) / (12 * step)
}

func dot(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "dot of \(a.count) and \(b.count) entries")
    var sum = 0.0
    for index in a.indices { sum += a[index] * b[index] }
    return sum
}

func randomVector(_ count: Int, _ random: inout SeededRandom, lower: Double = -1, upper: Double = 1) -> [Double] {
    (0..<count).map { _ in random.uniform(lower, upper) }
}

func adding(_ a: [Double], _ b: [Double], scale: Double) -> [Double] {
    zip(a, b).map { $0 + scale * $1 }
}

/// Builds a random batch of LPs with dense A and b = A x for a strictly positive x, so every LP is feasible.
func randomFeasibleBatch(count: Int, rows: Int, columns: Int, seed: UInt64) throws -> LPBatch {
    var random = SeededRandom(seed: seed)
    var a: [Double] = []
    var b: [Double] = []
    var c: [Double] = []
    for _ in 0..<count {
        let matrix = randomVector(rows * columns, &random)
        let feasible = randomVector(columns, &random, lower: 0.2, upper: 1)
        for r in 0..<rows {
            var sum = 0.0
            for k in 0..<columns { sum += matrix[r * columns + k] * feasible[k] }
            b.append(sum)
        }
        a += matrix
        c += randomVector(columns, &random, lower: 0.1, upper: 1)
    }
    return try LPBatch(count: count, rows: rows, columns: columns, constraints: a, rightHandSides: b, costs: c)
}
