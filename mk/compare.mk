# compare.mk - mtl beside PyTorch and ONNX Runtime in one interleaved run.
#
#   make bench-compare [BENCH_COMPARE_ARGS='--rounds 5 --work job:small']
#   make bench-compare BENCH_COMPARE_ARGS='--cpu-time --work train'   training:
#       tokens/s, s/step and peak RSS of mtl and PyTorch, bge-small, base
#       and large at 16x64 and 4x512 (add --max-steps 1 for large)
#   make bench-compare BENCH_COMPARE_ARGS='--avx2-only'   every runtime on an
#       AVX2-only CPU, as an AMD Zen 3 is: AVX-512 hidden by bench/avx2only.c
#       (needs CPUID faulting: cpuid_fault in /proc/cpuinfo)
#
# tools/bench_compare.py (its docstring says what each workload measures)
# prints the CPU and its vector flags, the load with every measurement, and
# a table of sentences/s with the ratios.  It needs Debian's python3-torch
# (the reference model, its ONNX export, PyTorch's side), node and npm
# (onnxruntime-node, installed into $(BUILD)/bench/node/), and ../shared
# (bge's vocabulary and the sentences); it writes its models into
# $(BUILD)/bench/compare/.  Never part of make test or make demo.

.PHONY: bench-compare

BENCH_COMPARE_PYTHON ?= /usr/bin/python3
BENCH_COMPARE_ARGS ?=

bench-compare: programs $(BUILD)/bench/bench_encode $(BUILD)/bench/bench_train \
		$(BUILD)/bench/avx2only.so
	$(BENCH_COMPARE_PYTHON) tools/bench_compare.py $(BENCH_COMPARE_ARGS) $(BUILD)

# an LD_PRELOAD shim, not a program: no libmtl, no sanitizer
$(BUILD)/bench/avx2only.so: bench/avx2only.c
	@mkdir -p $(@D)
	$(call say,CC,$@)$(CC) -O2 -Wall -Wextra -Werror -shared -fPIC -o $@ $<
