#!/usr/bin/env python3
"""Side-by-side data preparation: `kumo data prepare` against Python sentencepiece + numpy.

Both read the same JSONL(.gz) corpus, encode each document with the same sentencepiece model,
append the end-of-document id and write a Megatron-format indexed dataset (.bin/.idx); both use
the same number of threads. Prints time, tokens/s and peak memory of each, and the ratio.

usage: python3 bench/bench_prepare.py --input FILE --tokenizer MODEL [--threads N] [--kumo PATH]
"""
import argparse
import gzip
import json
import os
import re
import resource
import struct
import subprocess
import sys
import tempfile
import time


def python_prepare(input_path, model, output, threads):
    """The peer: json + sentencepiece (batched, threaded encode) + numpy, Megatron's layout."""
    import numpy as np
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=model)
    eod = sp.piece_to_id("<EOD>")
    if sp.id_to_piece(eod) != "<EOD>":
        eod = sp.eos_id() if sp.eos_id() >= 0 else sp.unk_id()
    dtype = np.uint16 if sp.get_piece_size() <= 65536 else np.int32
    opener = gzip.open if input_path.endswith(".gz") else open
    lengths = []
    tokens = 0
    with opener(input_path, "rt", encoding="utf-8") as f, open(output + ".bin", "wb") as out:
        batch = []

        def flush():
            nonlocal tokens
            for ids in sp.encode(batch, num_threads=threads):
                ids.append(eod)
                out.write(np.asarray(ids, dtype=dtype).tobytes())
                lengths.append(len(ids))
                tokens += len(ids)
            batch.clear()

        for line in f:
            try:
                text = json.loads(line).get("text")
            except json.JSONDecodeError:
                continue
            if isinstance(text, str) and text.strip():
                batch.append(text)
            if len(batch) >= 512:
                flush()
        flush()
    lengths = np.asarray(lengths, dtype=np.int32)
    pointers = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1].astype(np.int64) * np.dtype(dtype).itemsize, out=pointers[1:])
    codes = {np.uint16: 8, np.int32: 4}
    with open(output + ".idx", "wb") as idx:
        idx.write(b"MMIDIDX\x00\x00")
        idx.write(struct.pack("<Q", 1))
        idx.write(struct.pack("<B", codes[dtype]))
        idx.write(struct.pack("<Q", len(lengths)))
        idx.write(struct.pack("<Q", len(lengths) + 1))
        idx.write(lengths.tobytes())
        idx.write(pointers.tobytes())
        idx.write(np.arange(len(lengths) + 1, dtype=np.int64).tobytes())
    return tokens


def run_child(command):
    """Runs a command, returning (seconds, stdout); each reports its own peak memory."""
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"{command[0]} failed:\n{done.stderr}")
    return seconds, done.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True)
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--kumo", default=".build/release/kumo")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import sentencepiece

        tokens = python_prepare(args.input, args.tokenizer, args.child, args.threads)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        version = getattr(sentencepiece, "__version__", "?")
        print(json.dumps({"tokens": tokens, "peak_mib": peak, "version": version}))
        return
    peers = [("python", sys.executable)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        kumo_s, kumo_out = run_child(
            [args.kumo, "data", "prepare", "--input", args.input, "--tokenizer", args.tokenizer,
             "--output", os.path.join(tmp, "kumo"), "--level", "L2", "--threads", str(args.threads)])
        meta = json.load(open(os.path.join(tmp, "kumo.meta.json")))
        kumo_peak = re.search(r"peak memory (\d+) MiB", kumo_out).group(1)
        rows.append(("kumo", kumo_s, meta["tokens"], kumo_peak, "sentencepiece " + library_version()))
        kumo_lengths = sequence_lengths(os.path.join(tmp, "kumo"))
        for name, python in peers:
            seconds, out = run_child(
                [python, __file__, "--input", args.input, "--tokenizer", args.tokenizer,
                 "--threads", str(args.threads), "--child", os.path.join(tmp, name)])
            result = json.loads(out)
            lengths = sequence_lengths(os.path.join(tmp, name))
            differing = sum(a != b for a, b in zip(kumo_lengths, lengths)) + abs(len(kumo_lengths) - len(lengths))
            rows.append((name, seconds, result["tokens"], f"{result['peak_mib']:.0f}",
                         f"sentencepiece {result['version']}, {differing} documents differ from kumo in length"))
    print(f"input: {args.input} ({os.path.getsize(args.input) / 1e6:.1f} MB), tokenizer: {args.tokenizer}, "
          f"threads: {args.threads}")
    print(f"{'':11} {'seconds':>8} {'tokens':>10} {'tokens/s':>10} {'peak MiB':>9}")
    for name, seconds, tokens, peak, note in rows:
        print(f"{name:11} {seconds:8.2f} {tokens:10d} {tokens / seconds:10.0f} {peak:>9}  {note}")
    for name, seconds, *_ in rows[1:]:
        print(f"speed ratio kumo / {name}: {seconds / kumo_s:.2f}x")


def library_version():
    """The version of the sentencepiece library Kumo links (built by scripts/build_sentencepiece.sh)."""
    path = os.path.join(os.path.dirname(__file__), "..", ".build", "sentencepiece", "VERSION")
    return open(path).read().strip() if os.path.exists(path) else "unknown"


def sequence_lengths(prefix):
    """Sequence lengths from a Megatron .idx file."""
    data = open(prefix + ".idx", "rb").read()
    count = struct.unpack("<Q", data[18:26])[0]
    return struct.unpack(f"<{count}i", data[34:34 + 4 * count])


if __name__ == "__main__":
    main()
