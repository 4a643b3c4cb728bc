#!/usr/bin/env bats
# mtl-step --eval with the embedding evaluators (docs/training.md): an
# embedding task's retrieval and similarity figures and a sequence task's
# kNN accuracy and V-measure in the eval records, as --best-metric
# figures (the best model kept, --patience), in mtl-report's tables, and
# the errors.  tests/test_eval.c checks that the figures are mtl-report's
# evaluators' on the same vectors.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
	cat >tasks.json <<-'EOF'
	{"tasks": [
	 {"name": "topic", "kind": "sequence", "labels": ["money", "sport"]},
	 {"name": "sim", "kind": "embedding", "loss": "mnrl"},
	 {"name": "sts", "kind": "embedding", "loss": "cosent", "weight": 0.5}
	]}
	EOF
	cat >dev.jsonl <<-'EOF'
	{"text": "bank prices fell", "topic": "money", "sim": {"positive": "bank profits fell"}}
	{"text": "john played in paris", "topic": "sport", "sim": {"positive": "john played in london"}}
	{"text": "new phones", "sim": {"positive": "the new phones"}}
	{"text": "stock market rose", "topic": "money", "sim": {"positive": "the market rose today"}}
	{"text": "alice won", "topic": "sport", "sim": {"positive": "alice won the game"}}
	{"text": "a cat sat", "sts": {"pair": "the cat sat", "score": 0.9}, "topic": "money"}
	{"text": "the city", "sts": {"pair": "the dog sat", "score": 0.1}}
	{"text": "stock prices fell", "sts": {"pair": "stock prices rose", "score": 0.4}}
	{"text": "the team won", "sts": {"pair": "the team lost", "score": 0.5}, "topic": "sport"}
	EOF
	mtl-init -q -o model --vocab "$FIXTURES/tiny/vocab.txt" --tasks tasks.json \
		--hidden 32 --layers 1 --heads 2
	mtl-tokenize -q -m model "$MTL_ROOT/tests/data/embedding-train.jsonl" >ex.mpk
	mtl-tokenize -q -m model dev.jsonl >dev.mpk
	mtl-batch -q -b 4 -e 3 --shuffle ex.mpk >b.mpk
}

@test "eval records: sim's retrieval, sts's similarity, and with --eval-embeddings topic's kNN and V-measure" {
	mtl-step -q -j 1 -m model --lr 1e-3 --eval dev.mpk --eval-embeddings b.mpk >s.mpk
	run bash -c "set -o pipefail; mtl-dump -t eval s.mpk | jq -c '.tasks | [(.topic | keys), (.sim | keys), (.sts | keys), .sim.queries, .sts.pairs, .topic.labelled]'"
	assert_output '[["accuracy","f1","knn_accuracy","labelled","loss","v_measure"],["accuracy","labelled","loss","map@100","mrr@10","ndcg@10","queries","recall@1","recall@10","recall@100"],["accuracy","labelled","loss","pairs","pearson","spearman"],5,4,6]'
	# each figure a number in its range; five queries: recall@10 is 1
	run bash -c "set -o pipefail; mtl-dump -t eval s.mpk | jq -c '(.tasks | [.topic.knn_accuracy, .topic.v_measure, .sim[\"mrr@10\"], .sim[\"ndcg@10\"], .sim[\"recall@1\"], .sim[\"map@100\"], .sts.spearman] | map(. >= -1 and . <= 1)), .tasks.sim[\"recall@10\"]'"
	assert_output $'[true,true,true,true,true,true,true]\n1'
	# without --eval-embeddings: no label task's embedding figures
	run bash -c "set -o pipefail; mtl-step -q -j 1 -m model --lr 1e-3 --eval dev.mpk b.mpk | mtl-dump -t eval | jq -c '[(.tasks.topic | has(\"knn_accuracy\")), (.tasks.sim | has(\"mrr@10\"))]'"
	assert_output '[false,true]'
}

@test "mtl-report shows the evaluations' embedding figures (text, markdown, JSON)" {
	mtl-step -q -j 1 -m model --lr 1e-3 --eval dev.mpk --eval-every 4 --eval-embeddings b.mpk >s.mpk
	run mtl-report s.mpk
	assert_success
	assert_output --partial 'Evaluations: more figures'
	assert_output --regexp 'step +task +knn_accuracy +v_measure +mrr@10 +ndcg@10 +recall@1 +recall@10 +recall@100 +map@100 +pearson +spearman'
	assert_output --regexp $'\n +4 +sim +- +- +[01]\\.[0-9]{4} '
	run mtl-report -f markdown s.mpk
	assert_output --partial '| step | task | knn\_accuracy | v\_measure | mrr@10 |'
	a=$(mtl-dump -t eval s.mpk | jq -c '[.tasks.sim["mrr@10"], .tasks.sts.spearman, .tasks.topic.v_measure]' | head -1)
	run bash -c "set -o pipefail; mtl-report -f json s.mpk | jq -c '.steps.eval | [(.[] | select(.task == \"sim\") | .[\"mrr@10\"]), (.[] | select(.task == \"sts\") | .spearman), (.[] | select(.task == \"topic\") | .v_measure)] | [.[0], .[3], .[6]]'"
	assert_output "$a"
}

@test "--best-metric sim:mrr@10: OUT holds the best evaluation's model, --patience stops" {
	mtl-step -j 1 -m model --lr 3e-2 --eval dev.mpk --eval-every 1 --save-every 1 \
		--best-metric sim:mrr@10 --patience 3 -o out b.mpk >s.mpk 2>err
	# at step 1 one query's positive and another text score the same to
	# float rounding, so it ranks 2nd or 3rd (MRR 0.7667 unfused, 0.7333
	# with the fused attention): only its place below step 2's is checked
	run bash -c "set -o pipefail; mtl-dump -t eval s.mpk | jq -c '[.step, (.tasks.sim[\"mrr@10\"] | if . < 0.8 then \"<0.8\" else . * 1e4 | round end), .best.step, .best.stale, .best.stop]'"
	assert_output - <<-'EOF'
	[1,"<0.8",1,0,null]
	[2,"<0.8",1,1,null]
	[3,8667,3,0,null]
	[4,"<0.8",3,1,null]
	[5,8000,3,2,null]
	[6,9000,6,0,null]
	[7,9000,6,1,null]
	[8,9000,6,2,null]
	[9,9000,6,3,true]
	EOF
	grep -qx "mtl-step: stopping early at step 9: sim:mrr@10 did not improve in 3 evaluations (best 0.9000 at step 6)" err
	grep -qx "mtl-step: saving the best model in 'out': step 6, sim:mrr@10 0.9000" err
	cmp out/model.safetensors out/checkpoint-000006/model.safetensors
	! cmp -s out/model.safetensors out/checkpoint-000009/model.safetensors
	# a label task's figure needs no --eval-embeddings: the metric asks
	run bash -c "set -o pipefail; mtl-step -q -j 1 -m model --lr 1e-3 --eval dev.mpk --best-metric topic:v_measure b.mpk | mtl-dump -t eval | jq -c '[.best.metric, (.best.value >= 0), (.tasks.topic | has(\"knn_accuracy\"))]'"
	assert_output '["topic:v_measure",true,true]'
}

@test "errors: an embedding figure for a task of another kind, an unknown one, --eval-embeddings without --eval" {
	run -2 --separate-stderr mtl-step -q -m model --eval dev.mpk --best-metric topic:mrr@10 b.mpk
	assert_equal "${stderr_lines[0]}" "mtl-step: --best-metric: metric 'topic:mrr@10': 'topic' is a sequence task: it has accuracy, f1, knn_accuracy and v_measure (mrr@10 is for embedding tasks)"
	run -2 --separate-stderr mtl-step -q -m model --eval dev.mpk --best-metric sim:knn_accuracy b.mpk
	assert_equal "${stderr_lines[0]}" "mtl-step: --best-metric: metric 'sim:knn_accuracy': 'sim' is an embedding task: it has accuracy, pearson, spearman, mrr@10, ndcg@10, recall@1, recall@10, recall@100 and map@100 (knn_accuracy is for sequence tasks)"
	run -2 --separate-stderr mtl-step -q -m model --eval dev.mpk --best-metric sim:mrr10 b.mpk
	assert_regex "${stderr_lines[0]}" "unknown figure 'mrr10': .*mrr@10.* \\(did you mean 'sim:mrr@10'\\?\\)$"
	run -2 --separate-stderr mtl-step -q -m model --eval-embeddings b.mpk
	assert_regex "$stderr" "^mtl-step: --eval-embeddings needs --eval FILE"
}
