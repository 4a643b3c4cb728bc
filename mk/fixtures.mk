# Test fixtures: a tiny BERT model and golden tensors from the PyTorch
# reference (tools/ref_bert.py; the embedding losses' from tools/ref_emb.py,
# which reads the tiny model make_fixtures.py writes), and the evaluators'
# reference figures (tools/ref_embeval.py, numpy only).  The generated
# files are committed, so
# `make test` never needs Python; only regenerating them does.
#
#   make fixtures        regenerate fixtures/ (Debian's python3-torch)
#   make fixtures-embeval  regenerate fixtures/embeval/ only (numpy)
#   make fixtures-check  regenerate into a scratch directory and compare
#                        with the committed fixtures/: byte for byte, or
#                        up to float32's last bits where this CPU's torch
#                        kernels round differently (tools/fixtures_diff.py)

FIXTURES_PYTHON ?= /usr/bin/python3

.PHONY: fixtures fixtures-check fixtures-embeval

fixtures: fixtures-embeval
	$(call say,GEN,fixtures/)$(FIXTURES_PYTHON) tools/make_fixtures.py fixtures && \
	$(FIXTURES_PYTHON) tools/ref_emb.py fixtures

fixtures-embeval:
	$(call say,GEN,fixtures/embeval/)$(FIXTURES_PYTHON) tools/ref_embeval.py fixtures/embeval/ref.txt

fixtures-check:
	@tmp=$$(mktemp -d) && \
	$(FIXTURES_PYTHON) tools/make_fixtures.py "$$tmp/fixtures" >/dev/null && \
	$(FIXTURES_PYTHON) tools/ref_emb.py "$$tmp/fixtures" >/dev/null && \
	$(FIXTURES_PYTHON) tools/ref_embeval.py "$$tmp/fixtures/embeval/ref.txt" >/dev/null && \
	$(FIXTURES_PYTHON) tools/fixtures_diff.py --ignore tokref --ignore demo --ignore bge-tokenizer "$$tmp/fixtures" fixtures; \
	rc=$$?; rm -rf "$$tmp"; exit $$rc
