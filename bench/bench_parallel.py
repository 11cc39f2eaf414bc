"""Training throughput and communication time per group of Kumo's parallelisms on the small
preset: one rank, data parallelism on 2 ranks, tensor parallelism (tp=2, with sequence
parallelism), pipeline parallelism (pp=2, 1F1B and GPipe) and their combinations up to
dp=2 x tp=2 x pp=2 with ZeRO-1 (8 ranks), 1 thread per rank (oversubscribed where there are
fewer cores).

Prints the median tokens/s of the steps after the first two (warm-up), the pipeline bubble
fraction, and per step the seconds rank 0 spent in each group's operations
(comm.<group>.*.seconds, summed over operations) and the bytes it sent there. Numbers only: no
assertions. `--only NAME,...` runs a subset of the settings.

Run: python3 bench/bench_parallel.py   (after swift build -c release)
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
    ("dp=2", 2, []),
    ("tp=2", 2, ["parallel.tensor=2"]),
    ("tp=2 seq", 2, ["parallel.tensor=2", "parallel.sequence=true"]),
    ("pp=2", 2, ["parallel.pipeline=2"]),
    ("pp=2 gpipe", 2, ["parallel.pipeline=2", "parallel.schedule=\"gpipe\""]),
    ("tp2 pp2", 4, ["parallel.tensor=2", "parallel.pipeline=2"]),
    ("dp2 tp2", 4, ["parallel.tensor=2"]),
    ("dp2 pp2", 4, ["parallel.pipeline=2"]),
    ("dp2tp2pp2", 8, ["parallel.tensor=2", "parallel.pipeline=2", "parallel.zero_stage=1"]),
]
GROUPS = ["tp", "pp", "dp"]


def train(ranks, sets, steps, seq, preset):
    with tempfile.TemporaryDirectory() as d:
        argv = ([KUMO] if ranks == 1 else ["mpirun", "--oversubscribe", "-np", str(ranks), KUMO])
        argv += ["train", "--run-dir", d + "/run"]
        base = [f"model.preset={preset}", "data.synthetic=true", "train.threads=1", f"train.steps={steps}",
                f"train.seq_length={seq}", "train.micro_batch_size=1", "train.global_batch_size=8"]
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
    p.add_argument("--only", default="", help="comma-separated setting names")
    args = p.parse_args()
    only = set(filter(None, args.only.split(",")))
    print(f"{args.preset} preset, 1 thread per rank, global batch 8 x {args.seq} tokens in micro-batches of 1, "
          f"{args.steps} steps")
    print(f"{'setting':<10} {'ranks':>5} {'tokens/s':>9} {'bubble':>7} "
          + " ".join(f"{g + ' s/step':>10} {g + ' MiB/step':>12}" for g in GROUPS))
    for name, ranks, sets in SETTINGS:
        if only and name not in only:
            continue
        m = train(ranks, sets, args.steps, args.seq, args.preset)
        rate = statistics.median(x["tokens_per_s"] for x in m[2:])
        bubble = statistics.median(x.get("pipeline.bubble_fraction", 0) for x in m[2:])
        cols = " ".join(f"{per_step(m, g, '.seconds'):10.3f} {per_step(m, g, '.bytes') / 2**20:12.1f}" for g in GROUPS)
        print(f"{name:<10} {ranks:5d} {rate:9.0f} {bubble:7.2f} {cols}", flush=True)


if __name__ == "__main__":
    main()
