"""Collective bandwidth of Kumo's MPICommunicator next to plain Open MPI C calls, and training
throughput on 1 vs 2 ranks, in one run.

Compiles bench/comm_peer.c with mpicc, then alternates `mpirun -np 2 kumo bench comm` and
`mpirun -np 2 comm_peer` for --rounds rounds (median per op and size), and prints all-reduce
(blocking and non-blocking) and all-gather bus bandwidth (nccl-tests convention: all-reduce
size/time x 2(n-1)/n, all-gather total/time x (n-1)/n) for 1-64 MiB with the Kumo / Open MPI
ratio. Then times `kumo bench train` on the tiny config: 1 rank x 1 thread, 1 rank x 2 threads
and 2 ranks x 1 thread (same global batch), alternating rounds, median tokens/s.

Run: python3 bench/bench_comm.py   (after swift build -c release; make bench-comm does both)
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile

KUMO = ".build/release/kumo"
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def mpirun(ranks, argv):
    cmd = ["mpirun", "--oversubscribe", "-np", str(ranks)] + argv
    out = subprocess.run(cmd, env=ENV, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def bandwidth(args, peer):
    samples = {}
    for _ in range(args.rounds):
        runs = [
            mpirun(2, [KUMO, "bench", "comm", "--min-mib", "1", "--max-mib", str(args.max_mib),
                       "--iterations", str(args.iterations)]),
            mpirun(2, [peer, "1", str(args.max_mib), str(args.iterations)]),
        ]
        for rows in runs:
            for r in rows:
                samples.setdefault((r["op"], r["bytes"], r["impl"]), []).append(r["busbw_gbps"])
    print("\nBus bandwidth, 2 ranks, GB/s (median of %d rounds)\n" % args.rounds)
    print("| op | size | Kumo MPICommunicator | Open MPI C | Kumo / Open MPI |")
    print("|---|---|---|---|---|")
    for op in ["allreduce", "allreduce_nonblocking", "allgather"]:
        for size in sorted({b for (o, b, _) in samples if o == op}):
            k = statistics.median(samples[(op, size, "kumo")])
            o = statistics.median(samples[(op, size, "openmpi")])
            print(f"| {op} | {size >> 20} MiB | {k:.2f} | {o:.2f} | {k / o:.2f} |")


def throughput(args):
    base = [KUMO, "bench", "train", "--config", args.config, "--steps", str(args.steps), "--json"]
    variants = [
        ("1 rank x 1 thread", 1, ["--set", "train.threads=1"]),
        ("1 rank x 2 threads", 1, ["--set", "train.threads=2"]),
        # Half of the global batch per rank: the same samples per step in total.
        ("2 ranks x 1 thread", 2, ["--set", "train.threads=1", "--set", "train.micro_batch_size=4"]),
    ]
    tps = {name: [] for name, _, _ in variants}
    for _ in range(args.rounds):
        for name, ranks, extra in variants:
            if ranks == 1:
                out = subprocess.run(base + extra, check=True, capture_output=True, text=True).stdout
                tps[name].append(json.loads(out)["tokens_per_s"])
            else:
                tps[name].append(mpirun(ranks, base + extra)[0]["tokens_per_s"])
    print(f"\nTraining throughput, {args.config}, same global batch (median of {args.rounds} rounds)\n")
    print("| layout | tokens/s | vs 1 rank x 1 thread |")
    print("|---|---|---|")
    one = statistics.median(tps[variants[0][0]])
    for name, _, _ in variants:
        t = statistics.median(tps[name])
        print(f"| {name} | {t:.0f} | {t / one:.2f}x |")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--max-mib", type=int, default=64)
    p.add_argument("--config", default="bench/configs/tiny.toml")
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        peer = os.path.join(tmp, "comm_peer")
        subprocess.run(["mpicc", "-O2", "-o", peer, "bench/comm_peer.c"], check=True)
        bandwidth(args, peer)
    throughput(args)


if __name__ == "__main__":
    main()
