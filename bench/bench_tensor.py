"""Training throughput and communication time per group of tensor parallelism on the small
preset: tp=1 (one rank), tp=2, tp=2 with sequence parallelism, and data parallelism on 2 ranks
for comparison, 1 thread per rank.

Prints the median tokens/s of the steps after the first two (warm-up) and, per step, the
seconds rank 0 spent in each group's collectives (comm.<group>.*.seconds, summed over
operations) and the bytes it sent there. Numbers only: no assertions.

Run: python3 bench/bench_tensor.py   (after swift build -c release)
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
    ("tp=1", 1, []),
    ("dp=2", 2, []),
    ("tp=2", 2, ["parallel.tensor=2"]),
    ("tp=2 seq", 2, ["parallel.tensor=2", "parallel.sequence=true"]),
]
GROUPS = ["tp", "tp_kv", "dp"]


def train(ranks, sets, steps, seq, preset):
    with tempfile.TemporaryDirectory() as d:
        argv = ([KUMO] if ranks == 1 else ["mpirun", "--oversubscribe", "-np", str(ranks), KUMO])
        argv += ["train", "--run-dir", d + "/run"]
        base = [f"model.preset={preset}", "data.synthetic=true", "train.threads=1", f"train.steps={steps}",
                f"train.seq_length={seq}", "train.micro_batch_size=2", "train.global_batch_size=4"]
        for s in base + sets:
            argv += ["--set", s]
        subprocess.run(argv, env=ENV, check=True, capture_output=True, text=True)
        with open(d + "/run/metrics.jsonl") as f:
            return [json.loads(line) for line in f]


def per_step(metrics, group, field):
    totals = [sum(v for k, v in m.items() if k.startswith(f"comm.{group}.") and k.endswith(field))
              for m in metrics]
    return statistics.median(b - a for a, b in zip(totals[1:], totals[2:]))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--preset", default="small")
    args = p.parse_args()
    print(f"{args.preset} preset, 1 thread per rank, global batch 4 x {args.seq} tokens, {args.steps} steps")
    print(f"{'setting':<10} {'tokens/s':>9} " + " ".join(f"{g + ' s/step':>13} {g + ' MiB/step':>13}" for g in GROUPS))
    for name, ranks, sets in SETTINGS:
        m = train(ranks, sets, args.steps, args.seq, args.preset)
        rate = statistics.median(x["tokens_per_s"] for x in m[2:])
        cols = " ".join(f"{per_step(m, g, '.seconds'):13.3f} {per_step(m, g, '.bytes') / 2**20:13.1f}" for g in GROUPS)
        print(f"{name:<10} {rate:9.0f} {cols}")


if __name__ == "__main__":
    main()
