/// Labelled images grouped by class, the input of the episode sampler.
///
/// Every image is `channels x height x width` bytes in CHW order (3 x 32 x 32 for
/// CIFAR). The bytes live in one shared buffer: a CIFAR-FS or FC100 split refers
/// into the 184 MB CIFAR-100 buffer without copying it, and a PNG folder owns a
/// buffer of its own. Both the benchmark splits and PNG folders produce this type.
public struct ImageSource: Sendable {
    /// The class names; the position of a name is the class index used everywhere below.
    public let classNames: [String]
    public let channels: Int
    public let height: Int
    public let width: Int
    /// All image bytes this source refers to (possibly more images than it uses).
    public let pixels: [UInt8]
    /// For each class, the indices of its images in `pixels` (image `i` starts at
    /// byte `i * imageByteCount`).
    public let imageIndices: [[Int]]

    /// Creates a source over `pixels`, with the images of class `c` at `imageIndices[c]`.
    public init(classNames: [String], channels: Int = 3, height: Int, width: Int, pixels: [UInt8], imageIndices: [[Int]]) {
        precondition(classNames.count == imageIndices.count, "ImageSource: \(classNames.count) class names but \(imageIndices.count) index lists")
        precondition(channels == 3 && height > 0 && width > 0, "ImageSource: images must be 3 x H x W, got \(channels) x \(height) x \(width)")
        let imageBytes = channels * height * width
        precondition(pixels.count % imageBytes == 0, "ImageSource: \(pixels.count) bytes is not a whole number of \(imageBytes)-byte images")
        let imageCount = pixels.count / imageBytes
        precondition(imageIndices.allSatisfy { $0.allSatisfy { $0 >= 0 && $0 < imageCount } }, "ImageSource: an image index is outside 0..<\(imageCount)")
        self.classNames = classNames
        self.channels = channels
        self.height = height
        self.width = width
        self.pixels = pixels
        self.imageIndices = imageIndices
    }

    public var classCount: Int { classNames.count }

    /// The bytes of one image: `channels * height * width`.
    public var imageByteCount: Int { channels * height * width }

    /// Returns the number of images of class `classIndex`.
    public func imageCount(inClass classIndex: Int) -> Int { imageIndices[classIndex].count }

    /// The number of images over all classes.
    public var totalImageCount: Int { imageIndices.reduce(0) { $0 + $1.count } }

    /// Returns a copy of the CHW bytes of image `imageIndex` of class `classIndex`.
    public func imageBytes(classIndex: Int, imageIndex: Int) -> [UInt8] {
        let start = imageIndices[classIndex][imageIndex] * imageByteCount
        return Array(pixels[start ..< start + imageByteCount])
    }

    /// Returns a source with only the given classes, in the given order.
    public func selecting(classes: [Int]) -> ImageSource {
        ImageSource(
            classNames: classes.map { classNames[$0] }, channels: channels, height: height, width: width,
            pixels: pixels, imageIndices: classes.map { imageIndices[$0] })
    }
}
