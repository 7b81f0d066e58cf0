import Foundation
import TensorCore

/// `fewshot bench sgemm`: the BLAS ceiling that other benchmarks compare against.
enum SGEMMBenchCommand: Command {
    static let name = "sgemm"
    static let abstract = "Time a square Float32 matrix multiply through OpenBLAS."
    static let options: [OptionSpec] = [
        OptionSpec(name: "size", valueName: "<n>", help: "Matrix side length.", defaultValue: "2048"),
        OptionSpec(name: "threads", valueName: "<n>", help: "OpenBLAS threads (0: every processor).", defaultValue: everyProcessorDefault),
        OptionSpec(name: "repeats", valueName: "<n>", help: "Timed repetitions; the median is printed.", defaultValue: "5"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        try arguments.rejectPositionals()
        let size = try arguments.int("size", range: 1...16384) ?? 2048
        let threads = try arguments.threadCount()
        let repeats = try arguments.int("repeats", range: 1...1000) ?? 5
        BLAS.threadCount = threads
        let gflops = measureSGEMM(size: size, repeats: repeats)
        print(String(format: "sgemm %d^3 float32, %d threads: %.1f GFLOP/s (median of %d)", size, threads, gflops, repeats))
    }
}

/// Returns the median GFLOP/s of `repeats` multiplies of two `size` x `size` matrices.
func measureSGEMM(size: Int, repeats: Int) -> Double {
    var random = SeededRandom(seed: 1)
    let a = (0..<size * size).map { _ in random.nextFloat() - 0.5 }
    let b = (0..<size * size).map { _ in random.nextFloat() - 0.5 }
    var c = [Float](repeating: 0, count: size * size)
    var seconds: [Double] = []
    for iteration in 0...repeats {
        let start = DispatchTime.now().uptimeNanoseconds
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    BLAS.sgemm(m: size, n: size, k: size, a: a.baseAddress!, lda: size,
                               b: b.baseAddress!, ldb: size, c: c.baseAddress!, ldc: size)
                }
            }
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if iteration > 0 { seconds.append(elapsed) }  // the first call warms up threads and caches
    }
    seconds.sort()
    let median = seconds[seconds.count / 2]
    return 2 * Double(size) * Double(size) * Double(size) / median / 1e9
}
