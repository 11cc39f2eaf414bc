"""Training throughput of Kumo and PyTorch eager on the same model, side by side, in fp32 and bf16.

Reads a Kumo TOML config, builds the identical LLaMA-family model in PyTorch (eager,
F.scaled_dot_product_attention as Hugging Face uses, AdamW with the config's settings and
gradient clipping) and times training steps on random tokens with the same number of threads:
PyTorch fp32, PyTorch under `torch.autocast("cpu", dtype=torch.bfloat16)` (fp32 weights, bf16
matrix products), and `kumo bench train` with `train.precision = "fp32"` and `"bf16"`, in
alternating rounds of one invocation. Each PyTorch mode runs in its own process, so each has
its own peak RSS. MFU for each is against the peak of its precision: the best of the sgemm
(or bf16 matmul) rates PyTorch measured here and the peaks Kumo measured.

Run: python3 bench/bench_train.py --config bench/configs/tiny.toml --threads 1
"""

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
import tomllib

import torch
import torch.nn.functional as F


def model_config(cfg):
    m = cfg["model"]
    return dict(vocab=m["vocab_size"], hidden=m["hidden_size"], ffn=m["intermediate_size"],
                layers=m["num_hidden_layers"], heads=m["num_attention_heads"],
                kv=m.get("num_key_value_heads", m["num_attention_heads"]), theta=m.get("rope_theta", 10000.0),
                eps=m.get("rms_norm_eps", 1e-5), tie=m.get("tie_word_embeddings", False),
                parallel=m.get("parallel_layers", False))


class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        h, hd = c["hidden"], c["hidden"] // c["heads"]
        self.c, self.hd = c, hd
        self.input_layernorm = RMSNorm(h, c["eps"])
        self.q_proj = torch.nn.Linear(h, c["heads"] * hd, bias=False)
        self.k_proj = torch.nn.Linear(h, c["kv"] * hd, bias=False)
        self.v_proj = torch.nn.Linear(h, c["kv"] * hd, bias=False)
        self.o_proj = torch.nn.Linear(c["heads"] * hd, h, bias=False)
        self.post_attention_layernorm = None if c["parallel"] else RMSNorm(h, c["eps"])
        self.gate_proj = torch.nn.Linear(h, c["ffn"], bias=False)
        self.up_proj = torch.nn.Linear(h, c["ffn"], bias=False)
        self.down_proj = torch.nn.Linear(c["ffn"], h, bias=False)

    def attention(self, x, cos, sin):
        b, t, _ = x.shape
        c, hd = self.c, self.hd
        q = self.q_proj(x).view(b, t, c["heads"], hd).transpose(1, 2)
        k = self.k_proj(x).view(b, t, c["kv"], hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, c["kv"], hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        rep = c["heads"] // c["kv"]
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))

    def mlp(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))

    def forward(self, x, cos, sin):
        n = self.input_layernorm(x)
        if self.post_attention_layernorm is None:
            return x + self.attention(n, cos, sin) + self.mlp(n)
        x = x + self.attention(n, cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(torch.nn.Module):
    def __init__(self, c, seq):
        super().__init__()
        self.embed_tokens = torch.nn.Embedding(c["vocab"], c["hidden"])
        self.layers = torch.nn.ModuleList(Block(c) for _ in range(c["layers"]))
        self.norm = RMSNorm(c["hidden"], c["eps"])
        self.lm_head = None if c["tie"] else torch.nn.Linear(c["hidden"], c["vocab"], bias=False)
        hd = c["hidden"] // c["heads"]
        inv = c["theta"] ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
        ang = torch.arange(seq, dtype=torch.float64)[:, None] * inv[None, :]
        self.register_buffer("cos", torch.cat([ang.cos()] * 2, -1).float(), persistent=False)
        self.register_buffer("sin", torch.cat([ang.sin()] * 2, -1).float(), persistent=False)
        for p in self.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.02)

    def forward(self, ids):
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, self.cos, self.sin)
        x = self.norm(x)
        return x @ self.embed_tokens.weight.T if self.lm_head is None else self.lm_head(x)


def flops_per_token(c, seq):
    hd = c["hidden"] // c["heads"]
    attn = c["hidden"] * hd * (2 * c["heads"] + 2 * c["kv"])
    n = c["layers"] * (attn + 3 * c["hidden"] * c["ffn"]) + c["vocab"] * c["hidden"]
    return 6 * n + 12 * c["layers"] * c["hidden"] * seq


def matmul_peak(dtype, n=1536, repeats=5):
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


class TorchTrainer:
    """The PyTorch side: model, optimizer and one timed training step."""

    def __init__(self, cfg, precision):
        self.autocast = precision == "bf16"
        self.c = c = model_config(cfg)
        tr, opt_cfg = cfg["train"], cfg.get("optim", {})
        self.seq, self.mb = tr["seq_length"], tr["micro_batch_size"]
        torch.manual_seed(tr.get("seed", 1234))
        self.model = Llama(c, self.seq)
        decay = [p for p in self.model.parameters() if p.dim() == 2]
        no_decay = [p for p in self.model.parameters() if p.dim() == 1]
        self.opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": opt_cfg.get("weight_decay", 0.1)},
             {"params": no_decay, "weight_decay": 0.0}],
            lr=opt_cfg.get("lr", 3e-4), betas=(opt_cfg.get("beta1", 0.9), opt_cfg.get("beta2", 0.95)),
            eps=opt_cfg.get("eps", 1e-8))
        self.clip = opt_cfg.get("grad_clip", 1.0)

    def step(self):
        ids = torch.randint(0, self.c["vocab"], (self.mb, self.seq + 1))
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast):
            logits = self.model(ids[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, self.c["vocab"]), ids[:, 1:].reshape(-1))
        loss.backward()
        if self.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.opt.step()
        return time.perf_counter() - t0

    def run(self, steps, warmup):
        for _ in range(warmup):
            self.step()
        step = statistics.median(self.step() for _ in range(steps))
        tps = self.mb * self.seq / step
        return dict(tokens_per_s=tps, step_s_median=step,
                    achieved_gflops=tps * flops_per_token(self.c, self.seq) / 1e9,
                    peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def bench_kumo(binary, config, steps, warmup, threads, precision):
    cmd = [binary, "bench", "train", "--config", config, "--steps", str(steps), "--warmup", str(warmup),
           "--set", f"train.threads={threads}", "--set", f"train.precision={precision}", "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def bench_torch(config, steps, warmup, threads, precision):
    """One PyTorch measurement in a fresh process (its own peak RSS), with its matmul peak."""
    cmd = [sys.executable, __file__, "--config", config, "--steps", str(steps), "--warmup", str(warmup),
           "--threads", str(threads), "--torch-worker", precision]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def torch_worker(args, cfg):
    torch.set_num_threads(args.threads)
    r = TorchTrainer(cfg, args.torch_worker).run(args.steps, args.warmup)
    r["peak_gflops"] = matmul_peak(torch.bfloat16 if args.torch_worker == "bf16" else torch.float32)
    print(json.dumps(r))


def median_round(rs):
    """The round with the median tokens/s, with the peak RSS over all rounds."""
    best = sorted(rs, key=lambda r: r["tokens_per_s"])[len(rs) // 2]
    return dict(best, peak_rss_bytes=max(r["peak_rss_bytes"] for r in rs),
                tokens_per_s_rounds=[r["tokens_per_s"] for r in rs])


CONTESTANTS = [("pytorch", "fp32"), ("kumo", "fp32"), ("pytorch", "bf16"), ("kumo", "bf16")]


def report(args, results):
    print(f"{os.path.basename(args.config)}: {args.threads} thread(s), torch {torch.__version__}; "
          f"MFU against the peak of each precision: fp32 {results['peak_gflops']['fp32']:.1f}, "
          f"bf16 {results['peak_gflops']['bf16']:.1f} GFLOP/s")
    print(f"{'run':<14} {'tokens/s':>10} {'step s':>8} {'GFLOP/s':>8} {'MFU':>6} {'peak RSS MiB':>13}")
    for name, r in results["runs"].items():
        print(f"{name:<14} {r['tokens_per_s']:>10.1f} {r['step_s_median']:>8.3f} {r['achieved_gflops']:>8.1f} "
              f"{100 * r['mfu']:>5.1f}% {r['peak_rss_bytes'] / 2**20:>13.0f}")
    for name, ratio in results["ratios"].items():
        print(f"{name}: {ratio:.2f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per contestant")
    ap.add_argument("--kumo", default=".build/release/kumo")
    ap.add_argument("--no-kumo", action="store_true", help="measure PyTorch only")
    ap.add_argument("--precision", choices=["fp32", "bf16", "both"], default="both")
    ap.add_argument("--json-out", help="write every result and the ratios to this file")
    ap.add_argument("--torch-worker", choices=["fp32", "bf16"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    with open(args.config, "rb") as f:
        cfg = tomllib.load(f)
    if args.torch_worker:
        return torch_worker(args, cfg)
    if not args.no_kumo and not os.access(args.kumo, os.X_OK):
        print(f"error: {args.kumo} not found; build it with `swift build -c release`", file=sys.stderr)
        sys.exit(2)
    torch.set_num_threads(args.threads)
    contestants = [(fw, p) for fw, p in CONTESTANTS
                   if args.precision in (p, "both") and not (fw == "kumo" and args.no_kumo)]
    # Alternate the contestants over several rounds so that all see the same share of a noisy
    # machine; each reports the median over rounds of its median step time.
    rounds = {c: [] for c in contestants}
    for _ in range(args.rounds):
        for fw, p in contestants:
            run = bench_kumo if fw == "kumo" else lambda *a: bench_torch(*a[1:])
            rounds[(fw, p)].append(run(args.kumo, args.config, args.steps, args.warmup, args.threads, p))
    # MFU against the best rate of each precision seen during the run (a noisy machine only
    # ever makes a measured peak lower than the real one).
    peaks = {p: max(r["peak_gflops"] for (_, q), rs in rounds.items() if q == p for r in rs)
             for p in {p for _, p in contestants}}
    runs = {}
    for (fw, p), rs in rounds.items():
        runs[f"{fw} {p}"] = r = median_round(rs)
        r["mfu"] = r["achieved_gflops"] / peaks[p]
    ratios = {}
    for a, b in [("kumo fp32", "pytorch fp32"), ("kumo bf16", "pytorch bf16"), ("kumo bf16", "kumo fp32"),
                 ("pytorch bf16", "pytorch fp32")]:
        if a in runs and b in runs:
            ratios[f"{a} / {b} tokens/s"] = runs[a]["tokens_per_s"] / runs[b]["tokens_per_s"]
    results = dict(runs=runs, ratios=ratios, peak_gflops=peaks, config=args.config, threads=args.threads,
                   torch=torch.__version__)
    report(args, results)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
