import KumoModel

/// transformers 5 keeps a Mixtral layer's experts fused in memory, and a file saved from its state
/// dict holds them so: `model.layers.N.mlp.experts.gate_up_proj` [experts, 2·intermediate, hidden]
/// (each expert's w1 rows, then its w3 rows), `mlp.experts.down_proj` [experts, hidden, intermediate]
/// and the router `mlp.gate.weight` [experts, hidden]. `save_pretrained` writes Kumo's names
/// (`block_sparse_moe.experts.J.w1/w2/w3.weight`, `block_sparse_moe.gate.weight`) instead; this maps
/// each of those onto the fused tensor and element range that hold the same values.
enum MixtralTensors {
    /// Where a Kumo tensor sits inside a fused tensor: its name, its shape and the elements.
    struct Slice: Equatable {
        var tensor: String
        var shape: [Int]
        var elements: Range<Int>
    }

    /// The fused slice of every mixture tensor of `config` (empty for a dense model), by Kumo name.
    static func fusedSlices(_ c: ModelConfig) -> [String: Slice] {
        guard c.isMoE else { return [:] }
        let (e, h, f) = (c.numLocalExperts, c.hiddenSize, c.intermediateSize)
        var slices: [String: Slice] = [:]
        for layer in 0..<c.numHiddenLayers {
            let (kumo, fused) = ("model.layers.\(layer).block_sparse_moe.", "model.layers.\(layer).mlp.")
            slices[kumo + "gate.weight"] = Slice(tensor: fused + "gate.weight", shape: [e, h], elements: 0..<e * h)
            let gateUp = Slice(tensor: fused + "experts.gate_up_proj", shape: [e, 2 * f, h], elements: 0..<0)
            let down = Slice(tensor: fused + "experts.down_proj", shape: [e, h, f], elements: 0..<0)
            for j in 0..<e {
                let x = kumo + "experts.\(j)."
                let first = j * 2 * f * h
                slices[x + "w1.weight"] = with(gateUp, first..<first + f * h)
                slices[x + "w3.weight"] = with(gateUp, first + f * h..<first + 2 * f * h)
                slices[x + "w2.weight"] = with(down, j * h * f..<(j + 1) * h * f)
            }
        }
        return slices
    }

    private static func with(_ slice: Slice, _ elements: Range<Int>) -> Slice {
        var s = slice
        s.elements = elements
        return s
    }
}
