# train.mk - the training workflow: tokenize, batch, train, score on dev,
# report.  Every stream stays in OUT for mtl-dump; re-running redoes only
# what changed (a new TRAIN file re-tokenizes, re-batches and re-trains).
#
#   make -f pipelines/train.mk MODEL=DIR TASKS=tasks.json \
#        TRAIN="train.jsonl more.conll" DEV=dev.jsonl OUT=out/run
#
# MODEL   an encoder directory (Hugging Face BERT) or an mtl model
# TASKS   the task spec; empty when MODEL already has tasks.json
# TRAIN   training files (.jsonl, .conll, .tsv; several are combined, each
#         may be labelled for other tasks)
# DEV     development files, scored after training
# EPOCHS, BATCH, LR, SEED, THREADS, and extra options for each program:
# BATCH_OPTS (mtl-batch), STEP_OPTS (mtl-step), REPORT_OPTS (mtl-report)
#
# Streams and results:
#   OUT/init/                      the model training starts from
#   OUT/train-NAME.examples.mpk    each TRAIN file tokenized (mtl-tokenize)
#   OUT/dev-NAME.examples.mpk      each DEV file tokenized
#   OUT/train.batches.mpk          padded, shuffled batches (mtl-batch)
#   OUT/steps.mpk                  one record per step, evals (mtl-step)
#   OUT/model/                     the trained model
#   OUT/dev.predictions.mpk        predictions on DEV (mtl-score)
#   OUT/report.txt, report.html    the report (mtl-report)

include pipelines/common.mk

MODEL ?= fixtures/tiny
TASKS ?=
TRAIN ?= fixtures/demo/train.jsonl
DEV ?= fixtures/demo/dev.jsonl
OUT ?= out/train
EPOCHS ?= 3
BATCH ?= 32
LR ?= 5e-5
SEED ?= 1
THREADS ?= 0
EVAL_EVERY ?= 100
BATCH_OPTS ?= --bucket
STEP_OPTS ?=
REPORT_OPTS ?=

threads := $(if $(filter-out 0,$(THREADS)),--threads $(THREADS))
init_deps := $(wildcard $(MODEL)/config.json $(MODEL)/model.safetensors) $(TASKS)
train_ex := $(foreach f,$(TRAIN),$(OUT)/train-$(basename $(notdir $(f))).examples.mpk)
dev_ex := $(foreach f,$(DEV),$(OUT)/dev-$(basename $(notdir $(f))).examples.mpk)

.PHONY: train
train: $(OUT)/report.txt $(OUT)/report.html
	@cat $(OUT)/report.txt
	@echo "train: model in $(OUT)/model/; streams in $(OUT)/ (see pipelines/train.mk); report $(OUT)/report.html"

$(OUT)/init/config.json: $(init_deps)
	@mkdir -p $(OUT)
	$(MTL_BIN)mtl-init -q -e $(MODEL) $(if $(TASKS),--tasks $(TASKS)) -o $(OUT)/init

# one tokenizing rule per input file (names may repeat across directories
# only if their base names differ)
define tokenize_rule
$(OUT)/$(1)-$(basename $(notdir $(2))).examples.mpk: $(2) $(OUT)/init/config.json
	$(MTL_BIN)mtl-tokenize -q --model $(OUT)/init $(2) >$$@.tmp
	@mv -f $$@.tmp $$@
endef
$(foreach f,$(TRAIN),$(eval $(call tokenize_rule,train,$(f))))
$(foreach f,$(DEV),$(eval $(call tokenize_rule,dev,$(f))))

$(OUT)/train.batches.mpk: $(train_ex)
	$(MTL_BIN)mtl-batch -q --batch-size $(BATCH) --epochs $(EPOCHS) --shuffle --seed $(SEED) $(BATCH_OPTS) $^ >$@.tmp
	@$(commit)

$(OUT)/dev.examples.mpk: $(dev_ex)
	$(MTL_BIN)mtl-batch -q --batch-size 1 $^ >/dev/null # same vocabulary and tasks?
	@cp $(firstword $^) $@

$(OUT)/steps.mpk: $(OUT)/train.batches.mpk $(OUT)/init/config.json $(firstword $(dev_ex))
	$(MTL_BIN)mtl-step --model $(OUT)/init --out $(OUT)/model --lr $(LR) --seed $(SEED) $(threads) \
		$(if $(dev_ex),--eval $(firstword $(dev_ex)) --eval-every $(EVAL_EVERY)) $(STEP_OPTS) $< >$@.tmp
	@$(commit)

$(OUT)/dev.predictions.mpk: $(OUT)/steps.mpk $(dev_ex)
	$(MTL_BIN)mtl-score -q --model $(OUT)/model $(threads) $(dev_ex) >$@.tmp
	@$(commit)

$(OUT)/report.txt: $(OUT)/steps.mpk $(OUT)/dev.predictions.mpk
	$(MTL_BIN)mtl-report -q $(REPORT_OPTS) --title "Training $(notdir $(OUT))" $^ >$@.tmp
	@$(commit)

$(OUT)/report.html: $(OUT)/steps.mpk $(OUT)/dev.predictions.mpk
	$(MTL_BIN)mtl-report -q $(REPORT_OPTS) --format html --title "Training $(notdir $(OUT))" -o $@ $^
