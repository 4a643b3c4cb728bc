# fuzz.mk - coverage-guided fuzzing with libFuzzer (clang).
#
#   make fuzz-mp [FUZZ_SECONDS=60]    the stream reader (msgpack)
#   make fuzz-st                      the safetensors reader
#   make fuzz-tok                     the tokenizer and the task-spec parser
#                                     (also make fuzz-tokenize)
#   make fuzz-input                   the JSONL, CoNLL and TSV readers
#
# A harness is tests/fuzz_NAME.c; FUZZ_SRC_NAME lists the library sources it
# needs (without BLIS or OpenMP).  Builds go to build-fuzz/, the corpus
# grows in build-fuzz/corpus-NAME/, seeded from tests/fuzz_NAME_corpus/ when
# that exists (the committed seeds stay as they are).  tests/fuzz.bats runs
# each harness briefly as part of make test when clang is installed.

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD := build-fuzz
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 \
	-D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DMTL_VERSION='"$(VERSION)"' -Ilib

FUZZ_SRC_mp := lib/mp.c lib/err.c
FUZZ_SRC_st := lib/st.c lib/fs.c lib/err.c
FUZZ_SRC_tok := lib/tok.c lib/tok_uni8.c lib/task.c lib/fs.c lib/err.c
FUZZ_SRC_input := lib/input.c lib/data.c lib/tok.c lib/tok_uni8.c lib/task.c lib/mp.c lib/fs.c lib/err.c
FUZZ_MAX_LEN_st := 4096

.SECONDEXPANSION:
$(FUZZ_BUILD)/fuzz_%: tests/fuzz_%.c $$(FUZZ_SRC_$$*)
	@mkdir -p $(@D)
	$(call say,FUZZCC,$@)$(FUZZ_CC) $(FUZZ_FLAGS) $(PKG_CFLAGS) -o $@ $^ $(PKG_LIBS) -lm

.PRECIOUS: $(FUZZ_BUILD)/fuzz_%
fuzz-%: $(FUZZ_BUILD)/fuzz_%
	@mkdir -p $(FUZZ_BUILD)/corpus-$*
	$< -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
		$(if $(FUZZ_MAX_LEN_$*),-max_len=$(FUZZ_MAX_LEN_$*)) \
		$(FUZZ_BUILD)/corpus-$* $(wildcard tests/fuzz_$*_corpus)

.PHONY: fuzz-tokenize
fuzz-tokenize: fuzz-tok
