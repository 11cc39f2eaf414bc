"""Training throughput of plain data parallelism and ZeRO stages 1-3 (and ZeRO-3 with int8
gathers) on 2 ranks, in one run.

Trains the tiny preset on synthetic data under `mpirun -np 2` (1 thread per rank, gradient
buckets of 1 MiB: the 20 MB model in about 20; ZeRO-2/3 stage two of them) for each
setting, alternating settings over --rounds rounds, and prints the median tokens/s of the steps
after the first two (warm-up) with the per-rank memory each setting reports (of it, the
gradients: the whole buffer, or ZeRO-2/3's shard plus backward's scratch and staged buckets)
and the seconds per step rank 0 spent blocked in the waits of the gradient collectives (what
backward did not hide).

Run: python3 bench/bench_zero.py   (after swift build -c release)
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
    ("DP", []),
    ("ZeRO-1", ["parallel.zero_stage=1"]),
    ("ZeRO-2", ["parallel.zero_stage=2"]),
    ("ZeRO-3", ["parallel.zero_stage=3"]),
    ("ZeRO-3 int8", ["parallel.zero_stage=3", "parallel.quantized_allgather=\"int8\""]),
]


# Cumulative seconds blocked in the gradient collectives (all-reduce for DP and ZeRO-1, which
# also counts the two scalar all-reduces; reduce-scatter for ZeRO-2/3).
GRADIENT_WAITS = {"comm.dp.allreduce.seconds", "comm.dp.reducescatter.seconds"}


def train(sets, steps, seq):
    with tempfile.TemporaryDirectory() as d:
        argv = ["mpirun", "--oversubscribe", "-np", "2", KUMO, "train", "--run-dir", d + "/run"]
        base = ["model.preset=tiny", "data.synthetic=true", "train.threads=1", f"train.steps={steps}",
                f"train.seq_length={seq}", "train.micro_batch_size=2", "train.global_batch_size=8",
                "parallel.bucket_mib=1"]
        for s in base + sets:
            argv += ["--set", s]
        subprocess.run(argv, env=ENV, check=True, capture_output=True, text=True)
        with open(d + "/run/metrics.jsonl") as f:
            return [json.loads(line) for line in f]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--seq", type=int, default=64)
    args = p.parse_args()
    rates = {name: [] for name, _ in SETTINGS}
    memory, grads, blocked = {}, {}, {name: [] for name, _ in SETTINGS}
    for _ in range(args.rounds):
        for name, sets in SETTINGS:
            m = train(sets, args.steps, args.seq)
            rates[name] += [x["tokens_per_s"] for x in m[2:]]
            last = m[-1]
            memory[name] = sum(last.get(k, 0) for k in
                               ["memory.params_bytes", "memory.grads_bytes", "memory.optimizer_bytes"])
            grads[name] = last["memory.grads_bytes"]
            waits = [sum(v for k, v in x.items() if k in GRADIENT_WAITS) for x in m]
            blocked[name] += [b - a for a, b in zip(waits[1:], waits[2:])]
    print(f"tiny preset, 2 ranks x 1 thread, global batch 8 x {args.seq} tokens, {args.rounds} rounds")
    print(f"{'setting':<12} {'tokens/s':>9} {'params+grads+optimizer MiB/rank':>32} {'grads MiB':>10} "
          f"{'blocked s/step':>15}")
    for name, _ in SETTINGS:
        print(f"{name:<12} {statistics.median(rates[name]):9.0f} {memory[name] / 2**20:32.1f} "
              f"{grads[name] / 2**20:10.1f} {statistics.median(blocked[name]):15.4f}")


if __name__ == "__main__":
    main()
