# The commands of README.md. Every target that builds first runs
# scripts/setup.sh, which installs what is missing (and does nothing when
# everything is there), then configures and builds the tree it needs:
#
#   build/           the normal build (make, make demo, make check)
#   build-asan/      AddressSanitizer + UndefinedBehaviorSanitizer
#   build-tsan/      ThreadSanitizer
#   build-valgrind/  task stacks registered with Valgrind, tests run under it
#   build-bench/     optimised, with the benchmarks
#   build-cov/       the normal build with gcov counters (make coverage)
#   build-perf/      optimised, the callgrind benchmarks (make perf-check)
#   build-aarch64/   cross-built for AArch64, tests run under qemu-aarch64
#   build-aarch64-core/  the same, the runtime and its core tests only
#   build-windows/   cross-built for Windows x86-64 (mingw-w64), tests under Wine
#
# `make test` runs what CI runs: lint-quick, the suite in build-cov/ (with
# the coverage floors), in build-asan/ and (the concurrency tests) in
# build-tsan/, perf-check, then the core tests built for Windows (under
# Wine) and for AArch64 (under qemu).

SHELL := /bin/bash

JOBS ?= 2
CMAKE ?= cmake
CTEST ?= ctest
PREFIX ?= /usr/local
BUILD_TYPE ?= RelWithDebInfo
# Extra arguments: CMAKE_ARGS="-DWEFT_WERROR=ON", CTEST_ARGS="-R scope".
CMAKE_ARGS ?=
CTEST_ARGS ?=

# The tour uses Debian's python3 (its WebSocket client is python3-websockets).
TOUR_PYTHON := $(firstword $(wildcard /usr/bin/python3) python3)

CTEST_FLAGS = --output-on-failure --no-tests=error --timeout 300 -j$(JOBS) $(CTEST_ARGS)

# Sanitizer runtime options: report everything with a stack trace, stop at
# the first error.
ASAN_OPTIONS ?= detect_leaks=1:strict_string_checks=1:check_initialization_order=1
UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
TSAN_OPTIONS ?= halt_on_error=1:second_deadlock_stack=1
export ASAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS

# $(call build_tree,DIR,CMAKE OPTIONS): configures (again, which is quick)
# and builds DIR.
define build_tree
	$(CMAKE) -S . -B $(1) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(2) $(CMAKE_ARGS)
	$(CMAKE) --build $(1) -j$(JOBS)
endef

# $(call run_tests,DIR): runs every test of DIR.
define run_tests
	cd $(1) && $(CTEST) $(CTEST_FLAGS)
endef

.PHONY: all help setup build demo test check asan tsan tsan-concurrency valgrind bench \
        install clean format format-check docs lint lint-quick fuzz coverage perf-check perf-baseline soak \
        test-windows test-windows-apps test-windows-core test-aarch64 test-aarch64-core

all: build

help:
	@echo "make targets (JOBS=$(JOBS); CMAKE_ARGS=..., CTEST_ARGS=\"-R name\" pass through):"
	@echo "  make / make build    build the normal tree in build/"
	@echo "  make demo            build, then the runtime demo and the tour of the applications"
	@echo "  make check           build/, then run its tests"
	@echo "  make asan            build-asan/ (AddressSanitizer + UBSan) and its tests"
	@echo "  make tsan            build-tsan/ (ThreadSanitizer) and every test"
	@echo "  make tsan-concurrency  build-tsan/ without the applications; the"
	@echo "                       tests of what crosses executors"
	@echo "  make test            lint-quick, coverage (the check tests, instrumented), asan,"
	@echo "                       tsan-concurrency, perf-check, test-windows-core and"
	@echo "                       test-aarch64-core, as CI runs them"
	@echo "  make valgrind        build-valgrind/ and its tests under Valgrind"
	@echo "  make test-windows    cross build for Windows x86-64 (mingw-w64) in build-windows/,"
	@echo "                       its tests and those of echo_server and web_framework under Wine"
	@echo "                       (test-windows-apps: the applications only; test-windows-core:"
	@echo "                       the short form CI runs)"
	@echo "  make test-aarch64    build-aarch64/: everything cross-built for AArch64, the"
	@echo "                       whole suite under qemu-aarch64 (docs/PORTING.md)"
	@echo "  make test-aarch64-core  the runtime and its core tests under qemu (CI)"
	@echo "  make fuzz            build-fuzz/ (clang, libFuzzer, ASan+UBSan): each fuzz"
	@echo "                       target for FUZZ_SECONDS (default 60) from its seeds"
	@echo "  make bench           the benchmarks against their peers (build-bench/)"
	@echo "  make install         install build/ under PREFIX=$(PREFIX)"
	@echo "  make format          clang-format the sources"
	@echo "  make format-check    fail when a source differs from .clang-format's layout (CI)"
	@echo "  make docs            the API reference (Doxygen; fails on an undocumented function)"
	@echo "  make lint            clang-tidy and cppcheck; a finding fails it (LINT_STRICT=0:"
	@echo "                       report only)"
	@echo "  make lint-quick      the same without clang-tidy's clang-analyzer checks (CI)"
	@echo "  make coverage        build-cov/ (gcov), its tests, then gcovr: HTML report and"
	@echo "                       summary; fails under the floors of lines covered"
	@echo "  make perf-check      instruction counts of the core and channel benchmarks"
	@echo "                       (callgrind) against bench/baseline.json: +3 % fails"
	@echo "  make perf-baseline   rewrite bench/baseline.json (commit it with the reason)"
	@echo "  make soak            echo_server, web_framework, chat_server under load for"
	@echo "                       SOAK_SECONDS each (default 600): RSS and fds must stay flat"
	@echo "  make clean           remove every build tree"
	@echo "  make setup           install what is missing (scripts/setup.sh)"
	@echo "Each application is build/apps/NAME/NAME; NAME --help lists its options."

setup:
	@bash scripts/setup.sh

build: setup
	$(call build_tree,build,)

# The runtime demo, then the tour of the applications working together
# (examples/tour.py; about a minute).
demo: build
	$(TOUR_PYTHON) examples/tour.py --build build

# The normal build, then the sanitizer builds, one after the other: all
# must pass. ThreadSanitizer runs the tests of what crosses executors.
TSAN_TESTS = test_chan|test_select|test_executors|test_pool|test_sync|test_stream|test_actor|test_metrics|test_sqlite|test_redis
# The normal run is make coverage: the check tests in one instrumented
# build, with the coverage floors. Each phase prints how long it took.
TEST_PHASES = lint-quick coverage asan tsan-concurrency perf-check test-windows-core \
              test-aarch64-core
test:
	@set -e; for t in $(TEST_PHASES); do \
	  start=$$(date +%s); $(MAKE) --no-print-directory $$t; \
	  echo "== make $$t: $$(( $$(date +%s) - start )) s"; \
	done

check: build
	$(call run_tests,build)

asan: setup
	$(call build_tree,build-asan,-DWEFT_SANITIZE="address;undefined")
	$(call run_tests,build-asan)

# The libFuzzer targets (cmake/weftFuzz.cmake), built with clang under
# ASan+UBSan in build-fuzz/, each run for FUZZ_SECONDS from its seed corpus.
# New inputs go to build-fuzz/fuzz/NAME.work/, never into the tree; a crash
# leaves its input as build-fuzz/fuzz/NAME-crash-* and fails the target.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_CXX ?= clang++
fuzz: setup
	CC=$(FUZZ_CC) CXX=$(FUZZ_CXX) $(CMAKE) -S . -B build-fuzz -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DWEFT_FUZZ=ON -DWEFT_SANITIZE="address;undefined" $(CMAKE_ARGS)
	$(CMAKE) --build build-fuzz -j$(JOBS) --target weft_fuzz_all
	@set -e; for c in build-fuzz/fuzz/*.corpus; do \
	  name=$${c%.corpus}; mkdir -p $$name.work; \
	  echo "== $$(basename $$name) for $(FUZZ_SECONDS) s"; \
	  $$name -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -close_fd_mask=2 -print_final_stats=1 -artifact_prefix=$$name- $$name.work "$$(cat $$c)"; \
	done

tsan: setup
	$(call build_tree,build-tsan,-DWEFT_SANITIZE=thread)
	$(call run_tests,build-tsan)

# The tests of channels, executors and everything shared between threads,
# under ThreadSanitizer (the applications are left out of this build).
tsan-concurrency: setup
	$(call build_tree,build-tsan,-DWEFT_SANITIZE=thread -DWEFT_BUILD_APPS=OFF -DWEFT_BUILD_EXAMPLES=OFF)
	cd build-tsan && $(CTEST) $(CTEST_FLAGS) -R '$(TSAN_TESTS)'

valgrind: setup
	$(call build_tree,build-valgrind,-DWEFT_VALGRIND=ON)
	$(call run_tests,build-valgrind)

# Each bench/run_*.sh and bench/*/run.sh builds what it needs in
# build-bench/ and compares weft with its peers; without such a script every
# benchmark program just runs.
BENCH_SCRIPTS = $(wildcard bench/run_*.sh bench/*/run.sh)
bench:
	@bash scripts/setup.sh --bench
ifneq ($(BENCH_SCRIPTS),)
	set -e; for s in $(BENCH_SCRIPTS); do WEFT_BENCH_BUILD=$(CURDIR)/build-bench bash $$s; done
else
	$(call build_tree,build-bench,-DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_BENCH=ON -DWEFT_BUILD_TESTS=OFF)
	$(CMAKE) --build build-bench --target run_bench
endif

install: build
	$(CMAKE) --install build --prefix $(PREFIX)

clean:
	rm -rf build build-asan build-fuzz build-tsan build-valgrind build-bench build-docs build-lint
	rm -rf build-cov build-perf build-soak
	rm -rf build-windows
	rm -rf build-aarch64 build-aarch64-core

# The API reference of the public headers (Doxygen, Debian doxygen) in
# build-docs/html/; a public function without a comment fails it
# (scripts/api-docs, docs/Doxyfile).
docs:
	bash scripts/api-docs build-docs

# clang-tidy (.clang-tidy) and cppcheck over the C sources, with a report
# per file and per check in build-lint/lint-report.txt. A finding fails it
# (LINT_STRICT=0: report only). False positives are suppressed where they
# are, with the reason: NOLINT(check) or cppcheck-suppress comments, and
# scripts/cppcheck-suppressions.txt.
LINT_STRICT ?= 1
lint:
	@bash scripts/setup.sh --lint
	JOBS=$(JOBS) LINT_STRICT=$(LINT_STRICT) bash scripts/lint build-lint

# The same without clang-tidy's clang-analyzer checks, which take over 90 %
# of its time (about 10 s of CPU a file): what CI runs.
lint-quick:
	@bash scripts/setup.sh --lint
	JOBS=$(JOBS) LINT_STRICT=$(LINT_STRICT) LINT_ANALYZER=0 bash scripts/lint build-lint

FORMAT_DIRS = runtime tests examples apps bench
FORMAT_FILES = git ls-files -z -- $(foreach d,$(FORMAT_DIRS),'$(d)/*.c' '$(d)/*.h' '$(d)/*.cpp' '$(d)/*.hpp')
format:
	@command -v clang-format >/dev/null || \
	  { echo "clang-format is missing (Debian/Ubuntu: apt-get install clang-format)"; exit 1; }
	$(FORMAT_FILES) | xargs -0 -r clang-format -i

# Every tracked C and C++ source as .clang-format lays it out (clang-format
# 14, Debian's): a difference fails, with the lines that differ.
format-check:
	@bash scripts/setup.sh --lint
	@$(FORMAT_FILES) | xargs -0 -r clang-format --dry-run --Werror
	@echo "format-check: $$($(FORMAT_FILES) | tr -cd '\0' | wc -c) files as clang-format lays them out"

# The instruction counts of bench/core_ops.c and bench/chan_ops.c under
# callgrind against bench/baseline.json: a rise of more than 3 % in any case
# fails (scripts/perf-check). The baseline moves only with make
# perf-baseline, in a commit of its own that says why.
perf-check: setup
	JOBS=$(JOBS) bash scripts/perf-check build-perf

perf-baseline: setup
	JOBS=$(JOBS) bash scripts/perf-check --update build-perf

# The normal test run in build-cov/, every target instrumented for gcov at
# the build type's own optimisation level, then gcovr (scripts/coverage):
# build-cov/coverage/index.html and a summary per directory. Under the
# floors of lines covered it fails. make test (CI) runs this in place of
# check: the same tests, one build.
COV_RUNTIME_MIN ?= 90
COV_APPS_MIN ?= 80
coverage: setup
	$(call build_tree,build-cov,-DWEFT_COVERAGE=ON)
	find build-cov -name '*.gcda' -delete
	$(call run_tests,build-cov)
	JOBS=$(JOBS) COV_RUNTIME_MIN=$(COV_RUNTIME_MIN) COV_APPS_MIN=$(COV_APPS_MIN) \
	  bash scripts/coverage build-cov

# echo_server, web_framework and chat_server under steady load for
# SOAK_SECONDS each (default 600): resident memory and open descriptors
# must be flat after warm-up; the plot goes to docs/img/soak.png
# (scripts/soak). Not part of make test.
SOAK_SECONDS ?= 600
soak:
	@bash scripts/setup.sh --soak
	SOAK_SECONDS=$(SOAK_SECONDS) JOBS=$(JOBS) bash scripts/soak

# ---- Windows x86-64 ----------------------------------------------------------
#
# A cross build with mingw-w64 in build-windows/ (cmake/mingw-w64-x86_64.cmake),
# libuv and cJSON built for it from Debian's source packages into
# build-windows/deps/ (scripts/build-mingw-deps.sh, once), and the tests run
# under Wine in a prefix of its own, build-windows/wineprefix/. What runs and
# what Wine cannot run is in docs/PORTING.md.
WINDOWS_BUILD := build-windows
WINE := /usr/lib/wine/wine64
WINE_ENV = WINEPREFIX=$(CURDIR)/$(WINDOWS_BUILD)/wineprefix WINEDEBUG=-all
# The test programs of test-windows: the core, channels, executors, streams,
# actors and I/O.
WINDOWS_TESTS = task scope group chan chan_stress select sync pool park executors \
                stream actor blocking fs dns tcp tcp_sendfile cancel_io
# Test cases Wine cannot run (docs/PORTING.md says why).
WINDOWS_TESTS_EXCLUDE = a hundred thousand tasks in one group
# The short form in `make test`: the build and the core tests.
WINDOWS_CORE_TESTS = task chan
# The applications built for Windows, with the programs their ctest tests
# run (test-windows-apps): echo_server, and web_framework with its unit
# test and fuzz corpus replays.
WINDOWS_APPS = echo_server web_framework web_framework_test \
               web_framework_fuzz_replay web_framework_fuzz_websocket_replay
# Their ctest tests: the Python integration tests start the .exe under Wine
# (apps/common/testing/weft_app.py); those that need SIGUSR1 stats or /proc
# skip there and say why (docs/PORTING.md).
WINDOWS_APP_TESTS = ^(echo_server|web_framework)[.]
# The short form's application tests: echo_server started, served and
# stopped by SIGINT (Wine's Ctrl+C event) under Wine.
WINDOWS_CORE_APPS = echo_server
WINDOWS_CORE_APP_TESTS = ^echo_server[.](listening_line|final_stats|sigterm_drain)$$
# Wine on a shared machine starts threads and wakes timers late: the tests'
# time limits and spacings are scaled as for the sanitizer builds.
WINDOWS_TIMEOUT_SCALE ?= 4

# $(call windows_build,TARGETS): installs what is missing, builds the
# dependencies once, makes the Wine prefix (the build lists the test cases
# under Wine), configures and builds TARGETS.
define windows_build
	@bash scripts/setup-windows.sh
	bash scripts/build-mingw-deps.sh $(WINDOWS_BUILD)/deps
	@mkdir -p $(WINDOWS_BUILD)
	@test -e $(WINDOWS_BUILD)/wineprefix/system.reg || \
	  { echo "Wine prefix in $(WINDOWS_BUILD)/wineprefix"; $(WINE_ENV) $(WINE) wineboot --init >/dev/null 2>&1; }
	@$(WINE_ENV) $(dir $(WINE))wineserver -p 30 2>/dev/null || true # may run already
	$(CMAKE) -S . -B $(WINDOWS_BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake \
	  -DWEFT_MINGW_PREFIX=$(CURDIR)/$(WINDOWS_BUILD)/deps $(CMAKE_ARGS) >/dev/null
	$(CMAKE) --build $(WINDOWS_BUILD) -j$(JOBS) $(foreach t,$(1),--target $(t))
endef

# $(call windows_run_tests,REGEX): the ctest tests that REGEX matches, under
# Wine, with a Wine server of the prefix kept running meanwhile and stopped
# afterwards, whatever the result.
define windows_run_tests
	@$(WINE_ENV) $(dir $(WINE))wineserver -k 2>/dev/null || true
	$(WINE_ENV) $(dir $(WINE))wineserver -p 60
	@# Wine's first program starts its services (seconds, more on a busy
	@# machine): done once here, not inside the first test's time limit.
	@$(WINE_ENV) $(WINE) cmd /c exit >/dev/null 2>&1 || true
	cd $(WINDOWS_BUILD) && $(WINE_ENV) WEFT_TEST_TIMEOUT_SCALE=$(WINDOWS_TIMEOUT_SCALE) $(CTEST) $(CTEST_FLAGS) \
	  -R '$(1)' -E '$(WINDOWS_TESTS_EXCLUDE)'; \
	  r=$$?; $(WINE_ENV) $(dir $(WINE))wineserver -k; exit $$r
endef
space := $(subst ,, )
# The ctest names of test programs: ^test_(task|chan):
windows_programs = ^test_($(subst $(space),|,$(strip $(1)))):

test-windows:
	$(call windows_build,$(addprefix weft_test_,$(WINDOWS_TESTS)) $(WINDOWS_APPS))
	$(call windows_run_tests,$(call windows_programs,$(WINDOWS_TESTS))|$(WINDOWS_APP_TESTS))

test-windows-apps:
	$(call windows_build,$(WINDOWS_APPS))
	$(call windows_run_tests,$(WINDOWS_APP_TESTS))

test-windows-core:
	$(call windows_build,$(addprefix weft_test_,$(WINDOWS_CORE_TESTS)) $(WINDOWS_CORE_APPS))
	$(call windows_run_tests,$(call windows_programs,$(WINDOWS_CORE_TESTS))|$(WINDOWS_CORE_APP_TESTS))

# AArch64: cross-built with Debian's gcc-aarch64-linux-gnu against the arm64
# packages of multiarch (cmake/aarch64-linux-gnu.cmake), every test program
# run under qemu-aarch64, the applications' integration tests starting the
# AArch64 binaries through it (docs/PORTING.md). scripts/setup-aarch64.sh
# installs what is missing. test-aarch64 runs the whole suite; CI runs
# test-aarch64-core, the runtime with the tests of its core (tasks and the
# context switch, groups, scopes, channels, select, executors, stacks),
# which builds in a minute or two.
AARCH64_TOOLCHAIN = -DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/cmake/aarch64-linux-gnu.cmake
AARCH64_CORE_TESTS = test_task test_group test_scope test_chan test_select test_executors test_stack
test-aarch64: setup
	bash scripts/setup-aarch64.sh --all
	$(call build_tree,build-aarch64,$(AARCH64_TOOLCHAIN))
	$(call run_tests,build-aarch64)

test-aarch64-core: setup
	bash scripts/setup-aarch64.sh
	$(CMAKE) -S . -B build-aarch64-core -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(AARCH64_TOOLCHAIN) \
	  -DWEFT_BUILD_APPS=OFF -DWEFT_BUILD_EXAMPLES=OFF $(CMAKE_ARGS)
	$(CMAKE) --build build-aarch64-core -j$(JOBS) --target $(addprefix weft_,$(AARCH64_CORE_TESTS))
	cd build-aarch64-core && $(CTEST) $(CTEST_FLAGS) -R '^($(subst $(eval) ,|,$(AARCH64_CORE_TESTS)))[.:]'
