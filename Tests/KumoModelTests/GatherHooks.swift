@testable import KumoModel

/// Hooks in the manner of ZeRO-3: from a stage's before-hook to the next one only that stage's
/// parameters are present (all others zeroed), so a pass that reads a stage outside its gather
/// computes wrong values.
func installGatherHooks(_ model: LlamaModel) {
    let whole = model.params.array
    let present = { (stage: ParameterStage) in
        model.params.zero()
        for r in model.layout.ranges(of: stage) {
            for i in r { model.params[i] = whole[i] }
        }
    }
    model.beforeForward = present
    model.beforeBackward = present
}
