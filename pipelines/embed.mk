# embed.mk - sentences in, sentence embeddings and a similarity report out.
#
#   make -f pipelines/embed.mk MODEL=models/bge-large-en-v1.5 \
#        SENTENCES=sentences.jsonl OUT=out/embed
#
# SENTENCES is JSONL with a "text" field ({"id": ..., "text": ...} per line).
# Every intermediate stream stays in OUT for mtl-dump:
#   OUT/examples.mpk     token ids            (mtl-tokenize)
#   OUT/embeddings.mpk   one vector per text  (mtl-score --embed)
#   OUT/similarity.txt   cosine-similarity matrix (mtl-report), and .html
# Re-running redoes only what changed.  Without MODEL: the demo's trained
# model (out/demo/train/model, trained first when missing).

include pipelines/common.mk

MODEL ?= $(DEMO_MODEL)
SENTENCES ?= $(DEMO_DATA)/sentences.jsonl
OUT ?= out/embed
THREADS ?= 0

$(call require,MODEL SENTENCES OUT)

.PHONY: embed
embed: $(OUT)/similarity.txt $(OUT)/similarity.html
	@cat $(OUT)/similarity.txt
	@echo "embed: streams in $(OUT)/ (examples.mpk, embeddings.mpk), report $(OUT)/similarity.html"

$(OUT)/examples.mpk: $(SENTENCES) $(MODEL)/config.json $(wildcard $(MODEL)/vocab.txt $(MODEL)/tokenizer.json) \
		$(call vars,tokenize,$(MODEL) $(SENTENCES)) | mtl-programs
	@mkdir -p $(@D)
	$(MTL_BIN)mtl-tokenize -q --model $(MODEL) $(SENTENCES) >$@.tmp
	@$(commit)

$(OUT)/embeddings.mpk: $(OUT)/examples.mpk $(wildcard $(MODEL)/model.safetensors) | mtl-programs
	$(MTL_BIN)mtl-score -q --model $(MODEL) --embed $(if $(filter-out 0,$(THREADS)),--threads $(THREADS)) $< >$@.tmp
	@$(commit)

$(OUT)/similarity.txt: $(OUT)/embeddings.mpk | mtl-programs
	$(MTL_BIN)mtl-report -q --title "Sentence similarity" $< >$@.tmp
	@$(commit)

$(OUT)/similarity.html: $(OUT)/embeddings.mpk | mtl-programs
	$(MTL_BIN)mtl-report -q --format html --title "Sentence similarity" -o $@ $<
