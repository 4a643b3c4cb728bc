# train.mk - the training benchmark (not a unit test, so not run by make
# test); bench/bench_train.c is built by the Makefile's bench rule.
#
#   make bench-train [BENCH_TRAIN_ARGS=]   seconds per step, tokens/s, peak
#                                          RSS and GFLOP/s against BLIS sgemm
#                                          (e.g. BENCH_TRAIN_ARGS='-m small -s 5')
#   /usr/bin/python3 tools/bench_torch.py --modes train   PyTorch's side

.PHONY: bench-train

BENCH_TRAIN_ARGS ?=

bench-train: $(BUILD)/bench/bench_train
	OMP_WAIT_POLICY=PASSIVE $< $(BENCH_TRAIN_ARGS)
