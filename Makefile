# Kumo: `make demo` trains and samples a small model; `make test` runs every test.
# Both install what is missing first (Debian packages, as root or through sudo) and build the
# sentencepiece library Kumo links (`make sentencepiece`).

SWIFT ?= swift
APT_PACKAGES := libopenblas-dev zlib1g-dev libopenmpi-dev openmpi-bin cmake libdnnl2 libsqlite3-dev postgresql chromium
# libdnnl2: oneDNN 2.6, loaded at run time (dlopen) for train.precision = "bf16" on CPUs with bf16 units.
# libsqlite3-dev: the run registry's embedded database (GRDB). postgresql: the tests start a throwaway
# server to check the team registry (KUMO_REGISTRY); chromium: the tests drive the dashboard headless.
DEMO_PACKAGES := debian-reference-ja debian-reference-en debian-faq debian-faq-ja
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
KUMO := .build/release/kumo
CORPUS ?=
DEMO_STEPS ?= 300

.PHONY: all deps pydeps demo-deps sentencepiece build test lint format demo bench bench-threads bench-prepare \
	bench-comm bench-generate clean

all: build

# Installs the Debian packages in $(1) that are not installed yet.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
endef

deps:
	$(call apt_install,$(APT_PACKAGES))

# Python peers the tests compare against: megatron-core's indexed-dataset reader and builder;
# transformers' LlamaForCausalLM for Hugging Face and GGUF interop (and SmolLM2's GGUF file).
PY_TEST_IMPORTS := torch, megatron.core, numpy, transformers, accelerate, gguf
PY_TEST_PACKAGES := torch==2.13.0+cpu megatron-core numpy transformers accelerate gguf
pydeps:
	@python3 -c "import $(PY_TEST_IMPORTS)" 2>/dev/null || \
		python3 -m pip install -q $(PY_TEST_PACKAGES)
	scripts/fetch_smollm2.sh

demo-deps:
	$(call apt_install,$(DEMO_PACKAGES))

# The sentencepiece library Kumo links (0.2.2, which encodes as PyPI's current 0.2.3 does; Debian's
# 0.1.97 does not, see README), built once from the source PyPI ships into .build/sentencepiece,
# with its spm_train for the tokenizer-training parity tests. JOBS=N compiles N files at a time (2).
sentencepiece: deps
	scripts/build_sentencepiece.sh .build/sentencepiece

build: deps sentencepiece
	$(SWIFT) build -c release

lint:
	$(SWIFT) format lint --strict --recursive Package.swift Sources Tests

format:
	$(SWIFT) format --in-place --recursive Package.swift Sources Tests

# Numeric tests run on a release build: debug builds are many times slower. `swift test` builds every
# target, the `kumo` binary the command-line tests run included, so no separate build precedes it.
test: deps pydeps lint sentencepiece
	$(SWIFT) test -c release -Xswiftc -enable-testing --disable-swift-testing

# Trains a sentencepiece tokenizer on Debian's Japanese and English documentation (or on
# CORPUS=file.jsonl[.gz]|dir), prepares the text as a Megatron-format dataset with it, then trains
# and samples a small model.
DEMO_DIR := demo-data/$(if $(CORPUS),custom,debian)
DEMO_INPUT := $(if $(CORPUS),$(CORPUS),demo-data/text)
DEMO_VOCAB ?= 4096
DEMO_LEVEL ?= L1

demo: deps build
ifeq ($(CORPUS),)
	$(call apt_install,$(DEMO_PACKAGES))
	scripts/demo-corpus.sh demo-data/text
endif
	mkdir -p $(DEMO_DIR)
	$(KUMO) tokenizer train --input $(DEMO_INPUT) --output $(DEMO_DIR)/tokenizer --vocab-size $(DEMO_VOCAB) --force
	$(KUMO) data prepare --input $(DEMO_INPUT) --tokenizer $(DEMO_DIR)/tokenizer.model --output $(DEMO_DIR)/corpus \
		--level $(DEMO_LEVEL) --force
	$(KUMO) train --config configs/demo.toml --set train.steps=$(DEMO_STEPS) --set model.vocab_size=$(DEMO_VOCAB) \
		--set 'data.sources=[{prefix = "$(DEMO_DIR)/corpus"}]' --run-dir runs/demo --overwrite
	@echo "The run is in the run registry: $(KUMO) runs list; browse it with $(KUMO) dashboard --port 8080 (http://127.0.0.1:8080)"

# Side-by-side training throughput against PyTorch eager (needs torch installed).
bench: build
	python3 bench/bench_train.py --config bench/configs/tiny.toml --threads 1
	python3 bench/bench_train.py --config bench/configs/small.toml --threads 1

# Kumo and PyTorch at 1 and 2 threads, with and without a busy neighbour core (needs torch, taskset).
bench-threads: build
	python3 bench/bench_threads.py --config bench/configs/small.toml --rounds 3

# Side-by-side data preparation of the 49 MB Japanese Wikipedia corpus against Python + PyPI's
# sentencepiece + numpy; needs ../shared/data.
BENCH_CORPUS ?= ../shared/data/corpus/ja/kyoto_wiki_ja.jsonl.gz
BENCH_TOKENIZER ?= ../shared/data/tokenizers/llm-jp/llm-jp-tokenizer-100k.ver3.0b1.model
bench-prepare: build
	@python3 -c "import sentencepiece, numpy" 2>/dev/null || python3 -m pip install -q sentencepiece numpy
	python3 bench/bench_prepare.py --input $(BENCH_CORPUS) --tokenizer $(BENCH_TOKENIZER)
# Collective bandwidth (Kumo vs plain Open MPI C calls, 2 ranks) and tokens/s on 1 vs 2 ranks.
bench-comm: build
	python3 bench/bench_comm.py

# Decode and prompt tokens/s of Kumo (fp32, int8) beside llama.cpp (F32, Q8_0) on SmolLM2-135M-Instruct.
bench-generate: build pydeps
	@python3 -c "import llama_cpp" 2>/dev/null || python3 -m pip install -q llama-cpp-python
	python3 bench/bench_generate.py --threads 1

clean:
	rm -rf .build runs demo-data
