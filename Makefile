# Keel: the two commands are `make sim` (the main job) and `make test` (what CI runs).
# Every target first installs the missing Debian packages (scripts/deps.sh), then configures
# once and builds incrementally with Ninja. See README.md. Variables can be overridden:
# `make sim SEEDS=200`, `make fuzz FUZZ_SECONDS=10`, `make test JOBS=4`.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
# Ninja parallelises the builds; make itself runs one step at a time, in the order written.
.NOTPARALLEL:

JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo
BUILD_DIR ?= build
ASAN_DIR ?= build-asan
FUZZ_DIR ?= build-fuzz
GCC_CXX ?= g++
CLANG_CXX ?= clang++-14
SEEDS ?= 1000
SOAK_SEEDS ?= 100000
SOAK_RC_CASES ?= 100000
FUZZ_SECONDS ?= 60
# Per-test limit for tests that do not set their own TIMEOUT: a hang fails, not stalls CI.
CTEST_TIMEOUT ?= 1500

PYTHON ?= python3
KEEL := $(BUILD_DIR)/main/keel
CTEST_FLAGS := --output-on-failure --no-tests=error -j $(JOBS) --timeout $(CTEST_TIMEOUT)
# Sanitizer settings, and symbolized stack traces when llvm-14's symbolizer is installed
# (checked when the recipe runs: `make deps` may have just installed it).
SYMBOLIZER := /usr/lib/llvm-14/bin/llvm-symbolizer
SANITIZER_ENV := export ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1 \
                 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1; \
                 if [[ -x $(SYMBOLIZER) ]]; then \
                   export ASAN_SYMBOLIZER_PATH=$(SYMBOLIZER) UBSAN_SYMBOLIZER_PATH=$(SYMBOLIZER); fi;

.PHONY: help deps build sim test lint format-check ctest asan fuzz soak ci format clean

help:
	@echo "make sim     deps, build, run $(SEEDS) simulation seeds (keel sim --seeds $(SEEDS) --jobs $(JOBS))"
	@echo "make test    deps, lint, format check, build, ctest; then ctest again under"
	@echo "             clang-14 ASan+UBSan (what .ci/run runs)"
	@echo "make fuzz    clang-14 libFuzzer build; every fuzz target for $(FUZZ_SECONDS)s"
	@echo "make soak    the long runs: ctest -L soak and keel sim --seeds $(SOAK_SEEDS)"
	@echo "make ci      .ci/run on a fresh clone of HEAD (only what is committed)"
	@echo "make deps | build | lint | format-check | format | clean"

deps:
	@scripts/deps.sh

# Configure once; afterwards Ninja re-runs CMake by itself when a CMakeLists.txt changes.
$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DCMAKE_CXX_COMPILER=$(GCC_CXX)

$(ASAN_DIR)/build.ninja:
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DCMAKE_CXX_COMPILER=$(CLANG_CXX) -DKEEL_SANITIZE=ON

$(FUZZ_DIR)/build.ninja:
	cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DCMAKE_CXX_COMPILER=$(CLANG_CXX) -DKEEL_FUZZ=ON

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The main job: many seeded chaos scenarios; prints a verdict and a summary, and exits
# non-zero on any violation.
sim: build
	$(KEEL) sim --seeds $(SEEDS) --jobs $(JOBS)

# Cheap checks first, so CI fails in seconds on a lint or format error.
test: deps lint format-check build ctest asan
	@echo "make test: passed (lint, format, ctest with $(GCC_CXX), ctest with $(CLANG_CXX) ASan+UBSan)"

lint:
	$(PYTHON) scripts/lint_determinism.py src

format-check:
	@scripts/format.sh check

ctest: build
	ctest --test-dir $(BUILD_DIR) $(CTEST_FLAGS) -LE soak

# The same tests, built with clang-14 under AddressSanitizer and UndefinedBehaviorSanitizer.
asan: deps $(ASAN_DIR)/build.ninja
	cmake --build $(ASAN_DIR) -j $(JOBS)
	$(SANITIZER_ENV) ctest --test-dir $(ASAN_DIR) $(CTEST_FLAGS) -LE soak

# Builds only the fuzz targets (fuzz/<stem>.cc -> $(FUZZ_DIR)/fuzz/<stem>), then runs each.
fuzz: deps $(FUZZ_DIR)/build.ninja
	targets=$$(for f in fuzz/*_fuzz.cc; do [[ -e $$f ]] || continue; basename $$f .cc; done); \
	if [[ -n $$targets ]]; then cmake --build $(FUZZ_DIR) -j $(JOBS) --target $$targets; fi
	$(SANITIZER_ENV) FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ_DIR)

# The long runs. Register a long test with `LABELS soak` in tests/<dir>/tests.cmake: `make
# test` skips it, `make soak` runs it with KEEL_SOAK=1 and RC_PARAMS raising rapidcheck's case
# count (unless the test sets its own RC_PARAMS).
soak: build
	KEEL_SOAK=1 RC_PARAMS="max_success=$(SOAK_RC_CASES)" \
	  ctest --test-dir $(BUILD_DIR) --output-on-failure --no-tests=ignore -j $(JOBS) -L soak
	$(KEEL) sim --seeds $(SOAK_SEEDS) --jobs $(JOBS)

# CI on exactly what is committed: a fresh clone of HEAD in build-ci-clone/, then .ci/run.
ci:
	scripts/ci_local.sh

format:
	@scripts/format.sh fix

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(FUZZ_DIR) build-ci-clone
