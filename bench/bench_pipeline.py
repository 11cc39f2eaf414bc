"""Pipeline parallelism on the small preset: tokens/s, bubble fraction and the seconds per step
spent in pipeline (pp) communication, for one rank and for 2 stages under GPipe and 1F1B.

Trains the small preset (8 blocks, hidden 512, vocab 32000) on synthetic data, 1 thread per
rank, micro-batches of 1 × --seq tokens and a global batch of --global (so --global micro-batches
per step), alternating settings over --rounds rounds, and prints the median over the steps after
the first two (warm-up) of: tokens/s, rank 0's pipeline.bubble_fraction and bubble seconds, and
rank 0's seconds per step in pp sends/receives (the receive time includes the bubble).

Run: python3 bench/bench_pipeline.py   (after swift build -c release)
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile

KUMO = ".build/release/kumo"
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
SETTINGS = [
    ("1 rank", 1, []),
    ("pp=2 GPipe", 2, ["parallel.pipeline=2", "parallel.schedule=\"gpipe\""]),
    ("pp=2 1F1B", 2, ["parallel.pipeline=2", "parallel.schedule=\"1f1b\""]),
]


def train(ranks, sets, args):
    with tempfile.TemporaryDirectory() as d:
        argv = ([KUMO] if ranks == 1 else ["mpirun", "--oversubscribe", "-np", str(ranks), KUMO])
        argv += ["train", "--run-dir", d + "/run"]
        base = ["model.preset=small", "data.synthetic=true", "train.threads=1", f"train.steps={args.steps}",
                f"train.seq_length={args.seq}", "train.micro_batch_size=1",
                f"train.global_batch_size={args.global_batch}"]
        for s in base + sets:
            argv += ["--set", s]
        subprocess.run(argv, env=ENV, check=True, capture_output=True, text=True)
        with open(d + "/run/metrics.jsonl") as f:
            return [json.loads(line) for line in f]


def per_step(metrics, key):
    """Per-step increments of a cumulative counter after the warm-up steps."""
    values = [m.get(key, 0.0) for m in metrics]
    return [b - a for a, b in zip(values[1:], values[2:])]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--global-batch", type=int, default=8)
    args = p.parse_args()
    rows = {name: {"tps": [], "bubble": [], "fraction": [], "comm": []} for name, _, _ in SETTINGS}
    for _ in range(args.rounds):
        for name, ranks, sets in SETTINGS:
            m = train(ranks, sets, args)
            r = rows[name]
            r["tps"] += [x["tokens_per_s"] for x in m[2:]]
            r["bubble"] += [x.get("pipeline.bubble_seconds", 0.0) for x in m[2:]]
            r["fraction"] += [x.get("pipeline.bubble_fraction", 0.0) for x in m[2:]]
            comm = [a + b for a, b in zip(per_step(m, "comm.pp.send.seconds"), per_step(m, "comm.pp.recv.seconds"))]
            r["comm"] += comm
    print(f"small preset, seq {args.seq}, {args.global_batch} micro-batches of 1 per step, 1 thread per rank")
    print(f"{'setting':<12} {'tokens/s':>9} {'bubble s':>9} {'bubble %':>9} {'pp comm s/step':>15}")
    for name, _, _ in SETTINGS:
        r = rows[name]
        print(f"{name:<12} {statistics.median(r['tps']):9.0f} {statistics.median(r['bubble']):9.3f} "
              f"{100 * statistics.median(r['fraction']):8.1f}% {statistics.median(r['comm']):15.3f}")


if __name__ == "__main__":
    main()
