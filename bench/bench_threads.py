"""Thread scaling of Kumo and PyTorch eager (fp32), with and without a busy neighbour core.

On two cores (`--cores`, default 0,1; the script and Kumo are pinned to them), each round times
training steps of both frameworks on the same config at 1 thread and 2 threads with the cores
free, then at 2 threads while a spinning process (`taskset -c <last core> sh -c 'while :; do :;
done'`, started and killed here) keeps one of the two cores busy. Frameworks and conditions
alternate inside each round, so that both see the same share of a noisy machine, and every ratio
is taken within a round; the summary is the median over rounds. The PyTorch model, optimizer and
timing are bench_train.py's.

Ratios printed, per framework:
  speed-up 2/1     2-thread tokens/s over 1-thread tokens/s, both cores free
  busy 2 / free 1  2-thread tokens/s with one core busy over 1-thread tokens/s with both free
Goals (issue 15): Kumo's speed-up at least PyTorch's in the same rounds; Kumo's busy ratio >= 0.8.

Run: python3 bench/bench_threads.py --config bench/configs/small.toml --rounds 3
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tomllib

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train import TorchTrainer, bench_kumo  # noqa: E402

CONDITIONS = [("free", 1), ("free", 2), ("busy", 2)]


def start_spinner(core):
    """A process that keeps `core` busy until killed."""
    return subprocess.Popen(["taskset", "-c", str(core), "sh", "-c", "while :; do :; done"])


def stop(process):
    process.kill()
    process.wait()


def one_round(args, trainer, spin_core):
    """tokens/s of each framework under each condition, alternating frameworks."""
    result = {"pytorch": {}, "kumo": {}}
    for condition, threads in CONDITIONS:
        spinner = start_spinner(spin_core) if condition == "busy" else None
        try:
            key = f"{condition}{threads}"
            torch.set_num_threads(threads)
            result["pytorch"][key] = trainer.run(args.steps, args.warmup)["tokens_per_s"]
            kumo = bench_kumo(args.kumo, args.config, args.steps, args.warmup, threads, "fp32")
            result["kumo"][key] = kumo["tokens_per_s"]
        finally:
            if spinner:
                stop(spinner)
    for r in result.values():
        r["speedup"] = r["free2"] / r["free1"]
        r["busy_ratio"] = r["busy2"] / r["free1"]
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="bench/configs/small.toml")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cores", default="0,1", help="the two cores to run on; the last one is made busy")
    ap.add_argument("--kumo", default=".build/release/kumo")
    ap.add_argument("--json-out", help="write every round and the medians to this file")
    args = ap.parse_args()

    if not os.access(args.kumo, os.X_OK):
        print(f"error: {args.kumo} not found; build it with `swift build -c release`", file=sys.stderr)
        sys.exit(2)
    cores = [int(c) for c in args.cores.split(",")]
    if len(cores) != 2:
        print("error: --cores takes two core numbers, e.g. 0,1", file=sys.stderr)
        sys.exit(2)
    os.sched_setaffinity(0, cores)  # Kumo's processes inherit it.
    with open(args.config, "rb") as f:
        cfg = tomllib.load(f)
    trainer = TorchTrainer(cfg, "fp32")
    trainer.run(1, args.warmup)

    rounds = []
    print(f"{os.path.basename(args.config)} on cores {args.cores} (core {cores[1]} busy in 'busy'), "
          f"torch {torch.__version__}; tokens/s")
    print(f"{'round':<6} {'framework':<8} {'free 1':>8} {'free 2':>8} {'busy 2':>8} {'speed-up 2/1':>13} "
          f"{'busy 2 / free 1':>16}")
    for i in range(args.rounds):
        r = one_round(args, trainer, cores[1])
        rounds.append(r)
        for fw, v in r.items():
            print(f"{i + 1:<6} {fw:<8} {v['free1']:>8.1f} {v['free2']:>8.1f} {v['busy2']:>8.1f} "
                  f"{v['speedup']:>13.2f} {v['busy_ratio']:>16.2f}", flush=True)

    median = {fw: {k: statistics.median(r[fw][k] for r in rounds) for k in rounds[0][fw]} for fw in rounds[0]}
    ahead = [r["kumo"]["speedup"] / r["pytorch"]["speedup"] for r in rounds]
    print(f"median  speed-up 2/1: kumo {median['kumo']['speedup']:.2f}x, pytorch {median['pytorch']['speedup']:.2f}x; "
          f"kumo / pytorch speed-up per round: {', '.join(f'{a:.2f}' for a in ahead)}")
    print(f"median  busy 2 / free 1: kumo {median['kumo']['busy_ratio']:.2f}, "
          f"pytorch {median['pytorch']['busy_ratio']:.2f} (goal for kumo: >= 0.80)")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(dict(config=args.config, cores=cores, torch=torch.__version__, rounds=rounds, median=median,
                           kumo_over_pytorch_speedup=ahead), f, indent=2)


if __name__ == "__main__":
    main()
