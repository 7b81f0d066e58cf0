import CPNG
import Foundation

/// An 8-bit RGB image in CHW order, as read from or written to a PNG file
/// through libpng's simplified API.
public struct RGBImage: Equatable, Sendable {
    public let height: Int
    public let width: Int
    /// `3 * height * width` bytes: the red plane, then green, then blue, each row-major.
    public var pixels: [UInt8]

    public init(height: Int, width: Int, pixels: [UInt8]) {
        precondition(height > 0 && width > 0 && pixels.count == 3 * height * width,
                     "RGBImage: \(pixels.count) bytes do not make a 3 x \(height) x \(width) image")
        self.height = height
        self.width = width
        self.pixels = pixels
    }

    /// Creates a black image.
    public init(height: Int, width: Int) {
        self.init(height: height, width: width, pixels: [UInt8](repeating: 0, count: 3 * height * width))
    }
}

/// PNG reading and writing through libpng.
public enum PNG {
    /// Decodes a PNG file into RGB.
    ///
    /// Gray, gray + alpha, RGB, RGBA and palette images of any bit depth become
    /// 8-bit RGB: gray is copied to the three channels and alpha is dropped
    /// (as PIL's `convert("RGB")` does).
    /// NOTE: libpng's simplified reader converts a file with a gAMA chunk other than
    /// sRGB's to sRGB, but PIL does not. Such files are rare in copies of CIFAR.
    public static func read(_ url: URL) throws -> RGBImage {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw DataError(.missingFile, "\(url.path) is missing or unreadable; check the path and its permissions")
        }
        return try decode(data, name: url.path)
    }

    /// Decodes PNG bytes; `name` identifies them in errors.
    public static func decode(_ data: Data, name: String) throws -> RGBImage {
        // libpng reads from the memory given to `begin` until `finish`, so both
        // calls run inside one access to the bytes.
        let (height, width, interleaved) = try data.withUnsafeBytes { raw -> (Int, Int, [UInt8]) in
            var image = png_image()
            image.version = UInt32(PNG_IMAGE_VERSION)
            guard png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count) != 0 else {
                let message = libpngMessage(&image)
                png_image_free(&image)
                throw DataError(.corruptImage, "\(name) is not a valid PNG file (libpng: \(message)); replace or remove it")
            }
            let height = Int(image.height)
            let width = Int(image.width)
            guard height * width <= maximumPixelCount else {
                png_image_free(&image)
                throw DataError(.invalidImageSize, "\(name) is \(width) x \(height) pixels, more than the \(maximumPixelCount) pixels this reader accepts; resize it")
            }
            image.format = UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)
            var interleaved = [UInt8](repeating: 0, count: 4 * height * width)
            let finished = interleaved.withUnsafeMutableBytes { buffer in
                png_image_finish_read(&image, nil, buffer.baseAddress, Int32(4 * width), nil)
            }
            guard finished != 0 else {
                let message = libpngMessage(&image)
                png_image_free(&image)
                throw DataError(.corruptImage, "\(name) is a damaged PNG file (libpng: \(message)); replace or remove it")
            }
            return (height, width, interleaved)
        }

        var pixels = [UInt8](repeating: 0, count: 3 * height * width)
        let plane = height * width
        for pixel in 0..<plane {
            pixels[pixel] = interleaved[4 * pixel]
            pixels[plane + pixel] = interleaved[4 * pixel + 1]
            pixels[2 * plane + pixel] = interleaved[4 * pixel + 2]
        }
        return RGBImage(height: height, width: width, pixels: pixels)
    }

    /// The largest image `decode` accepts (64 Mpixel, 256 MB as RGBA), so that a
    /// damaged or hostile header cannot request an enormous buffer.
    public static let maximumPixelCount = 1 << 26

    /// Encodes an RGB image as PNG bytes.
    public static func encode(_ rgb: RGBImage) throws -> Data {
        let plane = rgb.height * rgb.width
        var interleaved = [UInt8](repeating: 0, count: 3 * plane)
        for pixel in 0..<plane {
            interleaved[3 * pixel] = rgb.pixels[pixel]
            interleaved[3 * pixel + 1] = rgb.pixels[plane + pixel]
            interleaved[3 * pixel + 2] = rgb.pixels[2 * plane + pixel]
        }

        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(rgb.width)
        image.height = UInt32(rgb.height)
        image.format = UInt32(PNG_FORMAT_RGB)
        var size: png_alloc_size_t = 0
        let stride = Int32(3 * rgb.width)
        // The first call only measures; libpng reports the size it needs.
        _ = interleaved.withUnsafeBytes { buffer in
            png_image_write_to_memory(&image, nil, &size, 0, buffer.baseAddress, stride, nil)
        }
        guard size > 0 else {
            throw DataError(.writeFailed, "libpng could not encode a \(rgb.width) x \(rgb.height) image (\(libpngMessage(&image)))")
        }
        var output = [UInt8](repeating: 0, count: Int(size))
        let written = output.withUnsafeMutableBytes { memory in
            interleaved.withUnsafeBytes { buffer in
                png_image_write_to_memory(&image, memory.baseAddress, &size, 0, buffer.baseAddress, stride, nil)
            }
        }
        guard written != 0 else {
            throw DataError(.writeFailed, "libpng could not encode a \(rgb.width) x \(rgb.height) image (\(libpngMessage(&image)))")
        }
        return Data(output[0..<Int(size)])
    }

    /// Writes an RGB image to a PNG file, replacing it atomically.
    public static func write(_ rgb: RGBImage, to url: URL) throws {
        let data = try encode(rgb)
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw DataError(.writeFailed, "could not write \(url.path) (\(error.localizedDescription)); check that its folder exists and is writable")
        }
    }

    private static func libpngMessage(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            let end = bytes.firstIndex(of: 0) ?? bytes.count
            return String(decoding: bytes[0..<end], as: UTF8.self)
        }
    }
}

extension ImageSource {
    /// Reads an image folder, `<root>/<class name>/*.png`, one subfolder per class.
    ///
    /// Classes are the subfolders in name order, images the `.png` files in name
    /// order; hidden entries are skipped. Every image must be `height` x `width`.
    /// Throws naming the file for an image of another size or a damaged PNG, and
    /// naming the folder for a class without PNG files or a root without classes.
    public static func pngFolder(_ root: URL, height: Int = 32, width: Int = 32) throws -> ImageSource {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: root.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DataError(.missingFile, "image folder \(root.path) does not exist; give a folder with one subfolder of PNG files per class")
        }
        let classNames = try visibleEntries(root).filter { name in
            var isClassDirectory: ObjCBool = false
            return fileManager.fileExists(atPath: root.appendingPathComponent(name).path, isDirectory: &isClassDirectory) && isClassDirectory.boolValue
        }
        guard !classNames.isEmpty else {
            throw DataError(.emptyClass, "image folder \(root.path) has no class subfolders; expected <root>/<class name>/*.png")
        }

        let imageBytes = 3 * height * width
        var pixels: [UInt8] = []
        var imageIndices: [[Int]] = []
        var imageCount = 0
        for className in classNames {
            let classURL = root.appendingPathComponent(className)
            let files = try visibleEntries(classURL).filter { $0.lowercased().hasSuffix(".png") }
            guard !files.isEmpty else {
                throw DataError(.emptyClass, "class folder \(classURL.path) contains no .png files; add images or remove the folder")
            }
            pixels.reserveCapacity(pixels.count + files.count * imageBytes)
            var indices: [Int] = []
            for file in files {
                let url = classURL.appendingPathComponent(file)
                let image = try PNG.read(url)
                guard image.height == height, image.width == width else {
                    throw DataError(.invalidImageSize, "\(url.path) is \(image.width) x \(image.height) pixels, expected \(width) x \(height); resize it to \(width) x \(height) pixels")
                }
                pixels.append(contentsOf: image.pixels)
                indices.append(imageCount)
                imageCount += 1
            }
            imageIndices.append(indices)
        }
        return ImageSource(classNames: classNames, channels: 3, height: height, width: width, pixels: pixels, imageIndices: imageIndices)
    }

    private static func visibleEntries(_ url: URL) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: url.path).filter { !$0.hasPrefix(".") }.sorted()
        } catch {
            throw DataError(.missingFile, "could not list \(url.path) (\(error.localizedDescription)); check that it is a readable folder")
        }
    }
}
