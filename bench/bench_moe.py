"""Mixture-of-experts training throughput beside the dense model of equal active parameters,
in Kumo and in PyTorch (Hugging Face transformers' MixtralForCausalLM and LlamaForCausalLM, eager),
side by side in alternating rounds of one invocation.

The dense model is a Kumo config (bench/configs/tiny.toml by default); the mixture replaces its MLP
by `--experts` experts of half its width with each token routed to two (the same matrix FLOPs per
token, plus the router's). Every runtime trains fp32 on random tokens with the same threads, AdamW,
the load-balancing loss on (coefficient 0.01). Each PyTorch measurement runs in its own process.

Run: python3 bench/bench_moe.py --threads 1 --rounds 3
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
import tomllib

EXPERT_SETS = lambda experts, ffn: [
    "--set", f"model.num_local_experts={experts}", "--set", "model.num_experts_per_tok=2",
    "--set", f"model.intermediate_size={ffn}", "--set", "model.output_router_logits=true",
    "--set", "model.router_aux_loss_coef=0.01"]


def bench_kumo(args, moe):
    cfg = tomllib.load(open(args.config, "rb"))
    extra = EXPERT_SETS(args.experts, cfg["model"]["intermediate_size"] // 2) if moe else []
    cmd = [args.kumo, "bench", "train", "--config", args.config, "--steps", str(args.steps), "--warmup", "2",
           "--set", f"train.threads={args.threads}", "--json"] + extra
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def bench_torch(args, moe):
    cmd = [sys.executable, __file__, "--config", args.config, "--steps", str(args.steps), "--threads",
           str(args.threads), "--experts", str(args.experts), "--torch-worker", "moe" if moe else "dense"]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def torch_worker(args):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, MixtralConfig, MixtralForCausalLM
    torch.set_num_threads(args.threads)
    cfg = tomllib.load(open(args.config, "rb"))
    m, t = cfg["model"], cfg["train"]
    shape = dict(vocab_size=m["vocab_size"], hidden_size=m["hidden_size"], num_hidden_layers=m["num_hidden_layers"],
                 num_attention_heads=m["num_attention_heads"], num_key_value_heads=m["num_key_value_heads"],
                 max_position_embeddings=m["max_position_embeddings"], rope_theta=10000.0, rms_norm_eps=1e-5,
                 tie_word_embeddings=False, attn_implementation="sdpa")
    if args.torch_worker == "moe":
        model = MixtralForCausalLM(MixtralConfig(
            intermediate_size=m["intermediate_size"] // 2, num_local_experts=args.experts, num_experts_per_tok=2,
            output_router_logits=True, router_aux_loss_coef=0.01, **shape))
    else:
        model = LlamaForCausalLM(LlamaConfig(intermediate_size=m["intermediate_size"], **shape))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, eps=1e-8, weight_decay=0.1)
    batch, seq = t["micro_batch_size"], t["seq_length"]
    ids = torch.randint(0, m["vocab_size"], (batch, seq + 1), generator=torch.Generator().manual_seed(1))
    times = []
    for i in range(args.steps + 2):
        t0 = time.perf_counter()
        out = model(input_ids=ids[:, :-1], labels=ids[:, 1:].contiguous())
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    print(json.dumps(dict(tokens_per_s=batch * seq / step, step_s_median=step)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="bench/configs/tiny.toml", help="the dense model's Kumo config")
    p.add_argument("--kumo", default=".build/release/kumo")
    p.add_argument("--experts", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--torch-worker", choices=["moe", "dense"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_worker:
        return torch_worker(args)
    runs = {k: [] for k in ["kumo dense", "kumo moe", "torch dense", "torch moe"]}
    for r in range(args.rounds):
        for name, fn in [("kumo dense", lambda: bench_kumo(args, False)), ("torch dense", lambda: bench_torch(args, False)),
                         ("kumo moe", lambda: bench_kumo(args, True)), ("torch moe", lambda: bench_torch(args, True))]:
            runs[name].append(fn()["tokens_per_s"])
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in runs.items()), file=sys.stderr)
    print(f"{args.config}, {args.experts} experts of half the MLP width, top-2; {args.threads} thread(s), "
          f"{args.rounds} rounds, fp32; tokens/s (median over rounds) and per-round ratios (median)")
    for k, v in runs.items():
        print(f"{k:12s} {statistics.median(v):10.0f} tok/s")
    ratio = lambda a, b: statistics.median(x / y for x, y in zip(runs[a], runs[b]))
    print(f"kumo moe / kumo dense   {ratio('kumo moe', 'kumo dense'):.2f}")
    print(f"torch moe / torch dense {ratio('torch moe', 'torch dense'):.2f}")
    print(f"kumo moe / torch moe    {ratio('kumo moe', 'torch moe'):.2f}")
    print(f"kumo dense / torch dense {ratio('kumo dense', 'torch dense'):.2f}")


if __name__ == "__main__":
    main()
