import FewShotData
import TensorCore
import XCTest

/// Returns a source of `classes` classes with `imagesPerClass` random images each.
func randomSource(classes: Int, imagesPerClass: Int, seed: UInt64 = 3) -> ImageSource {
    var random = SeededRandom(seed: seed)
    let count = classes * imagesPerClass
    let pixels = (0..<(count * 3072)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    return ImageSource(
        classNames: (0..<classes).map { "class\($0)" }, height: 32, width: 32, pixels: pixels,
        imageIndices: (0..<classes).map { Array($0 * imagesPerClass ..< ($0 + 1) * imagesPerClass) })
}

final class EpisodeSamplerTests: XCTestCase {
    func testEpisodeLayoutAndLabels() throws {
        let source = randomSource(classes: 8, imagesPerClass: 10)
        let sampler = try EpisodeSampler(source: source, shape: EpisodeShape(way: 3, shot: 2, queryCount: 4))
        var random = SeededRandom(seed: 11)
        let episode = sampler.sample(using: &random)
        XCTAssertEqual(episode.classes.count, 3)
        XCTAssertEqual(episode.support.count, 6)
        XCTAssertEqual(episode.query.count, 12)
        XCTAssertEqual(episode.supportLabels, [0, 0, 1, 1, 2, 2])
        XCTAssertEqual(episode.queryLabels, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
        for (index, reference) in episode.support.enumerated() {
            XCTAssertEqual(reference.classIndex, episode.classes[episode.supportLabels[index]])
        }
        for (index, reference) in episode.query.enumerated() {
            XCTAssertEqual(reference.classIndex, episode.classes[episode.queryLabels[index]])
        }
    }

    func testNoImageOrClassTwiceInAnEpisode() throws {
        let source = randomSource(classes: 6, imagesPerClass: 12)
        // Every class and every image of a class is used: the tightest case for repeats.
        let sampler = try EpisodeSampler(source: source, shape: EpisodeShape(way: 6, shot: 5, queryCount: 7))
        var random = SeededRandom(seed: 5)
        for _ in 0..<200 {
            let episode = sampler.sample(using: &random)
            XCTAssertEqual(Set(episode.classes).count, 6)
            let all = episode.support + episode.query
            XCTAssertEqual(Set(all).count, all.count, "an image appears twice in one episode")
            XCTAssertTrue(all.allSatisfy { $0.imageIndex >= 0 })
            XCTAssertTrue(all.allSatisfy { $0.imageIndex < 12 })
        }
    }

    func testClassAndImageFrequenciesAreUniform() throws {
        let classes = 10, imagesPerClass = 20, episodes = 4_000
        let shape = EpisodeShape(way: 5, shot: 2, queryCount: 3)
        let sampler = try EpisodeSampler(source: randomSource(classes: classes, imagesPerClass: imagesPerClass), shape: shape)

        var random = SeededRandom(seed: 2024)
        var classCounts = [Int](repeating: 0, count: classes)
        var imageCounts = [[Int]](repeating: [Int](repeating: 0, count: imagesPerClass), count: classes)
        var supportLabelZeroClass = [Int](repeating: 0, count: classes)
        for _ in 0..<episodes {
            let episode = sampler.sample(using: &random)
            for classIndex in episode.classes { classCounts[classIndex] += 1 }
            supportLabelZeroClass[episode.classes[0]] += 1
            for reference in episode.support + episode.query {
                imageCounts[reference.classIndex][reference.imageIndex] += 1
            }
        }

        // Each class is chosen with probability way / classes = 0.5 per episode:
        // mean 2,000 and standard deviation sqrt(4000 * 0.25) = 31.6; allow 5 deviations.
        for (classIndex, count) in classCounts.enumerated() {
            XCTAssertEqual(Double(count), 2_000, accuracy: 160, "class \(classIndex)")
        }

        // Label 0 goes to each class with probability 1/10: mean 400, deviation 19; allow 5.
        for (classIndex, count) in supportLabelZeroClass.enumerated() {
            XCTAssertEqual(Double(count), 400, accuracy: 95, "label 0 -> class \(classIndex)")
        }

        // Given its class, each image is drawn with probability 5 / 20: about 500 per image,
        // deviation about sqrt(2000 * 0.25 * 0.75) + class-count noise < 25; allow 5 deviations.
        for classIndex in 0..<classes {
            let expected = Double(classCounts[classIndex]) * Double(shape.shot + shape.queryCount) / Double(imagesPerClass)
            for (imageIndex, count) in imageCounts[classIndex].enumerated() {
                XCTAssertEqual(Double(count), expected, accuracy: 125, "class \(classIndex) image \(imageIndex)")
            }
        }
    }

    func testSameSeedGivesSameEpisodes() throws {
        let sampler = try EpisodeSampler(source: randomSource(classes: 10, imagesPerClass: 20), shape: EpisodeShape(way: 5, shot: 1, queryCount: 5))
        var first = SeededRandom(seed: 77), second = SeededRandom(seed: 77), other = SeededRandom(seed: 78)
        let episodesA = (0..<20).map { _ in sampler.sample(using: &first) }
        let episodesB = (0..<20).map { _ in sampler.sample(using: &second) }
        let episodesC = (0..<20).map { _ in sampler.sample(using: &other) }
        XCTAssertEqual(episodesA, episodesB)
        XCTAssertNotEqual(episodesA, episodesC)
    }

    func testInvalidShapesAreRejected() {
        let source = randomSource(classes: 4, imagesPerClass: 6)
        assertDataError(try EpisodeSampler(source: source, shape: EpisodeShape(way: 5, shot: 1, queryCount: 1)),
                        kind: .invalidEpisodeShape, mentions: ["5-way", "has 4"])
        assertDataError(try EpisodeSampler(source: source, shape: EpisodeShape(way: 2, shot: 4, queryCount: 3)),
                        kind: .invalidEpisodeShape, mentions: ["'class0'", "6 images", "4 support + 3 query"])
        assertDataError(try EpisodeSampler(source: randomSource(classes: 3, imagesPerClass: 1), shape: EpisodeShape(way: 2, shot: 1, queryCount: 1)),
                        kind: .invalidEpisodeShape, mentions: ["'class0' has 1 image, fewer than"])
        assertDataError(try EpisodeSampler(source: source, shape: EpisodeShape(way: 1, shot: 1, queryCount: 1)),
                        kind: .invalidEpisodeShape, mentions: ["way must be at least 2"])
        assertDataError(try EpisodeLoader(source: source, shape: EpisodeShape(way: 2, shot: 1, queryCount: 1), episodesPerBatch: 0, augmentation: nil, seed: 1),
                        kind: .invalidEpisodeShape, mentions: ["episodes per batch is 0"])
    }
}
