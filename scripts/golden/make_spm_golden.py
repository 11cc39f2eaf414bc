"""Reference ids of PyPI's sentencepiece for held-out corpus lines under LLM-jp-3's tokenizer.

Writes Tests/KumoDataTests/Golden/sentencepiece_heldout.jsonl: one {"source", "text", "ids"} per
line, encoded by the official sentencepiece package (SentencePieceProcessor.encode, default options,
no BOS/EOS) with ../shared/data/tokenizers/llm-jp/llm-jp-tokenizer-100k.ver3.0b1.model. The lines:
"10,000,000"; from each corpus file, 100 lines drawn with a fixed seed from its documents after the
first 40 (those the tokenizer-training tests read), and its first 20 lines there that write
a number with thousands separators ("22,000"), where sentencepiece 0.1.x and 0.2.x tie-break
differently between "0 00" and "00 0".

Run: python3 scripts/golden/make_spm_golden.py   (needs `pip install sentencepiece==0.2.3`)
"""

import gzip
import json
import os
import random
import re

import sentencepiece

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SHARED = os.path.join(ROOT, "..", "shared", "data")
MODEL = "llm-jp-tokenizer-100k.ver3.0b1.model"
CORPORA = ["corpus/ja/kyoto_wiki_ja.jsonl.gz", "corpus/en/kyoto_wiki_en.jsonl.gz", "corpus/en/gutenberg_en.jsonl.gz"]
OUT = os.path.join(ROOT, "Tests", "KumoDataTests", "Golden", "sentencepiece_heldout.jsonl")
SKIP_DOCUMENTS, SAMPLE, SEPARATED, MAX_CHARS = 40, 100, 20, 1000
THOUSANDS = re.compile(r"\d,\d{3}")


def held_out_lines(path):
    """(source, line) for the non-blank lines of the documents after the first SKIP_DOCUMENTS."""
    with gzip.open(os.path.join(SHARED, path), "rt", encoding="utf-8") as f:
        for doc, record in enumerate(f):
            if doc < SKIP_DOCUMENTS:
                continue
            for number, line in enumerate(json.loads(record)["text"].split("\n")):
                if line.strip() and len(line) <= MAX_CHARS:
                    yield f"{path} document {doc + 1} line {number + 1}", line


def main():
    assert sentencepiece.__version__.startswith("0.2."), sentencepiece.__version__
    processor = sentencepiece.SentencePieceProcessor(model_file=os.path.join(SHARED, "tokenizers/llm-jp", MODEL))
    chosen = [("the issue's example", "10,000,000")]
    for path in CORPORA:
        lines = list(held_out_lines(path))
        chosen += random.Random(path).sample(lines, SAMPLE)
        chosen += [(s, t) for s, t in lines if THOUSANDS.search(t)][:SEPARATED]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as out:
        for source, text in chosen:
            record = {"source": source, "text": text, "ids": processor.encode(text)}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{OUT}: {len(chosen)} lines, sentencepiece {sentencepiece.__version__}, {MODEL}")


if __name__ == "__main__":
    main()
