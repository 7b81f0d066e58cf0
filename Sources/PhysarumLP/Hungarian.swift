/// Solves the rectangular assignment problem exactly: assign each of n rows to
/// a distinct one of m >= n columns at the smallest total cost
/// (Kuhn's Hungarian method in the O(n^2 m) shortest-augmenting-path form with
/// row and column potentials).
///
/// `costs` is n x m, row-major, finite. Returns the column of each row.
public func hungarianAssignment(costs: [Double], rows n: Int, columns m: Int) -> [Int] {
    precondition(n >= 1 && m >= n, "assignment needs 1 <= rows <= columns, got \(n) x \(m)")
    precondition(costs.count == n * m, "assignment costs need \(n * m) entries, got \(costs.count)")
    precondition(costs.allSatisfy { $0.isFinite }, "assignment costs must be finite")

    // Index 0 is a virtual row and column; real rows and columns are 1-based.
    var rowPotential = [Double](repeating: 0, count: n + 1)
    var columnPotential = [Double](repeating: 0, count: m + 1)
    var rowOfColumn = [Int](repeating: 0, count: m + 1)
    var previousColumn = [Int](repeating: 0, count: m + 1)

    for row in 1...n {
        rowOfColumn[0] = row
        var column = 0
        var slack = [Double](repeating: .infinity, count: m + 1)
        var visited = [Bool](repeating: false, count: m + 1)
        // Grow a shortest-path tree from `row` until it reaches a free column.
        repeat {
            visited[column] = true
            let currentRow = rowOfColumn[column]
            var delta = Double.infinity
            var nextColumn = 0
            for j in 1...m where !visited[j] {
                let reduced = costs[(currentRow - 1) * m + (j - 1)] - rowPotential[currentRow] - columnPotential[j]
                if reduced < slack[j] {
                    slack[j] = reduced
                    previousColumn[j] = column
                }
                if slack[j] < delta {
                    delta = slack[j]
                    nextColumn = j
                }
            }
            for j in 0...m {
                if visited[j] {
                    rowPotential[rowOfColumn[j]] += delta
                    columnPotential[j] -= delta
                } else {
                    slack[j] -= delta
                }
            }
            column = nextColumn
        } while rowOfColumn[column] != 0

        // Flip the matched and unmatched edges along the augmenting path.
        repeat {
            let previous = previousColumn[column]
            rowOfColumn[column] = rowOfColumn[previous]
            column = previous
        } while column != 0
    }

    var assignment = [Int](repeating: -1, count: n)
    for j in 1...m where rowOfColumn[j] != 0 {
        assignment[rowOfColumn[j] - 1] = j - 1
    }
    return assignment
}
