/// The part of a few-shot benchmark that a stage of training or testing uses.
public enum DataSplit: String, CaseIterable, Sendable {
    case train
    case validation = "val"
    case test
}

/// A CIFAR-100 fine class: its fine label and its name.
public struct FineClass: Hashable, Sendable {
    public let label: Int
    public let name: String

    public init(label: Int, name: String) {
        self.label = label
        self.name = name
    }
}

/// The two few-shot benchmarks built from CIFAR-100, both using all 600 images
/// (500 training + 100 test records) of each of their fine classes.
public enum FewShotBenchmark: String, CaseIterable, Sendable {
    /// CIFAR-FS: 64 / 16 / 20 fine classes chosen at random.
    case cifarFS = "cifarfs"
    /// FC100: 60 / 20 / 20 fine classes, from 12 / 4 / 4 disjoint superclasses.
    case fc100

    /// Returns the fine classes of one split, in ascending label order.
    public func classes(_ split: DataSplit) -> [FineClass] {
        let list: [(Int, String)]
        switch (self, split) {
        case (.cifarFS, .train): list = CIFARFSClasses.train
        case (.cifarFS, .validation): list = CIFARFSClasses.validation
        case (.cifarFS, .test): list = CIFARFSClasses.test
        case (.fc100, .train): list = FC100Classes.train
        case (.fc100, .validation): list = FC100Classes.validation
        case (.fc100, .test): list = FC100Classes.test
        }
        return list.map { FineClass(label: $0.0, name: $0.1) }
    }

    /// Returns the CIFAR-100 superclasses of one FC100 split, or none for CIFAR-FS,
    /// which is not split by superclass.
    public func superclasses(_ split: DataSplit) -> [(label: Int, name: String)] {
        guard self == .fc100 else { return [] }
        switch split {
        case .train: return FC100Classes.trainSuperclasses.map { (label: $0.0, name: $0.1) }
        case .validation: return FC100Classes.validationSuperclasses.map { (label: $0.0, name: $0.1) }
        case .test: return FC100Classes.testSuperclasses.map { (label: $0.0, name: $0.1) }
        }
    }

    /// The name users see, as in the literature.
    public var displayName: String {
        switch self {
        case .cifarFS: return "CIFAR-FS"
        case .fc100: return "FC100"
        }
    }

    /// Builds the image source of one split, checking each carried class name
    /// against the dataset's `fine_label_names.txt`.
    public func source(_ split: DataSplit, in dataset: CIFAR100) throws -> ImageSource {
        let classes = classes(split)
        for fineClass in classes where dataset.fineLabelNames[fineClass.label] != fineClass.name {
            throw DataError(.invalidLabelNames, "fine_label_names.txt names class \(fineClass.label) '\(dataset.fineLabelNames[fineClass.label])', but \(displayName) expects '\(fineClass.name)'; the names file does not belong to the official CIFAR-100 release, so download it again ('fewshot data fetch')")
        }
        return try dataset.source(fineLabels: classes.map(\.label))
    }
}

/// A reference to a CIFAR-100 fine class in a user's split: its label or its name.
/// Decodes from a JSON integer or string.
public enum ClassReference: Hashable, Sendable, Decodable, CustomStringConvertible {
    case label(Int)
    case name(String)

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let label = try? container.decode(Int.self) {
            self = .label(label)
        } else {
            self = .name(try container.decode(String.self))
        }
    }

    public var description: String {
        switch self {
        case .label(let label): return "\(label)"
        case .name(let name): return "'\(name)'"
        }
    }
}

/// A split of CIFAR-100 fine classes that a user defines, for example in a
/// config: `{"train": ["apple", 1, ...], "val": [...], "test": [...]}`.
public struct CustomSplit: Sendable, Decodable, Equatable {
    public var train: [ClassReference]
    public var validation: [ClassReference]
    public var test: [ClassReference]

    enum CodingKeys: String, CodingKey {
        case train
        case validation = "val"
        case test
    }

    public init(train: [ClassReference], validation: [ClassReference], test: [ClassReference]) {
        self.train = train
        self.validation = validation
        self.test = test
    }

    public func references(_ split: DataSplit) -> [ClassReference] {
        switch split {
        case .train: return train
        case .validation: return validation
        case .test: return test
        }
    }

    /// Resolves every reference to a fine label and checks that no class appears
    /// twice, within a split or across splits (a class in both train and test
    /// would leak test images into training).
    public func resolvedLabels(in dataset: CIFAR100) throws -> [DataSplit: [Int]] {
        var result: [DataSplit: [Int]] = [:]
        var owner: [Int: DataSplit] = [:]
        for split in DataSplit.allCases {
            var labels: [Int] = []
            for reference in references(split) {
                let label = try dataset.fineLabel(for: reference)
                if let previous = owner[label] {
                    let described: String
                    switch reference {
                    case .label(let number): described = "\(number) ('\(dataset.fineLabelNames[label])')"
                    case .name(let name): described = "'\(name)'"
                    }
                    throw DataError(.invalidSplit, "custom split: class \(described) appears in '\(previous.rawValue)' and again in '\(split.rawValue)'; list each class in one split only")
                }
                owner[label] = split
                labels.append(label)
            }
            result[split] = labels
        }
        return result
    }

    /// Builds the image source of one split.
    public func source(_ split: DataSplit, in dataset: CIFAR100) throws -> ImageSource {
        let labels = try resolvedLabels(in: dataset)[split] ?? []
        guard !labels.isEmpty else {
            throw DataError(.invalidSplit, "custom split: '\(split.rawValue)' lists no classes; give at least as many classes as the episode way")
        }
        return try dataset.source(fineLabels: labels)
    }
}

/// The origin of a run's classes: a published benchmark or a user's own split.
public enum SplitDefinition: Sendable, Equatable {
    case benchmark(FewShotBenchmark)
    case custom(CustomSplit)

    public func source(_ split: DataSplit, in dataset: CIFAR100) throws -> ImageSource {
        switch self {
        case .benchmark(let benchmark): return try benchmark.source(split, in: dataset)
        case .custom(let custom): return try custom.source(split, in: dataset)
        }
    }
}

extension CIFAR100 {
    /// Returns the fine label a reference names, or throws naming the valid range or the unknown name.
    public func fineLabel(for reference: ClassReference) throws -> Int {
        switch reference {
        case .label(let label):
            guard label >= 0 && label < Self.fineClassCount else {
                throw DataError(.unknownClass, "class label \(label) is outside 0 to \(Self.fineClassCount - 1); use a CIFAR-100 fine label or a name from fine_label_names.txt")
            }
            return label
        case .name(let name):
            guard let label = fineLabel(named: name) else {
                throw DataError(.unknownClass, "class '\(name)' is not a CIFAR-100 fine class name; use a name from fine_label_names.txt, such as '\(fineLabelNames[0])'")
            }
            return label
        }
    }

    /// Returns an image source over the given fine classes (all of their images,
    /// training and test records together), sharing this dataset's pixel buffer.
    public func source(fineLabels labels: [Int]) throws -> ImageSource {
        for label in labels {
            _ = try fineLabel(for: .label(label))
            guard !imageIndicesByFineLabel[label].isEmpty else {
                throw DataError(.emptyClass, "fine class \(label) '\(fineLabelNames[label])' has no images in train.bin or test.bin; use the complete CIFAR-100 files")
            }
        }
        return ImageSource(
            classNames: labels.map { fineLabelNames[$0] }, channels: 3, height: Self.side, width: Self.side,
            pixels: pixels, imageIndices: labels.map { imageIndicesByFineLabel[$0] })
    }
}
