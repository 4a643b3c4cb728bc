# Test fixtures: a tiny BERT model and golden tensors from the PyTorch
# reference (tools/ref_bert.py; the embedding losses' from tools/ref_emb.py,
# which reads the tiny model make_fixtures.py writes).  The generated files are committed, so
# `make test` never needs Python; only regenerating them does.
#
#   make fixtures        regenerate fixtures/ (Debian's python3-torch)
#   make fixtures-check  regenerate into a scratch directory and compare
#                        byte for byte with the committed fixtures/

FIXTURES_PYTHON ?= /usr/bin/python3

.PHONY: fixtures fixtures-check

fixtures:
	$(call say,GEN,fixtures/)$(FIXTURES_PYTHON) tools/make_fixtures.py fixtures && \
	$(FIXTURES_PYTHON) tools/ref_emb.py fixtures

fixtures-check:
	@tmp=$$(mktemp -d) && \
	$(FIXTURES_PYTHON) tools/make_fixtures.py "$$tmp/fixtures" >/dev/null && \
	$(FIXTURES_PYTHON) tools/ref_emb.py "$$tmp/fixtures" >/dev/null && \
	diff -r "$$tmp/fixtures" fixtures && echo 'fixtures: up to date'; \
	rc=$$?; rm -rf "$$tmp"; exit $$rc
