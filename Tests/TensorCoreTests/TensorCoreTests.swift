import XCTest
@testable import TensorCore

final class TensorCoreTests: XCTestCase {
    func testMatmulSmallCaseByHand() {
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let b = Tensor(shape: [3, 2], scalars: [7, 8, 9, 10, 11, 12])
        let c = a.matmul(b)
        XCTAssertEqual(c.shape, [2, 2])
        XCTAssertEqual(c.scalars, [58, 64, 139, 154])
    }

    func testRandomSameSeedSameStream() {
        var first = SeededRandom(seed: 42)
        var second = SeededRandom(seed: 42)
        for _ in 0..<100 { XCTAssertEqual(first.next(), second.next()) }
        let other = SeededRandom(seed: 43)
        XCTAssertNotEqual(SeededRandom(seed: 42).stateWords, other.stateWords)
    }

    func testRandomStateRoundTrip() {
        var random = SeededRandom(seed: 7)
        for _ in 0..<10 { _ = random.next() }
        var restored = SeededRandom(state: random.stateWords)
        for _ in 0..<10 { XCTAssertEqual(random.next(), restored.next()) }
    }

    func testRandomUniformMoments() {
        var random = SeededRandom(seed: 3)
        let samples = (0..<100_000).map { _ in random.nextDouble() }
        let mean = samples.reduce(0, +) / Double(samples.count)
        XCTAssertEqual(mean, 0.5, accuracy: 0.01)
        XCTAssertTrue(samples.allSatisfy { $0 >= 0 })
        XCTAssertTrue(samples.allSatisfy { $0 < 1 })
        let normals = (0..<100_000).map { _ in random.nextNormal() }
        let normalMean = normals.reduce(0, +) / Double(normals.count)
        let variance = normals.map { ($0 - normalMean) * ($0 - normalMean) }.reduce(0, +) / Double(normals.count)
        XCTAssertEqual(normalMean, 0, accuracy: 0.02)
        XCTAssertEqual(variance, 1, accuracy: 0.02)
    }

    func testParallelChunksCoverRangeOnce() {
        Parallel.workerCount = 2
        var hits = [Int](repeating: 0, count: 1000)
        hits.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            Parallel.forEach(1000) { index in base[index] += 1 }
        }
        XCTAssertTrue(hits.allSatisfy { $0 == 1 })
    }
}

final class ParallelWorkerTests: XCTestCase {
    func testForEachWorkerCoversRangeOncePerWorker() {
        Parallel.workerCount = 2
        XCTAssertEqual(Parallel.workers(for: 1), 1)
        XCTAssertEqual(Parallel.workers(for: 7), 2)
        var owners = [Int](repeating: -1, count: 7)
        owners.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            Parallel.forEachWorker(7) { worker, range in
                for index in range { base[index] = worker }
            }
        }
        XCTAssertEqual(owners, [0, 0, 0, 1, 1, 1, 1])
    }

    func testFloatBufferGrowsOnlyWhenNeeded() {
        let buffer = FloatBuffer(capacity: 4)
        let first = buffer.reserve(3)
        XCTAssertEqual(buffer.capacity, 4)
        XCTAssertEqual(buffer.reserve(4), first)
        buffer.reserve(10)
        XCTAssertEqual(buffer.capacity, 10)
        buffer.pointer[9] = 5
        XCTAssertEqual(buffer.pointer[9], 5)
        buffer.shrink()
        XCTAssertEqual(buffer.capacity, 1)
    }
}
