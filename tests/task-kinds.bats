#!/usr/bin/env bats
# task-kinds.bats - the task kinds beyond sequence and token, each through
# the whole pipeline (mtl-tokenize, mtl-batch, mtl-step with --eval,
# mtl-score, mtl-report) on small data made from the demo set, and their
# bad input.
#
# multilabel: "types" is the set of entity types a demo sentence names
# (PER, LOC, ORG), read off its NER tags; sentences without tags carry no
# "types" (partly labelled data), and a few carry no topic either.
# regression: "n_ent" is half the number of the sentence's entity words.

load helper

# The demo's first N records of FILE as multilabel JSON lines.
multilabel_data() {
	head -n "$2" "$FIXTURES/demo/$1" |
		jq -c 'if .ner then {id, words, topic,
			types: ([.ner[] | select(startswith("B-")) | .[2:]] | unique)}
		       else {id, words, topic} end'
}

# A small model over the demo vocabulary with topic and a multilabel task.
multilabel_model() {
	mtl-init -q -o m --vocab "$FIXTURES/demo/vocab.txt" --hidden 32 --layers 1 \
		--heads 2 --intermediate 64 --max-position 64 --seed 1
	cat >m/tasks.json <<-'EOF'
	{"tasks": [
	  {"name": "topic", "kind": "sequence",
	   "labels": ["business", "politics", "science", "sports"]},
	  {"name": "types", "kind": "multilabel", "labels": ["PER", "LOC", "ORG"],
	   "threshold": 0.4, "head": {"pooling": "mean"}}
	]}
	EOF
}

setup() {
	cd "$BATS_TEST_TMPDIR"
}

@test "multilabel: tokenize, batch, step with --eval, score, report" {
	multilabel_model
	multilabel_data train.jsonl 800 >train.jsonl
	multilabel_data test.jsonl 100 >test.jsonl
	mtl-tokenize -q -m m train.jsonl >train.mpk
	mtl-tokenize -q -m m test.jsonl >test.mpk
	# a labelled example carries one 0/1 per label; the header the threshold
	run bash -c "set -o pipefail; mtl-dump test.mpk | jq -c 'select(.id == \"test-0002\" or .type == \"header\") | .labels.types // .tasks[1]'"
	assert_output - <<-'EOF'
	{"name":"types","kind":"multilabel","labels":["PER","LOC","ORG"],"threshold":0.4}
	[1,1,0]
	EOF
	# the census counts the sets jq counts in the input
	want=$(jq -cs '[map(select(.types)) | length,
		(map(.types // [] | .[]) | {PER: map(select(. == "PER")) | length,
		 LOC: map(select(. == "LOC")) | length, ORG: map(select(. == "ORG")) | length})]' train.jsonl)
	run bash -c "set -o pipefail; mtl-dump -t stats train.mpk | jq -c '[.labelled.types, .label_counts.types]'"
	assert_output "$want"
	mtl-batch -q -b 16 -e 6 --shuffle --seed 3 train.mpk >b.mpk
	mtl-step -q -m m -j 1 --lr 3e-3 --warmup-ratio 0.1 --eval test.mpk \
		--eval-every 100 --best-metric types:micro_f1 -o tuned b.mpk >steps.mpk
	# the evaluation names the multilabel figures and counts label
	# decisions (3 per labelled example); the run learns the task
	n=$(jq -s 'map(select(.types)) | length' test.jsonl)
	run bash -c "set -o pipefail; mtl-dump -t eval steps.mpk | tail -1 | jq -c '[(.tasks.types | keys), .tasks.types.labelled, .tasks.types.micro_f1 > 0.9, .best.metric]'"
	assert_output "[[\"accuracy\",\"f1\",\"labelled\",\"loss\",\"micro_f1\"],$((3 * n)),true,\"types:micro_f1\"]"
	grep -q '"threshold": 0.4' tuned/tasks.json
	mtl-score -q -m tuned test.mpk >pred.mpk
	run bash -c "set -o pipefail; mtl-dump -t prediction pred.mpk | jq -c 'select(.id == \"test-0002\") | .tasks.types | [.gold, .pred == .gold]'"
	assert_output '[["PER","LOC"],true]'
	run bash -c "set -o pipefail; mtl-dump -t metrics pred.mpk | jq -c 'select(.task == \"types\") | [.kind, .scored, .micro_f1 > 0.9, .exact_match > 0.8]'"
	assert_output "[\"multilabel\",$n,true,true]"
	run mtl-report pred.mpk
	assert_success
	assert_output --partial '-- Task types (multilabel) --'
	assert_output --regexp "100 examples, $((100 - n)) without gold labels \(not scored\); micro F1 [01]\.[0-9]{4}, macro F1 [01]\.[0-9]{4}, exact match [01]\.[0-9]{4} \([0-9]+ of $n\); threshold 0.4"
	assert_output --regexp 'PER +[01]\.[0-9]{4} +[01]\.[0-9]{4} +[01]\.[0-9]{4} +[0-9]+ +[0-9]+'
	assert_output --regexp 'micro +[01]\.[0-9]{4}'
	run bash -c "set -o pipefail; mtl-report -f json pred.mpk | jq -c '.predictions.tasks.types | [.kind, .scored, .threshold, (.classes | keys), (.micro_f1 == .micro.f1)]'"
	assert_output "[\"multilabel\",$n,0.4,[\"LOC\",\"ORG\",\"PER\"],true]"
	# predictions without gold: what was predicted, nothing scored
	printf 'Peter Novak visited Berlin .\n' >raw.txt
	mtl-tokenize -q -m tuned raw.txt | mtl-score -q -m tuned >raw.mpk
	run mtl-report raw.mpk
	assert_output --partial '1 examples, none with gold labels: predictions only'
}

@test "multilabel: TSV cells of space-separated labels; an empty cell is no label" {
	multilabel_model
	printf 'text\ttypes\tid\nPeter went to Berlin\tPER LOC\ta\nthe bank\t\tb\n' >in.tsv
	run bash -c "set -o pipefail; mtl-tokenize -q -m m in.tsv | mtl-dump -t example | jq -c '[.id, .labels]'"
	assert_output - <<-'EOF'
	["a",{"types":[1,1,0]}]
	["b",{}]
	EOF
}

@test "multilabel: bad labels are errors naming the file, line and label" {
	multilabel_model
	tokenize_refuses unknown.jsonl '{"text":"a"}\n{"text":"b","types":["PER","FOO"]}\n' \
		"mtl-tokenize: unknown.jsonl: line 2: task 'types': unknown label 'FOO'"
	tokenize_refuses notlist.jsonl '{"text":"b","types":"PER"}\n' \
		"mtl-tokenize: notlist.jsonl: line 1: task 'types': the labels must be an array of label names"
	tokenize_refuses twice.jsonl '{"text":"b","types":["LOC","LOC"]}\n' \
		"mtl-tokenize: twice.jsonl: line 1: task 'types': label 'LOC' given twice"
	tokenize_refuses unknown.tsv 'text\ttypes\nx\tPER\ny\tORG BAR\n' \
		"mtl-tokenize: unknown.tsv: line 3: task 'types': unknown label 'BAR'"
	# --unknown-label skip drops the unknown name and counts it
	run bash -c "set -o pipefail; mtl-tokenize -q -m m --unknown-label skip unknown.jsonl | mtl-dump | jq -c 'select(.labels.types or .type == \"stats\") | .labels.types // .unknown_labels_skipped'"
	assert_output - <<-'EOF'
	[1,0,0]
	1
	EOF
}

@test "multilabel: a stream's indicators must be 0 or 1, one per label" {
	multilabel_model
	printf '{"text":"a","types":["PER"]}\n' >a.jsonl
	mtl-tokenize -q -m m a.jsonl >a.mpk
	mtl-dump a.mpk | sed 's/"types":\[1,0,0\]/"types":[1,2,0]/' | mtl-dump --pack >bad2.mpk
	run -1 --separate-stderr mtl-batch -q bad2.mpk
	assert_regex "$stderr" "^mtl-batch: bad2.mpk: record 2: task 'types': indicator 2 is not 0 or 1$"
	mtl-dump a.mpk | sed 's/"types":\[1,0,0\]/"types":[1,0]/' | mtl-dump --pack >short.mpk
	run -1 --separate-stderr mtl-batch -q short.mpk
	assert_regex "$stderr" "task 'types': labels are not 3 integers \(one 0/1 per label\)"
}

@test "multilabel: tasks.json threshold and metric names are checked" {
	multilabel_model
	cp -r m m2
	printf '{"tasks":[{"name":"t","kind":"sequence","labels":["a"],"threshold":0.5}]}\n' >m2/tasks.json
	run -1 --separate-stderr mtl-tokenize -q -m m2 /dev/null
	assert_regex "$stderr" "task 't': 'threshold' is for multilabel tasks only"
	printf '{"text":"a","types":["PER"]}\n' >a.jsonl
	mtl-tokenize -q -m m a.jsonl >a.mpk
	mtl-batch -q a.mpk >b.mpk
	run -2 --separate-stderr mtl-step -q -m m --eval a.mpk --best-metric types:entity_f1 -o out b.mpk
	assert_regex "$stderr" "'types' is a multilabel task: it has accuracy, f1 and micro_f1"
	run -2 --separate-stderr mtl-step -q -m m --eval a.mpk --best-metric topic:micro_f1 -o out b.mpk
	assert_regex "$stderr" "'topic' is a sequence task: it has accuracy, f1, knn_accuracy and v_measure \\(micro_f1 is for multilabel tasks\\)"
}

@test "multilabel: mtl-export writes a multi-label BertForSequenceClassification" {
	multilabel_model
	sed -i 's/"pooling": "mean"/"pooling": "cls"/' m/tasks.json
	printf '{"text":"a","types":["PER"]}\n' >a.jsonl
	mtl-tokenize -q -m m a.jsonl | mtl-batch -q >b.mpk
	mtl-step -q -m m -o tuned b.mpk >/dev/null
	mtl-export -q -m tuned --task types -o out
	run bash -c "set -o pipefail; jq -c '[.architectures, .problem_type, .num_labels, .id2label]' out/config.json"
	assert_output '[["BertForSequenceClassification"],"multi_label_classification",3,{"0":"PER","1":"LOC","2":"ORG"}]'
}

# The demo's first N records of FILE with a regression target.
regression_data() {
	head -n "$2" "$FIXTURES/demo/$1" |
		jq -c 'if .ner then {id, words, topic,
			n_ent: ([.ner[] | select(. != "O")] | length / 2)}
		       else {id, words, topic} end'
}

regression_model() {
	mtl-init -q -o m --vocab "$FIXTURES/demo/vocab.txt" --hidden 32 --layers 1 \
		--heads 2 --intermediate 64 --max-position 64 --seed 1
	cat >m/tasks.json <<-'EOF'
	{"tasks": [
	  {"name": "topic", "kind": "sequence",
	   "labels": ["business", "politics", "science", "sports"]},
	  {"name": "n_ent", "kind": "regression", "head": {"pooling": "mean"}}
	]}
	EOF
}

@test "regression: tokenize, batch, step with --eval, score, report" {
	regression_model
	regression_data train.jsonl 800 >train.jsonl
	regression_data test.jsonl 100 >test.jsonl
	n=$(jq -s 'map(select(.n_ent)) | length' test.jsonl)
	mtl-tokenize -q -m m train.jsonl >train.mpk
	mtl-tokenize -q -m m test.jsonl >test.mpk
	# a target is a float in the example; a batch row without one is null
	run bash -c "set -o pipefail; mtl-dump test.mpk | jq -c 'select(.id == \"test-0000\") | .labels'"
	assert_output '{"topic":1,"n_ent":2.5}'
	mtl-batch -q -b 16 -e 6 --shuffle --seed 3 train.mpk >b.mpk
	run bash -c "set -o pipefail; mtl-dump -t batch b.mpk | head -1 | jq -c '.labels.n_ent | map(type) | unique'"
	assert_output '["null","number"]'
	mtl-step -q -m m -j 1 --lr 3e-3 --warmup-ratio 0.1 --eval test.mpk \
		--eval-every 100 --best-metric n_ent:mse -o tuned b.mpk >steps.mpk
	run bash -c "set -o pipefail; mtl-dump -t eval steps.mpk | tail -1 | jq -c '[(.tasks.n_ent | keys), .tasks.n_ent.labelled, .tasks.n_ent.pearson > 0.9, .tasks.n_ent.loss < 0.2, .best.value == ([.tasks.n_ent.loss] | min)]'"
	assert_output "[[\"labelled\",\"loss\",\"pearson\",\"spearman\"],$n,true,true,true]"
	# a step's accuracy has no meaning for a number: null
	run bash -c "set -o pipefail; mtl-dump -t step steps.mpk | head -1 | jq -c '[.accuracy.n_ent, .labelled.n_ent > 0]'"
	assert_output '[null,true]'
	# mse is lower-better: the best is the smallest evaluation's
	run bash -c "set -o pipefail; mtl-dump -t eval steps.mpk | jq -s -c '[(map(.tasks.n_ent.loss) | min), .[-1].best.value] | .[0] == .[1]'"
	assert_output true
	mtl-score -q -m tuned test.mpk >pred.mpk
	run bash -c "set -o pipefail; mtl-dump -t prediction pred.mpk | jq -c 'select(.id == \"test-0000\") | .tasks.n_ent | [.gold, (.pred | type)]'"
	assert_output '[2.5,"number"]'
	run bash -c "set -o pipefail; mtl-dump -t metrics pred.mpk | jq -c 'select(.task == \"n_ent\") | [.kind, .scored, .pearson > 0.9, .spearman > 0.8, .mse < 0.2]'"
	assert_output "[\"regression\",$n,true,true,true]"
	# the report's figures are the metrics record's
	mse=$(mtl-dump -t metrics pred.mpk | jq 'select(.task == "n_ent") | .mse * 10000 | round / 10000')
	run mtl-report pred.mpk
	assert_output --partial '-- Task n_ent (regression) --'
	assert_output --regexp "100 examples, $((100 - n)) without a gold value \(not scored\); $n scored: MSE 0?\.[0-9]{4}, Pearson 0\.9[0-9]{3}, Spearman 0\.[89][0-9]{3}"
	run bash -c "set -o pipefail; mtl-report -f json pred.mpk | jq -c '.predictions.tasks.n_ent | [.kind, .scored, (.mse * 10000 | round / 10000)]'"
	assert_output "[\"regression\",$n,$mse]"
}

@test "regression: a target that is not a number is an error naming the line" {
	regression_model
	tokenize_refuses str.jsonl '{"text":"a","n_ent":1}\n{"text":"b","n_ent":"2"}\n' \
		"mtl-tokenize: str.jsonl: line 2: task 'n_ent': the target must be a finite number"
	tokenize_refuses bad.tsv 'text\tn_ent\nx\t1.5\ny\tabc\n' \
		"mtl-tokenize: bad.tsv: line 3: task 'n_ent': target 'abc' is not a finite number"
	tokenize_refuses inf.csv 'text,n_ent\nx,inf\n' \
		"mtl-tokenize: inf.csv: line 2: task 'n_ent': target 'inf' is not a finite number"
	# TSV: an empty cell is no target; a number is one
	printf 'text\tn_ent\nx\t-0.5e1\ny\t\n' >ok.tsv
	run bash -c "set -o pipefail; mtl-tokenize -q -m m ok.tsv | mtl-dump -t example | jq -c .labels"
	assert_output - <<-'EOF'
	{"n_ent":-5}
	{}
	EOF
	cp -r m m2
	printf '{"tasks":[{"name":"r","kind":"regression","labels":["x"]}]}\n' >m2/tasks.json
	run -1 --separate-stderr mtl-tokenize -q -m m2 /dev/null
	assert_regex "$stderr" "task 'r': a regression task has no 'labels'"
	printf '{"text":"a","n_ent":1}\n' >a.jsonl
	mtl-tokenize -q -m m a.jsonl >a.mpk
	mtl-batch -q a.mpk >b.mpk
	run -2 --separate-stderr mtl-step -q -m m --eval a.mpk --best-metric n_ent:f1 -o out b.mpk
	assert_regex "$stderr" "'n_ent' is a regression task: it has mse, pearson and spearman"
	run -2 --separate-stderr mtl-step -q -m m --eval a.mpk --best-metric topic:pearson -o out b.mpk
	assert_regex "$stderr" "'topic' is a sequence task: .* \\(pearson is for embedding and regression tasks\\)"
	mtl-dump b.mpk | sed 's/"n_ent":\[1.0\]/"n_ent":["x"]/' | mtl-dump --pack >bad.mpk
	run -1 --separate-stderr mtl-step -q -m m -o out bad.mpk
	assert_regex "$stderr" "task 'n_ent': targets are not 1 finite numbers or nil"
}

@test "regression: mtl-export writes a regression BertForSequenceClassification" {
	regression_model
	sed -i 's/"pooling": "mean"/"pooling": "cls"/' m/tasks.json
	printf '{"text":"a","n_ent":1.5}\n' >a.jsonl
	mtl-tokenize -q -m m a.jsonl | mtl-batch -q >b.mpk
	mtl-step -q -m m -o tuned b.mpk >/dev/null
	grep -q '"kind": "regression"' tuned/tasks.json
	run grep -c '"labels"' tuned/tasks.json
	assert_output 1
	mtl-export -q -m tuned --task n_ent -o out
	run bash -c "set -o pipefail; jq -c '[.architectures, .problem_type, .num_labels]' out/config.json"
	assert_output '[["BertForSequenceClassification"],"regression",1]'
}

@test "multilabel and regression heads under mtl-step --low-memory: the same trained bytes" {
	for kind in multilabel regression; do
		rm -rf m
		${kind}_model
		${kind}_data train.jsonl 64 >t.jsonl
		mtl-tokenize -q -m m t.jsonl | mtl-batch -q -b 8 >b.mpk
		low_memory_same m b.mpk --lr 3e-3
		[ "$(wc -l <lm-a.txt)" -eq 8 ]
	done
}
