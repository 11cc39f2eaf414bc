"""Activation recomputation: memory and step time of train.recompute = "none", "full" and "stage".

Trains the small preset on synthetic data (sequences of --seq, micro-batch 1) for each setting,
alternating settings over --rounds rounds, and prints per setting the activation bytes the model
allocated (memory.activations_bytes), the process's peak RSS and the median step seconds of the
steps after the first (warm-up), then the ratios to "none". On one rank (the default) each backward
follows its own forward, so "stage" re-runs nothing and keeps what "none" keeps. With --pipeline P
the run is P stages under mpirun (1F1B, 2·P micro-batches per step): the first stage holds P
micro-batches in flight, and the memory printed is rank 0's (the first stage).

Run: python3 bench/bench_recompute.py [--pipeline 2]   (after swift build -c release)
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile

KUMO = ".build/release/kumo"
SETTINGS = ["none", "full", "stage"]


def train(recompute, preset, seq, steps, threads, pipeline):
    with tempfile.TemporaryDirectory() as d:
        argv = [KUMO, "train", "--run-dir", d + "/run"]
        if pipeline > 1:
            argv = ["mpirun", "--oversubscribe", "-np", str(pipeline)] + argv
        for s in [f"model.preset={preset}", "data.synthetic=true", f"train.threads={threads}",
                  f"train.steps={steps}", f"train.seq_length={seq}", "train.micro_batch_size=1",
                  f"train.global_batch_size={2 * pipeline if pipeline > 1 else 1}",
                  f"parallel.pipeline={pipeline}", f"train.recompute={recompute}"]:
            argv += ["--set", s]
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        subprocess.run(argv, check=True, capture_output=True, text=True, env=env)
        with open(d + "/run/metrics.jsonl") as f:
            return [json.loads(line) for line in f]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--pipeline", type=int, default=1)
    args = ap.parse_args()
    step_s = {s: [] for s in SETTINGS}
    memory = {}
    for _ in range(args.rounds):
        for s in SETTINGS:
            metrics = train(s, args.preset, args.seq, args.steps, args.threads, args.pipeline)
            step_s[s] += [m["step_s"] for m in metrics[1:]]
            last = metrics[-1]
            rss = max(memory.get(s, (0, 0))[1], last["memory.peak_rss_bytes"])
            memory[s] = (last["memory.activations_bytes"], rss)
    shape = f"{args.pipeline} stages (1F1B, {2 * args.pipeline} micro-batches), rank 0" if args.pipeline > 1 else "1 rank"
    print(f"preset {args.preset}, seq {args.seq}, micro-batch 1, {shape}, {args.rounds} rounds of {args.steps} steps")
    print(f"{'recompute':<10} {'activation MiB':>15} {'peak RSS MiB':>13} {'step s (median)':>16}")
    med = {s: statistics.median(step_s[s]) for s in SETTINGS}
    for s in SETTINGS:
        print(f"{s:<10} {memory[s][0] / 2**20:>15.1f} {memory[s][1] / 2**20:>13.1f} {med[s]:>16.3f}")
    for s in SETTINGS[1:]:
        print(f"{s}/none: activation bytes {memory[s][0] / memory['none'][0]:.3f}, "
              f"peak RSS {memory[s][1] / memory['none'][1]:.3f}, step time {med[s] / med['none']:.3f}")

if __name__ == "__main__":
    main()
