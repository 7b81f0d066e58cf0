import TensorCore

/// A 2-D convolution without bias, computed as im2col followed by SGEMM.
///
/// Shapes: input `[N, C, H, W]`, weight `[O, C, K, K]` (OIHW, PyTorch's
/// layout), output `[N, O, OH, OW]` with `OH = (H + 2 * padding - K) / stride + 1`
/// and likewise `OW`. The same cross-correlation as PyTorch's `Conv2d`.
///
/// The images are split into one contiguous range per worker; each worker
/// turns a chunk of a few images into a column matrix `[C*K*K, chunk*OH*OW]`
/// and multiplies it with single-threaded SGEMM. The column buffer therefore
/// never covers the whole batch, and its size is capped by
/// `maximumColumnElements`. All scratch buffers are kept between calls.
///
/// The pointer-based `forward(input:output:...)` and `backward(...)` keep
/// nothing; the caller keeps the input for backward. The `Tensor` methods
/// keep the input themselves.
public final class Conv2d {
    public let weight: Parameter
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int

    /// The largest column matrix one worker builds, in elements (8 MiB of Float32).
    public var maximumColumnElements = 1 << 21
    /// The number of columns (chunk images times output pixels) a chunk aims at.
    public var targetColumns = 512

    private var workspaces: [ConvolutionWorkspace] = []
    private var savedInput: Tensor?

    /// Creates a convolution whose weight is named `name` and starts at zero;
    /// `ResNet12` fills it with Kaiming initialisation.
    public init(name: String, inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0) {
        precondition(inputChannels > 0 && outputChannels > 0 && kernelSize > 0 && stride > 0 && padding >= 0,
                     "Conv2d needs positive channels, kernel size and stride, got \(inputChannels), \(outputChannels), \(kernelSize), \(stride)")
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        weight = Parameter(name: name, value: Tensor(shape: [outputChannels, inputChannels, kernelSize, kernelSize]))
    }

    /// Returns `(OH, OW)` for an input of `height` x `width`.
    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        let outputHeight = (height + 2 * padding - kernelSize) / stride + 1
        let outputWidth = (width + 2 * padding - kernelSize) / stride + 1
        precondition(outputHeight > 0 && outputWidth > 0,
                     "Conv2d kernel \(kernelSize) with padding \(padding) does not fit a \(height)x\(width) input")
        return (outputHeight, outputWidth)
    }

    // MARK: - Tensor interface

    /// Returns the convolution of `input` `[N, C, H, W]` and keeps `input` for `backward`.
    public func forward(_ input: Tensor) -> Tensor {
        precondition(input.rank == 4 && input.shape[1] == inputChannels,
                     "Conv2d expects [N, \(inputChannels), H, W], got \(input.shape)")
        let (batch, height, width) = (input.shape[0], input.shape[2], input.shape[3])
        let (outputHeight, outputWidth) = outputSize(height: height, width: width)
        var output = Tensor(shape: [batch, outputChannels, outputHeight, outputWidth])
        input.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { output in
                forward(input: input.baseAddress!, output: output.baseAddress!, batch: batch, height: height, width: width)
            }
        }
        savedInput = input
        return output
    }

    /// Accumulates the weight gradient for `dOutput` `[N, O, OH, OW]` and returns `dInput` `[N, C, H, W]`.
    public func backward(_ dOutput: Tensor) -> Tensor {
        guard let input = savedInput else { preconditionFailure("Conv2d.backward called before forward") }
        let (batch, height, width) = (input.shape[0], input.shape[2], input.shape[3])
        let (outputHeight, outputWidth) = outputSize(height: height, width: width)
        precondition(dOutput.shape == [batch, outputChannels, outputHeight, outputWidth],
                     "Conv2d.backward expects dOutput \([batch, outputChannels, outputHeight, outputWidth]), got \(dOutput.shape)")
        var dInput = Tensor(shape: input.shape)
        input.withUnsafeBufferPointer { input in
            dOutput.withUnsafeBufferPointer { dOutput in
                dInput.withUnsafeMutableBufferPointer { dInput in
                    backward(input: input.baseAddress!, dOutput: dOutput.baseAddress!, dInput: dInput.baseAddress!,
                             accumulateInput: false, batch: batch, height: height, width: width)
                }
            }
        }
        return dInput
    }

    // MARK: - Pointer interface

    /// Writes the convolution of `input` `[N, C, H, W]` to `output` `[N, O, OH, OW]`.
    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, height: Int, width: Int) {
        let geometry = makeGeometry(height: height, width: width)
        let chunk = chunkSize(geometry)
        let workers = Parallel.workers(for: batch)
        prepareWorkspaces(workers: workers, geometry: geometry, chunk: chunk, needsWeightGradient: false)
        let inputSize = inputChannels * height * width
        let outputSize = outputChannels * geometry.outputPixels

        weight.value.withUnsafeBufferPointer { weightBuffer in
            let weightPointer = weightBuffer.baseAddress!
            withSingleThreadedBLAS(workers > 1) {
                Parallel.forEachWorker(batch) { worker, range in
                    let workspace = workspaces[worker]
                    var first = range.lowerBound
                    while first < range.upperBound {
                        let count = min(chunk, range.upperBound - first)
                        let columnCount = count * geometry.outputPixels
                        let columns = workspace.columns.pointer
                        for image in 0..<count {
                            im2col(input + (first + image) * inputSize, geometry, columns: columns,
                                   leadingDimension: columnCount, columnOffset: image * geometry.outputPixels)
                        }
                        // One image: the product lands directly in NCHW order.
                        let product = count == 1 ? output + first * outputSize : workspace.product.pointer
                        BLAS.sgemm(m: outputChannels, n: columnCount, k: geometry.rows,
                                   a: weightPointer, lda: geometry.rows, b: columns, ldb: columnCount,
                                   c: product, ldc: columnCount)
                        if count > 1 {
                            scatterChunk(product, to: output + first * outputSize, images: count,
                                         channels: outputChannels, pixels: geometry.outputPixels)
                        }
                        first += count
                    }
                }
            }
        }
    }

    /// Accumulates `dWeight` into `weight.gradient` and writes (or, with
    /// `accumulateInput`, adds) `dInput` `[N, C, H, W]` when `dInput` is not nil.
    /// `input` must be the tensor the forward pass saw.
    public func backward(input: UnsafePointer<Float>, dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?,
                         accumulateInput: Bool, batch: Int, height: Int, width: Int) {
        let geometry = makeGeometry(height: height, width: width)
        let chunk = chunkSize(geometry)
        let workers = Parallel.workers(for: batch)
        prepareWorkspaces(workers: workers, geometry: geometry, chunk: chunk, needsWeightGradient: true)
        let inputSize = inputChannels * height * width
        let outputSize = outputChannels * geometry.outputPixels
        let weightCount = weight.value.count
        for worker in 1..<max(workers, 1) { workspaces[worker].dWeight.pointer.update(repeating: 0, count: weightCount) }

        weight.value.withUnsafeBufferPointer { weightBuffer in
            weight.gradient.withUnsafeMutableBufferPointer { gradientBuffer in
                let weightPointer = weightBuffer.baseAddress!
                let gradientPointer = gradientBuffer.baseAddress!
                withSingleThreadedBLAS(workers > 1) {
                    Parallel.forEachWorker(batch) { worker, range in
                        let workspace = workspaces[worker]
                        let dWeight = worker == 0 ? gradientPointer : workspace.dWeight.pointer
                        var first = range.lowerBound
                        while first < range.upperBound {
                            let count = min(chunk, range.upperBound - first)
                            let columnCount = count * geometry.outputPixels
                            let columns = workspace.columns.pointer

                            // dOutput for the chunk as one [O, chunk*OH*OW] matrix.
                            let dProduct: UnsafePointer<Float>
                            if count == 1 {
                                dProduct = dOutput + first * outputSize
                            } else {
                                gatherChunk(dOutput + first * outputSize, to: workspace.product.pointer, images: count,
                                            channels: outputChannels, pixels: geometry.outputPixels)
                                dProduct = UnsafePointer(workspace.product.pointer)
                            }

                            // dWeight += dProduct x columns^T
                            for image in 0..<count {
                                im2col(input + (first + image) * inputSize, geometry, columns: columns,
                                       leadingDimension: columnCount, columnOffset: image * geometry.outputPixels)
                            }
                            BLAS.sgemm(transposeB: true, m: outputChannels, n: geometry.rows, k: columnCount,
                                       a: dProduct, lda: columnCount, b: columns, ldb: columnCount,
                                       beta: 1, c: dWeight, ldc: geometry.rows)

                            // dColumns = weight^T x dProduct, then folded back onto the input pixels.
                            if let dInput {
                                BLAS.sgemm(transposeA: true, m: geometry.rows, n: columnCount, k: outputChannels,
                                           a: weightPointer, lda: geometry.rows, b: dProduct, ldb: columnCount,
                                           c: columns, ldc: columnCount)
                                for image in 0..<count {
                                    col2im(columns, geometry, leadingDimension: columnCount,
                                           columnOffset: image * geometry.outputPixels,
                                           into: dInput + (first + image) * inputSize, accumulate: accumulateInput)
                                }
                            }
                            first += count
                        }
                    }
                }
                for worker in 1..<max(workers, 1) {
                    let partial = workspaces[worker].dWeight.pointer
                    for index in 0..<weightCount { gradientPointer[index] += partial[index] }
                }
            }
        }
    }

    // MARK: - im2col

    struct Geometry {
        let channels, height, width, kernel, stride, padding, outputHeight, outputWidth: Int
        var rows: Int { channels * kernel * kernel }
        var outputPixels: Int { outputHeight * outputWidth }
    }

    private func makeGeometry(height: Int, width: Int) -> Geometry {
        let (outputHeight, outputWidth) = outputSize(height: height, width: width)
        return Geometry(channels: inputChannels, height: height, width: width, kernel: kernelSize, stride: stride,
                        padding: padding, outputHeight: outputHeight, outputWidth: outputWidth)
    }

    private func chunkSize(_ geometry: Geometry) -> Int {
        let byColumns = max(1, targetColumns / geometry.outputPixels)
        let byMemory = max(1, maximumColumnElements / (geometry.rows * geometry.outputPixels))
        return min(byColumns, byMemory)
    }

    private func prepareWorkspaces(workers: Int, geometry: Geometry, chunk: Int, needsWeightGradient: Bool) {
        while workspaces.count < workers { workspaces.append(ConvolutionWorkspace()) }
        let columnCount = chunk * geometry.outputPixels
        for worker in 0..<workers {
            workspaces[worker].columns.reserve(geometry.rows * columnCount)
            if chunk > 1 { workspaces[worker].product.reserve(outputChannels * columnCount) }
            if needsWeightGradient && worker > 0 { workspaces[worker].dWeight.reserve(weight.value.count) }
        }
    }
}

/// Scratch memory of one worker of a `Conv2d`.
final class ConvolutionWorkspace: @unchecked Sendable {
    let columns = FloatBuffer()
    let product = FloatBuffer()
    let dWeight = FloatBuffer()
}

/// Runs `body` with OpenBLAS limited to one thread when `single` is true,
/// because the callers then run one SGEMM per worker thread themselves.
///
/// NOTE: the OpenBLAS thread count is process-wide, so SGEMM calls that
/// other threads make while a convolution runs also get one thread.
func withSingleThreadedBLAS(_ single: Bool, _ body: () -> Void) {
    guard single else { return body() }
    let previous = BLAS.threadCount
    BLAS.threadCount = 1
    body()
    BLAS.threadCount = previous
}

/// Copies the column matrix of one image into `columns`.
///
/// Row `(c * K + ky) * K + kx`, column `columnOffset + oy * OW + ox` receives
/// `input[c, oy * stride - padding + ky, ox * stride - padding + kx]`, or 0
/// where that position falls into the padding. `leadingDimension` is the row
/// length of the chunk's column matrix.
func im2col(_ input: UnsafePointer<Float>, _ g: Conv2d.Geometry, columns: UnsafeMutablePointer<Float>,
            leadingDimension: Int, columnOffset: Int) {
    let plane = g.height * g.width
    for channel in 0..<g.channels {
        let source = input + channel * plane
        for ky in 0..<g.kernel {
            for kx in 0..<g.kernel {
                let row = (channel * g.kernel + ky) * g.kernel + kx
                let destination = columns + row * leadingDimension + columnOffset
                let (first, end) = validRange(offset: kx - g.padding, stride: g.stride, extent: g.width, count: g.outputWidth)
                for oy in 0..<g.outputHeight {
                    let target = destination + oy * g.outputWidth
                    let iy = oy * g.stride - g.padding + ky
                    guard iy >= 0 && iy < g.height && first < end else {
                        target.update(repeating: 0, count: g.outputWidth)
                        continue
                    }
                    if first > 0 { target.update(repeating: 0, count: first) }
                    let sourceRow = source + iy * g.width + kx - g.padding
                    if g.stride == 1 {
                        (target + first).update(from: sourceRow + first, count: end - first)
                    } else {
                        for ox in first..<end { target[ox] = sourceRow[ox * g.stride] }
                    }
                    if end < g.outputWidth { (target + end).update(repeating: 0, count: g.outputWidth - end) }
                }
            }
        }
    }
}

/// Adds (or, without `accumulate`, first zeroes and then adds) the column
/// matrix of one image back onto its input pixels: the adjoint of `im2col`.
func col2im(_ columns: UnsafePointer<Float>, _ g: Conv2d.Geometry, leadingDimension: Int, columnOffset: Int,
            into dInput: UnsafeMutablePointer<Float>, accumulate: Bool) {
    let plane = g.height * g.width
    if !accumulate { dInput.update(repeating: 0, count: g.channels * plane) }
    for channel in 0..<g.channels {
        let target = dInput + channel * plane
        for ky in 0..<g.kernel {
            for kx in 0..<g.kernel {
                let row = (channel * g.kernel + ky) * g.kernel + kx
                let source = columns + row * leadingDimension + columnOffset
                let (first, end) = validRange(offset: kx - g.padding, stride: g.stride, extent: g.width, count: g.outputWidth)
                guard first < end else { continue }
                for oy in 0..<g.outputHeight {
                    let iy = oy * g.stride - g.padding + ky
                    guard iy >= 0 && iy < g.height else { continue }
                    let sourceRow = source + oy * g.outputWidth
                    let targetRow = target + iy * g.width + kx - g.padding
                    if g.stride == 1 {
                        for ox in first..<end { targetRow[ox] += sourceRow[ox] }
                    } else {
                        for ox in first..<end { targetRow[ox * g.stride] += sourceRow[ox] }
                    }
                }
            }
        }
    }
}

/// Returns the output columns `first..<end` whose input column
/// `ox * stride + offset` lies inside `0..<extent`.
@inline(__always)
func validRange(offset: Int, stride: Int, extent: Int, count: Int) -> (Int, Int) {
    // ox * stride + offset >= 0  <=>  ox >= ceil(-offset / stride)
    let first = offset >= 0 ? 0 : (-offset + stride - 1) / stride
    // ox * stride + offset < extent  <=>  ox <= (extent - 1 - offset) / stride
    let last = extent - 1 - offset
    let end = last < 0 ? 0 : min(count, last / stride + 1)
    return (min(first, end), end)
}

/// Copies a `[O, images * pixels]` chunk product into NCHW order `[images, O, pixels]`.
func scatterChunk(_ product: UnsafePointer<Float>, to output: UnsafeMutablePointer<Float>, images: Int, channels: Int, pixels: Int) {
    let columnCount = images * pixels
    for image in 0..<images {
        for channel in 0..<channels {
            (output + (image * channels + channel) * pixels)
                .update(from: product + channel * columnCount + image * pixels, count: pixels)
        }
    }
}

/// Copies NCHW `[images, O, pixels]` into one `[O, images * pixels]` matrix.
func gatherChunk(_ input: UnsafePointer<Float>, to product: UnsafeMutablePointer<Float>, images: Int, channels: Int, pixels: Int) {
    let columnCount = images * pixels
    for image in 0..<images {
        for channel in 0..<channels {
            (product + channel * columnCount + image * pixels)
                .update(from: input + (image * channels + channel) * pixels, count: pixels)
        }
    }
}
