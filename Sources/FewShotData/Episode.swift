import TensorCore

/// The size of a few-shot episode: `way` classes, each with `shot` support and
/// `queryCount` query images.
public struct EpisodeShape: Sendable, Equatable {
    public var way: Int
    public var shot: Int
    public var queryCount: Int

    public init(way: Int, shot: Int, queryCount: Int) {
        self.way = way
        self.shot = shot
        self.queryCount = queryCount
    }

    /// Support plus query images of one episode.
    public var imagesPerEpisode: Int { way * (shot + queryCount) }
}

/// One image of an `ImageSource`: its class and its position in that class's list.
public struct ImageReference: Hashable, Sendable {
    public let classIndex: Int
    public let imageIndex: Int

    public init(classIndex: Int, imageIndex: Int) {
        self.classIndex = classIndex
        self.imageIndex = imageIndex
    }
}

/// A sampled episode. Label `l` (0..<way) stands for source class `classes[l]`.
///
/// Order within an episode is class-major: `support[l * shot + s]` is support
/// image `s` of label `l`, and `query[l * queryCount + q]` is query image `q` of
/// label `l`. The label arrays follow the same order.
public struct Episode: Sendable, Equatable {
    public let shape: EpisodeShape
    /// The source class index of each episode label.
    public let classes: [Int]
    public let support: [ImageReference]
    public let query: [ImageReference]

    public var supportLabels: [Int] { (0..<shape.way).flatMap { Array(repeating: $0, count: shape.shot) } }
    public var queryLabels: [Int] { (0..<shape.way).flatMap { Array(repeating: $0, count: shape.queryCount) } }
}

/// Draws N-way K-shot Q-query episodes from an image source.
///
/// Within an episode the `way` classes are distinct and the `shot + queryCount`
/// images of each class are distinct (both drawn without replacement by a partial
/// Fisher-Yates shuffle), so no image appears twice in one episode. Episodes are
/// independent of each other, and the same generator state gives the same episode.
public struct EpisodeSampler: Sendable {
    public let shape: EpisodeShape
    /// The number of images of each source class.
    public let classImageCounts: [Int]

    /// Creates a sampler after checking that the source can supply the shape.
    public init(source: ImageSource, shape: EpisodeShape) throws {
        guard shape.way >= 2, shape.shot >= 1, shape.queryCount >= 0 else {
            throw DataError(.invalidEpisodeShape, "episode shape \(shape.way)-way \(shape.shot)-shot \(shape.queryCount)-query is invalid; way must be at least 2, shot at least 1 and query at least 0")
        }
        guard shape.way <= source.classCount else {
            throw DataError(.invalidEpisodeShape, "\(shape.way)-way episodes need at least \(shape.way) classes, but the split has \(source.classCount); lower the way or use a split with more classes")
        }
        let perClass = shape.shot + shape.queryCount
        for classIndex in 0..<source.classCount where source.imageCount(inClass: classIndex) < perClass {
            throw DataError(.invalidEpisodeShape, "class '\(source.classNames[classIndex])' has \(counted(source.imageCount(inClass: classIndex), "image")), fewer than the \(shape.shot) support + \(shape.queryCount) query images an episode draws from each class; lower shot or query")
        }
        self.shape = shape
        self.classImageCounts = (0..<source.classCount).map { source.imageCount(inClass: $0) }
    }

    /// Draws one episode.
    public func sample(using random: inout SeededRandom) -> Episode {
        let classes = Self.drawWithoutReplacement(shape.way, from: classImageCounts.count, using: &random)
        var support: [ImageReference] = []
        var query: [ImageReference] = []
        support.reserveCapacity(shape.way * shape.shot)
        query.reserveCapacity(shape.way * shape.queryCount)
        for classIndex in classes {
            let images = Self.drawWithoutReplacement(shape.shot + shape.queryCount, from: classImageCounts[classIndex], using: &random)
            for image in images.prefix(shape.shot) {
                support.append(ImageReference(classIndex: classIndex, imageIndex: image))
            }
            for image in images.dropFirst(shape.shot) {
                query.append(ImageReference(classIndex: classIndex, imageIndex: image))
            }
        }
        return Episode(shape: shape, classes: classes, support: support, query: query)
    }

    /// Returns `count` distinct values of `0..<population`, in the order drawn.
    static func drawWithoutReplacement(_ count: Int, from population: Int, using random: inout SeededRandom) -> [Int] {
        precondition(count <= population, "cannot draw \(count) distinct values from \(population)")
        var values = Array(0..<population)
        for position in 0..<count {
            let chosen = position + random.nextInt(below: population - position)
            values.swapAt(position, chosen)
        }
        return Array(values.prefix(count))
    }
}
