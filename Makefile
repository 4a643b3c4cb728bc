# mtl - multi-task sentence transformer toolkit.
#
#   make              build every program into build/
#   make test         install missing dependencies, build, run every test
#   make check        build and run every test (installs nothing)
#   make demo         install missing dependencies, build, run the demo
#   make deps         install missing Debian packages (apt-get)
#   make install      PREFIX=/usr/local DESTDIR=
#   make clean
#   make SANITIZE=1   build (and test) with ASan and UBSan into build-san/
#   make V=1          show the commands
#
# Every lib/FLOOR/*.c goes into build/libmtl.a (but lib/train/dist_mpi.c: mk/dist.mk),
# every cmd/mtl-*.c becomes build/mtl-*, every tests/test_*.c becomes
# build/tests/test_*.  Feature targets (benchmarks, fuzzers, fixtures,
# mtl-step-mpi) live in mk/*.mk.

VERSION := 0.1.0
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man

ifeq ($(SANITIZE),1)
BUILD ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD ?= build
SANFLAGS :=
endif

CC ?= gcc
# lib/ is in floors, one folder each (docs/architecture.md; tools/layers.sh
# checks that no module includes a header from a floor above its own).
# Headers are included by name alone, so every floor is on the path.
LIB_INC := $(patsubst %/,-I%,$(sort $(wildcard lib/*/)))
CFLAGS ?= -O2 -g
# AVX2 + FMA: fast, and valgrind still runs it (it lacks AVX-512)
ARCH ?= -march=x86-64-v3
# -fno-trapping-math lets gcc turn float selects (x < a ? a : x) into
# vector blends, so the exp/erfc polynomials of GELU and softmax vectorise;
# unlike -ffast-math it changes no rounding and allows no reordering.
MTL_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra \
	-Wno-unused-parameter -fno-trapping-math -fopenmp $(ARCH) \
	-DMTL_VERSION='"$(VERSION)"' $(LIB_INC) $(SANFLAGS)

# BLIS: Debian's libblis-dev ships no pkg-config file.  Its headers sit in
# a multiarch directory chosen by the threading variant (openmp, pthread,
# serial); -lblis resolves through Debian's alternatives.
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
BLIS_INC ?= $(firstword $(dir $(wildcard \
	/usr/include/$(MULTIARCH)/blis.h \
	/usr/include/$(MULTIARCH)/blis-openmp/blis.h \
	/usr/include/$(MULTIARCH)/blis-pthread/blis.h \
	/usr/include/blis/blis.h /usr/local/include/blis/blis.h)))
BLIS_LIBS ?= -lblis

PKGS := msgpack libutf8proc jansson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(or $(shell pkg-config --libs $(PKGS) 2>/dev/null),-lmsgpackc -lutf8proc -ljansson)

# -isystem: BLIS's headers are not ours to warn about
ALL_CFLAGS = $(MTL_CFLAGS) $(if $(BLIS_INC),-isystem $(BLIS_INC)) $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) $(BLIS_LIBS) -lm -lpthread
ALL_LDFLAGS = -fopenmp $(SANFLAGS) $(LDFLAGS)

# lib/train/dist_mpi.c needs MPI: mk/dist.mk builds it for mtl-step-mpi alone
LIB_SRC := $(filter-out lib/train/dist_mpi.c,$(wildcard lib/*/*.c))
CMD_SRC := $(wildcard cmd/mtl-*.c)
CMD_COMMON := $(filter-out $(CMD_SRC),$(wildcard cmd/*.c))
TEST_SRC := $(wildcard tests/test_*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CMD_COMMON_OBJ := $(CMD_COMMON:%.c=$(BUILD)/%.o)
PROGRAMS := $(CMD_SRC:cmd/%.c=$(BUILD)/%)
TESTS := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
LIBMTL := $(BUILD)/libmtl.a

ifeq ($(V),1)
Q :=
say :=
else
Q := @
say = @printf '  %-6s %s\n' $(1) $(2);
endif

.PHONY: all programs tests test check test-run deps demo install uninstall clean FORCE
.DEFAULT_GOAL := all
# keep objects: they are prerequisites of pattern rules, not intermediates
.SECONDARY:

all: programs tests

programs: $(PROGRAMS)
tests: $(TESTS)

# Objects depend on the flags they were built with: $(BUILD)/.flags holds
# them and changes only when they do (CFLAGS, ARCH, SANITIZE, CC, LDFLAGS),
# which rebuilds everything (as git's GIT-CFLAGS does).
FLAGS_FILE := $(BUILD)/.flags
TRACK_FLAGS = $(subst ','\'',$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $(LDLIBS_ALL))

$(FLAGS_FILE): FORCE
	@mkdir -p $(@D)
	@flags='$(TRACK_FLAGS)'; \
	if [ x"$$flags" != x"$$(cat $@ 2>/dev/null)" ]; then \
		[ ! -e $@ ] || echo "  * new build flags: rebuilding"; \
		printf '%s\n' "$$flags" >$@; \
	fi

$(BUILD)/%.o: %.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(LIBMTL): $(LIB_OBJ)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(BUILD)/mtl-%: $(BUILD)/cmd/mtl-%.o $(CMD_COMMON_OBJ) $(LIBMTL)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o $(LIBMTL)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

# benchmarks: bench/NAME.c -> build/bench/NAME (run by the bench-* targets)
$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIBMTL)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

# make test: first the dependencies, then a fresh make (so that the probes
# above see what deps installed), then every test.  make check only builds
# and tests: it installs nothing.
test: deps
	@$(MAKE) --no-print-directory test-run

check: test-run

test-run: all
	@tests/run.sh $(BUILD)

deps:
	@tools/deps.sh

demo: deps
	@$(MAKE) --no-print-directory -f pipelines/demo.mk demo

install: programs
	install -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(MANDIR)/man1"
	install -m 755 $(PROGRAMS) "$(DESTDIR)$(BINDIR)"
	install -m 644 $(wildcard docs/man/*.1) "$(DESTDIR)$(MANDIR)/man1"

uninstall:
	rm -f $(addprefix "$(DESTDIR)$(BINDIR)"/,$(notdir $(PROGRAMS)))
	rm -f $(addprefix "$(DESTDIR)$(MANDIR)/man1"/,$(notdir $(wildcard docs/man/*.1)))

clean:
	rm -rf build build-san build-fuzz

-include mk/*.mk
-include $(LIB_OBJ:.o=.d) $(CMD_COMMON_OBJ:.o=.d) $(PROGRAMS:$(BUILD)/%=$(BUILD)/cmd/%.d) $(TESTS:=.d) \
	$(patsubst %.c,$(BUILD)/%.d,$(wildcard bench/*.c))
