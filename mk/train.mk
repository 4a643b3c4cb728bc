# train.mk - the training benchmark (not a unit test, so not part of
# make test).
#
#   make bench-train [BENCH_TRAIN_ARGS=]   seconds per step, tokens/s, peak
#                                          RSS and GFLOP/s against BLIS sgemm
#                                          (e.g. BENCH_TRAIN_ARGS='-m small -s 5')
#   /usr/bin/python3 tools/bench_torch.py --modes train   PyTorch's side

.PHONY: bench-train

BENCH_TRAIN_BIN := $(BUILD)/bench/bench_train
BENCH_TRAIN_ARGS ?=

$(BUILD)/bench/bench_train.o: bench/bench_train.c
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BENCH_TRAIN_BIN): $(BUILD)/bench/bench_train.o $(LIBMTL)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

bench-train: $(BENCH_TRAIN_BIN)
	OMP_WAIT_POLICY=PASSIVE $(BENCH_TRAIN_BIN) $(BENCH_TRAIN_ARGS)

-include $(BUILD)/bench/bench_train.d
