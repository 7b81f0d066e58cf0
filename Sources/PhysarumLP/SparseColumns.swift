/// The nonzero entries of one problem's A by column (compressed sparse column),
/// rows ascending within a column, plus a precomputed plan for assembling
/// `A diag(w) A^T`. The l1-SVM's A is about 80% zeros and the matching A about
/// 98%, so products with A and the assembly skip the zeros.
struct SparseColumns {
    let rows: Int
    let columns: Int
    /// Column k owns entries `columnStart[k]..<columnStart[k + 1]`.
    var columnStart: [Int]
    var rowIndex: [Int]
    var value: [Double]

    /// Columns equal up to sign contribute the same outer product `a a^T`, so
    /// the assembly adds their weights and scatters once per group (the l1-SVM's
    /// alpha1 and alpha2 columns pair up this way). Group g is led by column
    /// `groupLeader[g]` and owns `groupMember[groupStart[g]..<groupStart[g + 1]]`.
    var groupLeader: [Int] = []
    var groupStart: [Int] = [0]
    var groupMember: [Int] = []

    /// Collects the nonzeros of a row-major m x n matrix and plans the assembly.
    init(rows: Int, columns: Int, rowMajor a: UnsafePointer<Double>) {
        self.rows = rows
        self.columns = columns
        var counts = [Int](repeating: 0, count: columns + 1)
        for r in 0..<rows {
            for k in 0..<columns where a[r * columns + k] != 0 { counts[k + 1] += 1 }
        }
        for k in 0..<columns { counts[k + 1] += counts[k] }
        columnStart = counts
        rowIndex = [Int](repeating: 0, count: counts[columns])
        value = [Double](repeating: 0, count: counts[columns])
        var next = Array(counts.dropLast())
        for r in 0..<rows {
            for k in 0..<columns where a[r * columns + k] != 0 {
                rowIndex[next[k]] = r
                value[next[k]] = a[r * columns + k]
                next[k] += 1
            }
        }
        planAssembly()
    }

    /// The smallest nonzero count of a column that is compared for merging. The
    /// assembly work of a column grows with the square of its count, so merging
    /// shorter ones would cost more in comparisons than it saves.
    static let mergeThreshold = 4

    private mutating func planAssembly() {
        var leaderOf = [Int](repeating: -1, count: columns)
        var candidates: [Int] = []
        for k in 0..<columns where columnStart[k + 1] - columnStart[k] >= Self.mergeThreshold {
            if let leader = candidates.first(where: { equalUpToSign($0, k) }) {
                leaderOf[k] = leader
            } else {
                candidates.append(k)
            }
        }
        var membersOf = [[Int]](repeating: [], count: columns)
        for k in 0..<columns where columnStart[k + 1] > columnStart[k] {
            membersOf[leaderOf[k] >= 0 ? leaderOf[k] : k].append(k)
        }
        for k in 0..<columns where !membersOf[k].isEmpty {
            groupLeader.append(k)
            groupMember += membersOf[k]
            groupStart.append(groupMember.count)
        }
    }

    private func equalUpToSign(_ first: Int, _ second: Int) -> Bool {
        let (a, b) = (columnStart[first], columnStart[second])
        let length = columnStart[first + 1] - a
        guard columnStart[second + 1] - b == length else { return false }
        let sign: Double = value[a] == value[b] ? 1 : -1
        for offset in 0..<length where rowIndex[a + offset] != rowIndex[b + offset] || value[a + offset] != sign * value[b + offset] {
            return false
        }
        return true
    }

    /// Computes `result = A^T y` (length n) from y (length m).
    func multiplyTransposed(_ y: UnsafePointer<Double>, into result: UnsafeMutablePointer<Double>) {
        columnStart.withUnsafeBufferPointer { start in
            rowIndex.withUnsafeBufferPointer { rowIndex in
                value.withUnsafeBufferPointer { value in
                    for k in 0..<columns {
                        var sum = 0.0
                        for entry in start[k]..<start[k + 1] {
                            sum += value[entry] * y[rowIndex[entry]]
                        }
                        result[k] = sum
                    }
                }
            }
        }
    }

    /// Computes `result = A v` (length m) from v (length n).
    func multiply(_ v: UnsafePointer<Double>, into result: UnsafeMutablePointer<Double>) {
        result.update(repeating: 0, count: rows)
        columnStart.withUnsafeBufferPointer { start in
            rowIndex.withUnsafeBufferPointer { rowIndex in
                value.withUnsafeBufferPointer { value in
                    for k in 0..<columns where v[k] != 0 {
                        let vk = v[k]
                        for entry in start[k]..<start[k + 1] {
                            result[rowIndex[entry]] += value[entry] * vk
                        }
                    }
                }
            }
        }
    }

    /// Writes the lower triangle of `A diag(w) A^T` into the column-major m x m
    /// buffer `normal`, the layout LAPACK's dpotrf expects. The strict upper
    /// triangle is left zero.
    func assembleNormalMatrix(weights w: UnsafePointer<Double>, into normal: UnsafeMutablePointer<Double>) {
        let m = rows
        normal.update(repeating: 0, count: m * m)
        columnStart.withUnsafeBufferPointer { start in
            rowIndex.withUnsafeBufferPointer { rowIndex in
                value.withUnsafeBufferPointer { value in
                    groupLeader.withUnsafeBufferPointer { groupLeader in
                        groupStart.withUnsafeBufferPointer { groupStart in
                            groupMember.withUnsafeBufferPointer { groupMember in
                                for group in 0..<groupLeader.count {
                                    var weight = 0.0
                                    for member in groupStart[group]..<groupStart[group + 1] {
                                        weight += w[groupMember[member]]
                                    }
                                    let leader = groupLeader[group]
                                    let first = start[leader]
                                    let count = start[leader + 1] - first
                                    let base = rowIndex[first]
                                    if count > 1 && rowIndex[first + count - 1] - base == count - 1 {
                                        // Rows base..<base + count: each column of the block is a
                                        // contiguous run in column-major storage, which vectorises.
                                        let v = value.baseAddress! + first
                                        for b in 0..<count {
                                            let scaled = weight * v[b]
                                            let target = normal + (base + b) * m + base
                                            for a in b..<count { target[a] += scaled * v[a] }
                                        }
                                        continue
                                    }
                                    for a in first..<start[leader + 1] {
                                        let scaled = weight * value[a]
                                        let column = normal + rowIndex[a]
                                        for b in first...a {
                                            // rowIndex[b] <= rowIndex[a], so this is the lower triangle.
                                            column[rowIndex[b] * m] += scaled * value[b]
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Returns the first row of A that depends on the rows before it, or nil
    /// when A has full row rank, judged by the Cholesky pivots of `A A^T`: a
    /// pivot whose square falls below 1e-12 of its diagonal entry, or a failed
    /// factorisation, marks a dependent row. `scratch` (m x m) is overwritten.
    func rankDefectRow(scratch: UnsafeMutablePointer<Double>) -> Int? {
        let m = rows
        let ones = [Double](repeating: 1, count: columns)
        ones.withUnsafeBufferPointer { assembleNormalMatrix(weights: $0.baseAddress!, into: scratch) }
        let diagonal = (0..<m).map { scratch[$0 * m + $0] }
        let info = choleskyFactor(scratch, order: m)
        if info > 0 { return info - 1 }
        if info < 0 { return 0 }
        return (0..<m).first { scratch[$0 * m + $0] * scratch[$0 * m + $0] <= 1e-12 * diagonal[$0] }
    }
}
