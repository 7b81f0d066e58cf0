import FewShotData
import TensorCore
import XCTest

final class EpisodeLoaderTests: XCTestCase {
    func testBatchShapesAndEpisodeMajorLabels() throws {
        let source = randomSource(classes: 7, imagesPerClass: 9)
        let loader = try EpisodeLoader(source: source, shape: EpisodeShape(way: 4, shot: 2, queryCount: 3), episodesPerBatch: 3,
                                       augmentation: .standard, seed: 1, prefetch: false)
        let batch = loader.next()
        XCTAssertEqual(batch.index, 0)
        XCTAssertEqual(batch.support.shape, [24, 3, 32, 32])
        XCTAssertEqual(batch.query.shape, [36, 3, 32, 32])
        XCTAssertEqual(batch.supportLabels, Array(repeating: [0, 0, 1, 1, 2, 2, 3, 3], count: 3).flatMap { $0 })
        XCTAssertEqual(batch.queryLabels, Array(repeating: [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3], count: 3).flatMap { $0 })
        XCTAssertEqual(batch.episodes.count, 3)
        XCTAssertTrue(batch.support.scalars.allSatisfy(\.isFinite))
        XCTAssertEqual(loader.nextBatchIndex, 1)
    }

    func testEvaluationImagesAreOnlyNormalised() throws {
        let source = randomSource(classes: 5, imagesPerClass: 8)
        let loader = try EpisodeLoader(source: source, shape: EpisodeShape(way: 5, shot: 1, queryCount: 2), episodesPerBatch: 2,
                                       augmentation: nil, seed: 8, prefetch: false)
        let batch = loader.makeBatch(0)
        let normalization = Normalization.cifar100
        for (tensor, references) in [(batch.support, batch.episodes.flatMap(\.support)), (batch.query, batch.episodes.flatMap(\.query))] {
            for (slot, reference) in references.enumerated() {
                let bytes = source.imageBytes(classIndex: reference.classIndex, imageIndex: reference.imageIndex)
                for index in stride(from: 0, to: 3072, by: 97) {
                    let channel = index / 1024
                    let expected = (Float(bytes[index]) / 255 - normalization.mean[channel]) / normalization.std[channel]
                    XCTAssertEqual(tensor.scalars[slot * 3072 + index], expected, accuracy: 1e-5)
                }
            }
        }
    }

    func testBatchDependsOnlyOnSeedAndIndex() throws {
        let source = randomSource(classes: 8, imagesPerClass: 10)
        let shape = EpisodeShape(way: 3, shot: 2, queryCount: 2)
        func loader(startBatch: Int, prefetch: Bool, workers: Int, seed: UInt64 = 42) throws -> EpisodeLoader {
            try EpisodeLoader(source: source, shape: shape, episodesPerBatch: 2, augmentation: .standard, seed: seed,
                              startBatch: startBatch, prefetch: prefetch, workerCount: workers)
        }
        let sequential = try loader(startBatch: 0, prefetch: true, workers: 1)
        let batches = (0..<5).map { _ in sequential.next() }
        XCTAssertEqual(batches.map(\.index), [0, 1, 2, 3, 4])

        let resumed = try loader(startBatch: 3, prefetch: true, workers: 1)
        let resumedBatch = resumed.next()
        XCTAssertEqual(resumedBatch.index, 3)
        XCTAssertEqual(resumedBatch.support, batches[3].support)
        XCTAssertEqual(resumedBatch.query, batches[3].query)
        XCTAssertEqual(resumedBatch.episodes, batches[3].episodes)
        XCTAssertEqual(resumed.next().support, batches[4].support)

        let parallel = try loader(startBatch: 0, prefetch: false, workers: 3)
        XCTAssertEqual(parallel.makeBatch(2).support, batches[2].support)
        XCTAssertEqual(parallel.makeBatch(2).query, batches[2].query)

        XCTAssertNotEqual(batches[0].episodes, batches[1].episodes)
        XCTAssertNotEqual(try loader(startBatch: 0, prefetch: false, workers: 1, seed: 43).makeBatch(3).episodes, batches[3].episodes)
    }

    func testAugmentationVariesBetweenBatchesOfSameImage() throws {
        // Two classes of one image each: every batch shows the same two images, so
        // any difference comes from the augmentation.
        let source = randomSource(classes: 2, imagesPerClass: 1)
        let augmented = try EpisodeLoader(source: source, shape: EpisodeShape(way: 2, shot: 1, queryCount: 0), episodesPerBatch: 1,
                                          augmentation: .standard, seed: 6, prefetch: false)
        let plain = try EpisodeLoader(source: source, shape: EpisodeShape(way: 2, shot: 1, queryCount: 0), episodesPerBatch: 1,
                                      augmentation: nil, seed: 6, prefetch: false)
        let first = augmented.makeBatch(0), second = augmented.makeBatch(1)
        XCTAssertNotEqual(first.support, second.support)
        XCTAssertEqual(plain.makeBatch(0).support.shape, first.support.shape)
    }
}
