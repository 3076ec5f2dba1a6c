# routesim: build, test, benchmark and install.
#
#   make            build/routesim, build/libroutesim.a and build/libroutesim.so
#   make demo       install missing packages, build, run experiments/quickstart.json
#   make check      install missing packages, run the test suite (also under ASan/UBSan and MPI)
#   make MPI=1      build/mpi/routesim (mpicc): routesim run split across MPI ranks (docs/cluster.md)
#   make GPU=1      build/gpu/routesim with OpenMP offload to NVIDIA GPUs (docs/gpu.md)
#   make fuzz       the libFuzzer targets of tests/fuzz/ (clang); make fuzz-smoke runs each 60 s
#   make bench      throughput against a numpy implementation of the same computation
#   make install PREFIX=/usr/local   (or PREFIX=$HOME/.local: bin/routesim, lib/libroutesim.{a,so}, include/routesim/)

VERSION := 0.1.0
PREFIX ?= /usr/local
# make MPI=1: build/mpi/, compiled with mpicc, where `routesim run` splits
# its runs across the ranks of mpirun or srun (docs/cluster.md).
ifeq ($(MPI),1)
BUILD ?= build/mpi
ifeq ($(origin CC),default)
CC := mpicc
endif
endif
# make GPU=1: build/gpu/, every source compiled with GCC's nvptx offload
# compiler as well (docs/gpu.md); build/gpu/lib/ gets the libraries a
# GPU machine without a compiler lacks.
# Other builds compile the target regions for the host only.
ifeq ($(GPU),1)
BUILD ?= build/gpu
OFFLOAD_FLAGS := -foffload=nvptx-none -foffload-options=nvptx-none=-misa=sm_80 \
                 -foffload-options=nvptx-none=-ffp-contract=off -foffload-options=-lm
# GCC's offload table object is not position independent: a PIE would
# carry text relocations next to the kernels' ifuncs (target_clones), so
# the binary is not a PIE and libroutesim.so gets no device image (its
# target regions run on the host).
BIN_LDFLAGS := -no-pie
SHLIB_LDLIBS = $(filter-out -foffload%,$(LDLIBS)) -foffload=disable
else
OFFLOAD_FLAGS := -foffload=disable
endif
BUILD ?= build
# ROUTESIM_ISA=v4|v3|baseline (make variable or environment): every cloned
# kernel is built for that x86-64 level only, into $(BUILD)/isa-LEVEL/, so
# each clone can be compared (make isa-tests) and timed (bench/bench_isa.py)
# on one machine.
ifneq ($(ROUTESIM_ISA),)
ISA_LEVEL := $(or $(if $(filter v4,$(ROUTESIM_ISA)),4),$(if $(filter v3,$(ROUTESIM_ISA)),3),$(if $(filter baseline,$(ROUTESIM_ISA)),1))
$(if $(ISA_LEVEL),,$(error ROUTESIM_ISA must be v4, v3 or baseline, not '$(ROUTESIM_ISA)'))
override BUILD := $(BUILD)/isa-$(ROUTESIM_ISA)
ISA_FLAGS := -DRS_FORCE_ISA=$(ISA_LEVEL)
endif
PYTHON ?= /usr/bin/python3

PKGS := hdf5 gsl libcjson libzip
# Deferred (=) so that pkg-config runs after `make deps` has installed them.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS))
CHECK_LIBS = $(shell pkg-config --libs check)

CFLAGS ?= -O2 -g
# -fno-trapping-math and -fno-math-errno let loops with comparisons and
# sqrt/log vectorize; neither changes any computed value. Only functions
# marked RS_API (include/routesim/api.h) are visible outside the binary and
# the shared library; -fPIC lets the same objects make both.
STD_FLAGS := -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -fopenmp \
             -fno-trapping-math -fno-math-errno -fvisibility=hidden -fPIC $(ISA_FLAGS) $(OFFLOAD_FLAGS)
ALL_CFLAGS = $(STD_FLAGS) $(CFLAGS) -Iinclude -I. -I$(BUILD)/gen $(PKG_CFLAGS)
LDLIBS = $(PKG_LIBS) -fopenmp $(OFFLOAD_FLAGS) -lm -lz -ldl
SHLIB_LDLIBS ?= $(LDLIBS)
# The binary exports the public API (RS_API) so plugins (dlopen) can call it.
EXPORTS := $(BUILD)/gen/exports.dynlist
EXPORT_LIB = -Wl,--dynamic-list=$(EXPORTS) -Wl,--whole-archive $(1) -Wl,--no-whole-archive
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

# The files below some folders, at any depth, whose names match a pattern.
find_src = $(sort $(shell find $(1) -name '$(2)' -type f))

# The layers, bottom up (docs/architecture.md): core, workloads, routers and
# metrics, the simulator's stages (sim/), plots; the CLI links them all.
LAYERS := core workloads routers metrics sim plots
CLI_SRC := $(call find_src,sim/cli,*.c)
# One of the two implementations of sim/experiment/ranks.h: MPI or one process.
RANKS_UNUSED := sim/experiment/$(if $(filter 1,$(MPI)),ranks_single.c,ranks_mpi.c)
LIB_SRC := $(filter-out $(CLI_SRC) $(RANKS_UNUSED),$(call find_src,$(LAYERS),*.c))
CHECK_SRC := $(call find_src,tests,check_*.c)
TEST_SRC := $(CHECK_SRC) tests/test_main.c tests/test_util.c

LIB := $(BUILD)/libroutesim.a
SHLIB := $(BUILD)/libroutesim.so
BIN := $(BUILD)/routesim
TESTS := $(BUILD)/tests/check_routesim
SAN_LIB := $(BUILD)/san/libroutesim.a
SAN_BIN := $(BUILD)/san/routesim
SAN_TESTS := $(BUILD)/san/tests/check_routesim

# Quiet by default: "CC file.c"; `make V=1` shows the full commands.
ifeq ($(V),1)
Q :=
say = @true
else
Q := @
say = @printf '  %-6s %s\n' $(1) $(2)
endif

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
san_obj = $(patsubst %.c,$(BUILD)/san/obj/%.o,$(1))

# The example plugin (built with its own Makefile) and the test plugins
# (tests/plugins/NAME.c: a metric, broken ones), for the tests.
PLUGIN := $(BUILD)/examples/temperature_topk.so
TEST_PLUGINS := $(patsubst tests/plugins/%.c,$(BUILD)/tests/plugins/%.so,$(wildcard tests/plugins/*.c))
PLUGIN_ENV = ROUTESIM_PLUGIN=$(abspath $(PLUGIN)) ROUTESIM_BAD_PLUGIN=$(abspath $(BUILD)/tests/plugins/bad_abi.so) \
             ROUTESIM_TEST_PLUGINS=$(abspath $(BUILD)/tests/plugins)

.PHONY: all deps demo check layer-tests api-tests unit-tests san-tests interop-tests python-tests isa-tests mpi-tests gpu-tests bench docs \
        fuzz fuzzers fuzz-smoke fuzz-replay install uninstall \
        clean FORCE

all: $(BIN) $(LIB) $(SHLIB)

deps:
	@scripts/install-deps.sh

# Version and revision, rewritten only when they change.
$(BUILD)/gen/version.h: FORCE
	@mkdir -p $(@D)
	@rev=$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown); \
	 if [ -n "$$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then rev="$$rev-dirty"; fi; \
	 printf '#define ROUTESIM_VERSION "%s"\n#define ROUTESIM_REVISION "%s"\n' "$(VERSION)" "$$rev" > $@.new; \
	 if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

# The compiler flags, rewritten only when they change: objects depend on it,
# so changing a flag (visibility, -fPIC...) rebuilds them.
$(BUILD)/gen/flags: FORCE
	@mkdir -p $(@D)
	@echo '$(CC) $(ALL_CFLAGS) | $(SAN_FLAGS)' > $@.new; \
	 if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

# The public API: the functions declared RS_API in include/routesim/ (RS_API
# and the name on one line). GCC makes target_clones resolvers visible
# whatever -fvisibility says, so the binary and libroutesim.so export this
# list rather than everything visible.
$(BUILD)/gen/api.names: $(wildcard include/routesim/*.h)
	@mkdir -p $(@D)
	@sed -n 's/^RS_API [^(]*[ *]\([a-z_][a-z0-9_]*\)(.*/\1/p' $^ | sort > $@

$(EXPORTS): $(BUILD)/gen/api.names
	@{ echo '{'; sed 's/.*/  &;/' $<; echo '};'; } > $@

$(BUILD)/gen/libroutesim.map: $(BUILD)/gen/api.names
	@{ echo '{'; echo 'global:'; sed 's/.*/  &;/' $<; echo 'local: *;'; echo '};'; } > $@

# Every tests/**/check_*.c defines `Suite *NAME_suite(void)`; list them for the runner.
$(BUILD)/gen/suites.h: $(CHECK_SRC)
	@mkdir -p $(@D)
	@grep -ho '^Suite \*[a-z0-9_]*_suite(void)' $^ | sed 's/^Suite \*\(.*\)(void)/RS_SUITE(\1)/' | sort > $@

# -MMD -MP: each object records the headers it includes (build/**/*.d).
$(BUILD)/obj/%.o: %.c $(BUILD)/gen/flags | $(BUILD)/gen/version.h
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/san/obj/%.o: %.c $(BUILD)/gen/flags | $(BUILD)/gen/version.h
	@mkdir -p $(@D)
	$(call say,CC-SAN,$<)
	$(Q)$(CC) $(STD_FLAGS) $(SAN_FLAGS) -Iinclude -I. -I$(BUILD)/gen $(PKG_CFLAGS) -MMD -MP -c $< -o $@

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

$(LIB): $(call obj,$(LIB_SRC))
	@rm -f $@
	$(call say,AR,$@)
	$(Q)ar rcs $@ $^

$(SHLIB): $(call obj,$(LIB_SRC)) $(BUILD)/gen/libroutesim.map
	$(call say,LINK,$@)
	$(Q)$(CC) -shared -Wl,-soname,libroutesim.so -Wl,-z,defs -Wl,--version-script=$(BUILD)/gen/libroutesim.map \
	    -o $@ $(call obj,$(LIB_SRC)) $(SHLIB_LDLIBS)

$(BIN): $(call obj,$(CLI_SRC)) $(LIB) $(EXPORTS)
	$(call say,LINK,$@)
	$(Q)$(CC) -fopenmp $(BIN_LDFLAGS) -o $@ $(call obj,$(CLI_SRC)) $(call EXPORT_LIB,$(LIB)) $(LDLIBS)
	$(if $(filter 1,$(GPU)),$(Q)scripts/gpu-bundle.sh $@ $(@D)/lib)

$(TESTS): $(call obj,$(TEST_SRC)) $(LIB) $(BUILD)/gen/suites.h
	@mkdir -p $(@D)
	$(call say,LINK,$@)
	$(Q)$(CC) -fopenmp -o $@ $(call obj,$(TEST_SRC)) $(LIB) $(CHECK_LIBS) $(LDLIBS)

$(BUILD)/obj/tests/test_main.o $(BUILD)/san/obj/tests/test_main.o: $(BUILD)/gen/suites.h

$(SAN_LIB): $(call san_obj,$(LIB_SRC))
	@rm -f $@
	$(call say,AR,$@)
	$(Q)ar rcs $@ $^

$(SAN_BIN): $(call san_obj,$(CLI_SRC)) $(SAN_LIB) $(EXPORTS)
	$(call say,LINK,$@)
	$(Q)$(CC) -fopenmp $(SAN_FLAGS) -o $@ $(call san_obj,$(CLI_SRC)) $(call EXPORT_LIB,$(SAN_LIB)) $(LDLIBS)

$(SAN_TESTS): $(call san_obj,$(TEST_SRC)) $(SAN_LIB) $(BUILD)/gen/suites.h
	@mkdir -p $(@D)
	$(call say,LINK,$@)
	$(Q)$(CC) -fopenmp $(SAN_FLAGS) -o $@ $(call san_obj,$(TEST_SRC)) $(SAN_LIB) $(CHECK_LIBS) $(LDLIBS)

$(PLUGIN): examples/plugin_router/temperature_topk.c examples/plugin_router/Makefile $(wildcard include/routesim/*.h)
	@mkdir -p $(@D)
	$(call say,PLUGIN,$@)
	$(Q)$(MAKE) -s -C examples/plugin_router OUT=$(abspath $@)

# Hidden by default, as a careful plugin author builds: RS_PLUGIN_ABI and
# routesim_register must stay visible anyway.
$(BUILD)/tests/plugins/%.so: tests/plugins/%.c $(wildcard include/routesim/*.h)
	@mkdir -p $(@D)
	$(call say,PLUGIN,$@)
	$(Q)$(CC) -std=c11 -Wall -Wextra -Werror -fPIC -fvisibility=hidden -shared -Iinclude -o $@ $<

demo: deps
	@$(MAKE) --no-print-directory all
	$(BIN) run experiments/quickstart.json

# make check builds with one job per core (unless -j was given) and runs its
# phases one after another: the plain build, the tests of the plain build,
# the ASan/UBSan build, the tests under the sanitizers. Each phase's header
# says when it started, in seconds since check started (DEVELOPERS.md,
# "Where make check spends its time").
CHECK_JOBS = $(if $(filter -j% --jobserver%,$(MAKEFLAGS)),,-j$(shell nproc 2>/dev/null || echo 2))
at = $${RS_CHECK_START:+ (at $$(( $$(date +%s) - RS_CHECK_START )) s)}
check: deps
	@export RS_CHECK_START=$$(date +%s); \
	 echo "== build$(at)" && \
	 $(MAKE) --no-print-directory $(CHECK_JOBS) $(BIN) $(LIB) $(SHLIB) $(TESTS) $(PLUGIN) $(TEST_PLUGINS) && \
	 $(MAKE) --no-print-directory layer-tests api-tests unit-tests interop-tests python-tests mpi-tests gpu-tests && \
	 $(MAKE) --no-print-directory $(CHECK_JOBS) isa-tests && \
	 echo "== ASan/UBSan build$(at)" && \
	 $(MAKE) --no-print-directory $(CHECK_JOBS) $(SAN_BIN) $(SAN_TESTS) $(REPLAYS) && \
	 $(MAKE) --no-print-directory san-tests fuzz-replay && \
	 echo "== make check passed$(at)"

# The MPI build (make MPI=1, in $(BUILD)/mpi) gives the plain build's
# results on 1, 2 and 3 ranks; skipped, saying so, where OpenMPI is missing.
mpi-tests: $(BIN)
	@echo "== MPI build and tests (tests/mpi_test.sh)$(at)"
	$(Q)if command -v mpicc >/dev/null && command -v mpirun >/dev/null; then \
	   $(MAKE) --no-print-directory $(CHECK_JOBS) MPI=1 CC=mpicc BUILD=$(BUILD)/mpi $(BUILD)/mpi/routesim && \
	   tests/mpi_test.sh $(BUILD)/mpi/routesim $(BIN); \
	 else \
	   echo "mpi-tests: SKIPPED: mpicc or mpirun not found (scripts/install-deps.sh installs libopenmpi-dev openmpi-bin)"; \
	 fi

# The offload build (make GPU=1, in $(BUILD)/gpu) holds an nvptx image and,
# its target regions run on the host, gives --device cpu's results with
# --device gpu; skipped, saying so, where GCC has no nvptx offload compiler.
gpu-tests: $(BIN)
	@echo "== GPU offload build and tests (tests/gpu_test.sh)$(at)"
	$(Q)if $(CC) -v 2>&1 | grep -q 'OFFLOAD_TARGET_NAMES=.*nvptx-none' && \
	       [ -e "$$($(CC) -print-prog-name=lto-wrapper | xargs dirname)/accel/nvptx-none/mkoffload" ]; then \
	   $(MAKE) --no-print-directory $(CHECK_JOBS) GPU=1 BUILD=$(BUILD)/gpu $(BUILD)/gpu/routesim && \
	   tests/gpu_test.sh $(BUILD)/gpu/routesim $(BIN); \
	 else \
	   echo "gpu-tests: SKIPPED: no nvptx offload compiler (scripts/install-deps.sh installs gcc-12-offload-nvptx)"; \
	 fi

# The include rules of docs/architecture.md hold, and the checker catches a breach.
layer-tests:
	@echo "== layers (scripts/check-layers.sh)$(at)"
	$(Q)tests/layers_test.sh

# The binary and libroutesim.so export the public API only; the installed
# headers are enough to build the example plugin and the router of
# docs/architecture.md.
api-tests: $(BIN) $(SHLIB) $(LIB)
	@echo "== public API (exported symbols, installed headers)$(at)"
	$(Q)tests/exports_test.sh $(BIN) $(SHLIB) $(LIB)
	$(Q)MAKE="$(MAKE)" BUILD=$(BUILD) tests/install_test.sh

unit-tests: $(BIN) $(TESTS) $(PLUGIN) $(TEST_PLUGINS)
	@echo "== unit and end-to-end tests (Check)$(at)"
	$(Q)ROUTESIM_BIN=$(abspath $(BIN)) ROUTESIM_SRC=$(CURDIR) $(PLUGIN_ENV) tests/run_shards.sh $(TESTS)

interop-tests: $(BIN)
	@echo "== interop tests (h5py/numpy)$(at)"
	$(Q)ROUTESIM_BIN=$(abspath $(BIN)) $(PYTHON) tests/interop/run_all.py

# The Python package (python/routesim) on this build's libroutesim.so: found
# in the checkout's build/ as users find it, or named when BUILD is another.
PY_LIB_ENV = $(if $(filter build,$(BUILD)),-u ROUTESIM_LIB,ROUTESIM_LIB=$(abspath $(SHLIB)))
python-tests: $(BIN) $(SHLIB) $(PLUGIN)
	@echo "== Python package tests (python/routesim)$(at)"
	$(Q)env $(PY_LIB_ENV) PYTHONPATH=$(CURDIR)/python ROUTESIM_BIN=$(abspath $(BIN)) ROUTESIM_PLUGIN=$(abspath $(PLUGIN)) \
	    $(PYTHON) tests/python/run_all.py

# Each x86-64 level this CPU runs, built alone (ROUTESIM_ISA), writes the
# native build's results.
ISA_LEVELS = $(shell scripts/isa-levels.sh)
isa-tests: $(BIN)
	@echo "== every x86-64 level's kernel clones (ROUTESIM_ISA=$(ISA_LEVELS))$(at)"
	$(Q)for l in $(ISA_LEVELS); do $(MAKE) --no-print-directory ROUTESIM_ISA=$$l $(BUILD)/isa-$$l/routesim || exit 1; done
	$(Q)tests/isa_test.sh $(BIN) $(foreach l,$(ISA_LEVELS),$(BUILD)/isa-$(l)/routesim)

# LeakSanitizer reports one-time allocations inside libgomp and HDF5 at exit.
san-tests: $(SAN_BIN) $(SAN_TESTS) $(PLUGIN) $(TEST_PLUGINS)
	@echo "== the same tests under AddressSanitizer and UndefinedBehaviorSanitizer$(at)"
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 OMP_NUM_THREADS=2 \
	ROUTESIM_BIN=$(abspath $(SAN_BIN)) ROUTESIM_SRC=$(CURDIR) $(PLUGIN_ENV) tests/run_shards.sh $(SAN_TESTS)

# Fuzzing (DEVELOPERS.md "Fuzzing"): tests/fuzz/fuzz_NAME.c is one target,
# tests/fuzz/NAME/ its corpus (seeds and reproducers), NAME.dict its
# dictionary when it has one. `make fuzz` builds the libFuzzer binaries with
# clang; `make fuzz-replay` (part of check) runs each target over its corpus
# with gcc's sanitizers and a plain main, so it needs no clang.
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_HELPERS := tests/fuzz/harness.c tests/fuzz/harness_import.c
FUZZ_CC ?= clang
# At -O1 with sanitizers clang cannot always honour `omp simd`; that is no error here.
FUZZ_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -Wno-pass-failed
FUZZ_LIB := $(BUILD)/fuzz/libroutesim.a
FUZZERS := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_NAMES))
REPLAYS := $(patsubst %,$(BUILD)/san/fuzz/replay_%,$(FUZZ_NAMES))
fuzz_obj = $(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$(1))
FUZZ_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:max_allocation_size_mb=1024 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 OMP_NUM_THREADS=1
FUZZ_SECONDS ?= 60
# Limits that make a runaway allocation or a hang a finding.
FUZZ_LIMITS := -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=20

$(BUILD)/fuzz/obj/%.o: %.c $(BUILD)/gen/flags | $(BUILD)/gen/version.h
	@mkdir -p $(@D)
	$(call say,CC-FUZZ,$<)
	$(Q)$(FUZZ_CC) $(filter-out -foffload%,$(STD_FLAGS)) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -Iinclude -I. -I$(BUILD)/gen $(PKG_CFLAGS) \
	    -MMD -MP -c $< -o $@

$(FUZZ_LIB): $(call fuzz_obj,$(LIB_SRC))
	@rm -f $@
	$(call say,AR,$@)
	$(Q)ar rcs $@ $^

$(BUILD)/fuzz/fuzz_%: $(BUILD)/fuzz/obj/tests/fuzz/fuzz_%.o $(call fuzz_obj,$(FUZZ_HELPERS)) $(FUZZ_LIB)
	$(call say,LINK,$@)
	$(Q)$(FUZZ_CC) -fopenmp -fsanitize=fuzzer,address,undefined -o $@ $^ $(filter-out -foffload%,$(LDLIBS))

$(BUILD)/san/fuzz/replay_%: $(BUILD)/san/obj/tests/fuzz/fuzz_%.o $(call san_obj,tests/fuzz/replay_main.c $(FUZZ_HELPERS)) \
                            $(SAN_LIB)
	@mkdir -p $(@D)
	$(call say,LINK,$@)
	$(Q)$(CC) -fopenmp $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

# Keep the objects the pattern rules above make on the way.
.SECONDARY: $(call san_obj,$(patsubst %,tests/fuzz/fuzz_%.c,$(FUZZ_NAMES)) tests/fuzz/replay_main.c $(FUZZ_HELPERS)) \
            $(call fuzz_obj,$(patsubst %,tests/fuzz/fuzz_%.c,$(FUZZ_NAMES)) $(FUZZ_HELPERS))

fuzz:
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { echo "make fuzz needs clang with libFuzzer:" \
	    "scripts/install-deps.sh fuzz (or: sudo apt-get install -y clang libclang-rt-dev libomp-dev)" >&2; exit 1; }
	@$(MAKE) --no-print-directory fuzzers

fuzzers: $(FUZZERS)
	@:

# Each target FUZZ_SECONDS from its corpus; what it adds goes to
# build/fuzz/corpus/NAME, what it finds to build/fuzz/artifacts/NAME/.
fuzz-smoke: fuzz
	$(Q)for t in $(FUZZ_NAMES); do \
	    echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
	    mkdir -p $(BUILD)/fuzz/corpus/$$t $(BUILD)/fuzz/artifacts/$$t; \
	    dict=; [ -f tests/fuzz/$$t.dict ] && dict=-dict=tests/fuzz/$$t.dict; \
	    log=$(BUILD)/fuzz/artifacts/$$t/log; \
	    $(FUZZ_ENV) $(BUILD)/fuzz/fuzz_$$t $(BUILD)/fuzz/corpus/$$t tests/fuzz/$$t $$dict $(FUZZ_LIMITS) \
	        -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/artifacts/$$t/ \
	        > $$log 2>&1; rc=$$?; \
	    grep -E '^(stat::number_of_executed_units|stat::new_units_added|SUMMARY|fuzz:)' $$log; \
	    [ $$rc -eq 0 ] || { tail -40 $$log; echo "fuzz $$t: found a failure, see $(BUILD)/fuzz/artifacts/$$t/"; exit 1; }; \
	done

# Every target over its corpus and reproducers: a regression run of seconds.
fuzz-replay: $(REPLAYS)
	@echo "== fuzz targets over their corpora (tests/fuzz/)$(at)"
	$(Q)for t in $(FUZZ_NAMES); do $(FUZZ_ENV) $(BUILD)/san/fuzz/replay_$$t tests/fuzz/$$t || exit 1; done

# The naive scalar C loop the main benchmark is compared with: -O2, no -march.
NAIVE := $(BUILD)/bench/naive_scalar
$(NAIVE): bench/naive_scalar.c
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -O2 $(PKG_CFLAGS) -o $@ $< $(PKG_LIBS) -lm

# routesim's cache simulator against a port of libCacheSim's request loop.
CACHE_COMPARE := $(BUILD)/bench/cache_compare
$(CACHE_COMPARE): bench/cache_compare.c bench/libcachesim_port.c bench/libcachesim_port.h $(LIB)
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ bench/cache_compare.c bench/libcachesim_port.c $(LIB) $(LDLIBS)

bench: deps
	@$(MAKE) --no-print-directory all $(NAIVE) $(CACHE_COMPARE)
	@if command -v mpicc >/dev/null; then $(MAKE) --no-print-directory MPI=1 CC=mpicc BUILD=$(BUILD)/mpi $(BUILD)/mpi/routesim; fi
	@if $(CC) -v 2>&1 | grep -q 'OFFLOAD_TARGET_NAMES=.*nvptx-none'; then \
	   $(MAKE) --no-print-directory GPU=1 BUILD=$(BUILD)/gpu $(BUILD)/gpu/routesim; fi
	$(PYTHON) bench/run_bench.py --routesim $(BIN) --naive $(NAIVE)
	@for b in $(sort $(wildcard bench/bench_*.py)); do echo; $(PYTHON) $$b --routesim $(BIN) || exit 1; done

# Refresh the generated reference sections of docs/routers.md and docs/metrics.md.
docs: $(BIN)
	ROUTESIM_BIN=$(BIN) scripts/update-docs.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/routesim
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/routesim
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libroutesim.a
	install -m 755 $(SHLIB) $(DESTDIR)$(PREFIX)/lib/libroutesim.so
	install -m 644 include/routesim/*.h $(DESTDIR)$(PREFIX)/include/routesim/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/routesim $(DESTDIR)$(PREFIX)/lib/libroutesim.a $(DESTDIR)$(PREFIX)/lib/libroutesim.so
	rm -rf $(DESTDIR)$(PREFIX)/include/routesim

clean:
	rm -rf $(BUILD)
