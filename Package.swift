// swift-tools-version:5.9
import PackageDescription

// Module layout, from the bottom up:
//   COpenBLAS, CPNG,  system libraries (Debian: libopenblas-dev, libpng-dev,
//   CZlib             zlib1g-dev)
//   TensorCore        Float32 NCHW tensors, BLAS wrappers, parallel loops, seeded RNG
//   NeuralNetwork     layers with forward and backward, ResNet-12, SGD
//   PhysarumLP        the batched differentiable LP layer (gamma-AuxPD); no network code
//   FewShotData       CIFAR-100 and PNG readers, CIFAR-FS/FC100 splits, episodes, augmentation
//   FewShot           few-shot heads, checkpoints, configs and the trainer
//   fewshot           the command-line tool, which only wires the modules together
let package = Package(
    name: "PhysarumFewShot",
    products: [
        .library(name: "PhysarumLP", targets: ["PhysarumLP"]),
        .library(name: "NeuralNetwork", targets: ["NeuralNetwork"]),
        .library(name: "FewShotData", targets: ["FewShotData"]),
        .library(name: "FewShot", targets: ["FewShot"]),
        .executable(name: "fewshot", targets: ["fewshot"]),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(
            name: "CPNG",
            pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"])]
        ),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "TensorCore", dependencies: ["COpenBLAS"], swiftSettings: optimized),
        .target(name: "NeuralNetwork", dependencies: ["TensorCore"], swiftSettings: optimized),
        .target(name: "PhysarumLP", dependencies: ["TensorCore", "COpenBLAS"], swiftSettings: optimized),
        .target(name: "FewShotData", dependencies: ["TensorCore", "CPNG", "CZlib"], swiftSettings: optimized),
        .target(
            name: "FewShot",
            dependencies: ["TensorCore", "NeuralNetwork", "PhysarumLP", "FewShotData", "COpenBLAS"],
            swiftSettings: optimized
        ),
        .executableTarget(
            name: "fewshot",
            dependencies: ["TensorCore", "NeuralNetwork", "PhysarumLP", "FewShotData", "FewShot"],
            swiftSettings: optimized
        ),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore"]),
        .testTarget(
            name: "NeuralNetworkTests",
            dependencies: ["NeuralNetwork", "TensorCore"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "PhysarumLPTests",
            dependencies: ["PhysarumLP", "TensorCore"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "FewShotDataTests", dependencies: ["FewShotData", "TensorCore", "CZlib"]),
        .testTarget(name: "FewShotTests", dependencies: ["FewShot", "NeuralNetwork", "PhysarumLP", "FewShotData", "TensorCore"]),
        .testTarget(name: "CommandLineTests", dependencies: ["fewshot", "FewShot", "FewShotData", "TensorCore"]),
    ]
)

/// Release builds optimise across module boundaries, so that TensorCore's small
/// helpers inline into the layers' loops. Bounds checks stay on.
var optimized: [SwiftSetting] { [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))] }
