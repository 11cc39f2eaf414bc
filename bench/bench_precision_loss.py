"""Loss curves of `train.precision = "fp32"` and `"bf16"` on real text, side by side.

Trains the same config (same seed, data and schedule) once per precision with `kumo train`,
both at once (each on its config's threads), reads each run's metrics.jsonl and compares the mean loss of the last 20 steps (issue 15's
goal: within 1.5%). Prints both curves every 10 steps and the relative difference.

Run: python3 bench/bench_precision_loss.py --config bench/configs/text_tiny.toml
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile


def start(kumo, config, precision, run_dir, extra):
    cmd = [kumo, "train", "--config", config, "--set", f"train.precision={precision}", "--run-dir", run_dir] + [
        a for s in extra for a in ("--set", s)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def losses(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r["loss"] for r in rows if "loss" in r]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--kumo", default=".build/release/kumo")
    ap.add_argument("--last", type=int, default=20, help="steps in the compared mean")
    ap.add_argument("--set", action="append", default=[], help="extra config overrides")
    ap.add_argument("--json-out", help="write both curves and the difference to this file")
    args = ap.parse_args()
    if not os.access(args.kumo, os.X_OK):
        sys.exit(f"error: {args.kumo} not found; build it with `swift build -c release`")
    with tempfile.TemporaryDirectory() as tmp:
        runs = {p: start(args.kumo, args.config, p, os.path.join(tmp, p), args.set) for p in ("fp32", "bf16")}
        for p, proc in runs.items():
            if proc.wait() != 0:
                sys.exit(f"error: kumo train with train.precision={p} failed")
        curves = {p: losses(os.path.join(tmp, p)) for p in runs}
    n = min(len(c) for c in curves.values())
    for s in list(range(0, n, 10)) + [n - 1]:
        print(f"step {s + 1:>4}: fp32 {curves['fp32'][s]:.4f}  bf16 {curves['bf16'][s]:.4f}")
    means = {p: sum(c[n - args.last:n]) / args.last for p, c in curves.items()}
    diff = abs(means["bf16"] - means["fp32"]) / means["fp32"]
    print(f"last-{args.last}-step mean loss: fp32 {means['fp32']:.4f}, bf16 {means['bf16']:.4f}, "
          f"relative difference {100 * diff:.2f}% ({'within' if diff <= 0.015 else 'beyond'} 1.5%)")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(dict(curves=curves, last_means=means, relative_difference=diff, config=args.config), f, indent=2)


if __name__ == "__main__":
    main()
