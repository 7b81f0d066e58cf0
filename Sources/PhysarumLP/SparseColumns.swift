/// The nonzero entries of one problem's A by column (compressed sparse column),
/// rows ascending within a column. The l1-SVM's A is about 80% zeros and the
/// matching A about 98%, so products with A and the assembly of
/// `A diag(w) A^T` skip the zeros.
struct SparseColumns {
    let rows: Int
    let columns: Int
    /// Column k owns entries `columnStart[k]..<columnStart[k + 1]`.
    var columnStart: [Int]
    var rowIndex: [Int]
    var value: [Double]

    /// Collects the nonzeros of a row-major m x n matrix.
    init(rows: Int, columns: Int, rowMajor a: UnsafePointer<Double>) {
        self.rows = rows
        self.columns = columns
        columnStart = [Int](repeating: 0, count: columns + 1)
        rowIndex = []
        value = []
        rowIndex.reserveCapacity(rows * columns / 4)
        value.reserveCapacity(rows * columns / 4)
        for k in 0..<columns {
            for r in 0..<rows where a[r * columns + k] != 0 {
                rowIndex.append(r)
                value.append(a[r * columns + k])
            }
            columnStart[k + 1] = rowIndex.count
        }
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
    /// buffer `normal` (the layout LAPACK's dpotrf expects); the strict upper
    /// triangle is left zero.
    func assembleNormalMatrix(weights w: UnsafePointer<Double>, into normal: UnsafeMutablePointer<Double>) {
        let m = rows
        normal.update(repeating: 0, count: m * m)
        columnStart.withUnsafeBufferPointer { start in
            rowIndex.withUnsafeBufferPointer { rowIndex in
                value.withUnsafeBufferPointer { value in
                    for k in 0..<columns {
                        let wk = w[k]
                        let first = start[k]
                        for a in first..<start[k + 1] {
                            let scaled = wk * value[a]
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
