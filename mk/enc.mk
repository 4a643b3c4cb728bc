# enc.mk - encoder feature targets: the safetensors fuzzer and the encoder
# benchmark (neither is a unit test, so neither is picked up by make test).
#
#   make fuzz-st [FUZZ_SECONDS=60]   libFuzzer + ASan/UBSan on lib/st.c
#   make bench-encode [BENCH_ARGS=]  sentences/s and GFLOP/s vs BLIS sgemm

.PHONY: fuzz-st bench-encode

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BIN := $(BUILD)/fuzz/fuzz_st

$(FUZZ_BIN): tests/fuzz_st.c lib/st.c lib/err.c lib/st.h lib/err.h
	@mkdir -p $(@D) $(BUILD)/fuzz/corpus
	$(call say,FUZZCC,$@)$(FUZZ_CC) -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
		-g -O1 -Ilib $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -o $@ tests/fuzz_st.c lib/st.c lib/err.c $(PKG_LIBS)

# New corpus entries go to the build tree; the seeds in tests/ stay as
# committed.
fuzz-st: $(FUZZ_BIN)
	$(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		$(BUILD)/fuzz/corpus tests/fuzz_st_corpus

BENCH_BIN := $(BUILD)/bench/bench_encode

$(BUILD)/bench/bench_encode.o: bench/bench_encode.c
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BENCH_BIN): $(BUILD)/bench/bench_encode.o $(LIBMTL)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

bench-encode: $(BENCH_BIN)
	$(BENCH_BIN) $(BENCH_ARGS)

-include $(BUILD)/bench/bench_encode.d
