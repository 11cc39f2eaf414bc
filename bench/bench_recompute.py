"""Activation recomputation: memory and step time of train.recompute = "none" and "full".

Trains the small preset on synthetic data (one rank, sequences of --seq, micro-batch 1) for
each setting, alternating settings over --rounds rounds, and prints per setting the activation
bytes the model allocated (memory.activations_bytes), the process's peak RSS and the median
step seconds of the steps after the first (warm-up), then the full/none ratios.

Run: python3 bench/bench_recompute.py   (after swift build -c release)
"""

import argparse
import json
import statistics
import subprocess
import tempfile

KUMO = ".build/release/kumo"
SETTINGS = ["none", "full"]


def train(recompute, preset, seq, steps, threads):
    with tempfile.TemporaryDirectory() as d:
        argv = [KUMO, "train", "--run-dir", d + "/run"]
        for s in [f"model.preset={preset}", "data.synthetic=true", f"train.threads={threads}",
                  f"train.steps={steps}", f"train.seq_length={seq}", "train.micro_batch_size=1",
                  "train.global_batch_size=1", f"train.recompute={recompute}"]:
            argv += ["--set", s]
        subprocess.run(argv, check=True, capture_output=True, text=True)
        with open(d + "/run/metrics.jsonl") as f:
            return [json.loads(line) for line in f]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    step_s = {s: [] for s in SETTINGS}
    memory = {}
    for _ in range(args.rounds):
        for s in SETTINGS:
            metrics = train(s, args.preset, args.seq, args.steps, args.threads)
            step_s[s] += [m["step_s"] for m in metrics[1:]]
            last = metrics[-1]
            rss = max(memory.get(s, (0, 0))[1], last["memory.peak_rss_bytes"])
            memory[s] = (last["memory.activations_bytes"], rss)
    print(f"preset {args.preset}, seq {args.seq}, micro-batch 1, {args.rounds} rounds of {args.steps} steps")
    print(f"{'recompute':<10} {'activation MiB':>15} {'peak RSS MiB':>13} {'step s (median)':>16}")
    med = {s: statistics.median(step_s[s]) for s in SETTINGS}
    for s in SETTINGS:
        print(f"{s:<10} {memory[s][0] / 2**20:>15.1f} {memory[s][1] / 2**20:>13.1f} {med[s]:>16.3f}")
    print(f"full/none: activation bytes {memory['full'][0] / memory['none'][0]:.3f}, "
          f"peak RSS {memory['full'][1] / memory['none'][1]:.3f}, step time {med['full'] / med['none']:.3f}")


if __name__ == "__main__":
    main()
