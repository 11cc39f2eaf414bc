# Kumo: `make demo` trains and samples a small model; `make test` runs every test.
# Both install what is missing first (Debian packages, as root or through sudo).

SWIFT ?= swift
APT_PACKAGES := libopenblas-dev libsentencepiece-dev zlib1g-dev libopenmpi-dev openmpi-bin
DEMO_PACKAGES := debian-reference-ja debian-reference-en debian-faq debian-faq-ja
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
KUMO := .build/release/kumo
CORPUS ?=
DEMO_STEPS ?= 300

.PHONY: all deps pydeps demo-deps build test lint format demo bench bench-comm clean

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

# Python peers the tests compare against: megatron-core's indexed-dataset reader and builder.
PY_TEST_IMPORTS := torch, megatron.core, numpy
PY_TEST_PACKAGES := torch==2.13.0+cpu megatron-core numpy
pydeps:
	@python3 -c "import $(PY_TEST_IMPORTS)" 2>/dev/null || \
		python3 -m pip install -q $(PY_TEST_PACKAGES)

demo-deps:
	$(call apt_install,$(DEMO_PACKAGES))

build: deps
	$(SWIFT) build -c release

lint:
	$(SWIFT) format lint --strict --recursive Package.swift Sources Tests

format:
	$(SWIFT) format --in-place --recursive Package.swift Sources Tests

# Numeric tests run on a release build: debug builds are many times slower.
test: deps pydeps lint
	$(SWIFT) build -c release
	$(SWIFT) test -c release -Xswiftc -enable-testing --disable-swift-testing

# Trains on Debian's Japanese and English documentation, or on CORPUS=file.jsonl|dir.
demo: deps build
ifeq ($(CORPUS),)
	$(call apt_install,$(DEMO_PACKAGES))
	scripts/demo-corpus.sh demo-data
	$(KUMO) train --config configs/demo.toml --set train.steps=$(DEMO_STEPS) --run-dir runs/demo
else
	$(KUMO) train --config configs/demo.toml --set train.steps=$(DEMO_STEPS) --set 'data.path=["$(CORPUS)"]' --run-dir runs/demo
endif

# Side-by-side training throughput against PyTorch eager (needs torch installed).
bench: build
	python3 bench/bench_train.py --config bench/configs/tiny.toml --threads 1
	python3 bench/bench_train.py --config bench/configs/small.toml --threads 1

# Collective bandwidth (Kumo vs plain Open MPI C calls, 2 ranks) and tokens/s on 1 vs 2 ranks.
bench-comm: build
	python3 bench/bench_comm.py

clean:
	rm -rf .build runs demo-data
