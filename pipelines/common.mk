# common.mk - shared by the workflows in pipelines/.
#
# Programs come from build/ when run in the source tree, else from PATH
# (after make install).  In the source tree with the default MTL_BIN, the
# programs are built first (every stage has the order-only prerequisite
# mtl-programs; a no-op when they are current).  Every stage writes to a
# temporary file renamed into place, so an interrupted run never leaves a
# half-written stream that make would take for finished.

in_tree := $(wildcard cmd/mtl-step.c)
ifeq ($(origin MTL_BIN),undefined)
MTL_BIN := $(if $(in_tree),build/,)
build_programs := $(in_tree)
endif
.DELETE_ON_ERROR:

.PHONY: mtl-programs
mtl-programs:
	$(if $(build_programs),@$(MAKE) --no-print-directory -s -f Makefile programs)

# run CMD >TARGET: write $@ through $@.tmp
define commit
mv -f $@.tmp $@
endef

# $(call require,VAR ...): stops when a variable is empty (an empty file
# list would make a program read the terminal).
require = $(foreach v,$(1),$(if $(strip $($(v))),,$(error $(v) is empty: give $(v)=... (see the top of $(firstword $(MAKEFILE_LIST))))))

# $(call vars,NAME,VALUES): the file OUT/.NAME.vars holding VALUES, rewritten
# only when they change.  make sees files, not variables: a stage that lists
# it as a prerequisite re-runs when one of its settings (LR, SEED, *_OPTS)
# changes, and only then.  A dry run (make -n, make -q) writes nothing: a
# changed value adds the phony prerequisite mtl-vars-changed instead.
dry_run := $(findstring n,$(firstword -$(MAKEFLAGS)))$(findstring q,$(firstword -$(MAKEFLAGS)))
vars = $(shell mkdir -p '$(OUT)' && f='$(OUT)/.$(1).vars' v='$(subst ','\'',$(strip $(2)))'; \
	if [ -f "$$f" ] && [ "$$(cat "$$f")" = "$$v" ]; then echo "$$f"; \
	elif [ -n '$(dry_run)' ]; then echo mtl-vars-changed; \
	else printf '%s\n' "$$v" >"$$f" && echo "$$f"; fi)
.PHONY: mtl-vars-changed
mtl-vars-changed: ;

# The demo's models, the defaults of the workflows, made on first use by
# pipelines/demo.mk (DEMO=$(DEMO_RUN)): its untrained tiny encoder over the
# demo vocabulary, and that encoder trained on the demo data.
DEMO_RUN ?= out/demo
DEMO_DATA := fixtures/demo
DEMO_BASE := $(DEMO_RUN)/base
DEMO_MODEL := $(DEMO_RUN)/train/model

ifndef demo_mk
$(DEMO_BASE)/config.json: | mtl-programs
	@$(MAKE) --no-print-directory -f pipelines/demo.mk DEMO=$(DEMO_RUN) $@

$(DEMO_MODEL)/config.json: | mtl-programs
	@$(MAKE) --no-print-directory -f pipelines/demo.mk DEMO=$(DEMO_RUN) demo-train
endif

# the including workflow's first target stays its default goal
.DEFAULT_GOAL :=
