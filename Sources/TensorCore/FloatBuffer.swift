/// A growable block of Float32 scratch memory that layers keep from step to step.
///
/// `reserve(_:)` reallocates only when a larger size is requested, so in the
/// steady state of training (same batch shape every step) no memory is
/// allocated. The contents after a reallocation are undefined; callers
/// write before they read.
public final class FloatBuffer: @unchecked Sendable {
    /// The start of the storage; valid until the next `reserve` that grows it.
    public private(set) var pointer: UnsafeMutablePointer<Float>
    /// The number of elements the storage holds.
    public private(set) var capacity: Int

    public init(capacity: Int = 0) {
        self.capacity = max(capacity, 1)
        pointer = UnsafeMutablePointer<Float>.allocate(capacity: self.capacity)
    }

    deinit { pointer.deallocate() }

    /// Makes room for at least `count` elements and returns the start.
    @discardableResult
    public func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            pointer.deallocate()
            capacity = count
            pointer = UnsafeMutablePointer<Float>.allocate(capacity: count)
        }
        return pointer
    }

    /// Releases the storage down to one element, for example after a large
    /// one-off batch.
    public func shrink() {
        pointer.deallocate()
        capacity = 1
        pointer = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    }
}
