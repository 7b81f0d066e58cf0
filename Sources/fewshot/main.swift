import Foundation

/// The root command; each subcommand lives in its own file.
enum FewShotTool: Command {
    static let name = "fewshot"
    static let abstract = "Few-shot image classification with a differentiable LP head (gamma-AuxPD)."
    static let subcommands: [Command.Type] = [
        BenchCommand.self,
        LPCommand.self,
        DataCommand.self,
        TrainCommand.self,
        EvalCommand.self,
        InspectCommand.self,
        EmbedCommand.self,
    ]
}

/// The version `fewshot --version` prints; the only place it is written.
let toolVersion = "0.1.0"

setvbuf(stdout, nil, _IOLBF, 0)
exit(dispatch(FewShotTool.self, arguments: Array(CommandLine.arguments.dropFirst()), toolName: "fewshot", version: toolVersion))
