# infp: build, test and demo entry points.
#
#   make demo    install what is missing, build libinfp.so, run `python3 -m infp demo`
#   make test    install what is missing, build, run every test (Swift, C/C++, exports, Python,
#                the quickstart notebook at a tiny size)
#   make lib     release build of libinfp.so (static Swift runtime, only infp_* exported),
#                checked and copied to python/infp/libinfp.so
#   make bench   run the speed benchmarks under bench/
#   make sanitize the tests under AddressSanitizer (Swift and Python) and ThreadSanitizer
#   make quality detection quality per training recipe and score (bench/quality, over an hour)
#   make clean   remove build products
#
# Scratch folders: .build-release (release library), .build-abi (debug build and swift test),
# .build-bench (benchmarks), .build-examples (C/C++ consumers).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

SWIFT ?= swift
PYTHON ?= python3
CC ?= cc
CXX ?= c++

RELEASE_DIR := .build-release/release
LIB := $(RELEASE_DIR)/libinfp.so
PY_LIB := python/infp/libinfp.so
EXPORTS_MAP := $(CURDIR)/Sources/INFP/exports.map
EXAMPLES_DIR := .build-examples

# The shipped library carries the Swift runtime (stdlib, Foundation-free, Dispatch) statically,
# so it needs no Swift toolchain at run time, and exports only the infp_* C functions.
LIB_FLAGS := -c release --product infp --scratch-path .build-release \
             -Xswiftc -static-stdlib -Xswiftc -use-ld=lld -Xlinker --version-script=$(EXPORTS_MAP)
# lld (shipped with the Swift toolchain) drops the symbols the version script makes local from
# .dynsym altogether; gold kept ~20 of them (Swift type metadata) as LOCAL dynamic entries.

# swift test: debug build by default; SWIFT_TEST_FLAGS="-c release -Xswiftc -enable-testing"
# trades a longer build for faster tests.
SWIFT_TEST_FLAGS ?=
SWIFT_TEST := $(SWIFT) test --scratch-path .build-abi $(SWIFT_TEST_FLAGS)

SUDO := $(shell if [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null; then echo sudo; fi)
APT_PACKAGES := libopenblas-dev libfftw3-dev pkg-config python3-dev

.PHONY: help deps deps-system deps-python lib check-lib test test-swift test-examples \
        test-exports test-python test-notebook sanitize demo bench quality clean

help:
	@sed -n '3,11p' Makefile | sed 's/^# \{0,1\}//'

# ---- dependencies ---------------------------------------------------------------------------

deps: deps-system deps-python

# System libraries for the build (OpenBLAS, FFTW) and Python headers: installed only if missing.
deps-system:
	@missing=0; \
	pkg-config --exists openblas fftw3f 2>/dev/null || missing=1; \
	$(PYTHON) -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null || missing=1; \
	if [ $$missing = 1 ]; then \
	    echo "deps: installing $(APT_PACKAGES)"; \
	    $(SUDO) apt-get update -qq; \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

# Python packages for the bindings and their tests: installed only if not importable.
deps-python:
	@$(PYTHON) -c 'import numpy, pytest, PIL, scipy, sklearn, tqdm' 2>/dev/null || { \
	    echo "deps: pip install numpy pytest pillow scipy scikit-learn tqdm"; \
	    $(PYTHON) -m pip install -q --disable-pip-version-check numpy pytest pillow scipy scikit-learn tqdm; }
	@$(PYTHON) -c 'import nbclient, nbformat, ipykernel, matplotlib' 2>/dev/null || { \
	    echo "deps: pip install nbclient nbformat ipykernel matplotlib (notebook example)"; \
	    $(PYTHON) -m pip install -q --disable-pip-version-check nbclient nbformat ipykernel matplotlib; }
	@$(PYTHON) -c 'import av' 2>/dev/null || { \
	    echo "deps: pip install av (video files through FFmpeg)"; \
	    $(PYTHON) -m pip install -q --disable-pip-version-check av; }
	@# Ray is optional (infp.distributed): if it cannot be installed, its tests skip with the reason.
	@$(PYTHON) -c 'import ray' 2>/dev/null || { \
	    echo "deps: pip install ray (many lines over Ray; optional)"; \
	    $(PYTHON) -m pip install -q --disable-pip-version-check ray \
	        || echo "deps: warning: could not install ray; the infp.distributed tests will be skipped"; }

# ---- the library ----------------------------------------------------------------------------

lib: deps-system
	$(SWIFT) build $(LIB_FLAGS)
	@$(MAKE) --no-print-directory check-lib
	@cmp -s $(LIB) $(PY_LIB) || install -m 755 $(LIB) $(PY_LIB)
	@echo "lib: $(LIB) ($$(du -h $(LIB) | cut -f1)) -> $(PY_LIB)"

$(LIB):
	@$(MAKE) --no-print-directory lib

# The library must not need the Swift toolchain's shared libraries, and must export infp_*
# functions only (lower-case nm types are local symbols, invisible to users).
check-lib:
	@if ldd $(LIB) | grep -E 'libswift|libdispatch|libBlocksRuntime|libFoundation'; then \
	    echo "check-lib: $(LIB) depends on Swift toolchain libraries (above)" >&2; exit 1; fi
	@bad=$$(nm -D --defined-only $(LIB) | awk 'NF >= 3 && $$2 ~ /^[A-Z]$$/ && $$3 !~ /^infp_/ { print $$3 }'); \
	if [ -n "$$bad" ]; then echo "check-lib: $(LIB) exports non-infp_ symbols: $$bad" >&2; exit 1; fi

# ---- tests ----------------------------------------------------------------------------------

test: deps lib test-swift test-examples test-exports test-python test-notebook
	@echo "make test: all passed"

test-swift:
	$(SWIFT_TEST)

# C and C++ consumers of include/infp.h, linked against the release library (rpath) and run
# with a bare environment: no Swift toolchain on any library path.
$(EXAMPLES_DIR)/ops_demo_c: examples/c/ops_demo.c include/infp.h $(LIB)
	@mkdir -p $(EXAMPLES_DIR)
	$(CC) -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude $< -o $@ \
	    -L$(RELEASE_DIR) -linfp -lm -Wl,-rpath,$(CURDIR)/$(RELEASE_DIR)

$(EXAMPLES_DIR)/ops_demo_cpp: examples/cpp/ops_demo.cpp include/infp.h $(LIB)
	@mkdir -p $(EXAMPLES_DIR)
	$(CXX) -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude $< -o $@ \
	    -L$(RELEASE_DIR) -linfp -Wl,-rpath,$(CURDIR)/$(RELEASE_DIR)

$(EXAMPLES_DIR)/line_monitor_c: examples/c/line_monitor.c include/infp.h $(LIB)
	@mkdir -p $(EXAMPLES_DIR)
	$(CC) -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude $< -o $@ \
	    -L$(RELEASE_DIR) -linfp -lm -Wl,-rpath,$(CURDIR)/$(RELEASE_DIR)

$(EXAMPLES_DIR)/line_monitor_cpp: examples/cpp/line_monitor.cpp include/infp.h $(LIB)
	@mkdir -p $(EXAMPLES_DIR)
	$(CXX) -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude $< -o $@ \
	    -L$(RELEASE_DIR) -linfp -Wl,-rpath,$(CURDIR)/$(RELEASE_DIR)

# Data of the line monitors (a calibrated tiny checkpoint and a raw video with an anomaly),
# written by Python with the library under test.
LINE_DATA := $(EXAMPLES_DIR)/line
$(LINE_DATA)/line_video.infpraw: examples/make_example_data.py $(LIB)
	$(PYTHON) examples/make_example_data.py $(LINE_DATA)

# The monitors must exit 0 and report the anomaly as an alert.
test-examples: $(EXAMPLES_DIR)/ops_demo_c $(EXAMPLES_DIR)/ops_demo_cpp \
               $(EXAMPLES_DIR)/line_monitor_c $(EXAMPLES_DIR)/line_monitor_cpp $(LINE_DATA)/line_video.infpraw
	env -i PATH=/usr/bin:/bin $(EXAMPLES_DIR)/ops_demo_c
	env -i PATH=/usr/bin:/bin $(EXAMPLES_DIR)/ops_demo_cpp
	env -i PATH=/usr/bin:/bin $(EXAMPLES_DIR)/line_monitor_c $(LINE_DATA)/line_model.safetensors \
	    $(LINE_DATA)/line_video.infpraw | tee $(LINE_DATA)/c.out
	grep -q 'ALERT event 1 starts' $(LINE_DATA)/c.out
	env -i PATH=/usr/bin:/bin $(EXAMPLES_DIR)/line_monitor_cpp $(LINE_DATA)/line_model.safetensors \
	    $(LINE_DATA)/line_video.infpraw | tee $(LINE_DATA)/cpp.out
	grep -q 'ALERT event 1 starts' $(LINE_DATA)/cpp.out

test-exports:
	tools/check_exports.sh include/infp.h $(LIB)

test-python:
	cd python && $(PYTHON) -m pytest -q tests

# examples/notebooks/quickstart.ipynb, executed headless (nbclient) at a tiny size; the runner
# uses a kernel of this $(PYTHON) (no `ipykernel install` needed) and checks figures and AUC.
test-notebook:
	$(PYTHON) examples/notebooks/run_notebook.py

# ---- sanitizers -----------------------------------------------------------------------------

# AddressSanitizer over the Swift tests and over the Python tests (against an ASan debug build
# of libinfp.so, its runtime preloaded into Python; Python's own leaks are not ours to report),
# then ThreadSanitizer over the tests that run threads. About 10 minutes on 2 cores.
SWIFT_LIB_DIR := $(shell dirname $$(dirname $$(readlink -f $$(command -v $(SWIFT) || echo /opt/swift/usr/bin/swift))))/lib
ASAN_RUNTIME = $(firstword $(wildcard $(SWIFT_LIB_DIR)/clang/*/lib/linux/libclang_rt.asan-x86_64.so))
TSAN_TESTS := testThreadedElementwiseMatchesOneThread|testWeightedBasesThreaded|testThreadCountsAgree|\
              testLargerSizesAndConcurrentUse|testThreadedTransformsMatchOneThread|testBatchNormParallelMatchesSerial|\
              testParallelElementwiseMatchesSerial|testThreadCountIsAnUpperBound|testLastErrorIsPerThreadAndStable|\
              testConcurrentStreamsOnOneModel|testFitCallbackMayReadButNotChangeTheModel|StreamTests
sanitize: deps
	$(SWIFT) build --build-tests --sanitize=address --scratch-path .build-asan
	LSAN_OPTIONS=suppressions=$(CURDIR)/tools/sanitize/lsan.supp $(SWIFT) test --skip-build --sanitize=address --scratch-path .build-asan
	@test -n "$(ASAN_RUNTIME)" || { echo "sanitize: no libclang_rt.asan in $(SWIFT_LIB_DIR)" >&2; exit 1; }
	cd python && INFP_FUZZ_CASES=600 INFP_FUZZ_TIMEOUT=60 INFP_LIBRARY=$(CURDIR)/.build-asan/debug/libinfp.so LD_PRELOAD=$(ASAN_RUNTIME) \
	    ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:abort_on_error=1 $(PYTHON) -m pytest -q tests \
	    --ignore=tests/test_distributed.py  # Ray's own daemons would inherit the preloaded runtime
	$(SWIFT) build --build-tests --sanitize=thread --scratch-path .build-tsan
	TSAN_OPTIONS=halt_on_error=1 $(SWIFT) test --skip-build --sanitize=thread --scratch-path .build-tsan --filter '$(TSAN_TESTS)'
	@echo "make sanitize: clean (AddressSanitizer: Swift and Python tests; ThreadSanitizer: threaded tests)"

# ---- demo, benchmarks -----------------------------------------------------------------------

demo: deps lib
	cd python && $(PYTHON) -m infp demo

# Benchmarks: every executable target of Package.swift under bench/ (release build in its own
# scratch folder), then any bench/*.py or bench/*.sh script. Each prints JSON lines. Detection
# quality (bench/quality, over an hour of training) has its own target: make quality.
BENCH_ARGS ?=
bench: deps lib
	@found=0; \
	targets=$$($(SWIFT) package describe --type json 2>/dev/null | $(PYTHON) -c 'import json, sys; print(" ".join(t["name"] for t in json.load(sys.stdin)["targets"] if t["type"] == "executable" and t["path"].startswith("bench")))'); \
	for t in $$targets; do \
	    found=1; echo "bench: $$t" >&2; \
	    $(SWIFT) run -c release --scratch-path .build-bench $$t $(BENCH_ARGS); \
	done; \
	for f in bench/*.py bench/*.sh bench/*/*.py; do \
	    [ -f "$$f" ] || continue; case "$$f" in bench/quality/*) continue ;; esac; \
	    found=1; echo "bench: $$f" >&2; \
	    case "$$f" in *.py) $(PYTHON) "$$f" ;; *.sh) bash "$$f" ;; esac; \
	done; \
	[ $$found = 1 ] || echo "bench: no benchmarks under bench/ yet"

# Frame AUC per training recipe and anomaly score on the synthetic line -> docs/quality.md.
quality: deps lib
	$(PYTHON) bench/quality/quality_bench.py $(QUALITY_ARGS)

clean:
	rm -rf .build .build-release .build-abi .build-bench .build-asan .build-tsan $(EXAMPLES_DIR) $(PY_LIB) python/build python/*.egg-info
	find python -name __pycache__ -type d -prune -exec rm -rf {} +
