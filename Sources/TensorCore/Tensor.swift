/// A dense Float32 tensor in contiguous row-major storage.
///
/// Image batches use NCHW order throughout the package: N images, C channels,
/// H rows, W columns, with W varying fastest. Convolution weights use OIHW
/// (output channels, input channels, kernel rows, kernel columns), the layout
/// of PyTorch's `Conv2d.weight`. `Tensor` is a value type with copy-on-write
/// storage, so layers that keep buffers from step to step write into them in
/// place through `withUnsafeMutableBufferPointer` without reallocating.
public struct Tensor: Equatable, Sendable {
    /// The extent of each dimension, outermost first.
    public private(set) var shape: [Int]
    /// The elements in row-major order; `scalars.count == shape.product`.
    public var scalars: [Float]

    /// Creates a tensor of the given shape filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor shape \(shape) has a negative extent")
        self.shape = shape
        self.scalars = [Float](repeating: value, count: shape.reduce(1, *))
    }

    /// Creates a tensor from elements in row-major order.
    public init(shape: [Int], scalars: [Float]) {
        precondition(
            shape.reduce(1, *) == scalars.count,
            "Tensor shape \(shape) needs \(shape.reduce(1, *)) elements, got \(scalars.count)")
        self.shape = shape
        self.scalars = scalars
    }

    /// The number of elements.
    @inlinable public var count: Int { scalars.count }

    /// The number of dimensions.
    @inlinable public var rank: Int { shape.count }

    /// Returns the same elements viewed with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(
            newShape.reduce(1, *) == count,
            "Cannot reshape \(shape) (\(count) elements) to \(newShape)")
        return Tensor(shape: newShape, scalars: scalars)
    }

    /// Changes the shape in place, keeping the elements when the count matches
    /// and reallocating (zero-filled) only when it does not.
    public mutating func resize(to newShape: [Int]) {
        let newCount = newShape.reduce(1, *)
        if newCount != scalars.count {
            scalars = [Float](repeating: 0, count: newCount)
        }
        shape = newShape
    }

    /// Sets every element to `value`.
    public mutating func fill(_ value: Float) {
        scalars.withUnsafeMutableBufferPointer { buffer in
            buffer.update(repeating: value)
        }
    }

    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer(body)
    }

    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try scalars.withUnsafeMutableBufferPointer(body)
    }
}

/// Stops with a message naming both shapes when they differ.
@inlinable
public func precondition(sameShape lhs: Tensor, _ rhs: Tensor, _ context: @autoclosure () -> String) {
    precondition(lhs.shape == rhs.shape, "\(context()): shapes \(lhs.shape) and \(rhs.shape) differ")
}
