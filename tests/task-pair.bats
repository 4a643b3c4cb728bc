#!/usr/bin/env bats
# task-pair.bats - the pair task kind and regression on pairs through the
# whole pipeline (mtl-tokenize, mtl-batch, mtl-step with --eval,
# mtl-score, mtl-report), the token type ids in the records, and bad pair
# input.
#
# The data pairs demo sentence i with sentence n-1-i: "topic_b" (a pair
# task) is the topic of the second text, "n_ent_b" (regression on pairs)
# half the number of its entity words, so both are learnt only by reading
# past the first [SEP].

load helper

# The first N demo records of FILE as pairs.
pair_data() {
	head -n "$2" "$FIXTURES/demo/$1" |
		jq -cs '. as $s | length as $n | range($n) | {a: $s[.], b: $s[$n - 1 - .]}
			| {id: .a.id, text: (.a.words | join(" ")), text_b: (.b.words | join(" ")),
			   topic_b: .b.topic}
			  + (if .b.ner then {n_ent_b: ([.b.ner[] | select(. != "O")] | length / 2)}
			     else {} end)'
}

# A small model over the demo vocabulary: topic, a pair task, regression.
pair_model() {
	mtl-init -q -o m --vocab "$FIXTURES/demo/vocab.txt" --hidden 32 --layers 1 \
		--heads 2 --intermediate 64 --max-position 64 --seed 1
	cat >m/tasks.json <<-'EOF'
	{"tasks": [
	  {"name": "topic", "kind": "sequence",
	   "labels": ["business", "politics", "science", "sports"]},
	  {"name": "topic_b", "kind": "pair",
	   "labels": ["business", "politics", "science", "sports"]},
	  {"name": "n_ent_b", "kind": "regression", "head": {"pooling": "mean"}}
	]}
	EOF
}

setup() {
	cd "$BATS_TEST_TMPDIR"
}

@test "pair: tokenize, batch, step with --eval, score, report" {
	pair_model
	pair_data train.jsonl 800 >train.jsonl
	pair_data test.jsonl 100 >test.jsonl
	n=$(jq -s 'map(select(.topic_b)) | length' test.jsonl)
	r=$(jq -s 'map(select(.n_ent_b)) | length' test.jsonl)
	mtl-tokenize -q -m m train.jsonl >train.mpk
	mtl-tokenize -q -m m test.jsonl >test.mpk
	# [CLS] a [SEP] b [SEP]: type ids 0 up to the first [SEP], 1 after;
	# the second text's tokens are no word of the text
	run bash -c "set -o pipefail; mtl-dump -t example test.mpk | head -1 | jq -c '[.text_b, (.ids | map(select(. == 3)) | length), (.type_ids | index(1)), (.ids | index(3)) + 1, (.type_ids | length) == (.ids | length), (.word_ids[(.type_ids | index(1)):] | unique), .labels]'"
	assert_output '["Hans Muller said the board invested in a share buyback .",2,17,17,true,[-1],{"topic_b":0,"n_ent_b":1}]'
	mtl-batch -q -b 16 -e 12 --shuffle --seed 3 train.mpk >b.mpk
	# a batch carries the type ids, 0 on padding
	run bash -c "set -o pipefail; mtl-dump -t batch b.mpk | head -1 | jq -c '[(.type_ids | length) == (.ids | length), ([.ids, .type_ids] | transpose | map(select(.[0] == 0) | .[1]) | unique)]'"
	assert_output '[true,[0]]'
	mtl-step -q -m m -j 1 --lr 3e-3 --warmup-ratio 0.1 --eval test.mpk \
		--eval-every 200 --best-metric topic_b:accuracy -o tuned b.mpk >steps.mpk
	grep -q '"kind": "pair"' tuned/tasks.json
	# both tasks read the second text and learn it
	run bash -c "set -o pipefail; mtl-dump -t eval steps.mpk | tail -1 | jq -c '[(.tasks.topic_b | keys), .tasks.topic_b.labelled, .tasks.topic_b.accuracy > 0.9, .tasks.n_ent_b.labelled, .tasks.n_ent_b.pearson > 0.9, .best.metric]'"
	assert_output "[[\"accuracy\",\"f1\",\"labelled\",\"loss\"],$n,true,$r,true,\"topic_b:accuracy\"]"
	mtl-score -q -m tuned test.mpk >pred.mpk
	# a pair's prediction names its two texts and the tasks that read pairs
	run bash -c "set -o pipefail; mtl-dump -t prediction pred.mpk | head -1 | jq -c '[.text_b, (.tasks | keys), .tasks.topic_b.gold, (.tasks.n_ent_b.pred | type)]'"
	assert_output '["Hans Muller said the board invested in a share buyback .",["n_ent_b","topic_b"],"business","number"]'
	run bash -c "set -o pipefail; mtl-dump -t metrics pred.mpk | jq -c 'select(.task != \"topic\") | [.task, .kind, .scored, (.accuracy // .pearson) > 0.9]'"
	assert_output - <<-EOF
	["topic_b","pair",$n,true]
	["n_ent_b","regression",$r,true]
	EOF
	run mtl-report pred.mpk
	assert_success
	assert_output --partial '-- Task topic_b (pair) --'
	assert_output --regexp "100 examples, $((100 - n)) without gold labels \(not scored\); accuracy [01]\.[0-9]{4} \([0-9]+ of $n\)"
	assert_output --regexp "100 examples, $((100 - r)) without a gold value \(not scored\); $r scored: MSE 0?\.[0-9]{4}, Pearson 0\.9[0-9]{3}"
	run bash -c "set -o pipefail; mtl-report -f json pred.mpk | jq -c '.predictions.tasks.topic_b | [.kind, .scored, (.classes | keys)]'"
	assert_output "[\"pair\",$n,[\"business\",\"politics\",\"science\",\"sports\"]]"
	# a single text gets the single-text tasks' predictions only
	printf '{"text":"The goalkeeper played again ."}\n' >one.jsonl
	run bash -c "set -o pipefail; mtl-tokenize -q -m tuned one.jsonl | mtl-score -q -m tuned | mtl-dump -t prediction | jq -c '.tasks | keys'"
	assert_output '["n_ent_b","topic"]'
}

@test "pair: --max-length cuts longest first, as the tokenizers library does" {
	pair_model
	# 4 + 4 pieces to 8 tokens (5 for the texts): neither fits beside the
	# other, so both are cut to 5 / 2, and on a tie b keeps the odd token
	printf '{"text":"the goalkeeper played again","text_b":"the board invested again"}\n' >p.jsonl
	run bash -c "set -o pipefail; mtl-tokenize -q -m m p.jsonl | mtl-dump -t example | jq -c '[(.ids | length), .type_ids, .truncated, .words_lost]'"
	assert_output '[11,[0,0,0,0,0,0,1,1,1,1,1],false,null]'
	run bash -c "set -o pipefail; mtl-tokenize -q -m m --max-length 8 p.jsonl | mtl-dump -t example | jq -c '[.type_ids, .truncated, .words_lost]'"
	assert_output '[[0,0,0,0,1,1,1,1],true,3]'
	# the cut keeps a's first 2 pieces and b's first 3, each part with its [SEP]
	mtl-tokenize -q -m m p.jsonl | mtl-dump -t example | jq -c .ids >full
	run bash -c "set -o pipefail; mtl-tokenize -q -m m --max-length 8 p.jsonl | mtl-dump -t example | jq -c --slurpfile f full '.ids == (\$f[0] | .[0:3] + [3] + .[6:9] + [3])'"
	assert_output true
}

@test "pair: bad pair input is an error naming the file and line" {
	pair_model
	tokenize_refuses nob.jsonl '{"text":"a","text_b":"b","topic_b":"science"}\n{"text":"a","topic_b":"science"}\n' \
		"mtl-tokenize: nob.jsonl: line 2: task 'topic_b': a pair task needs a second text 'text_b'"
	tokenize_refuses seq.jsonl '{"text":"a","text_b":"b","topic":"science"}\n' \
		"mtl-tokenize: seq.jsonl: line 1: task 'topic': a sequence task reads one text, not a pair ('text_b'): pairs are for pair and regression tasks"
	tokenize_refuses type.jsonl '{"text":"a","text_b":["b"]}\n' \
		"mtl-tokenize: type.jsonl: line 1: 'text_b' must be a string"
	tokenize_refuses words.jsonl '{"words":["a"],"text_b":"b"}\n' \
		"mtl-tokenize: words.jsonl: line 1: 'text_b' goes with a text, not 'words'"
	# TSV: an empty text_b cell is a single text, which a pair label needs
	tokenize_refuses nob.tsv 'text\ttext_b\ttopic_b\tn_ent_b\nx\ty\tscience\t1\nx\t\tscience\t\n' \
		"mtl-tokenize: nob.tsv: line 3: task 'topic_b': a pair task needs a second text 'text_b'"
	# a misspelt text_b is named, not silently a single text
	printf '{"text":"a","text_bb":"b"}\n' >typo.jsonl
	run --separate-stderr mtl-tokenize -q -m m typo.jsonl
	assert_regex "$stderr" "unknown key 'text_bb' \(did you mean 'text_b'\?\)"
	# a bad type id in a stream is refused, not read as 0
	printf '{"text":"a","text_b":"b"}\n' >ok.jsonl
	mtl-tokenize -q -m m ok.jsonl | mtl-batch -q >b.mpk
	mtl-dump b.mpk | sed 's/"type_ids":\[0,0,0,1,1\]/"type_ids":[0,0,0,2,1]/' | mtl-dump --pack >bad.mpk
	run -1 --separate-stderr mtl-step -q -m m -o out bad.mpk
	assert_regex "$stderr" "token type id 2 at 3: not 0 or 1"
}

@test "pair: mtl-step --low-memory trains to the same bytes" {
	pair_model
	pair_data train.jsonl 64 >t.jsonl
	mtl-tokenize -q -m m t.jsonl | mtl-batch -q -b 8 >b.mpk
	low_memory_same m b.mpk --lr 3e-3
	[ "$(wc -l <lm-a.txt)" -eq 8 ]
}
