# demo.mk - make demo: the main job, end to end, on data the project makes.
#
# Until the tokenizer and the encoder land this is the stream round trip:
# a hand-made stream packed, summarised and shown again.

BUILD ?= build
DEMO ?= demo

.PHONY: demo
demo:
	@$(MAKE) --no-print-directory -s programs
	@mkdir -p $(DEMO)
	$(BUILD)/mtl-dump --pack tests/data/hand.jsonl >$(DEMO)/examples.mpk
	$(BUILD)/mtl-dump --summary $(DEMO)/examples.mpk
	$(BUILD)/mtl-dump --type example $(DEMO)/examples.mpk
	@echo "demo: the stream is in $(DEMO)/examples.mpk"
