# tok.mk - the tokenizer's fuzzer and benchmark.
#
#   make fuzz-tokenize [FUZZ_SECONDS=60]   libFuzzer run of tests/fuzz_tok.c
#                                          (also `make fuzz-tok`; needs clang)
#   make bench-tokenize [BENCH_MB=50] [BENCH_RUNS=3]
#                                          tokenizer throughput on one core
#
# The benchmark generates its own text (tools/gen-bench-text.pl, a fixed
# seed) into build/bench/, so it needs nothing outside the repository; it
# tokenizes with the model in BENCH_MODEL when that holds a vocabulary,
# else with a vocabulary generated from the same word list.

# The build rule for build-fuzz/fuzz_% and FUZZ_FLAGS are in mk/fuzz.mk;
# these defaults only matter if this file is read first.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SRC_tok := lib/tok.c lib/tok_uni8.c lib/task.c lib/fs.c lib/err.c

.PHONY: fuzz-tokenize bench-tokenize
fuzz-tokenize: $(FUZZ_BUILD)/fuzz_tok
	@mkdir -p $(FUZZ_BUILD)/corpus-tok
	$< -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(FUZZ_BUILD)/corpus-tok

BENCH_MB ?= 50
BENCH_RUNS ?= 3
BENCH_MODEL ?= ../shared/models/bge-large-en-v1.5

$(BUILD)/bench/text-$(BENCH_MB).txt: tools/gen-bench-text.pl
	@mkdir -p $(@D)
	$(call say,GEN,$@)perl tools/gen-bench-text.pl --mb $(BENCH_MB) --vocab $(BUILD)/bench/vocab.txt >$@

bench-tokenize: $(BUILD)/tests/bench_tok $(BUILD)/bench/text-$(BENCH_MB).txt
	@$(BUILD)/tests/bench_tok $(BENCH_RUNS) $(BUILD)/bench/text-$(BENCH_MB).txt \
		$(if $(wildcard $(BENCH_MODEL)/vocab.txt $(BENCH_MODEL)/tokenizer.json),$(BENCH_MODEL),$(BUILD)/bench)

$(BUILD)/tests/bench_tok: $(BUILD)/tests/bench_tok.o $(LIBMTL)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL)
