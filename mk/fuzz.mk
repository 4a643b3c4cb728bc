# fuzz.mk - coverage-guided fuzzing with libFuzzer (clang).
#
#   make fuzz-mp [FUZZ_SECONDS=60]    the stream reader (msgpack), the
#                                     header's tasks, examples and batches
#   make fuzz-st                      the safetensors reader
#   make fuzz-tok                     the tokenizer and the task-spec parser
#                                     (also make fuzz-tokenize)
#   make fuzz-input                   the JSONL, CoNLL, TSV, CSV and text readers
#   make fuzz-vocab                   the tokenizer loader (vocab.txt,
#                                     tokenizer.json, tokenizer_config.json,
#                                     config.json)
#
#   make fuzz-smoke-NAME [FUZZ_RUNS=N FUZZ_SEED=S]
#                                     a fixed number of runs from a fixed
#                                     seed and the committed corpus only:
#                                     the same code gives the same answer
#
#   make fuzz-ci [FUZZ_CI_SCALE=1]
#                                     every harness for a fixed number of
#                                     runs (about 20 s each here) from a
#                                     fixed seed and the committed corpus
#                                     (.ci/run); a crash fails it, and the
#                                     same code gives the same answer
#
#   make fuzz-programs [SECONDS=60]   the sanitizer build of every program
#                                     on mutated files (tools/fuzz-programs.sh):
#                                     fails on a crash, a hang or an exit
#                                     code outside 0-3
#
# A harness is tests/fuzz_NAME.c; FUZZ_SRC_NAME lists the library sources it
# needs (without BLIS or OpenMP).  Builds go to build-fuzz/.  The open-ended
# fuzz-NAME grows its corpus in build-fuzz/corpus-NAME/, seeded from
# tests/fuzz_NAME_corpus/ (the committed seeds stay as they are; add an
# input there when a crash is fixed).  fuzz-smoke-NAME starts each time from
# an empty scratch corpus plus the committed seeds, so its result depends
# only on the code: tests/fuzz.bats runs it as part of make test when clang
# is installed.  Every target keeps a crashing input as
# build-fuzz/crash-NAME-* (never in the source tree).

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_RUNS ?= 20000
FUZZ_SEED ?= 1
FUZZ_BUILD := build-fuzz
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=c11 \
	-D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DMTL_VERSION='"$(VERSION)"' $(LIB_INC)

FUZZ_SRC_mp := lib/io/mp.c lib/io/mp_write.c lib/io/mp_json.c lib/data/data.c lib/data/data_emb.c lib/data/data_tasks.c lib/data/data_census.c lib/data/task.c lib/heads/metrics.c lib/io/fs.c lib/base/err.c
FUZZ_SRC_st := lib/io/st.c lib/io/fs.c lib/base/err.c
FUZZ_SRC_tok := lib/data/tok.c lib/data/tok_vocab.c lib/data/tok_uni8.c lib/data/task.c lib/io/manifest.c lib/io/fs.c lib/base/err.c
FUZZ_SRC_vocab := lib/data/tok.c lib/data/tok_vocab.c lib/data/tok_uni8.c lib/io/manifest.c lib/io/fs.c lib/base/err.c
FUZZ_SRC_input := lib/data/input.c lib/data/input_tsv.c lib/data/input_encode.c lib/base/suggest.c lib/data/data.c lib/data/data_emb.c lib/data/data_tasks.c lib/data/data_census.c lib/data/tok.c lib/data/tok_vocab.c lib/data/tok_uni8.c lib/data/task.c lib/io/manifest.c lib/io/mp.c lib/io/mp_write.c lib/io/mp_json.c lib/io/fs.c lib/heads/metrics.c lib/base/err.c
FUZZ_MAX_LEN_st := 4096

.SECONDEXPANSION:
$(FUZZ_BUILD)/fuzz_%: tests/fuzz_%.c $$(FUZZ_SRC_$$*)
	@mkdir -p $(@D)
	$(call say,FUZZCC,$@)$(FUZZ_CC) $(FUZZ_FLAGS) $(PKG_CFLAGS) -o $@ $^ $(PKG_LIBS) -lm

.PRECIOUS: $(FUZZ_BUILD)/fuzz_%
fuzz-%: $(FUZZ_BUILD)/fuzz_%
	@mkdir -p $(FUZZ_BUILD)/corpus-$*
	$< -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
		-artifact_prefix=$(FUZZ_BUILD)/crash-$*- \
		$(if $(FUZZ_MAX_LEN_$*),-max_len=$(FUZZ_MAX_LEN_$*)) \
		$(FUZZ_BUILD)/corpus-$* $(wildcard tests/fuzz_$*_corpus)

# Same answer on the same code: a fixed seed and run count, no corpus
# reloading (it is timed), and no address-space randomisation (libFuzzer
# takes compared values, pointers among them, as mutation material).
FUZZ_NORAND := $(shell setarch -R true 2>/dev/null && echo setarch -R)

fuzz-smoke-%: $(FUZZ_BUILD)/fuzz_%
	@rm -rf $(FUZZ_BUILD)/smoke-$* && mkdir -p $(FUZZ_BUILD)/smoke-$*
	$(FUZZ_NORAND) $< -seed=$(FUZZ_SEED) -runs=$(FUZZ_RUNS) -reload=0 -print_final_stats=1 \
		-artifact_prefix=$(FUZZ_BUILD)/crash-$*- \
		$(if $(FUZZ_MAX_LEN_$*),-max_len=$(FUZZ_MAX_LEN_$*)) \
		$(FUZZ_BUILD)/smoke-$* $(wildcard tests/fuzz_$*_corpus)

.PHONY: fuzz-tokenize
fuzz-tokenize: fuzz-tok

# Bounded fuzzing for CI: longer than the smoke runs, yet bounded by a
# run count, not by time (a time limit stops at a different input on a
# loaded machine), so that one machine gives the same answer on the same
# code; another machine may take other paths from the same seed.  The counts
# are about 20 s per harness on a 2-core Zen 5; FUZZ_CI_SCALE multiplies
# them.  A crash input is saved as build-fuzz/crash-NAME-* (replay:
# build-fuzz/fuzz_NAME FILE).
FUZZ_NAMES := $(patsubst tests/fuzz_%.c,%,$(wildcard tests/fuzz_*.c))
FUZZ_CI_SCALE ?= 1
FUZZ_CI_RUNS_input := 300000
FUZZ_CI_RUNS_tok := 300000
FUZZ_CI_RUNS_mp := 100000
FUZZ_CI_RUNS_st := 80000
FUZZ_CI_RUNS_vocab := 80000

.PHONY: fuzz-ci
fuzz-ci: $(FUZZ_NAMES:%=fuzz-ci-%)

fuzz-ci-%: $(FUZZ_BUILD)/fuzz_%
	@rm -rf $(FUZZ_BUILD)/ci-$* && mkdir -p $(FUZZ_BUILD)/ci-$*
	$(FUZZ_NORAND) $< -seed=$(FUZZ_SEED) -runs=$$(( $(or $(FUZZ_CI_RUNS_$*),100000) * $(FUZZ_CI_SCALE) )) \
		-reload=0 -print_final_stats=1 \
		-artifact_prefix=$(FUZZ_BUILD)/crash-$*- \
		$(if $(FUZZ_MAX_LEN_$*),-max_len=$(FUZZ_MAX_LEN_$*)) \
		$(FUZZ_BUILD)/ci-$* $(wildcard tests/fuzz_$*_corpus)

SECONDS ?= 60
FUZZ_TIMEOUT ?= 30

.PHONY: fuzz-programs
fuzz-programs:
	@$(MAKE) --no-print-directory SANITIZE=1 programs
	tools/fuzz-programs.sh -b build-san -s $(SECONDS) -r $(FUZZ_SEED) -t $(FUZZ_TIMEOUT)
