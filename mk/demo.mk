# demo.mk - the demo's data set (fixtures/demo/), generated from templates.
#
#   make demo-data    regenerate fixtures/demo/ (needs python3; the files
#                     are committed, so make demo never runs Python)

.PHONY: demo-data
demo-data:
	python3 tools/make_demo_data.py fixtures/demo
