@testable import FewShotData
import TensorCore
import XCTest

final class AugmentationTests: XCTestCase {
    private func randomImage(height: Int = 32, width: Int = 32, seed: UInt64 = 9) -> [Float] {
        var random = SeededRandom(seed: seed)
        return (0..<(3 * height * width)).map { _ in random.nextFloat() }
    }

    func testFlipTwiceIsIdentity() {
        let image = randomImage()
        var flipped = image
        ImageOperations.horizontalFlip(&flipped, height: 32, width: 32)
        XCTAssertNotEqual(flipped, image)
        ImageOperations.horizontalFlip(&flipped, height: 32, width: 32)
        XCTAssertEqual(flipped, image)
    }

    func testFlipMirrorsEachRow() {
        // 3 channels of a 2 x 3 image.
        var image: [Float] = (0..<18).map(Float.init)
        ImageOperations.horizontalFlip(&image, height: 2, width: 3)
        XCTAssertEqual(image, [2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9, 14, 13, 12, 17, 16, 15])
    }

    func testCropKeepsShapeAndShifts() {
        let image = randomImage()
        XCTAssertEqual(ImageOperations.crop(image, height: 32, width: 32, offsetY: 0, offsetX: 0), image)
        for (offsetY, offsetX) in [(-4, -4), (4, 4), (2, -3), (-1, 4)] {
            let cropped = ImageOperations.crop(image, height: 32, width: 32, offsetY: offsetY, offsetX: offsetX)
            XCTAssertEqual(cropped.count, image.count)
            for channel in 0..<3 {
                for (y, x) in [(0, 0), (10, 20), (31, 31), (5, 30)] {
                    let sourceY = y + offsetY, sourceX = x + offsetX
                    let inside = (0..<32).contains(sourceY) && (0..<32).contains(sourceX)
                    let expected = inside ? image[(channel * 32 + sourceY) * 32 + sourceX] : 0
                    XCTAssertEqual(cropped[(channel * 32 + y) * 32 + x], expected, "offset (\(offsetY), \(offsetX)) pixel (\(y), \(x))")
                }
            }
        }
    }

    func testJitterFactorOneIsIdentity() {
        let image = randomImage()
        var brightness = image, contrast = image, saturation = image
        ImageOperations.adjustBrightness(&brightness, factor: 1)
        ImageOperations.adjustContrast(&contrast, factor: 1)
        ImageOperations.adjustSaturation(&saturation, factor: 1)
        XCTAssertEqual(brightness, image)
        XCTAssertEqual(contrast, image)
        XCTAssertEqual(saturation, image)
    }

    func testJitterFormulasOnHandCase() {
        // One 1 x 2 image: pixel 0 = (0.2, 0.4, 0.6), pixel 1 = (1.0, 0.0, 0.5).
        let image: [Float] = [0.2, 1.0, 0.4, 0.0, 0.6, 0.5]
        let gray0: Float = 0.2989 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6
        let gray1: Float = 0.2989 * 1.0 + 0.587 * 0.0 + 0.114 * 0.5
        let tolerance: Float = 1e-6

        var brightness = image
        ImageOperations.adjustBrightness(&brightness, factor: 1.4)
        for (actual, expected) in zip(brightness, [0.28, 1.0, 0.56, 0.0, 0.84, 0.7] as [Float]) {
            XCTAssertEqual(actual, expected, accuracy: tolerance)
        }

        var contrast = image
        ImageOperations.adjustContrast(&contrast, factor: 0.6)
        let mean = (gray0 + gray1) / 2
        for (actual, value) in zip(contrast, image) {
            XCTAssertEqual(actual, min(max(0.6 * value + 0.4 * mean, 0), 1), accuracy: tolerance)
        }

        var saturation = image
        ImageOperations.adjustSaturation(&saturation, factor: 0)
        for (index, actual) in saturation.enumerated() {
            XCTAssertEqual(actual, index % 2 == 0 ? gray0 : gray1, accuracy: tolerance)
        }
    }

    func testDrawnParametersStayInRange() {
        var random = SeededRandom(seed: 4)
        var flips = 0
        var orders = Set<[String]>()
        for _ in 0..<2_000 {
            let parameters = Augmentation.standard.drawParameters(using: &random)
            XCTAssertTrue((-4...4).contains(parameters.offsetY))
            XCTAssertTrue((-4...4).contains(parameters.offsetX))
            XCTAssertEqual(Set(parameters.jitter.map { "\($0.0)" }).count, 3)
            for (_, factor) in parameters.jitter {
                XCTAssertGreaterThanOrEqual(factor, 0.6)
                XCTAssertLessThanOrEqual(factor, 1.4)
            }
            orders.insert(parameters.jitter.map { "\($0.0)" })
            if parameters.flip { flips += 1 }
        }
        XCTAssertEqual(orders.count, 6, "all six jitter orders should occur")
        // Binomial(2000, 0.5): deviation 22; allow 5.
        XCTAssertEqual(Double(flips), 1_000, accuracy: 112)
    }

    func testLoaderAugmentationEqualsComposedOperations() throws {
        let source = randomSource(classes: 6, imagesPerClass: 10)
        let loader = try EpisodeLoader(source: source, shape: EpisodeShape(way: 3, shot: 2, queryCount: 2), episodesPerBatch: 2,
                                       augmentation: .standard, seed: 21, prefetch: false)
        let batch = loader.makeBatch(4)

        // Re-derive the seeds the loader uses for batch 4 and compose the public operations.
        var episodeRandom = SeededRandom(seed: EpisodeLoader.mixSeed(21, 4))
        for _ in 0..<2 { _ = loader.sampler.sample(using: &episodeRandom) }
        let imageSeed = episodeRandom.next()
        let references = batch.episodes.flatMap(\.support)
        for (slot, reference) in references.enumerated() {
            var random = SeededRandom(seed: EpisodeLoader.mixSeed(imageSeed, UInt64(slot)))
            let parameters = Augmentation.standard.drawParameters(using: &random)
            var image = ImageOperations.crop(source.imageBytes(classIndex: reference.classIndex, imageIndex: reference.imageIndex).map { Float($0) / 255 },
                                             height: 32, width: 32, offsetY: parameters.offsetY, offsetX: parameters.offsetX)
            if parameters.flip { ImageOperations.horizontalFlip(&image, height: 32, width: 32) }
            for (operation, factor) in parameters.jitter {
                switch operation {
                case .brightness: ImageOperations.adjustBrightness(&image, factor: factor)
                case .contrast: ImageOperations.adjustContrast(&image, factor: factor)
                case .saturation: ImageOperations.adjustSaturation(&image, factor: factor)
                }
            }
            ImageOperations.normalize(&image, .cifar100)
            let actual = Array(batch.support.scalars[slot * 3072 ..< (slot + 1) * 3072])
            // Flipping before the jitter (here) or during the gather (loader) gives the same
            // values except for float rounding in the contrast mean's summation order.
            let maxDifference = zip(actual, image).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(maxDifference, 1e-4, "support image \(slot)")
        }
    }

    func testNormalizedChannelMeansNearZeroOnTrainingClasses() throws {
        let dataset = try RealData.load()
        let source = try FewShotBenchmark.cifarFS.source(.train, in: dataset)
        let loader = try EpisodeLoader(source: source, shape: EpisodeShape(way: 5, shot: 5, queryCount: 6), episodesPerBatch: 8,
                                       augmentation: nil, seed: 3, prefetch: false)
        var sums = [Double](repeating: 0, count: 3)
        var count = 0.0
        for index in 0..<20 {
            let batch = loader.makeBatch(index)
            for tensor in [batch.support, batch.query] {
                let images = tensor.shape[0]
                for image in 0..<images {
                    for channel in 0..<3 {
                        let start = image * 3072 + channel * 1024
                        sums[channel] += tensor.scalars[start ..< start + 1024].reduce(0.0) { $0 + Double($1) }
                    }
                }
                count += Double(images * 1024)
            }
        }
        // 8,800 images of the 64 training classes. The constants are the means of the
        // training images of all 100 classes. Over all CIFAR-FS training images the
        // normalised means are 0.005, 0.020 and 0.010, so 0.1 leaves room for sampling.
        for channel in 0..<3 {
            XCTAssertEqual(sums[channel] / count, 0, accuracy: 0.1, "channel \(channel)")
        }
    }
}
