import TensorCore

/// Per-channel normalisation `(x - mean[c]) / std[c]` of images scaled to [0, 1].
public struct Normalization: Sendable, Equatable {
    public var mean: [Float]
    public var std: [Float]

    public init(mean: [Float], std: [Float]) {
        precondition(mean.count == 3 && std.count == 3 && std.allSatisfy { $0 > 0 }, "Normalization needs 3 means and 3 positive standard deviations")
        self.mean = mean
        self.std = std
    }

    /// The CIFAR-100 training-set channel statistics that MetaOptNet uses:
    /// mean (129.377, 124.106, 112.478) / 255, std (68.209, 65.431, 70.459) / 255.
    public static let cifar100 = Normalization(
        mean: [129.377 / 255, 124.106 / 255, 112.478 / 255],
        std: [68.209 / 255, 65.431 / 255, 70.459 / 255])
}

/// The random augmentation of training images, as in MetaOptNet's CIFAR-FS and
/// FC100 pipelines (torchvision `RandomCrop(32, padding=4)`,
/// `ColorJitter(0.4, 0.4, 0.4)`, `RandomHorizontalFlip()`), in that order.
///
/// On an image `x` with values in [0, 1] (channels r, g, b), with
/// `gray = 0.2989 r + 0.587 g + 0.114 b` and `clamp` to [0, 1], the jitter
/// operations follow torchvision's tensor definitions:
/// - brightness `f`: `clamp(f * x)`
/// - contrast `f`: `clamp(f * x + (1 - f) * m)` with `m` the mean of `gray` over the whole image
/// - saturation `f`: `clamp(f * x + (1 - f) * gray)` per pixel
/// Each factor is uniform in `[1 - strength, 1 + strength]` and the three run in
/// a random order. Unlike torchvision on PIL images, no rounding to 8 bits happens
/// between the operations.
public struct Augmentation: Sendable, Equatable {
    /// Zero padding on each side before the random crop back to the image size, in pixels.
    public var padding: Int
    public var brightness: Float
    public var contrast: Float
    public var saturation: Float
    public var flipProbability: Double

    public init(padding: Int = 4, brightness: Float = 0.4, contrast: Float = 0.4, saturation: Float = 0.4, flipProbability: Double = 0.5) {
        precondition(padding >= 0, "Augmentation padding must not be negative, got \(padding)")
        precondition([brightness, contrast, saturation].allSatisfy { $0 >= 0 && $0 <= 1 }, "Augmentation jitter strengths must be in 0...1")
        self.padding = padding
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.flipProbability = flipProbability
    }

    /// The training recipe: 4-pixel padding, jitter strength 0.4, flip with probability 0.5.
    public static let standard = Augmentation()

    /// One jitter operation.
    public enum Jitter: Sendable, Equatable {
        case brightness
        case contrast
        case saturation
    }

    /// The random choices for one image.
    public struct Parameters: Sendable, Equatable {
        /// Shift of the crop window against the unpadded image, each in `-padding...padding`:
        /// output pixel (y, x) before the flip is input pixel (y + offsetY, x + offsetX), zero outside.
        public var offsetY: Int
        public var offsetX: Int
        /// The jitter operations in the order applied, each with its factor.
        public var jitter: [(Jitter, Float)]
        public var flip: Bool

        public init(offsetY: Int, offsetX: Int, jitter: [(Jitter, Float)], flip: Bool) {
            self.offsetY = offsetY
            self.offsetX = offsetX
            self.jitter = jitter
            self.flip = flip
        }

        public static func == (lhs: Parameters, rhs: Parameters) -> Bool {
            lhs.offsetY == rhs.offsetY && lhs.offsetX == rhs.offsetX && lhs.flip == rhs.flip
                && lhs.jitter.map(\.0) == rhs.jitter.map(\.0) && lhs.jitter.map(\.1) == rhs.jitter.map(\.1)
        }
    }

    /// Draws the choices for one image, in torchvision's order: crop rows, crop
    /// columns, the jitter order, the brightness, contrast and saturation factors,
    /// then the flip.
    public func drawParameters(using random: inout SeededRandom) -> Parameters {
        let offsetY = random.nextInt(below: 2 * padding + 1) - padding
        let offsetX = random.nextInt(below: 2 * padding + 1) - padding
        var order: [Jitter] = [.brightness, .contrast, .saturation]
        for position in 0..<2 {
            order.swapAt(position, position + random.nextInt(below: 3 - position))
        }
        let factors: [Jitter: Float] = [
            .brightness: Float(random.uniform(Double(1 - brightness), Double(1 + brightness))),
            .contrast: Float(random.uniform(Double(1 - contrast), Double(1 + contrast))),
            .saturation: Float(random.uniform(Double(1 - saturation), Double(1 + saturation))),
        ]
        let flip = random.nextDouble() < flipProbability
        return Parameters(offsetY: offsetY, offsetX: offsetX, jitter: order.map { ($0, factors[$0]!) }, flip: flip)
    }
}

/// Image operations on Float32 CHW images with 3 channels and values in [0, 1].
/// The batch loader runs them fused on raw pointers; the array versions are
/// for callers and tests.
public enum ImageOperations {
    /// Returns `image` shifted by (offsetY, offsetX) with zeros where the shifted
    /// window leaves the image: a crop of the zero-padded image back to the same
    /// size, so the shape never changes.
    public static func crop(_ image: [Float], height: Int, width: Int, offsetY: Int, offsetX: Int) -> [Float] {
        var output = [Float](repeating: 0, count: image.count)
        image.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { output in
                for channel in 0..<3 {
                    for y in 0..<height {
                        let sourceY = y + offsetY
                        guard sourceY >= 0 && sourceY < height else { continue }
                        for x in 0..<width {
                            let sourceX = x + offsetX
                            guard sourceX >= 0 && sourceX < width else { continue }
                            output[(channel * height + y) * width + x] = input[(channel * height + sourceY) * width + sourceX]
                        }
                    }
                }
            }
        }
        return output
    }

    /// Mirrors every row in place.
    public static func horizontalFlip(_ image: inout [Float], height: Int, width: Int) {
        for row in 0..<(3 * height) {
            var left = row * width
            var right = left + width - 1
            while left < right {
                image.swapAt(left, right)
                left += 1
                right -= 1
            }
        }
    }

    public static func adjustBrightness(_ image: inout [Float], factor: Float) {
        image.withUnsafeMutableBufferPointer { adjustBrightness($0.baseAddress!, count: $0.count, factor: factor) }
    }

    public static func adjustContrast(_ image: inout [Float], factor: Float) {
        image.withUnsafeMutableBufferPointer { adjustContrast($0.baseAddress!, plane: $0.count / 3, factor: factor) }
    }

    public static func adjustSaturation(_ image: inout [Float], factor: Float) {
        image.withUnsafeMutableBufferPointer { adjustSaturation($0.baseAddress!, plane: $0.count / 3, factor: factor) }
    }

    /// Applies `(x - mean[c]) / std[c]` per channel.
    public static func normalize(_ image: inout [Float], _ normalization: Normalization) {
        let plane = image.count / 3
        for channel in 0..<3 {
            for index in channel * plane ..< (channel + 1) * plane {
                image[index] = (image[index] - normalization.mean[channel]) / normalization.std[channel]
            }
        }
    }

    // MARK: - Pointer versions

    @inline(__always)
    static func clampUnit(_ value: Float) -> Float { min(max(value, 0), 1) }

    static func adjustBrightness(_ image: UnsafeMutablePointer<Float>, count: Int, factor: Float) {
        for index in 0..<count {
            image[index] = clampUnit(factor * image[index])
        }
    }

    static func adjustContrast(_ image: UnsafeMutablePointer<Float>, plane: Int, factor: Float) {
        let red = image, green = image + plane, blue = image + 2 * plane
        var sum: Float = 0
        for index in 0..<plane {
            sum += 0.2989 * red[index] + 0.587 * green[index] + 0.114 * blue[index]
        }
        let offset = (1 - factor) * (sum / Float(plane))
        for index in 0..<(3 * plane) {
            image[index] = clampUnit(factor * image[index] + offset)
        }
    }

    static func adjustSaturation(_ image: UnsafeMutablePointer<Float>, plane: Int, factor: Float) {
        let red = image, green = image + plane, blue = image + 2 * plane
        let grayWeight = 1 - factor
        for index in 0..<plane {
            let gray = grayWeight * (0.2989 * red[index] + 0.587 * green[index] + 0.114 * blue[index])
            red[index] = clampUnit(factor * red[index] + gray)
            green[index] = clampUnit(factor * green[index] + gray)
            blue[index] = clampUnit(factor * blue[index] + gray)
        }
    }
}

/// Turns the 8-bit CHW bytes of one image into the network's Float32 input.
struct ImagePreparation {
    let height: Int
    let width: Int
    let normalization: Normalization
    /// `1 / (255 * std[c])` and `-mean[c] / std[c]`: normalising 8-bit values in one multiply-add.
    let byteScale: [Float]
    let byteShift: [Float]

    init(height: Int, width: Int, normalization: Normalization) {
        self.height = height
        self.width = width
        self.normalization = normalization
        byteScale = (0..<3).map { 1 / (255 * normalization.std[$0]) }
        byteShift = (0..<3).map { -normalization.mean[$0] / normalization.std[$0] }
    }

    /// Normalises without augmentation.
    func normalize(_ bytes: UnsafePointer<UInt8>, into output: UnsafeMutablePointer<Float>) {
        let plane = height * width
        for channel in 0..<3 {
            let scale = byteScale[channel], shift = byteShift[channel]
            let source = bytes + channel * plane, destination = output + channel * plane
            for index in 0..<plane {
                destination[index] = Float(source[index]) * scale + shift
            }
        }
    }

    /// Crops, flips and jitters with the drawn `parameters`, then normalises into
    /// `output`. Crop and flip happen together in one gather from the bytes.
    func augment(_ bytes: UnsafePointer<UInt8>, parameters: Augmentation.Parameters, into output: UnsafeMutablePointer<Float>) {
        let plane = height * width
        let unit: Float = 1 / 255
        for channel in 0..<3 {
            for y in 0..<height {
                let destination = output + (channel * height + y) * width
                let sourceY = y + parameters.offsetY
                guard sourceY >= 0 && sourceY < height else {
                    destination.update(repeating: 0, count: width)
                    continue
                }
                let source = bytes + (channel * height + sourceY) * width
                for x in 0..<width {
                    // Flipping after the crop reads the cropped row from its far end.
                    let croppedX = parameters.flip ? width - 1 - x : x
                    let sourceX = croppedX + parameters.offsetX
                    destination[x] = sourceX >= 0 && sourceX < width ? Float(source[sourceX]) * unit : 0
                }
            }
        }

        for (operation, factor) in parameters.jitter {
            switch operation {
            case .brightness: ImageOperations.adjustBrightness(output, count: 3 * plane, factor: factor)
            case .contrast: ImageOperations.adjustContrast(output, plane: plane, factor: factor)
            case .saturation: ImageOperations.adjustSaturation(output, plane: plane, factor: factor)
            }
        }

        for channel in 0..<3 {
            let mean = normalization.mean[channel], inverseStd = 1 / normalization.std[channel]
            let destination = output + channel * plane
            for index in 0..<plane {
                destination[index] = (destination[index] - mean) * inverseStd
            }
        }
    }
}
