#!/usr/bin/env python3
"""Planner predictions beside measurements on this machine (issue: kumo plan).

For each case, `kumo plan --json` predicts the largest rank's peak memory and the step time, and
`kumo bench train --json` (under mpirun for several ranks) measures `peak_rss_bytes_max_rank` and the
median step time; printed as predicted / measured. Run `kumo plan --calibrate` first.

  python3 bench/bench_plan.py [--kumo .build/release/kumo] [--rounds 2] [--steps 6]
"""
import argparse
import json
import os
import subprocess

COMMON = ["data.synthetic=true", "train.threads=1", "train.seq_length=256"]
CASES = [
    ("small, 1 rank", 1, ["model.preset=small", "train.micro_batch_size=4", "train.global_batch_size=8"]),
    ("tiny, ZeRO-3, 2 ranks", 2,
     ["model.preset=tiny", "train.micro_batch_size=2", "train.global_batch_size=8", "parallel.zero_stage=3"]),
    ("tiny, tp=2 x pp=2, 4 ranks", 4,
     ["model.preset=tiny", "train.micro_batch_size=2", "train.global_batch_size=8", "parallel.tensor=2",
      "parallel.pipeline=2"]),
]


def sets(settings):
    return [a for s in COMMON + settings for a in ("--set", s)]


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kumo", default=".build/release/kumo")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--steps", type=int, default=6)
    a = p.parse_args()
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    print("case | predicted peak MiB | measured MiB | ratio | predicted step s | measured s | ratio")
    for r in range(a.rounds):
        print(f"round {r + 1}")
        for label, ranks, settings in CASES:
            plan = last_json(subprocess.run([a.kumo, "plan", "--json", "--ranks", str(ranks)] + sets(settings),
                                            check=True, capture_output=True, text=True, env=env).stdout)
            bench = [a.kumo, "bench", "train", "--json", "--steps", str(a.steps)] + sets(settings)
            if ranks > 1:
                bench = ["mpirun", "--oversubscribe", "-np", str(ranks)] + bench
            got = last_json(subprocess.run(bench, check=True, capture_output=True, text=True, env=env).stdout)
            pm, mm = plan["peak_memory_bytes_per_rank"] / 2**20, got["peak_rss_bytes_max_rank"] / 2**20
            ps, ms = plan["step_s"], got["step_s_median"]
            print(f"{label} | {pm:.1f} | {mm:.1f} | {pm / mm:.3f} | {ps:.3f} | {ms:.3f} | {ps / ms:.3f}")


if __name__ == "__main__":
    main()
