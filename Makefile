# ltvpipe build. `make` builds ./ltvpipe; `make test`, `make demo` and `make bench`
# first make sure the Debian packages below are installed (installing them when
# running as root, otherwise printing the apt-get line and stopping with exit 2).

CC       ?= cc
DEB_PKGS := build-essential pkg-config sqlite3 libsqlite3-dev libyaml-dev \
            libopenblas-dev liblapacke-dev libxgboost-dev libxxhash-dev \
            libcjson-dev libmicrohttpd-dev libcsv-dev libcmocka-dev libgsl-dev \
            zlib1g-dev
# What only the tests and the server bench use (make test, make bench-serve):
# an HTTP client, a JSON reader, a load generator, Python for the fuzzer and
# the browser test, the browser, and Dask distributed (dask-scheduler,
# dask-worker) for the sharded run's test and bench (contrib/dask/).
TEST_DEB_PKGS := curl jq wrk python3 chromium python3-distributed
# What only make bench uses: the Python reference it runs side by side
# (../shared/peers/pyref, Debian's Python stack) and GNU time.
BENCH_DEB_PKGS := python3-pandas python3-sklearn python3-xgboost python3-scipy python3-joblib time

# The fuzz targets (make fuzz, and briefly in make test) need clang with libFuzzer.
FUZZ_PKGS := clang libclang-rt-dev

WARN     := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wformat=2 -Wvla -Wwrite-strings
ifeq ($(DEVELOPER),1)
WARN     += -Werror
endif
OPT      ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -fopenmp -Iinclude \
            -I/usr/include/x86_64-linux-gnu/openblas-pthread
LDLIBS   := -lsqlite3 -lyaml -lxgboost -lxxhash -lcjson -lmicrohttpd -lcsv -lz \
            -lgsl -llapacke -lopenblas -lm -lpthread
LDFLAGS  += -fopenmp
ifneq ($(SANITIZE),)
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=$(SANITIZE)
endif

BUILD    := build$(if $(SANITIZE),-san)
# A sanitized binary lives in its build directory, so it never replaces ./ltvpipe.
BIN      := $(if $(SANITIZE),$(BUILD)/ltvpipe,ltvpipe)
# The folders are layers, each using only those below it: src/ (engine and
# models) <- serving/ (a model version: features, artefacts, predictor) <-
# pipeline/ (stages and runner) <- cli/ (commands).
LAYERS   := src src/models serving pipeline cli
LIB_SRC  := $(filter-out cli/main.c,$(foreach d,$(LAYERS),$(wildcard $(d)/*.c)))
LIB_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC))
TEST_SRC := $(wildcard tests/unit/test_*.c)
TEST_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRC))
# The tests' shared helpers (tests/unit/*.c that are not tests), linked into every test.
TEST_HELPER_OBJ := $(patsubst tests/unit/%.c,$(BUILD)/tests/%.o,\
                   $(filter-out $(TEST_SRC),$(wildcard tests/unit/*.c)))
TEST_HDR := $(wildcard tests/unit/*.h)
# Built only as prerequisites of pattern rules, so make would delete them as intermediates.
.SECONDARY: $(TEST_HELPER_OBJ)

# libFuzzer targets (tests/fuzz/fuzz_*.c), built with clang into build-fuzz/
# with ASan and UBSan, linked with the few library files the parsers need.
FUZZ_CC       := clang
FUZZ_BUILD    := build-fuzz
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS   := -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) -Iinclude -Itests/fuzz $(FUZZ_SAN)
FUZZ_LIB_SRC  := src/bqueue.c src/common.c src/config.c src/config_check.c src/config_yaml.c src/csvread.c src/hash.c src/log.c src/progress.c src/timeutil.c src/tzone.c
FUZZ_LIB_OBJ  := $(patsubst %.c,$(FUZZ_BUILD)/%.o,$(FUZZ_LIB_SRC))
FUZZ_BIN      := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(wildcard tests/fuzz/fuzz_*.c))
.SECONDARY: $(FUZZ_LIB_OBJ)
# Seconds per target: make test runs each briefly, make fuzz as long as you like.
FUZZ_TEST_SECONDS ?= 5
FUZZ_SECONDS      ?= 600

.PHONY: docs install uninstall all deps fuzz-deps test-deps bench-deps bench-stages fuzz-serve bench-serve bench-shards test unit-test cli-test fuzz fuzz-build demo bench bench-tools bench-ingest bench-forest clean
all: $(BIN)

# Stamp so the package check runs once per machine, not on every build.
deps: $(BUILD)/.deps-ok
$(BUILD)/.deps-ok:
	@scripts/ensure-deps.sh $(DEB_PKGS)
	@mkdir -p $(BUILD) && touch $@
bench-deps: $(BUILD)/.bench-deps-ok
$(BUILD)/.bench-deps-ok:
	@scripts/ensure-deps.sh $(BENCH_DEB_PKGS)
	@mkdir -p $(BUILD) && touch $@
test-deps: $(BUILD)/.test-deps-ok
$(BUILD)/.test-deps-ok:
	@scripts/ensure-deps.sh $(TEST_DEB_PKGS)
	@mkdir -p $(BUILD) && touch $@

$(BIN): $(BUILD)/.deps-ok $(BUILD)/cli/main.o $(BUILD)/libltv.a
	$(CC) $(LDFLAGS) -o $@ $(BUILD)/cli/main.o $(BUILD)/libltv.a $(LDLIBS)

$(BUILD)/libltv.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c $(BUILD)/.deps-ok $(wildcard include/ltv/*.h src/*.h src/models/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%.o: tests/unit/%.c $(BUILD)/.deps-ok $(wildcard include/ltv/*.h) $(TEST_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(TEST_HELPER_OBJ) $(BUILD)/libltv.a $(TEST_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(TEST_HELPER_OBJ) $(BUILD)/libltv.a \
		$(LDLIBS) -lcmocka

test: deps fuzz-deps test-deps $(BIN) $(TEST_BIN) $(FUZZ_BIN)
	@LTVPIPE=$(abspath $(BIN)) LTV_FUZZ_BUILD=$(FUZZ_BUILD) \
		LTV_FUZZ_SECONDS=$(FUZZ_TEST_SECONDS) tests/run-tests.sh $(BUILD)

unit-test: deps $(TEST_BIN)
	@tests/run-tests.sh $(BUILD) unit

cli-test: deps test-deps $(BIN)
	@LTVPIPE=$(abspath $(BIN)) tests/run-tests.sh $(BUILD) cli

fuzz-deps: $(FUZZ_BUILD)/.deps-ok
$(FUZZ_BUILD)/.deps-ok:
	@scripts/ensure-deps.sh $(DEB_PKGS) $(FUZZ_PKGS)
	@mkdir -p $(FUZZ_BUILD) && touch $@

$(FUZZ_BUILD)/%.o: %.c $(FUZZ_BUILD)/.deps-ok $(wildcard include/ltv/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJ) $(LDLIBS)

fuzz-build: fuzz-deps $(FUZZ_BIN)

# FUZZ_SECONDS per target (default 600); see README "Fuzzing".
fuzz: fuzz-build
	@tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# 10,000 hostile bodies against the sanitized server (tests/cli/serve_fuzz.sh).
SERVE_FUZZ_COUNT ?= 10000
fuzz-serve: deps test-deps
	@$(MAKE) --no-print-directory SANITIZE=address,undefined build-san/ltvpipe
	@scratch=$$(mktemp -d) && cd $$scratch && LTVPIPE=$(abspath build-san/ltvpipe) \
		LTV_ROOT=$(CURDIR) SERVE_FUZZ_COUNT=$(SERVE_FUZZ_COUNT) SERVE_FUZZ_SECONDS=1800 \
		bash $(CURDIR)/tests/cli/serve_fuzz.sh; rc=$$?; rm -rf $$scratch; exit $$rc

DEMO_USERS ?= 20000
demo: deps ltvpipe
	@scripts/demo.sh $(DEMO_USERS)

# Side by side with pyref (bench/sidebyside.sh), then scoring at
# BENCH_SCALE_USERS users (BENCH_SCALE_USERS=100000 skips the 3,000,000).
BENCH_USERS ?= 1000000
BENCH_RUNS ?= 3
BENCH_SCALE_USERS ?= 100000 3000000
bench: deps bench-deps ltvpipe
	@SCALE_USERS="$(BENCH_SCALE_USERS)" bench/sidebyside.sh $(BENCH_USERS) $(BENCH_RUNS)
	@bench/shards.sh $(BENCH_SHARD_USERS)

# Every stage on its own, training with one and all threads, scoring, no-op run.
bench-stages: deps ltvpipe
	@bench/bench.sh $(BENCH_USERS) $(BENCH_RUNS)

# Sharded features and scoring at N = 1, 2, 4 and the 100M-users estimate (README "Scale out").
BENCH_SHARD_USERS ?= 200000
bench-shards: deps ltvpipe
	@bench/shards.sh $(BENCH_SHARD_USERS)

# The tokenizer benchmark behind csvread.c's fast path, and the ingest benchmark.
bench-tools: $(BUILD)/bench/csvread_bench $(BUILD)/bench/gbt_forest_bench $(BUILD)/bench/gbt_eval_bench \
	     $(BUILD)/bench/gbt_walks_bench \
	     $(BUILD)/bench/page_faults $(BUILD)/bench/csvread_batches
$(BUILD)/bench/%: bench/%.c $(BUILD)/libltv.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libltv.a $(LDLIBS)

# The native tree evaluator against XGBoost (src/models/gbt_forest.c).
bench-forest: deps ltvpipe bench-tools
	@bench/gbt_forest.sh

BENCH_INGEST_USERS ?= 200000
bench-ingest: deps ltvpipe bench-tools
	@bench/ingest.sh $(BENCH_INGEST_USERS) $(BENCH_RUNS)

SERVE_BENCH_USERS ?= 20000
SERVE_BENCH_SECONDS ?= 10
bench-serve: deps test-deps ltvpipe
	@bench/serve_bench.sh $(SERVE_BENCH_USERS) $(SERVE_BENCH_SECONDS)

# The man page and the bash completion, generated from the command table that
# --help prints (ltvpipe help --man / --completion), so they never drift.
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  := $(PREFIX)/bin
MANDIR  := $(PREFIX)/share/man/man1
COMPDIR := $(PREFIX)/share/bash-completion/completions
$(BUILD)/ltvpipe.1: $(BIN)
	./$(BIN) help --man >$@.tmp && mv $@.tmp $@
$(BUILD)/ltvpipe.bash: $(BIN)
	./$(BIN) help --completion >$@.tmp && mv $@.tmp $@
docs: $(BUILD)/ltvpipe.1 $(BUILD)/ltvpipe.bash
install: $(BIN) docs
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR) $(DESTDIR)$(COMPDIR)
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/ltvpipe
	install -m 644 $(BUILD)/ltvpipe.1 $(DESTDIR)$(MANDIR)/ltvpipe.1
	install -m 644 $(BUILD)/ltvpipe.bash $(DESTDIR)$(COMPDIR)/ltvpipe
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ltvpipe $(DESTDIR)$(MANDIR)/ltvpipe.1 $(DESTDIR)$(COMPDIR)/ltvpipe

clean:
	rm -rf build build-san $(FUZZ_BUILD) ltvpipe
