import FewShot
import Foundation
import TensorCore

/// `fewshot embed`: backbone embeddings of given images, for comparing with
/// other implementations or for using the features elsewhere.
enum EmbedCommand: Command {
    static let name = "embed"
    static let abstract = "Write the evaluation-mode backbone embeddings of images given as safetensors."
    static let options: [OptionSpec] = [
        OptionSpec(name: "checkpoint", valueName: "<file>", help: "Checkpoint whose backbone embeds the images."),
        OptionSpec(name: "images", valueName: "<file>", help: "Safetensors file with an F32 tensor 'images' [N, 3, H, W], already normalised."),
        OptionSpec(name: "output", valueName: "<file>", help: "Safetensors file to write, with an F32 tensor 'embeddings' [N, D]."),
    ]
    static let discussion = """
        Scripts/compare_checkpoint_torch.py uses this command to compare the embeddings
        with those of a PyTorch ResNet-12 that loads the same checkpoint.
        """

    static func run(_ arguments: ParsedArguments) throws {
        try arguments.rejectPositionals()
        guard let checkpointPath = arguments.string("checkpoint"),
              let imagesPath = arguments.string("images"),
              let outputPath = arguments.string("output")
        else {
            throw UsageError("'fewshot embed' needs --checkpoint <file>, --images <file> and --output <file>")
        }

        let checkpointURL = URL(fileURLWithPath: checkpointPath)
        let config = try FewShotModel.storedConfig(at: checkpointURL)
        let model = FewShotModel(config: config)
        try model.load(from: checkpointURL)

        let file = try SafetensorsFile.read(from: URL(fileURLWithPath: imagesPath))
        guard let stored = file.tensors["images"], stored.dtype == .float32, stored.shape.count == 4, stored.shape[1] == 3,
              stored.shape[0] > 0, stored.shape[2] >= 16, stored.shape[3] >= 16
        else {
            throw CommandFailure("\(imagesPath) needs an F32 tensor 'images' of shape [N, 3, H, W] with N >= 1 and H, W >= 16")
        }
        let images = Tensor(shape: stored.shape, scalars: stored.floatScalars!)

        applyThreadCount(config.threads)
        model.backbone.isTraining = false
        let embeddings = model.backbone.forward(images)
        try SafetensorsFile(tensors: ["embeddings": SafetensorsTensor(embeddings)]).write(to: URL(fileURLWithPath: outputPath))
        print("wrote \(embeddings.shape[0]) embeddings of dimension \(embeddings.shape[1]) to \(outputPath)")
    }
}
