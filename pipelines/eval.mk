# eval.mk - scores a trained model on labelled data and reports.
#
#   make -f pipelines/eval.mk MODEL=out/run/model DATA="test.jsonl ner-test.conll" OUT=out/eval
#
# Streams and results, all in OUT:
#   examples.mpk      DATA tokenized with the model's vocabulary (mtl-tokenize)
#   predictions.mpk   predictions, gold labels, metrics records (mtl-score)
#   report.txt, report.html   per-class and entity scores, confusion matrices,
#                     and the misclassified examples (mtl-report --errors)
# Re-running redoes only what changed (and what a changed TOKENIZE_OPTS or
# REPORT_OPTS affects).  Without MODEL: the demo's trained model
# (out/demo/train/model, trained first when missing).

include pipelines/common.mk

MODEL ?= $(DEMO_MODEL)
DATA ?= $(DEMO_DATA)/test.jsonl
OUT ?= out/eval
THREADS ?= 0
TOKENIZE_OPTS ?=
REPORT_OPTS ?= --errors=10

$(call require,MODEL DATA OUT)

threads := $(if $(filter-out 0,$(THREADS)),--threads $(THREADS))
model_files := $(MODEL)/config.json $(wildcard $(MODEL)/model.safetensors $(MODEL)/heads.safetensors $(MODEL)/tasks.json $(MODEL)/vocab.txt)

.PHONY: eval
eval: $(OUT)/report.txt $(OUT)/report.html
	@cat $(OUT)/report.txt
	@echo "eval: streams in $(OUT)/ (examples.mpk, predictions.mpk); report $(OUT)/report.html"

$(OUT)/examples.mpk: $(DATA) $(model_files) $(call vars,tokenize,$(MODEL) $(DATA) $(TOKENIZE_OPTS)) | mtl-programs
	@mkdir -p $(@D)
	$(MTL_BIN)mtl-tokenize -q $(TOKENIZE_OPTS) --model $(MODEL) $(DATA) >$@.tmp
	@$(commit)

$(OUT)/predictions.mpk: $(OUT)/examples.mpk $(model_files) | mtl-programs
	$(MTL_BIN)mtl-score -q --model $(MODEL) $(threads) $< >$@.tmp
	@$(commit)

$(OUT)/report.txt: $(OUT)/predictions.mpk $(call vars,report,$(REPORT_OPTS)) | mtl-programs
	$(MTL_BIN)mtl-report -q $(REPORT_OPTS) --title "Evaluation of $(MODEL)" $(OUT)/predictions.mpk >$@.tmp
	@$(commit)

$(OUT)/report.html: $(OUT)/predictions.mpk $(call vars,report,$(REPORT_OPTS)) | mtl-programs
	$(MTL_BIN)mtl-report -q $(REPORT_OPTS) --format html --title "Evaluation of $(MODEL)" -o $@ $(OUT)/predictions.mpk
