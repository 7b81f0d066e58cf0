import Dispatch
import TensorCore

/// A batch of E episodes as network input.
///
/// Images are episode-major: episode `e` owns support rows
/// `e * way * shot ..< (e + 1) * way * shot` and query rows
/// `e * way * queryCount ..< (e + 1) * way * queryCount`; inside an episode the
/// order is class-major (see `Episode`). Labels are the episode labels 0..<way.
public struct EpisodeBatch: Sendable {
    /// The batch number: batch `k` of a loader is a function of its seed and `k` only.
    public let index: Int
    public let episodes: [Episode]
    /// `[E * way * shot, 3, H, W]`, augmented (training) or only normalised.
    public var support: Tensor
    /// `[E * way * queryCount, 3, H, W]`, prepared like the support images.
    public var query: Tensor
    /// `E * way * shot` labels in 0..<way.
    public let supportLabels: [Int]
    /// `E * way * queryCount` labels in 0..<way.
    public let queryLabels: [Int]
}

/// Produces batches of episodes from an image source, preparing the next batch
/// on a background thread while the caller trains on the current one.
///
/// Batch number `k` depends only on (seed, k) and the loader's settings, never on
/// which batches came before, so a resumed run that creates the loader with
/// `startBatch: k` receives exactly the batches the interrupted run would have.
/// `next()` must be called from one thread at a time.
public final class EpisodeLoader: @unchecked Sendable {
    public let source: ImageSource
    public let sampler: EpisodeSampler
    public let episodesPerBatch: Int
    /// The training augmentation, or nil for evaluation (normalisation only).
    public let augmentation: Augmentation?
    public let normalization: Normalization
    public let seed: UInt64
    /// Threads that prepare the images of one batch (1 leaves the other cores to training).
    public let workerCount: Int
    public let prefetches: Bool

    /// The batch number that the next call to `next()` returns.
    public private(set) var nextBatchIndex: Int

    private let preparation: ImagePreparation
    private let prefetchQueue = DispatchQueue(label: "FewShotData.EpisodeLoader.prefetch")
    private var pending: (index: Int, group: DispatchGroup, slot: BatchSlot)?

    /// Creates a loader after checking that the source supplies the episode shape.
    public init(
        source: ImageSource, shape: EpisodeShape, episodesPerBatch: Int,
        augmentation: Augmentation?, normalization: Normalization = .cifar100,
        seed: UInt64, startBatch: Int = 0, prefetch: Bool = true, workerCount: Int = 1
    ) throws {
        guard episodesPerBatch >= 1 else {
            throw DataError(.invalidEpisodeShape, "episodes per batch is \(episodesPerBatch), expected at least 1")
        }
        precondition(startBatch >= 0, "EpisodeLoader: startBatch must not be negative, got \(startBatch)")
        precondition(workerCount >= 1, "EpisodeLoader: workerCount must be at least 1, got \(workerCount)")
        self.source = source
        self.sampler = try EpisodeSampler(source: source, shape: shape)
        self.episodesPerBatch = episodesPerBatch
        self.augmentation = augmentation
        self.normalization = normalization
        self.seed = seed
        self.nextBatchIndex = startBatch
        self.prefetches = prefetch
        self.workerCount = workerCount
        self.preparation = ImagePreparation(height: source.height, width: source.width, normalization: normalization)
    }

    public var shape: EpisodeShape { sampler.shape }

    /// Returns batch `nextBatchIndex` and starts preparing the one after it.
    public func next() -> EpisodeBatch {
        let index = nextBatchIndex
        nextBatchIndex += 1
        let batch: EpisodeBatch
        if let pending, pending.index == index {
            pending.group.wait()
            batch = pending.slot.batch!
        } else {
            pending?.group.wait()
            batch = makeBatch(index)
        }
        pending = nil
        if prefetches {
            startPrefetch(nextBatchIndex)
        }
        return batch
    }

    /// Builds batch `index` on the calling thread; the result depends only on the
    /// loader's settings, its seed and `index`.
    public func makeBatch(_ index: Int) -> EpisodeBatch {
        var episodeRandom = SeededRandom(seed: Self.mixSeed(seed, UInt64(index)))
        let episodes = (0..<episodesPerBatch).map { _ in sampler.sample(using: &episodeRandom) }
        let imageSeed = episodeRandom.next()

        let shape = sampler.shape
        let supportRefs = episodes.flatMap(\.support)
        let queryRefs = episodes.flatMap(\.query)
        let imageShape = [3, source.height, source.width]
        var support = Tensor(shape: [supportRefs.count] + imageShape)
        var query = Tensor(shape: [queryRefs.count] + imageShape)
        prepare(supportRefs, into: &support, imageSeed: imageSeed, firstSlot: 0)
        prepare(queryRefs, into: &query, imageSeed: imageSeed, firstSlot: supportRefs.count)

        let supportLabels = (0..<episodesPerBatch).flatMap { _ in
            (0..<shape.way).flatMap { Array(repeating: $0, count: shape.shot) }
        }
        let queryLabels = (0..<episodesPerBatch).flatMap { _ in
            (0..<shape.way).flatMap { Array(repeating: $0, count: shape.queryCount) }
        }
        return EpisodeBatch(index: index, episodes: episodes, support: support, query: query,
                            supportLabels: supportLabels, queryLabels: queryLabels)
    }

    /// Prepares images into `tensor`. Image `i` draws its augmentation from a
    /// generator seeded by (imageSeed, firstSlot + i), so the result does not depend
    /// on how the images are spread over workers.
    private func prepare(_ references: [ImageReference], into tensor: inout Tensor, imageSeed: UInt64, firstSlot: Int) {
        let imageFloats = source.imageByteCount
        let imageBytes = source.imageByteCount
        let source = self.source
        let preparation = self.preparation
        let augmentation = self.augmentation
        tensor.withUnsafeMutableBufferPointer { output in
            let output = output.baseAddress!
            source.pixels.withUnsafeBufferPointer { pixels in
                let pixels = pixels.baseAddress!
                let work = { (range: Range<Int>) in
                    for slot in range {
                        let reference = references[slot]
                        let bytes = pixels + source.imageIndices[reference.classIndex][reference.imageIndex] * imageBytes
                        let destination = output + slot * imageFloats
                        if let augmentation {
                            var random = SeededRandom(seed: Self.mixSeed(imageSeed, UInt64(firstSlot + slot)))
                            let parameters = augmentation.drawParameters(using: &random)
                            preparation.augment(bytes, parameters: parameters, into: destination)
                        } else {
                            preparation.normalize(bytes, into: destination)
                        }
                    }
                }
                let count = references.count
                let workers = min(workerCount, count)
                if workers <= 1 {
                    work(0..<count)
                } else {
                    DispatchQueue.concurrentPerform(iterations: workers) { worker in
                        work(count * worker / workers ..< count * (worker + 1) / workers)
                    }
                }
            }
        }
    }

    private func startPrefetch(_ index: Int) {
        let group = DispatchGroup()
        let slot = BatchSlot()
        pending = (index, group, slot)
        // The block keeps the loader alive until the batch is finished.
        prefetchQueue.async(group: group) { [self] in
            slot.batch = makeBatch(index)
        }
    }

    /// Combines two words into a seed (the MurmurHash3 64-bit finaliser over
    /// their mix), so neighbouring batch numbers give unrelated streams.
    static func mixSeed(_ seed: UInt64, _ value: UInt64) -> UInt64 {
        var z = seed ^ (value &* 0xD1B5_4A32_D192_ED03) ^ 0x2545_F491_4F6C_DD1D
        z ^= z >> 33
        z &*= 0xFF51_AFD7_ED55_8CCD
        z ^= z >> 33
        z &*= 0xC4CE_B9FE_1A85_EC53
        z ^= z >> 33
        return z
    }
}

/// Carries a prefetched batch from the prefetch thread to `next()`; the dispatch
/// group's wait orders the write before the read.
private final class BatchSlot: @unchecked Sendable {
    var batch: EpisodeBatch?
}
