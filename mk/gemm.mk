# gemm.mk - mtl's sgemm kernels against BLIS sgemm (lib/nn/gemm.h), one
# thread, on the encoder's shapes; a benchmark, not run by make test.
#
#   make bench-gemm [BENCH_GEMM_ARGS='-r 5 -m small']
#   make bench-gemm BENCH_GEMM_ARGS='-e'    the forward projections with
#       their bias, residual and GELU: passes after the product against
#       the epilogue on each tile

.PHONY: bench-gemm

BENCH_GEMM_ARGS ?=

bench-gemm: $(BUILD)/bench/bench_gemm
	$< $(BENCH_GEMM_ARGS)
