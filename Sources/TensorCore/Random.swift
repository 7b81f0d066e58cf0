import Foundation

/// A seeded pseudo-random generator: xoshiro256** (Blackman and Vigna, 2018),
/// with its 256-bit state filled from the seed by SplitMix64 as the authors
/// recommend.
///
/// Every random choice in the package (initial weights, episodes, augmentation,
/// dropout masks, LP start points) draws from an instance of this type, so a run
/// is reproducible from its seed. Saving `state` in a checkpoint and restoring it
/// continues the exact same stream.
public struct SeededRandom: RandomNumberGenerator, Sendable, Equatable {
    /// The four state words; never all zero.
    public var state: (UInt64, UInt64, UInt64, UInt64)

    /// Creates a generator whose stream is determined by `seed`.
    public init(seed: UInt64) {
        var splitMix = seed
        func nextSplitMix() -> UInt64 {
            splitMix &+= 0x9E37_79B9_7F4A_7C15
            var z = splitMix
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (nextSplitMix(), nextSplitMix(), nextSplitMix(), nextSplitMix())
    }

    /// Restores a generator from saved state words.
    public init(state words: [UInt64]) {
        precondition(words.count == 4, "SeededRandom state needs 4 words, got \(words.count)")
        precondition(words.contains { $0 != 0 }, "SeededRandom state must not be all zero")
        state = (words[0], words[1], words[2], words[3])
    }

    /// The state as four words, for saving.
    public var stateWords: [UInt64] { [state.0, state.1, state.2, state.3] }

    public static func == (lhs: SeededRandom, rhs: SeededRandom) -> Bool {
        lhs.stateWords == rhs.stateWords
    }

    @inlinable
    public mutating func next() -> UInt64 {
        let result = rotateLeft(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotateLeft(state.3, 45)
        return result
    }

    @inlinable
    func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Returns a Double uniform in [0, 1) with 53 random bits.
    @inlinable
    public mutating func nextDouble() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Returns a Float uniform in [0, 1) with 24 random bits.
    @inlinable
    public mutating func nextFloat() -> Float {
        Float(next() >> 40) * 0x1.0p-24
    }

    /// Returns a Double uniform in [lower, upper).
    @inlinable
    public mutating func uniform(_ lower: Double, _ upper: Double) -> Double {
        lower + (upper - lower) * nextDouble()
    }

    /// Returns a standard normal sample (Box-Muller transform, one of the pair).
    public mutating func nextNormal() -> Double {
        var u1 = nextDouble()
        while u1 <= 0 { u1 = nextDouble() }
        let u2 = nextDouble()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// Returns an integer uniform in `0..<upperBound` without modulo bias.
    @inlinable
    public mutating func nextInt(below upperBound: Int) -> Int {
        precondition(upperBound > 0, "nextInt(below:) needs a positive bound, got \(upperBound)")
        return Int(next(upperBound: UInt64(upperBound)))
    }

    /// Derives an independent generator, for example one per worker or per episode.
    public mutating func split() -> SeededRandom {
        SeededRandom(seed: next())
    }
}

