#!/usr/bin/env bats
# Embedding tasks (docs/tasks.md) through the whole pipeline: a tiny
# model from mtl-init with a topic task, an MNRL task (hard negatives,
# Matryoshka dims) and a CoSENT task on partly labelled JSON lines
# (tests/data/embedding-train.jsonl);
# mtl-batch's batches of their own; every --balance strategy; freezing;
# mtl-score and mtl-report; bad input.  The losses' numbers are checked
# against PyTorch in tests/test_emb.c.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
	cat >tasks.json <<-'EOF'
	{"tasks": [
	 {"name": "topic", "kind": "sequence", "labels": ["money", "sport"]},
	 {"name": "sim", "kind": "embedding", "loss": "mnrl", "symmetric": true,
	  "matryoshka_dims": [32, 16], "matryoshka_weights": [1, 0.5]},
	 {"name": "sts", "kind": "embedding", "loss": "cosent", "weight": 0.5}
	]}
	EOF
	mtl-init -q -o model --vocab "$FIXTURES/tiny/vocab.txt" --tasks tasks.json \
		--hidden 32 --layers 1 --heads 2
	mtl-tokenize -q -m model "$MTL_ROOT/tests/data/embedding-train.jsonl" >ex.mpk
}

@test "the examples stream carries each embedding task's texts and score" {
	run bash -c "set -o pipefail; mtl-dump -t example ex.mpk | jq -c '[.id, (.labels.sim | if . then [(.other_ids | length > 2), (.negative_ids != null)] else null end), .labels.sts.score]'"
	assert_output - <<-'EOF'
	[1,[true,true],null]
	[2,[true,false],null]
	[3,[true,false],null]
	[4,null,null]
	[5,null,0.3]
	[6,null,0.9]
	[7,null,0.1]
	[8,[true,true],null]
	EOF
	run bash -c "set -o pipefail; mtl-dump ex.mpk | jq -c 'select(.type == \"header\") | .tasks[1]'"
	assert_output '{"name":"sim","kind":"embedding","labels":[]}'
}

@test "mtl-batch: each embedding task's examples batch apart, their texts as extra rows" {
	mtl-batch -q -b 4 ex.mpk >b.mpk
	run bash -c "set -o pipefail; mtl-dump -t batch b.mpk | jq -c '[.example_ids, .extra_rows, .labels.sim, .negatives.sim, .scores.sts, (.lengths | length), (.ids | length) == (.size + (.extra_rows // 0)) * .seq_len]'"
	assert_output - <<-'EOF'
	[[1,2,3,8],6,[4,6,7,8],[5,-1,-1,9],null,10,true]
	[[5,6,7],3,null,null,[0.3,0.9,0.1],6,true]
	[[4],null,null,null,null,1,true]
	EOF
	# --mix-embedding: input order, the tasks mixed
	run bash -c "set -o pipefail; mtl-batch -q -b 4 --mix-embedding ex.mpk | mtl-dump -t batch | jq -c '.example_ids'"
	assert_output $'[1,2,3,4]\n[5,6,7,8]'
	# every sampling takes the task
	for s in proportional uniform temperature:2 round-robin; do
		mtl-batch -q -b 4 --sampling $s --seed 3 ex.mpk | mtl-dump -t batch >s.json
		run jq -r 'select(.labels.sim) | .extra_rows > 0' s.json
		assert_success
		refute_output --partial false
	done
}

@test "mtl-step --low-memory trains a mixed run to the same bytes (with an embedding task its second pass runs the forward again)" {
	mtl-batch -q -b 4 -e 3 --shuffle ex.mpk >b.mpk
	low_memory_same model b.mpk --lr 1e-3
}

@test "mtl-step trains a mixed, partly labelled run: finite losses, MNRL top-1 as accuracy, a model that embeds" {
	mtl-batch -q -b 4 -e 3 --shuffle ex.mpk >b.mpk
	mtl-step -q -j 1 -m model --lr 1e-3 -o out b.mpk >s.mpk
	run bash -c "set -o pipefail; mtl-dump -t step s.mpk | jq -r '[.labelled.topic, .labelled.sim, .labelled.sts] | @tsv' | sort | uniq -c | awk '{print \$1, \$2, \$3, \$4}'"
	assert_output - <<-'EOF'
	3 1 0 0
	3 1 0 3
	3 2 4 0
	EOF
	run bash -c "set -o pipefail; mtl-dump -t step s.mpk | jq -r 'select(.labelled.sim > 0) | [(.losses.sim | isnan or isinfinite or . <= 0), (.accuracy.sim >= 0 and .accuracy.sim <= 1), (.loss - (.losses.topic + .losses.sim + 0.5 * .losses.sts) | fabs < 1e-9)] | @tsv'"
	assert_output $'false\ttrue\ttrue\nfalse\ttrue\ttrue\nfalse\ttrue\ttrue'
	# the saved model: the embedding tasks kept in tasks.json, no heads
	run jq -c '[.tasks[1].kind, .tasks[1].matryoshka_dims, .tasks[2].loss]' out/tasks.json
	assert_output '["embedding",[32,16],"cosent"]'
	grep -qxF '| sim | embedding | none: mnrl on the sentence embedding | |' out/README.md
	run bash -c "set -o pipefail; mtl-score -q -m out --embed ex.mpk | mtl-dump -t embedding | jq -c '.embedding | length' | sort -u"
	assert_output 32
	# predictions: the topic task only; the report has no embedding section
	mtl-score -q -m out ex.mpk >p.mpk
	run bash -c "set -o pipefail; mtl-dump -t metrics p.mpk | jq -c .task"
	assert_output '"topic"'
	run mtl-report p.mpk
	assert_success
	assert_line --partial 'Task topic (sequence)'
	refute_output --partial 'Task sim'
	run mtl-report s.mpk
	assert_success
	assert_line --regexp '^loss sim +'
	# nothing to export as a classifier
	run -1 --separate-stderr mtl-export -m out --task sim -o exp
	assert_equal "$stderr" "mtl-export: task 'sim': an embedding task has no classifier to export; the model directory itself is its sentence-transformers model"
}

@test "every --balance strategy, at the encoder and at its output, trains the embedding tasks" {
	mtl-batch -q -b 4 -e 2 ex.mpk >b.mpk
	for k in static uncertainty dwa gradnorm rlw pcgrad cagrad nash; do
		for at in encoder encoder-output; do
			mtl-step -q -j 1 -m model --lr 1e-3 --balance $k --grad-at $at b.mpk >s.mpk
			mtl-dump -t step s.mpk >s.json
			run jq -r '[.loss, .losses.sim, .losses.sts, .grad_norm] | map(isinfinite or isnan) | any' s.json
			refute_output --partial true
			run jq -r 'select(.labelled.sim > 0) | .losses.sim > 0' s.json
			assert_output $'true\ntrue'
		done
	done
}

@test "frozen around: lower layers frozen, the embedding loss trains; a frozen encoder leaves it out" {
	mtl-batch -q -b 4 ex.mpk >b.mpk
	run bash -c "set -o pipefail; mtl-step -q -j 1 -m model --lr 1e-3 --freeze embeddings b.mpk | mtl-dump -t step | jq -c '[.labelled.sim, .backward_layers]'"
	assert_output $'[4,1]\n[0,1]\n[0,1]'
	run bash -c "set -o pipefail; mtl-step -q -j 1 -m model --lr 1e-3 --freeze encoder b.mpk | mtl-dump -t step | jq -c '[.labelled.sim, .labelled.topic]'"
	assert_output $'[0,2]\n[0,1]\n[0,1]'
}

@test "bad input: a scored pair without a score, an example without a positive, a TSV embedding column" {
	printf '%s\n' '{"text": "a cat", "topic": "money"}' \
		'{"text": "a dog", "sts": {"pair": "a cat"}}' >bad.jsonl
	run -1 --separate-stderr mtl-tokenize -m model bad.jsonl
	assert_equal "$stderr" "mtl-tokenize: bad.jsonl: line 2: task 'sts': a scored pair needs a 'score'"
	printf '%s\n' '{"text": "a dog", "sim": {"negative": "a cat"}}' >bad.jsonl
	run -1 --separate-stderr mtl-tokenize -m model bad.jsonl
	assert_equal "$stderr" "mtl-tokenize: bad.jsonl: line 1: task 'sim': an embedding example needs a 'positive'"
	printf '%s\n' '{"text": "a dog", "sim": {"positive": "a cat", "score": 1}}' >bad.jsonl
	run -1 --separate-stderr mtl-tokenize -m model bad.jsonl
	assert_equal "$stderr" "mtl-tokenize: bad.jsonl: line 1: task 'sim': unknown key 'score' (an embedding example has 'positive' and 'negative')"
	printf 'text\tsim\na dog\ta cat\n' >bad.tsv
	run -1 --separate-stderr mtl-tokenize -m model bad.tsv
	assert_equal "$stderr" "mtl-tokenize: bad.tsv: line 2: task 'sim': embedding tasks read JSON lines only"
}

@test "bad tasks.json: symmetric CoSENT, growing Matryoshka dims, dims wider than the model" {
	printf '{"tasks": [{"name": "e", "kind": "embedding", "loss": "cosent", "symmetric": true}]}' >t1.json
	run -1 --separate-stderr mtl-init -q -o m1 --vocab "$FIXTURES/tiny/vocab.txt" --tasks t1.json --hidden 32
	assert_output ''
	assert_equal "$stderr" "mtl-init: t1.json: task 'e': 'symmetric' is for the mnrl loss only"
	printf '{"tasks": [{"name": "e", "kind": "embedding", "matryoshka_dims": [16, 32]}]}' >t2.json
	run -1 --separate-stderr mtl-init -q -o m2 --vocab "$FIXTURES/tiny/vocab.txt" --tasks t2.json --hidden 32
	assert_equal "$stderr" "mtl-init: t2.json: task 'e': 'matryoshka_dims' must be decreasing integers >= 1"
	printf '{"tasks": [{"name": "sim", "kind": "embedding", "matryoshka_dims": [64, 16]}]}' >t3.json
	mtl-init -q -o m3 --vocab "$FIXTURES/tiny/vocab.txt" --tasks t3.json --hidden 32 --layers 1 --heads 2
	printf '%s\n' '{"text": "a dog", "sim": {"positive": "a cat"}}' >d.jsonl
	mtl-tokenize -q -m m3 d.jsonl | mtl-batch -q >b.mpk
	run --separate-stderr mtl-step -q -m m3 b.mpk
	[ "$status" -ne 0 ]
	assert_equal "$stderr" "mtl-step: embedding task 'sim': Matryoshka dim 64 is wider than the model (32)"
}
