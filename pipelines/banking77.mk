# banking77.mk - what an embedding objective adds to the TREC + WNUT-17
# baseline of pipelines/realdata.mk, and what it costs the other tasks.
# From the same from-scratch encoder (realdata.mk's settings, one draw
# per seed), it trains, one configuration after another:
#
#   mtl    TREC classification + WNUT-17 NER, as realdata.mk
#   both   the same plus b77, an embedding task (MNRL, in-batch negatives)
#          on BANKING77 train: each sentence with the next sentence of the
#          same intent as its positive (PER_INTENT sentences of each intent)
#   emb    b77 alone
#   none   no training: the encoder as drawn, for reference
#
# and evaluates each on BANKING77 test (3080 sentences, 77 intents) with
# mtl-report's evaluators: kNN accuracy (leave-one-out), same-intent
# retrieval (MRR@10, NDCG@10) and the V-measure of k-means clusters; and,
# beside them, TREC accuracy (TREC_10) and WNUT-17 entity F1 (dev).
#
#   make -f pipelines/banking77.mk [DATA=dir] [SEEDS="1 2 3"] [EPOCHS=1] [PER_INTENT=40] [OUT=out/banking77]
#
# DATA as realdata.mk (../shared/data here), and DATA/banking77/{train,test}.jsonl
# ({"text", "label"} per line, normalised from PolyAI's CSV files;
# ../shared/data/SOURCES.md), checked by SHA-256.  BANKING77 (CC BY 4.0)
# is read where it is and never copied into mtl; without it the recipe
# stops with the path it looked for.  Every run's streams stay in
# OUT/CONFIG-sSEED/; OUT/table.md is the table of docs/baselines.md.
#
# EMB_POOLING (default mean): the embeddings' pooling, that of the b77
# task and of the evaluation; from scratch, CLS does not learn (all
# sentences start with nearly the same CLS vector: docs/baselines.md).
# EPOCHS, PER_INTENT, BATCH, LR, SEEDS, CONFIGS, THREADS; RUNS lists the
# runs as CONFIG-sSEED (default: every CONFIG for each seed), for a table
# with more seeds of some configurations only.  The defaults
# are the shortened runs of docs/baselines.md (one epoch, 40 sentences of
# each intent: about an hour for seed 1 on the shared 2-core machine; realdata.mk
# trains 6 epochs).  LIMIT=N cuts every file to about N sentences
# (BANKING77: N/5 of each of its first 5 intents), to check the recipe
# quickly (tests/banking77.bats).

OUT ?= out/banking77
EPOCHS ?= 1
PER_INTENT ?= 40
EMB_POOLING ?= mean
SEEDS ?= 1
CONFIGS ?= mtl both emb none
RUNS ?= $(foreach s,$(SEEDS),$(foreach c,$(CONFIGS),$(c)-s$(s)))
LIMIT ?=
THREADS ?= 0
include pipelines/realdata.mk
.DEFAULT_GOAL := banking77

B77 ?= $(DATA)/banking77
define b77_sums
0ab0549d42996788cdb10e11fb975d0ad2527497c8594b776a030198e10274a9  train.jsonl
649607fa7b124293c80b455d2effe5e41da713e1836ee936073fe34ab9dc6fba  test.jsonl
endef
export b77_sums

threads := $(if $(filter-out 0,$(THREADS)),--threads $(THREADS))
report_threads := --threads $(or $(filter-out 0,$(THREADS)),$(shell nproc 2>/dev/null || echo 1))
tok_opts := --replace-invalid --max-length 128

.PHONY: banking77
banking77: $(OUT)/table.md
	@cat $<
	@echo "banking77: the table is $(OUT)/table.md; each run's streams and reports are in $(OUT)/CONFIG-sSEED/"

# BANKING77 is not downloaded: a missing file stops the run here
$(B77)/%.jsonl:
	@echo "banking77.mk: '$@' not found: BANKING77 is read from DATA/banking77 (give DATA=dir, see the top of pipelines/banking77.mk)" >&2; exit 1

# TREC and WNUT-17 in OUT/in/ (cut to LIMIT), and their task spec.
$(OUT)/in/ready: $(OUT)/checked $(call vars,inputs,$(LIMIT))
	@mkdir -p $(@D)
	n=$(if $(LIMIT),$(LIMIT),0); \
	if [ $$n -gt 0 ]; then \
		head -n $$((n + 1)) $(OUT)/trec-train.tsv >$(@D)/trec-train.tsv; \
		head -n $$((n + 1)) $(OUT)/trec-test.tsv >$(@D)/trec-test.tsv; \
		for s in train dev; do \
			awk -v n=$$n '{ print } /^\t?$$/ && ++k >= n { exit }' $(OUT)/wnut-$$s.conll >$(@D)/wnut-$$s.conll; done; \
	else \
		cp $(OUT)/trec-train.tsv $(OUT)/trec-test.tsv $(OUT)/wnut-train.conll $(OUT)/wnut-dev.conll $(@D)/; \
	fi
	cp $(OUT)/tasks.json $(@D)/tasks-mtl.json
	touch $@

# BANKING77 in OUT/in/: train as the b77 task's pairs, each sentence with
# the next sentence of its intent (in the file's order, cyclically) as its
# positive, the first PER_INTENT sentences of each intent (0: all);
# test as it is; both labelled with their intents for the evaluators
# (intent.json: the 77 intents).  LIMIT keeps N/5 sentences of each of the
# first 5 intents (in name order).  The task specs with b77: its models pool
# by EMB_POOLING, and TREC's head keeps reading CLS, as in mtl.
b77_pairs = [inputs] | group_by(.label) \
	| if $$n > 0 then .[:5] | map(.[:($$n / 5 | floor)]) else . end \
	| map(if $$k > 0 then .[:$$k] else . end) | .[] | select(length > 1) \
	| . as $$g | range(length) as $$i \
	| {text: $$g[$$i].text, intent: $$g[$$i].label, b77: {positive: $$g[($$i + 1) % ($$g | length)].text}}
$(OUT)/in/b77: $(OUT)/in/ready $(B77)/train.jsonl $(B77)/test.jsonl $(call vars,b77,$(LIMIT) $(PER_INTENT) $(EMB_POOLING))
	@mkdir -p $(@D)
	cd $(B77) && printf '%s\n' "$$b77_sums" | sha256sum -c --quiet
	n=$(or $(LIMIT),0); \
	jq -c -n --argjson n $$n --argjson k $(or $(PER_INTENT),0) '$(b77_pairs)' $(B77)/train.jsonl >$(@D)/b77-train.jsonl; \
	jq -c -n --argjson n $$n --argjson k 0 '$(b77_pairs)' $(B77)/test.jsonl >$(@D)/b77-test.jsonl
	jq -n '{tasks: [{name: "intent", kind: "sequence", labels: ([inputs.label] | unique)}]}' \
		$(B77)/train.jsonl >$(@D)/intent.json
	b77='{"name": "b77", "kind": "embedding", "loss": "mnrl", "scale": 20}'; \
	jq ".tasks |= map(if .name == \"trec\" then . + {head: {pooling: \"cls\"}} else . end) | .tasks += [$$b77]" \
		$(@D)/tasks-mtl.json >$(@D)/tasks-both.json; \
	jq -n "{tasks: [$$b77]}" >$(@D)/tasks-emb.json
	touch $@

# Tokenized once, with realdata.mk's seed-SEED encoder directory for the
# vocabulary: the training data of each configuration, the TREC/WNUT-17
# evaluation set, and BANKING77's sentences labelled with their intents.
train_files_mtl = trec-train.tsv wnut-train.conll
train_files_both = trec-train.tsv wnut-train.conll b77-train.jsonl
train_files_emb = b77-train.jsonl

$(OUT)/in/train-%.examples.mpk: $(OUT)/in/ready $(OUT)/base/config.json | mtl-programs
	$(MTL_BIN)mtl-tokenize -q $(tok_opts) -m $(OUT)/base -T $(@D)/tasks-$*.json \
		$(addprefix $(@D)/,$(train_files_$*)) >$@.tmp
	@$(commit)

$(OUT)/in/train-both.examples.mpk $(OUT)/in/train-emb.examples.mpk: $(OUT)/in/b77

$(OUT)/in/dev.examples.mpk: $(OUT)/in/ready $(OUT)/base/config.json | mtl-programs
	$(MTL_BIN)mtl-tokenize -q $(tok_opts) -m $(OUT)/base -T $(@D)/tasks-mtl.json \
		$(@D)/trec-test.tsv $(@D)/wnut-dev.conll >$@.tmp
	@$(commit)

$(OUT)/in/b77-test.intent.mpk: $(OUT)/in/b77 $(OUT)/base/config.json | mtl-programs
	$(MTL_BIN)mtl-tokenize -q $(tok_opts) -m $(OUT)/base -T $(@D)/intent.json $(@D)/b77-test.jsonl >$@.tmp
	@$(commit)

# $(call model,CONFIG,SEED): the model a run evaluates (none: its encoder as drawn)
model = $(OUT)/$(1)-s$(2)/$(if $(filter none,$(1)),init,model)

# $(call run,CONFIG,SEED): one run in OUT/CONFIG-sSEED (BANKING77 checked
# before any).  Its row of the
# table (row.tsv): config, seed, steps, training wall and CPU seconds, the
# 1/5/15-minute load averages when training ended, TREC accuracy, WNUT-17
# entity F1; on BANKING77 test, kNN accuracy (leave-one-out, k 10),
# same-intent MRR@10 and NDCG@10, V-measure.
define run
ifneq ($(filter both emb,$(1)),)
$(OUT)/$(1)-s$(2)/init/config.json: $(OUT)/in/b77 | mtl-programs
	$(MTL_BIN)mtl-init -q --overwrite -o $$(@D) $(ENCODER_OPTS) --pooling $(EMB_POOLING) \
		--tasks $(OUT)/in/tasks-$(1).json --seed $(2)
else
$(OUT)/$(1)-s$(2)/init/config.json: $(OUT)/in/ready | $(OUT)/in/b77 mtl-programs
	$(MTL_BIN)mtl-init -q --overwrite -o $$(@D) $(ENCODER_OPTS) \
		$(if $(filter none,$(1)),,--tasks $(OUT)/in/tasks-$(1).json) --seed $(2)
endif

ifeq ($(1),none)
$(OUT)/$(1)-s$(2)/time.txt: $(OUT)/$(1)-s$(2)/init/config.json
	printf '0\t0\t0\t-\n' >$$@
else
$(OUT)/$(1)-s$(2)/batches.mpk: $(OUT)/in/train-$(1).examples.mpk $(call vars,batch,$(BATCH) $(EPOCHS)) | mtl-programs
	@mkdir -p $$(@D)
	$(MTL_BIN)mtl-batch -q --batch-size $(BATCH) --epochs $(EPOCHS) --shuffle --seed $(2) --bucket $$< >$$@.tmp
	@$$(commit)

# training, timed: wall seconds by the clock, CPU seconds by times(1)
$(OUT)/$(1)-s$(2)/time.txt: $(OUT)/$(1)-s$(2)/batches.mpk $(OUT)/$(1)-s$(2)/init/config.json $(call vars,step,$(LR)) | mtl-programs
	t0=$$$$(date +%s); \
	$(MTL_BIN)mtl-step -m $$(@D)/init -o $$(@D)/model --overwrite --lr $(LR) --warmup-ratio 0.1 \
		--seed $(2) $(threads) $$< >$$(@D)/steps.mpk.tmp || exit 1; \
	t1=$$$$(date +%s); load=$$$$(cut -d' ' -f1-3 /proc/loadavg); times >$$@.times; \
	mv $$(@D)/steps.mpk.tmp $$(@D)/steps.mpk; \
	awk -v steps=$$$$($(MTL_BIN)mtl-dump -t step $$(@D)/steps.mpk | wc -l) -v wall=$$$$((t1 - t0)) -v load="$$$$load" \
		'function s(t) { split(t, a, /[ms]/); return a[1] * 60 + a[2] } \
		 NR == 2 { printf "%d\t%d\t%.0f\t%s\n", steps, wall, s($$$$1) + s($$$$2), load }' $$@.times >$$@.tmp
	@rm -f $$@.times
	@$$(commit)
endif

# (time.txt is written once the model is)
$(OUT)/$(1)-s$(2)/b77-test.emb.mpk: $(OUT)/in/b77-test.intent.mpk $(OUT)/$(1)-s$(2)/time.txt \
		$(call vars,embed,$(EMB_POOLING)) | mtl-programs
	$(MTL_BIN)mtl-score -q -m $(call model,$(1),$(2)) --embed --pooling $(EMB_POOLING) $(threads) $$< >$$@.tmp
	@$$(commit)

$(OUT)/$(1)-s$(2)/emb.json: $(OUT)/$(1)-s$(2)/b77-test.emb.mpk | mtl-programs
	$(MTL_BIN)mtl-report -q -f json $(report_threads) --label-task intent $$< >$$@.tmp
	@$$(commit)

ifneq ($(filter mtl both,$(1)),)
$(OUT)/$(1)-s$(2)/pred.json: $(OUT)/in/dev.examples.mpk $(OUT)/$(1)-s$(2)/time.txt | mtl-programs
	$(MTL_BIN)mtl-score -q -m $$(@D)/model $(threads) $$< >$$(@D)/dev.predictions.mpk.tmp
	mv $$(@D)/dev.predictions.mpk.tmp $$(@D)/dev.predictions.mpk
	$(MTL_BIN)mtl-report -q -f json $$(@D)/dev.predictions.mpk >$$@.tmp
	@$$(commit)
else
$(OUT)/$(1)-s$(2)/pred.json:
	@mkdir -p $$(@D) && echo '{}' >$$@
endif

$(OUT)/$(1)-s$(2)/row.tsv: $(OUT)/$(1)-s$(2)/time.txt $(OUT)/$(1)-s$(2)/pred.json $(OUT)/$(1)-s$(2)/emb.json
	{ printf '$(1)\t$(2)\t'; tr -d '\n' <$$<; printf '\t'; \
	  jq -r '[.predictions.tasks.trec.accuracy, .predictions.tasks.ner.entities.micro.f1] \
		| map(. // "-") | @tsv' $$(word 2,$$^) | tr -d '\n'; printf '\t'; \
	  jq -r '.embedding_evaluation.labels.intent | [.knn_accuracy, .same_label.mrr10, .same_label.ndcg10, .vmeasure] | @tsv' $$(word 3,$$^); } >$$@.tmp
	@$$(commit)
endef

# the runs one after another, in the order of RUNS
rows := $(foreach r,$(RUNS),$(OUT)/$(r)/row.tsv)
$(foreach r,$(RUNS),$(eval $(call run,$(firstword $(subst -s, ,$(r))),$(lastword $(subst -s, ,$(r))))))

# the table: every run, then each configuration's mean over the seeds
$(OUT)/table.md: $(rows) $(call vars,table,$(RUNS))
	{ printf '| configuration | seed | steps | train wall s | train CPU s | load 1/5/15 min | TREC acc | WNUT-17 entity F1 | kNN acc | MRR@10 | NDCG@10 | V-measure |\n'; \
	  printf '| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n'; \
	  cat $(rows) | awk -F'\t' -v OFS=' | ' ' \
		function f(x) { return x == "-" ? "-" : sprintf("%.4f", x) } \
		{ print "| " $$1, $$2, $$3, $$4, $$5, $$6, f($$7), f($$8), f($$9), f($$10), f($$11), f($$12) " |"; \
		  n[$$1]++; if (!($$1 in first)) { first[$$1] = NR; order[++nc] = $$1 } \
		  for (i = 7; i <= 12; i++) if ($$i != "-") sum[$$1, i] += $$i; else dash[$$1, i] = 1 } \
		END { for (c = 1; c <= nc; c++) { k = order[c]; if (n[k] < 2) continue; \
			line = "| " k " | mean of " n[k] " | | | |"; \
			for (i = 7; i <= 12; i++) line = line " | " (dash[k, i] ? "-" : sprintf("%.4f", sum[k, i] / n[k])); \
			print line " |" } }'; } >$@.tmp
	@$(commit)
