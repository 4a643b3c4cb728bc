# dist.mk - data-parallel training with MPI (docs/distributed.md).
#
#   make                 also builds build/mtl-step-mpi when MPI is found
#   make MPI=0           never builds it (mtl-step is the same either way)
#   make bench-dist [BENCH_DIST_ARGS=]
#                        2 processes x 1 thread against 1 process x 2
#                        threads, and the share of communication
#
# mtl-step-mpi is cmd/mtl-step.c linked with lib/train/dist_mpi.c, the MPI
# transport of lib/train/dist (lib/train/dist_net.h), compiled against MPI; that
# object comes before libmtl.a on the link line, so it takes the place of
# the archive's one-process transport, lib/train/dist_none.o.  MPI is found by
# pkg-config (ompi-c, then mpi) or, failing that, by asking mpicc.

MPICC ?= mpicc
ifeq ($(MPI),0)
MPI_CFLAGS :=
MPI_LIBS :=
else
MPI_PC := $(firstword $(foreach p,ompi-c mpi,$(shell pkg-config --exists $(p) 2>/dev/null && echo $(p))))
ifneq ($(MPI_PC),)
MPI_CFLAGS := $(shell pkg-config --cflags $(MPI_PC))
MPI_LIBS := $(shell pkg-config --libs $(MPI_PC))
else ifneq ($(shell command -v $(MPICC) 2>/dev/null),)
MPI_CFLAGS := $(shell $(MPICC) --showme:compile 2>/dev/null)
MPI_LIBS := $(shell $(MPICC) --showme:link 2>/dev/null)
endif
endif

.PHONY: bench-dist

ifneq ($(MPI_LIBS),)
MTL_STEP_MPI := $(BUILD)/mtl-step-mpi
PROGRAMS += $(MTL_STEP_MPI)
programs: $(MTL_STEP_MPI)

$(BUILD)/mpi/lib/train/dist_mpi.o: lib/train/dist_mpi.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(call say,CC,$< [MPI])$(CC) $(ALL_CFLAGS) $(MPI_CFLAGS) -MMD -MP -c -o $@ $<

$(MTL_STEP_MPI): $(BUILD)/cmd/mtl-step.o $(BUILD)/mpi/lib/train/dist_mpi.o $(CMD_COMMON_OBJ) $(LIBMTL)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL) $(MPI_LIBS)

$(BUILD)/mpi/bench/bench_allreduce.o: bench/bench_allreduce.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(call say,CC,$< [MPI])$(CC) $(ALL_CFLAGS) $(MPI_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/mpi/bench/bench_allreduce: $(BUILD)/mpi/bench/bench_allreduce.o
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(MPI_LIBS)

bench-dist: $(BUILD)/mpi/bench/bench_allreduce

-include $(BUILD)/mpi/lib/train/dist_mpi.d $(BUILD)/mpi/bench/bench_allreduce.d
endif

# tests/dist.bats compares the weights of two runs with st_cmp
tests: $(BUILD)/tests/st_cmp
$(BUILD)/tests/st_cmp: $(BUILD)/tests/st_cmp.o $(LIBMTL)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

# bench-dist: tools/bench_dist.sh (needs mtl-step-mpi and mpirun)
BENCH_DIST_ARGS ?=
bench-dist: programs
	@test -x $(BUILD)/mtl-step-mpi || { echo "bench-dist: no $(BUILD)/mtl-step-mpi (MPI not found)"; exit 1; }
	tools/bench_dist.sh $(BUILD) $(BENCH_DIST_ARGS)
