# enc.mk - the encoder benchmark (not a unit test, so not run by make
# test); the safetensors fuzzer is in mk/fuzz.mk.
#
#   make bench-encode [BENCH_ARGS=]  sentences/s and GFLOP/s vs BLIS sgemm

.PHONY: bench-encode

BENCH_BIN := $(BUILD)/bench/bench_encode

$(BUILD)/bench/bench_encode.o: bench/bench_encode.c
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BENCH_BIN): $(BUILD)/bench/bench_encode.o $(LIBMTL)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

bench-encode: $(BENCH_BIN)
	$(BENCH_BIN) $(BENCH_ARGS)

-include $(BUILD)/bench/bench_encode.d
