#!/usr/bin/env python3
"""Independent reference for `kumo eval`: transformers in fp32 over a GGUF model.

Reads the prompts Kumo wrote with `kumo eval --dump-prompts FILE` (JSON lines), tokenizes them with
the tokenizer transformers builds from the same GGUF file, and scores them with transformers'
LlamaForCausalLM (weights dequantized to float32, eager attention).

  choices    --gguf FILE --prompts FILE [--task jcommonsenseqa] [--limit N] [--out FILE.json]
      Per-choice log-likelihoods (context tokens then choice tokens, each tokenized on its own,
      no special tokens), acc (argmax) and acc_norm (argmax of log-likelihood / len(choice) in
      characters, as lm-evaluation-harness).
  jcqa       --gguf FILE --data-dir JGLUE [--limit N] [--out FILE.json]
      The same scores over JCommonsenseQA v1.3's validation split, with the prompts built here from
      the published file by Kumo's zero-shot template (docs/eval.md). The context runs through the
      model once and each choice continues from its key/value cache. The output holds one line per
      question: [label, log-likelihood of each choice (6 decimals)]; it is rewritten every 50
      questions, so an interrupted run leaves the scores of the questions done.
  perplexity --gguf FILE --prompts FILE
      Perplexity and bits per byte over the record with task "perplexity": the texts, each after
      the separator token, scored in the same windows (context length, stride) as Kumo.
  responses  --gguf FILE --prompts FILE [--limit N] [--out FILE.json]
      Log-likelihoods of responses after their prompts, over the objects `kumo eval --tasks sft_loss`
      ({"prompt", "response"}) or `--tasks preference` ({"prompt", "chosen", "rejected"}) dumps:
      prompt and response tokenized each on its own, the tokenizer's EOS after the response, the
      response tokens and EOS scored. Writes each object with "logp" (sft) or "chosen_logp" and
      "rejected_logp" (preference) added, and the SFT loss (mean NLL per response token) and the
      preference accuracy (chosen above rejected).
"""
import argparse
import copy
import json
import math
import os
import sys

import torch


def load(gguf):
    """The model in fp32 and its tokenizer. transformers builds a GGUF's byte-level BPE
    pre-tokenizer as plain GPT-2; for tokenizer.ggml.pre = smollm (SmolLM2) the digits are first
    split one by one, as in the model's published tokenizer.json and in llama.cpp, so that is
    restored here (it decides, e.g., whether the two spaces in "?  3" are one token or two)."""
    import gguf as gguf_reader
    from tokenizers import pre_tokenizers
    from transformers import AutoModelForCausalLM, AutoTokenizer
    directory, name = os.path.split(os.path.abspath(gguf))
    model = AutoModelForCausalLM.from_pretrained(
        directory, gguf_file=name, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    field = gguf_reader.GGUFReader(gguf).fields.get("tokenizer.ggml.pre")
    if field is not None and bytes(field.parts[field.data[0]]).decode() == "smollm":
        tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    return model, tokenizer


def encode(tokenizer, text):
    return tokenizer(text, add_special_tokens=False).input_ids


def records(path, task):
    with open(path, encoding="utf-8") as f:
        return [r for r in map(json.loads, f) if r["task"] == task]


@torch.no_grad()
def continuation_logliks(model, rows):
    """rows: (context ids, continuation ids); sum of log-softmax (float64) of each continuation."""
    length = max(len(c) + len(x) for c, x in rows)
    ids = torch.zeros((len(rows), length), dtype=torch.long)
    for i, (c, x) in enumerate(rows):
        ids[i, :len(c) + len(x)] = torch.tensor(c + x)
    logp = torch.log_softmax(model(ids).logits.double(), dim=-1)
    out = []
    for i, (c, x) in enumerate(rows):
        positions = torch.arange(len(c) - 1, len(c) + len(x) - 1)
        out.append(logp[i, positions, torch.tensor(x)].sum().item())
    return out


@torch.no_grad()
def shared_context_logliks(model, context, continuations):
    """Sum of log-softmax (float64) of each continuation after `context`, which runs once."""
    out = model(torch.tensor([context]), use_cache=True)
    first = torch.log_softmax(out.logits[0, -1].double(), dim=-1)
    result = []
    for x in continuations:
        ll = first[x[0]].item()
        if len(x) > 1:
            rest = model(torch.tensor([x[:-1]]), past_key_values=copy.deepcopy(out.past_key_values))
            logp = torch.log_softmax(rest.logits[0].double(), dim=-1)
            ll += logp[torch.arange(len(x) - 1), torch.tensor(x[1:])].sum().item()
        result.append(ll)
    return result


def jcqa_prompts(data_dir):
    """Kumo's zero-shot JCommonsenseQA prompts (template 0.1) over the validation split."""
    path = os.path.join(data_dir, "jcommonsenseqa-v1.3", "valid-v1.3.json")
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    docs = []
    for r in rows:
        choices = [r[f"choice{i}"] for i in range(5)]
        context = f"質問：{r['question']}\n選択肢：{'、'.join(choices)}\n回答："
        docs.append({"context": context, "choices": choices, "label": r["label"]})
    return docs


def accuracy(lls, choices, label):
    """(acc hit, acc_norm hit) of one question; ties go to the first choice."""
    best = max(range(len(lls)), key=lambda i: (lls[i], -i))
    normed = [ll / len(c) for ll, c in zip(lls, choices)]
    best_norm = max(range(len(lls)), key=lambda i: (normed[i], -i))
    return best == label, best_norm == label


def write_jcqa(path, head, lines):
    with open(path + ".tmp", "w") as f:
        f.write("{" + json.dumps(head)[1:-1] + ', "questions": [\n' + ",\n".join(lines) + "\n]}\n")
    os.replace(path + ".tmp", path)


def jcqa_command(args):
    model, tokenizer = load(args.gguf)
    docs = jcqa_prompts(args.data_dir)[: args.limit]
    lines, acc, acc_norm = [], 0, 0
    for n, doc in enumerate(docs):
        lls = shared_context_logliks(
            model, encode(tokenizer, doc["context"]), [encode(tokenizer, c) for c in doc["choices"]])
        hit, hit_norm = accuracy(lls, doc["choices"], doc["label"])
        acc += hit
        acc_norm += hit_norm
        lines.append(json.dumps([doc["label"]] + [round(x, 6) for x in lls]))
        head = {"task": "jcommonsenseqa", "template": "0.1", "n": n + 1, "acc": acc / (n + 1),
                "acc_norm": acc_norm / (n + 1)}
        # Rewritten every 50 questions, so an interrupted run leaves a usable file for its first n.
        if args.out and ((n + 1) % 50 == 0 or n + 1 == len(docs)):
            write_jcqa(args.out, head, lines)
            print(f"{n + 1}/{len(docs)}", file=sys.stderr, flush=True)
    print(json.dumps(head))


def choices_command(args):
    model, tokenizer = load(args.gguf)
    docs = records(args.prompts, args.task)[: args.limit]
    questions, acc, acc_norm = [], 0, 0
    for n, doc in enumerate(docs):
        context = encode(tokenizer, doc["context"])
        lls = continuation_logliks(model, [(context, encode(tokenizer, c)) for c in doc["choices"]])
        best = max(range(len(lls)), key=lambda i: (lls[i], -i))
        normed = [ll / len(c) for ll, c in zip(lls, doc["choices"])]
        best_norm = max(range(len(lls)), key=lambda i: (normed[i], -i))
        acc += best == doc["label"]
        acc_norm += best_norm == doc["label"]
        questions.append({"loglikelihoods": lls, "label": doc["label"]})
        if (n + 1) % 50 == 0:
            print(f"{n + 1}/{len(docs)}", file=sys.stderr)
    result = {"task": args.task, "questions": questions, "acc": acc / len(docs), "acc_norm": acc_norm / len(docs)}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    print(json.dumps({"n": len(docs), "acc": result["acc"], "acc_norm": result["acc_norm"]}))


def perplexity_command(args):
    model, tokenizer = load(args.gguf)
    (doc,) = records(args.prompts, "perplexity")
    tokens = []
    for text in doc["texts"]:
        tokens += [doc["separator"]] + encode(tokenizer, text)
    context, stride = doc["context_length"], doc["stride"]
    total, scored, begin, scored_to = 0.0, 0, 0, 0
    while scored_to < len(tokens):
        end = min(begin + context, len(tokens))
        start = max(scored_to, begin + 1)
        if start < end:
            total += continuation_logliks(model, [(tokens[begin:start], tokens[start:end])])[0]
            scored += end - start
        scored_to = end
        begin += stride
    nbytes = sum(len(t.encode("utf-8")) for t in doc["texts"])
    print(json.dumps({
        "tokens": len(tokens), "kumo_tokens": doc["kumo_tokens"], "loglikelihood": total,
        "perplexity": math.exp(-total / scored), "bits_per_byte": -total / (math.log(2) * nbytes),
        "kumo_perplexity": math.exp(-doc["kumo_loglikelihood"] / scored)}))


def responses_command(args):
    model, tokenizer = load(args.gguf)
    eos = tokenizer.eos_token_id
    with open(args.prompts, encoding="utf-8") as f:
        docs = [json.loads(line) for line in f if line.strip()][: args.limit]
    nll, tokens, wins = 0.0, 0, 0
    for doc in docs:
        context = encode(tokenizer, doc["prompt"])
        keys = ["response"] if "response" in doc else ["chosen", "rejected"]
        rows = [(context, encode(tokenizer, doc[k]) + [eos]) for k in keys]
        lls = continuation_logliks(model, rows)
        if len(keys) == 1:
            doc["logp"] = lls[0]
            nll -= lls[0]
            tokens += len(rows[0][1])
        else:
            doc["chosen_logp"], doc["rejected_logp"] = lls
            wins += lls[0] > lls[1]
    summary = {"n": len(docs), "eos_id": eos}
    if tokens:
        summary.update(loss=nll / tokens, tokens=tokens)
    else:
        summary.update(accuracy=wins / len(docs))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"summary": summary, "examples": docs}, f, indent=1, ensure_ascii=False)
    print(json.dumps(summary))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(required=True)
    c = sub.add_parser("choices")
    c.add_argument("--gguf", required=True)
    c.add_argument("--prompts", required=True)
    c.add_argument("--task", default="jcommonsenseqa")
    c.add_argument("--limit", type=int)
    c.add_argument("--out")
    c.set_defaults(func=choices_command)
    j = sub.add_parser("jcqa")
    j.add_argument("--gguf", required=True)
    j.add_argument("--data-dir", required=True)
    j.add_argument("--limit", type=int)
    j.add_argument("--out")
    j.set_defaults(func=jcqa_command)
    q = sub.add_parser("perplexity")
    q.add_argument("--gguf", required=True)
    q.add_argument("--prompts", required=True)
    q.set_defaults(func=perplexity_command)
    r = sub.add_parser("responses")
    r.add_argument("--gguf", required=True)
    r.add_argument("--prompts", required=True)
    r.add_argument("--limit", type=int)
    r.add_argument("--out")
    r.set_defaults(func=responses_command)
    args = p.parse_args()
    torch.set_num_threads(1)
    args.func(args)


if __name__ == "__main__":
    main()
