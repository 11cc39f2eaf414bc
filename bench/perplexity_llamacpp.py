#!/usr/bin/env python3
"""Perplexity of a GGUF model: `kumo eval` beside llama.cpp's llama-perplexity method.

llama.cpp runs through llama-cpp-python (logits of every position), reproducing llama-perplexity's
chunking: the token stream is cut into chunks of --ctx tokens; each chunk is evaluated on its own
(its first token replaced by BOS when the model adds one) and only the second half is scored, each
token predicted from the logits of the position before it. The weights stay in the GGUF's own
format (SmolLM2's Q4_1), multiplied by llama.cpp's quantized kernels.

Kumo scores the same token stream (each document after the end-of-text token, as `kumo eval` does)
in fp32 with dequantized weights, in windows of --ctx tokens advancing by --ctx/2, each window
scoring its second half. Two Kumo numbers are printed: over all tokens (`kumo eval`'s perplexity,
which includes the first half-window, scored with less context), and over the windows that start
where llama-perplexity's chunks start (the same tokens with the same context, but for one more
token per chunk: Kumo scores the chunk's token --ctx/2 too).

  bench/perplexity_llamacpp.py --gguf FILE --corpus FILE.jsonl [--docs N] [--chars N] [--ctx 512]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from llama_cpp import Llama


def read_texts(path, docs, chars):
    with open(path, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()][:docs]
    return [t[:chars] for t in texts]


def llamacpp_perplexity(gguf, texts, ctx, threads):
    """llama-perplexity's method over the documents joined as Kumo joins them."""
    llm = Llama(model_path=gguf, n_ctx=ctx, n_batch=ctx, logits_all=True, n_threads=threads, verbose=False)
    eos = llm.token_eos()
    tokens = []
    for text in texts:
        tokens += [eos] + llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    add_bos = llm.metadata.get("tokenizer.ggml.add_bos_token", "false") == "true"
    first = ctx // 2
    nll, count = 0.0, 0
    for start in range(0, len(tokens) - ctx + 1, ctx):
        chunk = tokens[start:start + ctx]
        if add_bos:
            chunk = [llm.token_bos()] + chunk[1:]
        llm.reset()
        llm.eval(chunk)
        logits = np.asarray(llm.scores[:ctx], dtype=np.float64)
        for i in range(first, ctx - 1):
            row = logits[i]
            peak = row.max()
            nll -= row[chunk[i + 1]] - peak - math.log(np.exp(row - peak).sum())
            count += 1
    return math.exp(nll / count), count, len(tokens)


def kumo_perplexity(kumo, gguf, texts, ctx):
    with tempfile.TemporaryDirectory() as d:
        corpus = os.path.join(d, "corpus.jsonl")
        with open(corpus, "w", encoding="utf-8") as f:
            for t in texts:
                f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
        out = os.path.join(d, "out.json")
        dump = os.path.join(d, "prompts.jsonl")
        subprocess.run(
            [kumo, "eval", "--model", gguf, "--tasks", "perplexity", "--corpus", corpus, "--context-length",
             str(ctx), "--stride", str(ctx // 2), "--output", out, "--dump-prompts", dump], check=True,
            stdout=subprocess.DEVNULL)
        with open(out) as f:
            r = json.load(f)["results"]["perplexity"]
        with open(dump) as f:
            (record,) = [json.loads(line) for line in f]
        # [begin, first scored, end, log-likelihood] of each window.
        aligned = [w for w in record["kumo_windows"] if w[0] % ctx == 0 and w[1] == w[0] + ctx // 2 and w[2] == w[0] + ctx]
        nll = -sum(w[3] for w in aligned)
        n = sum(w[2] - w[1] for w in aligned)
        return r["perplexity"], int(r["tokens_scored"]), math.exp(nll / n), n


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gguf", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--docs", type=int, default=1)
    p.add_argument("--chars", type=int, default=20000, help="characters kept of each document")
    p.add_argument("--ctx", type=int, default=512)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--kumo", default=".build/release/kumo")
    args = p.parse_args()
    texts = read_texts(args.corpus, args.docs, args.chars)
    t0 = time.time()
    ppl_llama, n_llama, total = llamacpp_perplexity(args.gguf, texts, args.ctx, args.threads)
    t1 = time.time()
    ppl_kumo, n_kumo, ppl_aligned, n_aligned = kumo_perplexity(args.kumo, args.gguf, texts, args.ctx)
    t2 = time.time()
    print(json.dumps({
        "tokens": total, "ctx": args.ctx,
        "llamacpp": {"perplexity": ppl_llama, "tokens_scored": n_llama, "seconds": round(t1 - t0, 1)},
        "kumo": {"perplexity": ppl_kumo, "tokens_scored": n_kumo, "seconds": round(t2 - t1, 1)},
        "kumo_llamacpp_chunks": {"perplexity": ppl_aligned, "tokens_scored": n_aligned},
        "relative_difference_all_tokens": abs(ppl_kumo - ppl_llama) / ppl_llama,
        "relative_difference_same_chunks": abs(ppl_aligned - ppl_llama) / ppl_llama}))


if __name__ == "__main__":
    sys.exit(main())
