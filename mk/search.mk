# search.mk - the retrieval benchmark (not a unit test, so not run by make
# test); bench/bench_search.c is built by the Makefile's bench rule.
#
#   make bench-search [BENCH_SEARCH_ARGS=]   queries/s and peak RSS of exact
#                                            top-k search in a 100,000 x 384
#                                            corpus (e.g. BENCH_SEARCH_ARGS='-q 500 -k 10')

.PHONY: bench-search

BENCH_SEARCH_ARGS ?=

bench-search: $(BUILD)/bench/bench_search
	OMP_WAIT_POLICY=PASSIVE $< $(BENCH_SEARCH_ARGS)
