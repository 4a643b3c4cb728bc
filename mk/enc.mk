# enc.mk - the encoder benchmark (not a unit test, so not run by make
# test); the safetensors fuzzer is in mk/fuzz.mk.
#
#   make bench-encode [BENCH_ARGS=]  sentences/s and GFLOP/s vs BLIS sgemm

.PHONY: bench-encode

bench-encode: $(BUILD)/bench/bench_encode
	$< $(BENCH_ARGS)
