# demo.mk - make demo: the main job end to end on what the project ships.
#
# A tiny encoder is made from scratch over the demo vocabulary (mtl-init),
# trained on the demo data set (fixtures/demo: topic classification and
# named entities, some sentences labelled for one task only) with
# pipelines/train.mk, scored on its dev split and reported; then the
# trained model embeds a few sentences and compares them (pipelines/
# embed.mk).  About a minute on 2 cores.
#
# With MODEL=path/to/bge-small-en-v1.5 (make model MODEL=BAAI/...) the same
# workflow fine-tunes that encoder instead.

demo_mk := 1
include pipelines/common.mk

DEMO ?= $(DEMO_RUN)
MODEL ?=
DEMO_EPOCHS ?= 3
base := $(if $(MODEL),$(MODEL),$(DEMO)/base)
demo_lr := $(if $(MODEL),5e-5,1e-3)

.PHONY: demo
demo:
	@$(MAKE) --no-print-directory -s programs
	@$(MAKE) --no-print-directory -f pipelines/demo.mk demo-run

.PHONY: demo-run demo-train
demo-run: demo-train | mtl-programs
	@$(MAKE) --no-print-directory -f pipelines/embed.mk MODEL=$(DEMO)/train/model \
		SENTENCES=$(DEMO_DATA)/sentences.jsonl OUT=$(DEMO)/embed
	@echo
	@echo "demo: done.  Everything is in $(DEMO)/:"
	@echo "  base/                  the untrained tiny encoder (mtl-init)"
	@echo "  train/*.mpk            every stream of training (mtl-dump FILE shows one)"
	@echo "  train/model/           the trained multi-task model (Hugging Face layout)"
	@echo "  train/report.html      the training report with charts"
	@echo "  embed/similarity.html  sentence similarities from the trained encoder"

# the training half: the trained model in $(DEMO)/train/model
demo-train: $(base)/config.json | mtl-programs
	@$(MAKE) --no-print-directory -f pipelines/train.mk MODEL=$(base) TASKS=$(DEMO_DATA)/tasks.json \
		TRAIN=$(DEMO_DATA)/train.jsonl DEV=$(DEMO_DATA)/dev.jsonl OUT=$(DEMO)/train \
		EPOCHS=$(DEMO_EPOCHS) BATCH=32 LR=$(demo_lr) EVAL_EVERY=75

$(DEMO)/base/config.json: $(DEMO_DATA)/vocab.txt | mtl-programs
	$(MTL_BIN)mtl-init -q --overwrite -o $(DEMO)/base --vocab $< --layers 2 --hidden 64 --heads 4 --max-position 64 --seed 1
