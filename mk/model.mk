# model.mk - downloading pretrained encoders from the Hugging Face Hub.
#
#   make model MODEL=BAAI/bge-large-en-v1.5 [MODELS_DIR=models]
#
# Fetches the files mtl reads into $(MODELS_DIR)/NAME, checks each against
# the Hub's sizes and hashes, and loads the result once with mtl-init to be
# sure it is a model mtl can use.

MODEL ?= BAAI/bge-large-en-v1.5
MODELS_DIR ?= models

.PHONY: model
model: programs
	tools/fetch_model.sh $(MODEL) $(MODELS_DIR)/$(notdir $(MODEL))
	@tmp=$$(mktemp -d) && $(BUILD)/mtl-init -q --encoder $(MODELS_DIR)/$(notdir $(MODEL)) -o $$tmp && \
	rm -rf $$tmp && echo "model: $(MODELS_DIR)/$(notdir $(MODEL)) loads; use --model $(MODELS_DIR)/$(notdir $(MODEL))"
