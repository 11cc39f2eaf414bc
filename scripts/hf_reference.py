#!/usr/bin/env python3
"""Hugging Face transformers as the reference for Kumo's model interop.

  logits   --model DIR [--gguf-file NAME] --tokens FILE.json --out FILE.safetensors [--resave DIR2]
      Loads DIR (or the GGUF file DIR/NAME) with AutoModelForCausalLM (LlamaForCausalLM or MixtralForCausalLM)
      in float32, runs each token sequence of FILE.json (a JSON list of equal-length lists), writes
      "logits" [batch, seq, vocab]; --resave writes the loaded model back with save_pretrained
      (safetensors) for the import check.
  mixtral-fixture --out DIR
      Writes a tiny random MixtralForCausalLM: DIR/mixtral-tiny (save_pretrained: per-expert tensor
      names), DIR/mixtral-tiny-fused (the same config.json, and the state dict's fused transformers-5
      names) and DIR/mixtral-tiny-logits.safetensors ("input_ids" and transformers' float32 "logits").
  quantized-gguf --model DIR --out FILE.gguf
      Writes the Hugging Face model in DIR as a llama GGUF file with gguf-py (the library
      llama.cpp's converter uses), every projection in another type (Q4_0, Q4_1, Q8_0, F16,
      BF16), Q and K rows permuted as llama.cpp's converter does.
  gguf-golden --gguf FILE.gguf --out FILE.safetensors
      Loads FILE.gguf through transformers (dequantized to float32, Q/K un-permuted), runs
      the fixed sequences below and writes, for every position, the logits of a fixed seeded
      subset of the vocabulary plus the reference top-16 ids and their logits.
"""
import argparse
import json
import os
import shutil

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, MixtralConfig, MixtralForCausalLM

# Fixed token sequences for the GGUF check, in SmolLM2's vocabulary: a chat prompt
# ("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"),
# an English sentence that ends in arbitrary tokens, and a run of punctuation.
GGUF_SEQUENCES = [
    [1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198],
    [504, 2365, 6354, 16438, 27003, 690, 260, 23790, 2767, 30, 378, 5248, 5249, 3156, 28, 1883],
    [17, 28, 216, 18, 28, 216, 19, 28, 216, 20, 28, 216, 21, 28, 216, 22],
]
SUBSET = 512
TOP = 16


def run(model, sequences):
    ids = torch.tensor(sequences, dtype=torch.long)
    with torch.no_grad():
        return model(input_ids=ids).logits.float()


def logits_command(args):
    torch.manual_seed(0)
    extra = {"gguf_file": args.gguf_file} if args.gguf_file else {}
    model = AutoModelForCausalLM.from_pretrained(
        args.model, dtype=torch.float32, attn_implementation="eager", experts_implementation="eager", **extra)
    model.eval()
    with open(args.tokens) as f:
        sequences = json.load(f)
    save_file({"logits": run(model, sequences).contiguous()}, args.out)
    if args.resave:
        model.save_pretrained(args.resave, safe_serialization=True)


def mixtral_fixture_command(args):
    # vocab 260 holds Kumo's byte tokenizer (257 ids), so `kumo generate --tokenizer byte` runs it;
    # rope_theta is MixtralConfig's default (1e6, in rope_parameters); router_jitter_noise only acts in
    # training (Kumo warns that it ignores it).
    config = MixtralConfig(
        vocab_size=260, hidden_size=32, intermediate_size=24, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, num_local_experts=4, num_experts_per_tok=2,
        router_jitter_noise=0.01, tie_word_embeddings=False)
    model = MixtralForCausalLM._from_config(config, attn_implementation="eager", experts_implementation="eager")
    gen = torch.Generator().manual_seed(23)  # a seed whose routing has no near-ties
    with torch.no_grad():
        for name, p in model.named_parameters():
            # Norms near 1; routers far from uniform; the rest large enough to make logits differ.
            std = 0.3 if p.dim() == 1 else 0.5 if name.endswith("mlp.gate.weight") else 0.15
            p.copy_((1 if p.dim() == 1 else 0) + std * torch.randn(p.shape, generator=gen))
    model.eval()
    ids = torch.randint(0, config.vocab_size, (2, 12), generator=gen)
    with torch.no_grad():
        out = model(input_ids=ids, output_router_logits=True)
    top = torch.stack([torch.softmax(r, -1).sort(-1, descending=True).values for r in out.router_logits])
    margin = (top[..., 1] - top[..., 2]).min().item()
    assert margin > 1e-4, f"router probabilities within {margin} of a tie: pick another seed"
    plain = os.path.join(args.out, "mixtral-tiny")
    model.save_pretrained(plain, safe_serialization=True)
    fused = os.path.join(args.out, "mixtral-tiny-fused")
    os.makedirs(fused, exist_ok=True)
    shutil.copy(os.path.join(plain, "config.json"), fused)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(fused, "model.safetensors"))
    save_file({"input_ids": ids.to(torch.int32), "logits": out.logits.float().contiguous()},
              os.path.join(args.out, "mixtral-tiny-logits.safetensors"))
    print(f"mixtral fixture in {args.out}: smallest top-2 margin {margin:.2e}")


# The ggml type of each projection in quantized-gguf: every supported type appears.
QUANTIZED_TYPES = {
    "attn_q": "Q4_0", "attn_k": "Q4_1", "attn_v": "Q8_0", "attn_output": "F16",
    "ffn_gate": "BF16", "ffn_up": "Q4_0", "ffn_down": "Q4_1", "token_embd": "Q8_0", "output": "Q4_1",
}
HF_TO_GGUF = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
}


def llama_cpp_permute(w, heads):
    # The row order llama.cpp's converter writes: the two halves of each head interleaved.
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def quantized_gguf_command(args):
    import gguf
    import numpy as np
    from safetensors.numpy import load_file
    with open(os.path.join(args.model, "config.json")) as f:
        c = json.load(f)
    tensors = load_file(os.path.join(args.model, "model.safetensors"))
    w = gguf.GGUFWriter(args.out, "llama")
    w.add_context_length(c["max_position_embeddings"])
    w.add_embedding_length(c["hidden_size"])
    w.add_block_count(c["num_hidden_layers"])
    w.add_feed_forward_length(c["intermediate_size"])
    w.add_head_count(c["num_attention_heads"])
    w.add_head_count_kv(c["num_key_value_heads"])
    w.add_rope_freq_base(c["rope_theta"])
    w.add_layer_norm_rms_eps(c["rms_norm_eps"])
    w.add_vocab_size(c["vocab_size"])
    for name, value in tensors.items():
        if name == "model.embed_tokens.weight":
            short = "token_embd"
        elif name == "model.norm.weight":
            short = "output_norm"
        elif name == "lm_head.weight":
            short = "output"
        else:
            parts = name.split(".")
            short = f"blk.{parts[2]}." + HF_TO_GGUF[".".join(parts[3:-1])]
        if short.endswith("attn_q"):
            value = llama_cpp_permute(value, c["num_attention_heads"])
        elif short.endswith("attn_k"):
            value = llama_cpp_permute(value, c["num_key_value_heads"])
        qname = QUANTIZED_TYPES.get(short.split(".")[-1])
        if qname is None:
            w.add_tensor(short + ".weight", value.astype(np.float32))
        else:
            qtype = gguf.GGMLQuantizationType[qname]
            w.add_tensor(short + ".weight", gguf.quants.quantize(value.astype(np.float32), qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def gguf_golden_command(args):
    directory, name = os.path.split(os.path.abspath(args.gguf))
    model = AutoModelForCausalLM.from_pretrained(
        directory, gguf_file=name, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    logits = run(model, GGUF_SEQUENCES)
    vocab = logits.shape[-1]
    subset = torch.randperm(vocab, generator=torch.Generator().manual_seed(1234))[:SUBSET].sort().values
    top = logits.topk(TOP, dim=-1)
    save_file(
        {
            "input_ids": torch.tensor(GGUF_SEQUENCES, dtype=torch.int32),
            "subset_ids": subset.to(torch.int32),
            "subset_logits": logits[:, :, subset].contiguous(),
            "top_ids": top.indices.to(torch.int32).contiguous(),
            "top_logits": top.values.contiguous(),
        },
        args.out,
        metadata={"source": name, "vocab_size": str(vocab)},
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("logits")
    p.add_argument("--model", required=True)
    p.add_argument("--tokens", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--gguf-file")
    p.add_argument("--resave")
    p.set_defaults(func=logits_command)
    q = sub.add_parser("quantized-gguf")
    q.add_argument("--model", required=True)
    q.add_argument("--out", required=True)
    q.set_defaults(func=quantized_gguf_command)
    m = sub.add_parser("mixtral-fixture")
    m.add_argument("--out", required=True)
    m.set_defaults(func=mixtral_fixture_command)
    g = sub.add_parser("gguf-golden")
    g.add_argument("--gguf", required=True)
    g.add_argument("--out", required=True)
    g.set_defaults(func=gguf_golden_command)
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.func(args)


if __name__ == "__main__":
    main()
