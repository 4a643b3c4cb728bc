#!/usr/bin/env bats
# The model card (README.md) and config_sentence_transformers.json that
# every saved model directory gets (lib/model/card.c, lib/model/model.c).

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
	cp -r "$FIXTURES/tiny" m
	mtl-dump --pack "$FIXTURES/golden/predict-examples.jsonl" >ex.mpk
}

@test "card: a trained model's README.md gives its tasks, labels, training counts, last eval and command" {
	mtl-batch -q --batch-size 2 --epochs 2 ex.mpk >b.mpk
	mtl-step -q -m m --lr 1e-3 --eval ex.mpk --eval-every 2 -o "out dir" b.mpk >steps.mpk
	run cat "out dir/README.md"
	assert_line '| topic | sequence | 16 tanh units, then linear | business, sports, tech |'
	assert_line '| ner | token | linear | O, B-PER, I-PER, B-LOC, I-LOC |'
	# 2 epochs of 4 rows: topic labels on rows 0 and 2, 9 NER words
	assert_line '4 optimiser steps. Labels seen in training: topic 4, ner 18.'
	assert_line "mtl-step -q -m m --lr 1e-3 --eval ex.mpk --eval-every 2 -o 'out dir' b.mpk"
	assert_line 'After step 4, on 4 examples (macro F1 over the labels; per token for token tasks):'
	# the card's metrics are the last eval record's
	acc=$(mtl-dump -t eval steps.mpk | tail -1 | jq -r '.tasks.ner.accuracy * 10000 | round / 10000')
	assert_line --regexp "^\| ner \| 9 \| $acc"
	run jq -c . "out dir/config_sentence_transformers.json"
	assert_output '{"default_prompt_name":null,"prompts":{},"similarity_fn_name":"cosine"}'
}

@test "card: with --best-metric, the card gives the evaluation of the model OUT holds" {
	mtl-batch -q --batch-size 2 --epochs 3 ex.mpk >b.mpk
	# lr 1 overshoots: the best loss is the first evaluation's, not the last
	mtl-step -q -m m --lr 1 --eval ex.mpk --eval-every 1 --best-metric loss -o out b.mpk >steps.mpk
	best=$(mtl-dump -t eval steps.mpk | tail -1 | jq .best.step)
	last=$(mtl-dump -t eval steps.mpk | tail -1 | jq .step)
	[ "$best" -ne "$last" ]
	run cat out/README.md
	assert_line --partial "After step $best, on 4 examples"
}

@test "card: mtl-init writes one without training facts" {
	mtl-init -q -o base --encoder m --tasks "$FIXTURES/export/tasks.json"
	run cat base/README.md
	assert_line '| intent | sequence | 32 tanh units, then linear | ask, tell |'
	assert_line '| mood | sequence | linear (mean pooling) | bad, good |'
	refute_line --partial 'Training'
	[ -f base/config_sentence_transformers.json ]
}
