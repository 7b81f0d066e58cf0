/// `fewshot bench <subject>`: benchmarks that print figures.
enum BenchCommand: Command {
    static let name = "bench"
    static let abstract = "Print speed figures for the backbone, the LP layer or the data pipeline."
    static let subcommands: [Command.Type] = [
        SGEMMBenchCommand.self,
        BackboneBenchCommand.self,
        LPBenchCommand.self,
        DataBenchCommand.self,
    ]
}
