# compare-balancing.mk - every task-balancing strategy of mtl-step on the
# demo data under one seed, next to single-task baselines, as one table.
#
#   make -f pipelines/compare-balancing.mk [OUT=out/compare]
#
# (run it without -j for the times: parallel runs share the cores)
#   make -f pipelines/compare-balancing.mk docs    the table into docs/balancing.md
#
# The demo is easy (a tiny model reaches ~100% in seconds), so the
# setting is made harder: a new 1-layer encoder (hidden 32) trained from
# scratch, on the first TRAIN_N training examples only, for EPOCHS
# epochs.  The demo vocabulary tokenizes.  Each run evaluates on the dev
# set at the end; the table gives topic accuracy, ner token macro-F1
# (both from the eval record), the multi-task gain over the single-task
# runs
#
#	dm = (1/T) sum_t (M_mt,t - M_st,t) / M_st,t
#
# and the median milliseconds per step and of the balancer's own part.
# A single-task baseline is the static run with the other task's weight
# 0 (its head then gets no gradient and the encoder sees one task).
#
# Streams: OUT/init/ (the model), OUT/train.batches.mpk, OUT/dev.examples.mpk,
# OUT/steps-RUN.mpk per run, OUT/result-RUN.tsv, OUT/table.md.

include pipelines/common.mk

OUT ?= out/compare
DEMO ?= fixtures/demo
TRAIN_N ?= 1200
EPOCHS ?= 2
BATCH ?= 16
LR ?= 1e-2
SEED ?= 1
THREADS ?= 1
INIT_OPTS ?= --layers 1 --hidden 32 --heads 2 --intermediate 64

RUNS := static uncertainty dwa gradnorm rlw pcgrad cagrad nash \
	gradnorm-out pcgrad-out cagrad-out nash-out pcgrad-every4 \
	contrastive single-topic single-ner

opts.static := --balance static
opts.uncertainty := --balance uncertainty
opts.dwa := --balance dwa
opts.gradnorm := --balance gradnorm
opts.rlw := --balance rlw
opts.pcgrad := --balance pcgrad
opts.cagrad := --balance cagrad
opts.nash := --balance nash
opts.nash-out := --balance nash --grad-at encoder-output
opts.gradnorm-out := --balance gradnorm --grad-at encoder-output
opts.pcgrad-out := --balance pcgrad --grad-at encoder-output
opts.cagrad-out := --balance cagrad --grad-at encoder-output
opts.pcgrad-every4 := --balance pcgrad --balance-every 4
opts.contrastive := --balance static --contrastive 0.1
opts.single-topic := --task-weight ner=0
opts.single-ner := --task-weight topic=0

.PHONY: compare docs
.SECONDARY:
compare: $(OUT)/table.md
	@cat $<

$(OUT)/init/config.json: $(DEMO)/vocab.txt $(DEMO)/tasks.json | mtl-programs
	@mkdir -p $(OUT)
	$(MTL_BIN)mtl-init -q --overwrite --out $(OUT)/init --vocab $(DEMO)/vocab.txt \
		--tasks $(DEMO)/tasks.json $(INIT_OPTS) --seed $(SEED)

$(OUT)/train.examples.mpk: $(DEMO)/train.jsonl $(OUT)/init/config.json | mtl-programs
	head -n $(TRAIN_N) $< | $(MTL_BIN)mtl-tokenize -q --model $(OUT)/init --format jsonl >$@.tmp
	@$(commit)

$(OUT)/dev.examples.mpk: $(DEMO)/dev.jsonl $(OUT)/init/config.json | mtl-programs
	$(MTL_BIN)mtl-tokenize -q --model $(OUT)/init $< >$@.tmp
	@$(commit)

$(OUT)/train.batches.mpk: $(OUT)/train.examples.mpk | mtl-programs
	$(MTL_BIN)mtl-batch -q --batch-size $(BATCH) --epochs $(EPOCHS) --shuffle --seed $(SEED) $< >$@.tmp
	@$(commit)

$(OUT)/steps-%.mpk: $(OUT)/train.batches.mpk $(OUT)/dev.examples.mpk | mtl-programs
	$(MTL_BIN)mtl-step -q --model $(OUT)/init --threads $(THREADS) --lr $(LR) \
		--seed $(SEED) --eval $(OUT)/dev.examples.mpk $(opts.$*) $< >$@.tmp
	@$(commit)

# RUN, topic accuracy, ner macro-F1, median ms/step, median balancer ms
$(OUT)/result-%.tsv: $(OUT)/steps-%.mpk | mtl-programs
	{ printf '%s\t' $*; \
	  $(MTL_BIN)mtl-dump -t eval $< | jq -r '[.tasks.topic.accuracy, .tasks.ner.f1] | @tsv' | tail -n 1 | tr '\n' '\t'; \
	  $(MTL_BIN)mtl-dump -t step $< | jq -s -r \
		'def med: sort | .[length / 2 | floor]; [(map(.ms) | med), (map(.balance_ms // 0) | med)] | @tsv'; \
	} >$@.tmp
	@$(commit)

$(OUT)/table.md: $(foreach r,$(RUNS),$(OUT)/result-$(r).tsv)
	cat $^ | awk -F'\t' ' \
		{ name[NR] = $$1; acc[NR] = $$2; f1[NR] = $$3; ms[NR] = $$4; bms[NR] = $$5 } \
		$$1 == "single-topic" { st_acc = $$2 } \
		$$1 == "single-ner" { st_f1 = $$3 } \
		END { \
			print "| run | topic accuracy | ner macro-F1 | Δm | ms/step | balancer ms/step |"; \
			print "|---|---:|---:|---:|---:|---:|"; \
			for (i = 1; i <= NR; i++) { \
				dm = name[i] ~ /^single/ ? "—" : \
				     sprintf("%+.2f%%", 50 * ((acc[i] - st_acc) / st_acc + (f1[i] - st_f1) / st_f1)); \
				printf "| %s | %.4f | %.4f | %s | %.1f | %.1f |\n", \
					name[i], acc[i], f1[i], dm, ms[i], bms[i] } }' >$@.tmp
	@$(commit)

# replaces the lines between the two markers of docs/balancing.md
docs: $(OUT)/table.md
	awk -v t=$< ' \
		/<!-- compare-balancing:end -->/ { skip = 0 } \
		!skip { print } \
		/<!-- compare-balancing:begin -->/ { while ((getline l < t) > 0) print l; skip = 1 }' \
		docs/balancing.md >docs/balancing.md.tmp
	mv -f docs/balancing.md.tmp docs/balancing.md
