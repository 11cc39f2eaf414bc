#!/usr/bin/env python3
"""Compares `kumo eval` with transformers over JCommonsenseQA, question by question.

  bench/jcqa_agreement.py --reference REF.json --kumo PROMPTS.jsonl

REF.json comes from `scripts/eval_reference.py jcqa` (one line per question: label, then each
choice's log-likelihood); PROMPTS.jsonl from `kumo eval --tasks jcommonsenseqa --dump-prompts`
(Kumo's per-choice log-likelihoods in "kumo_loglikelihoods"). Prints both accuracies, the largest
per-choice difference and the number of questions whose acc or acc_norm pick differs.
"""
import argparse
import json


def picks(lls, choices):
    best = max(range(len(lls)), key=lambda i: lls[i])
    # acc_norm as lm-evaluation-harness: log-likelihood per character of the choice.
    best_norm = max(range(len(lls)), key=lambda i: lls[i] / len(choices[i]))
    return best, best_norm


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--kumo", required=True)
    args = ap.parse_args()
    with open(args.reference) as f:
        reference = json.load(f)
    with open(args.kumo) as f:
        kumo = [r for r in map(json.loads, f) if r["task"] == "jcommonsenseqa"]
    n = min(reference["n"], len(kumo))
    worst, differ, differ_norm = 0.0, 0, 0
    totals = {"kumo": [0, 0], "transformers": [0, 0]}
    for ref, k in zip(reference["questions"][:n], kumo[:n]):
        label, ref_lls, kumo_lls = ref[0], ref[1:], k["kumo_loglikelihoods"]
        assert label == k["label"], f"labels differ: {ref} vs {k['label']}"
        worst = max(worst, max(abs(a - b) for a, b in zip(ref_lls, kumo_lls)))
        mine, theirs = picks(kumo_lls, k["choices"]), picks(ref_lls, k["choices"])
        differ += mine[0] != theirs[0]
        differ_norm += mine[1] != theirs[1]
        for name, p in (("kumo", mine), ("transformers", theirs)):
            totals[name][0] += p[0] == label
            totals[name][1] += p[1] == label
    for name, (acc, acc_norm) in totals.items():
        print(f"{name:12s} acc {acc / n:.4f}  acc_norm {acc_norm / n:.4f}  ({n} questions)")
    print(f"largest per-choice log-likelihood difference {worst:.2e}; "
          f"picks that differ: acc {differ}, acc_norm {differ_norm}")


if __name__ == "__main__":
    main()
