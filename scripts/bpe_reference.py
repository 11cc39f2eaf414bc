#!/usr/bin/env python3
"""Reference token ids of SmolLM2's byte-level BPE tokenizer for Kumo's parity test.

Texts come from ../shared/data (Japanese and English corpus samples, the ja-en instruction set,
JGLUE questions), plus hand-written whitespace, digit and contraction cases. The ids come from
llama.cpp (llama-cpp-python, vocab only, no BOS, special tokens not parsed) and, where they
differ, from transformers' tokenizer converted from the same GGUF file (it does not split digits
one by one and parses special tokens).

usage: python3 scripts/bpe_reference.py GGUF OUTPUT.json
"""
import gzip
import json
import os
import sys

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def texts():
    out = [
        "Hello world", " leading space", "trailing space ", "two  spaces", "tab\tand\nnew line\n\n",
        "  \n  indented", "I'm, you're, we've, they'll, he'd, it's, don't; I'M SHOUTING",
        "numbers 123 4567 3.14159 ２０２６年 ①②", "emoji 😀👍🏽 and symbols ©®™ → ∑", "",
        "<|im_start|>user\nnot parsed<|im_end|>", "日本語と English の混在 text、句読点。「括弧」",
        "combining e\u0301 and ﾊﾝｶｸ kana", "a\u00a0b\u3000c", "multiple\r\nline\rendings",
    ]
    def jsonl(path, field, limit):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i >= limit:
                    break
                value = json.loads(line)[field]
                out.append(value[:400])
    jsonl(os.path.join(SHARED, "corpus/ja/kyoto_wiki_ja.sample.jsonl"), "text", 60)
    jsonl(os.path.join(SHARED, "corpus/en/gutenberg_en.sample.jsonl"), "text", 30)
    jsonl(os.path.join(SHARED, "eval/jglue/jcommonsenseqa-v1.3/valid-v1.3.json"), "question", 60)
    jsonl(os.path.join(SHARED, "eval/jglue/jnli-v1.3/valid-v1.3.json"), "sentence1", 30)
    return out


def main():
    gguf_path, output = sys.argv[1], sys.argv[2]
    items = texts()
    from llama_cpp import Llama
    llm = Llama(model_path=gguf_path, vocab_only=True, verbose=False)
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(os.path.dirname(gguf_path), gguf_file=os.path.basename(gguf_path))
    records = []
    for text in items:
        llama_ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False) if text else []
        hf_ids = hf(text, add_special_tokens=False).input_ids
        record = {"text": text, "llama_cpp": llama_ids}
        if hf_ids != llama_ids:
            record["transformers"] = hf_ids
        records.append(record)
    with open(output, "w", encoding="utf-8") as f:
        json.dump({"model": os.path.basename(gguf_path), "texts": records}, f, ensure_ascii=False)
        f.write("\n")
    differ = sum("transformers" in r for r in records)
    print(f"{len(records)} texts; llama.cpp and transformers differ on {differ}")


if __name__ == "__main__":
    main()
