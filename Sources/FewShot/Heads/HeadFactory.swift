import Foundation

/// Creates the head a configuration names.
public func makeHead(_ config: TrainingConfig.HeadSection, seed: UInt64) -> FewShotHead {
    switch config.kind {
    case "prototypical":
        return PrototypicalHead(scale: config.initialScale)
    case "ridge":
        return RidgeHead(lambda: config.lambda, scale: config.initialScale)
    default:
        return L1SVMHead(config: config, scale: config.initialScale, seed: seed)
    }
}
