import Dispatch
import Foundation

/// Parallel loops over independent items, such as the images of a batch.
public enum Parallel {
    /// The number of workers a loop uses: the active processor count unless set.
    /// Set it once at start-up (for example from a `--threads` option).
    nonisolated(unsafe) public static var workerCount: Int = ProcessInfo.processInfo.activeProcessorCount

    /// Calls `body(range)` on disjoint, contiguous ranges that together cover
    /// `0..<count`, one range per worker, and returns when all have finished.
    /// With one worker, or one item, it runs on the calling thread.
    public static func forEachChunk(_ count: Int, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let workers = min(workerCount, count)
        if workers <= 1 {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                let start = count * worker / workers
                let end = count * (worker + 1) / workers
                if start < end { body(start..<end) }
            }
        }
    }

    /// Calls `body(worker, range)` once per worker with that worker's index in
    /// `0..<workers` and a contiguous range of `0..<count`; the ranges are
    /// disjoint and together cover `0..<count`.
    /// `workers(for:)` returns the worker count beforehand, so callers can
    /// prepare one scratch buffer per worker.
    public static func forEachWorker(_ count: Int, _ body: (_ worker: Int, _ range: Range<Int>) -> Void) {
        guard count > 0 else { return }
        let workers = self.workers(for: count)
        if workers <= 1 {
            body(0, 0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                let start = count * worker / workers
                let end = count * (worker + 1) / workers
                if start < end { body(worker, start..<end) }
            }
        }
    }

    /// The number of workers that `forEachWorker` uses for `count` items.
    public static func workers(for count: Int) -> Int {
        max(1, min(workerCount, count))
    }

    /// Calls `body(index)` for every index in `0..<count`, spread over the workers.
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        forEachChunk(count) { range in
            for index in range { body(index) }
        }
    }
}
