# train.mk - the training workflow: tokenize, batch, train, score on dev,
# report.  Every stream stays in OUT for mtl-dump; re-running redoes only
# what changed (a new TRAIN file re-tokenizes, re-batches and re-trains).
#
#   make -f pipelines/train.mk MODEL=models/bge-small-en-v1.5 TASKS=tasks.json \
#        TRAIN="train.jsonl ner.conll" DEV="dev.jsonl ner-dev.conll" OUT=out/run
#
# MODEL   an encoder directory (Hugging Face BERT) or an mtl model
# TASKS   the task spec; empty when MODEL already has tasks.json and heads
# TRAIN   training files (.jsonl, .conll, .tsv); several are combined, and
#         each may be labelled for some of the tasks only
# DEV     development files, evaluated during training and scored after it
# EPOCHS, BATCH, LR, WARMUP (a ratio), SEED, THREADS; extra options for each
# program in TOKENIZE_OPTS, BATCH_OPTS, STEP_OPTS, SCORE_OPTS, REPORT_OPTS.
# Changing one re-runs the stages it affects (OUT/.STAGE.vars hold them).
# Without MODEL: the demo's tiny encoder (out/demo/base, made first), with
# TASKS=fixtures/demo/tasks.json and LR=1e-3, on the demo data.
#
# Streams and results, all in OUT:
#   init/                   the model training starts from (mtl-init)
#   train.examples.mpk      TRAIN tokenized, labels aligned (mtl-tokenize)
#   dev.examples.mpk        DEV tokenized
#   train.batches.mpk       padded, shuffled batches, EPOCHS of them (mtl-batch)
#   steps.mpk               one record per step, and evals (mtl-step)
#   model/                  the trained model
#   dev.predictions.mpk     the trained model's predictions on DEV (mtl-score)
#   report.txt, report.html the report (mtl-report)

include pipelines/common.mk

# The defaults run on a fresh clone: the demo's tiny encoder (made on first
# use) trained on the demo data with the demo's tasks.
ifeq ($(origin MODEL),undefined)
MODEL := $(DEMO_BASE)
TASKS ?= $(DEMO_DATA)/tasks.json
LR ?= 1e-3
endif
TASKS ?=
TRAIN ?= $(DEMO_DATA)/train.jsonl
DEV ?= $(DEMO_DATA)/dev.jsonl
OUT ?= out/train
EPOCHS ?= 3
BATCH ?= 32
LR ?= 5e-5
WARMUP ?= 0.1
SEED ?= 1
THREADS ?= 0
EVAL_EVERY ?= 100
TOKENIZE_OPTS ?=
BATCH_OPTS ?= --bucket
STEP_OPTS ?=
SCORE_OPTS ?=
REPORT_OPTS ?=

$(call require,MODEL TRAIN DEV OUT EPOCHS BATCH LR SEED)
ifeq ($(strip $(TASKS))$(wildcard $(MODEL)/tasks.json),)
$(error MODEL=$(MODEL) has no tasks.json: give TASKS=tasks.json)
endif

threads := $(if $(filter-out 0,$(THREADS)),--threads $(THREADS))
model_files := $(MODEL)/config.json $(wildcard $(MODEL)/model.safetensors $(MODEL)/tasks.json $(MODEL)/heads.safetensors)

.PHONY: train
train: $(OUT)/report.txt $(OUT)/report.html
	@cat $(OUT)/report.txt
	@echo "train: the model is in $(OUT)/model/; every stream is in $(OUT)/ (mtl-dump FILE shows one); report: $(OUT)/report.html"

$(OUT)/init/config.json: $(model_files) $(TASKS) $(call vars,init,$(MODEL) $(TASKS) $(SEED)) | mtl-programs
	@mkdir -p $(OUT)
	$(MTL_BIN)mtl-init -q --overwrite --encoder $(MODEL) $(if $(TASKS),--tasks $(TASKS) --seed $(SEED)) -o $(OUT)/init
	$(if $(TASKS),,@[ -f $(OUT)/init/tasks.json ] || cp $(MODEL)/tasks.json $(MODEL)/heads.safetensors $(OUT)/init/)

$(OUT)/train.examples.mpk: $(TRAIN) $(OUT)/init/config.json $(call vars,tokenize-train,$(TRAIN) $(TOKENIZE_OPTS)) | mtl-programs
	$(MTL_BIN)mtl-tokenize $(TOKENIZE_OPTS) --model $(OUT)/init $(TRAIN) >$@.tmp
	@$(commit)

$(OUT)/dev.examples.mpk: $(DEV) $(OUT)/init/config.json $(call vars,tokenize-dev,$(DEV) $(TOKENIZE_OPTS)) | mtl-programs
	$(MTL_BIN)mtl-tokenize -q $(TOKENIZE_OPTS) --model $(OUT)/init $(DEV) >$@.tmp
	@$(commit)

$(OUT)/train.batches.mpk: $(OUT)/train.examples.mpk $(call vars,batch,$(BATCH) $(EPOCHS) $(SEED) $(BATCH_OPTS)) | mtl-programs
	$(MTL_BIN)mtl-batch -q --batch-size $(BATCH) --epochs $(EPOCHS) --shuffle --seed $(SEED) $(BATCH_OPTS) $< >$@.tmp
	@$(commit)

$(OUT)/steps.mpk: $(OUT)/train.batches.mpk $(OUT)/dev.examples.mpk \
		$(call vars,step,$(LR) $(WARMUP) $(SEED) $(EVAL_EVERY) $(STEP_OPTS)) | mtl-programs
	$(MTL_BIN)mtl-step --model $(OUT)/init --out $(OUT)/model --lr $(LR) --warmup-ratio $(WARMUP) \
		--seed $(SEED) $(threads) --eval $(OUT)/dev.examples.mpk --eval-every $(EVAL_EVERY) \
		$(STEP_OPTS) $< >$@.tmp
	@$(commit)

$(OUT)/dev.predictions.mpk: $(OUT)/steps.mpk $(OUT)/dev.examples.mpk $(call vars,score,$(SCORE_OPTS)) | mtl-programs
	$(MTL_BIN)mtl-score -q --model $(OUT)/model $(threads) $(SCORE_OPTS) $(OUT)/dev.examples.mpk >$@.tmp
	@$(commit)

$(OUT)/report.txt: $(OUT)/steps.mpk $(OUT)/dev.predictions.mpk $(call vars,report,$(REPORT_OPTS)) | mtl-programs
	$(MTL_BIN)mtl-report -q $(REPORT_OPTS) --title "Training run $(OUT)" $(filter %.mpk,$^) >$@.tmp
	@$(commit)

$(OUT)/report.html: $(OUT)/steps.mpk $(OUT)/dev.predictions.mpk $(call vars,report,$(REPORT_OPTS)) | mtl-programs
	$(MTL_BIN)mtl-report -q $(REPORT_OPTS) --format html --title "Training run $(OUT)" -o $@ $(filter %.mpk,$^)
