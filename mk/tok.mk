# tok.mk - the tokenizer's benchmark (its fuzzer is in mk/fuzz.mk).
#
#   make bench-tokenize [BENCH_MB=50] [BENCH_RUNS=3]
#                                          tokenizer throughput on one core
#
# The benchmark generates its own text (tools/gen-bench-text.pl, a fixed
# seed) into build/bench/, so it needs nothing outside the repository; it
# tokenizes with the model in BENCH_MODEL when that holds a vocabulary,
# else with a vocabulary generated from the same word list.

.PHONY: bench-tokenize

BENCH_MB ?= 50
BENCH_RUNS ?= 3
BENCH_MODEL ?= ../shared/models/bge-large-en-v1.5

$(BUILD)/bench/text-$(BENCH_MB).txt: tools/gen-bench-text.pl
	@mkdir -p $(@D)
	$(call say,GEN,$@)perl tools/gen-bench-text.pl --mb $(BENCH_MB) --vocab $(BUILD)/bench/vocab.txt >$@

bench-tokenize: $(BUILD)/bench/bench_tok $(BUILD)/bench/text-$(BENCH_MB).txt
	@$(BUILD)/bench/bench_tok $(BENCH_RUNS) $(BUILD)/bench/text-$(BENCH_MB).txt \
		$(if $(wildcard $(BENCH_MODEL)/vocab.txt $(BENCH_MODEL)/tokenizer.json),$(BENCH_MODEL),$(BUILD)/bench)

# make bench-data [BENCH_SENTENCES=1000000]: mtl-tokenize | mtl-batch at
# scale (throughput and peak memory, in memory and streaming).
.PHONY: bench-data
BENCH_SENTENCES ?= 1000000
bench-data: programs
	@tools/bench_data.sh $(BUILD) fixtures/bge-tokenizer/vocab.txt $(BENCH_SENTENCES)
