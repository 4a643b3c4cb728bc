# train.mk - the training benchmarks (not a unit test, so not run by make
# test); bench/bench_train.c and bench_emb.c are built by the Makefile's bench rule.
#
#   make bench-train [BENCH_TRAIN_ARGS=]   seconds per step, tokens/s, peak
#                                          RSS and GFLOP/s against BLIS sgemm
#                                          (e.g. BENCH_TRAIN_ARGS='-m small -s 5')
#   /usr/bin/python3 tools/bench_torch.py --modes train   PyTorch's side
#   make bench-compare BENCH_COMPARE_ARGS='--cpu-time --work train'
#                                          both in one interleaved run, with
#                                          the ratios (mk/compare.mk)
#   make bench-emb [BENCH_EMB_ARGS=]       the embedding losses' share of a
#                                          step (e.g. BENCH_EMB_ARGS='-c -t 1')

.PHONY: bench-train bench-emb

BENCH_TRAIN_ARGS ?=

bench-train: $(BUILD)/bench/bench_train
	OMP_WAIT_POLICY=PASSIVE $< $(BENCH_TRAIN_ARGS)

# the embedding losses' share of a bge-small training step (bench/bench_emb.c)
BENCH_EMB_ARGS ?=

bench-emb: $(BUILD)/bench/bench_emb
	OMP_WAIT_POLICY=PASSIVE $< $(BENCH_EMB_ARGS)
