#!/usr/bin/env bats
# mtl-batch: padding and labels, epochs, shuffling, budgets, sampling,
# several inputs, streaming, and bad input.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
	mtl-dump --pack "$MTL_ROOT/tests/data/examples.jsonl" >ex.mpk
}

@test "pads to the longest, keeps labels aligned, -100 where unlabelled" {
	cat >expect <<-'EOF'
	{"type":"batch","epoch":1,"index":0,"size":2,"seq_len":4,"ids":[2,10,11,3,2,12,3,0],"lengths":[4,3],"example_ids":["e1","e2"],"labels":{"topic":[1,0],"ner":[-100,1,2,-100,-100,-100,-100,-100]}}
	{"type":"batch","epoch":1,"index":1,"size":2,"seq_len":5,"ids":[2,13,14,15,3,2,16,3,0,0],"lengths":[5,3],"example_ids":[3,"e4"],"labels":{"ner":[-100,0,0,1,-100,-100,-100,-100,-100,-100]}}
	EOF
	mtl-batch -q -b 2 ex.mpk | mtl-dump --type batch >actual
	diff -u expect actual
}

@test "the header carries tasks, vocabulary and the total number of batches" {
	run bash -c 'set -o pipefail; mtl-batch -q -b 3 -e 4 --drop-last ex.mpk | mtl-dump --type header'
	assert_success
	assert_output --partial '"stream":"batches"'
	assert_output --partial '"vocab_hash":"abc"'
	assert_output --partial '"examples":4,"total_batches":4'
	run bash -c 'set -o pipefail; mtl-batch -q -b 3 -e 4 --drop-last ex.mpk | mtl-dump --type batch | wc -l'
	assert_output 4
}

@test "--shuffle --seed is reproducible, and each epoch reshuffles" {
	mtl-batch -q -b 1 -e 3 --shuffle --seed 5 ex.mpk | mtl-dump -t batch >a
	mtl-batch -q -b 1 -e 3 --shuffle --seed 5 ex.mpk | mtl-dump -t batch >b
	cmp a b
	run bash -c "set -o pipefail; grep -o '\"example_ids\":\[[^]]*\]' a | paste -sd' '"
	refute_output '"example_ids":["e1"] "example_ids":["e2"] "example_ids":[3] "example_ids":["e4"] "example_ids":["e1"] "example_ids":["e2"] "example_ids":[3] "example_ids":["e4"] "example_ids":["e1"] "example_ids":["e2"] "example_ids":[3] "example_ids":["e4"]'
	# every epoch holds each example once
	for e in 1 2 3; do
		run bash -c "set -o pipefail; grep '\"epoch\":$e,' a | grep -o '\"example_ids\":\[[^]]*\]' | sort | paste -sd' '"
		assert_output '"example_ids":["e1"] "example_ids":["e2"] "example_ids":["e4"] "example_ids":[3]'
	done
}

@test "--max-tokens bounds padded tokens per batch" {
	run bash -c "set -o pipefail; mtl-batch -q --max-tokens 8 ex.mpk | mtl-dump -t batch | grep -o '\"size\":[0-9]*,\"seq_len\":[0-9]*'"
	assert_output $'"size":2,"seq_len":4\n"size":1,"seq_len":5\n"size":1,"seq_len":3'
	run -1 --separate-stderr mtl-batch -q --max-tokens 4 ex.mpk
	assert_equal "$stderr" "mtl-batch: an example of 5 tokens exceeds --max-tokens 4"
}

@test "--sampling round-robin gives one task per batch, alternating" {
	run bash -c "set -o pipefail; mtl-batch -q -b 2 --sampling round-robin ex.mpk | mtl-dump -t batch | grep -o '\"labels\":{\"[a-z]*\"'"
	assert_output $'"labels":{"topic"\n"labels":{"ner"'
}

@test "--start: a task's labels join at the given epoch" {
	run bash -c "set -o pipefail; mtl-batch -q -b 4 -e 2 --start ner=2 ex.mpk | mtl-dump -t batch | grep -o '\"epoch\":[0-9].*\"labels\":{\"[a-z]*\":[^]]*\]\(,\"[a-z]*\"\)\?' | sed 's/,\"index.*labels\"/ /'"
	assert_line --index 0 --regexp '^"epoch":1 :\{"topic":\[1,0,-100,-100\]$'
	assert_line --index 1 --regexp '^"epoch":2 .*,"ner"$'
}

@test "several inputs labelled for different tasks are combined" {
	cat >a.jsonl <<-'EOF'
	{"type":"header","stream":"examples","version":[1,0],"tasks":[{"name":"topic","kind":"sequence","labels":["a","b"]}],"vocab_hash":"abc"}
	{"type":"example","id":"a1","ids":[2,5,3],"labels":{"topic":1}}
	EOF
	cat >b.jsonl <<-'EOF'
	{"type":"header","stream":"examples","version":[1,0],"tasks":[{"name":"ner","kind":"token","labels":["O","B-X"]}],"vocab_hash":"abc"}
	{"type":"example","id":"b1","ids":[2,6,7,3],"labels":{"ner":[-100,1,0,-100]}}
	EOF
	mtl-dump --pack a.jsonl >a.mpk
	mtl-dump --pack b.jsonl >b.mpk
	run bash -c 'set -o pipefail; mtl-batch -q a.mpk b.mpk | mtl-dump'
	assert_success
	assert_line --partial '"tasks":[{"name":"topic","kind":"sequence","labels":["a","b"]},{"name":"ner","kind":"token","labels":["O","B-X"]}]'
	assert_line '{"type":"batch","epoch":1,"index":0,"size":2,"seq_len":4,"ids":[2,5,3,0,2,6,7,3],"lengths":[3,4],"example_ids":["a1","b1"],"labels":{"topic":[1,-100],"ner":[-100,-100,-100,-100,-100,1,0,-100]}}'
	# another vocabulary cannot be mixed in
	sed 's/"abc"/"xyz"/' b.jsonl | mtl-dump --pack >c.mpk
	run -1 --separate-stderr mtl-batch a.mpk c.mpk
	assert_equal "$stderr" "mtl-batch: c.mpk: tokenized with another vocabulary than a.mpk (vocab_hash differs)"
}

@test "--shuffle-buffer streams the same examples, and counts batches of files" {
	run bash -c 'set -o pipefail; mtl-batch -q -b 3 -e 2 --shuffle --shuffle-buffer 2 ex.mpk | mtl-dump --summary'
	assert_line --partial '"total_batches": 4'
	assert_line --regexp '^  batch +4$'
	run bash -c "set -o pipefail; mtl-batch -q -b 1 --shuffle --shuffle-buffer 2 ex.mpk | mtl-dump -t batch | grep -o '\"example_ids\":\[[^]]*\]' | sort | paste -sd' '"
	assert_output '"example_ids":["e1"] "example_ids":["e2"] "example_ids":["e4"] "example_ids":[3]'
	run -2 --separate-stderr bash -c 'set -o pipefail; cat ex.mpk | mtl-batch --shuffle-buffer 2 -e 2'
	assert_regex "$stderr" 'give files, not a pipe'
}

@test "--stats prints the census on stderr" {
	run --separate-stderr mtl-batch --stats ex.mpk
	assert_success
	assert_regex "$stderr" 'examples 4, tokens 15'
	assert_regex "$stderr" 'labelled for: no task 1 \(25.0%\), one 2 \(50.0%\), several 1 \(25.0%\)'
	assert_regex "$stderr" 'entity X +2'
}

@test "--labelled-only drops examples without labels" {
	run bash -c "set -o pipefail; mtl-batch -q --labelled-only ex.mpk | mtl-dump -t batch | grep -o '\"example_ids\":\[[^]]*\]'"
	assert_output '"example_ids":["e1","e2",3]'
}

@test "bad input: wrong stream kind, bad labels, truncation, unknown task" {
	mtl-batch -q ex.mpk >b.mpk
	run -1 --separate-stderr mtl-batch b.mpk
	assert_equal "$stderr" "mtl-batch: b.mpk: record 1: a stream of kind 'batches', expected 'examples'"
	sed 's/"topic":1,"ner"/"topic":7,"ner"/' "$MTL_ROOT/tests/data/examples.jsonl" | mtl-dump --pack >l.mpk
	run -1 --separate-stderr mtl-batch l.mpk
	assert_equal "$stderr" "mtl-batch: l.mpk: record 2: task 'topic': label 7 out of range (2 labels)"
	sed 's/"ner":\[-100,0,0,1,-100\]/"ner":[0,1]/' "$MTL_ROOT/tests/data/examples.jsonl" | mtl-dump --pack >n.mpk
	run -1 --separate-stderr mtl-batch n.mpk
	assert_equal "$stderr" "mtl-batch: n.mpk: record 4: task 'ner': labels are not 5 integers (one per token)"
	sed 's/"labels":{}/"labels":{"pos":1}/' "$MTL_ROOT/tests/data/examples.jsonl" | mtl-dump --pack >u.mpk
	run -1 --separate-stderr mtl-batch u.mpk
	assert_equal "$stderr" "mtl-batch: u.mpk: record 5: labels for a task the header does not list ('pos')"
	head -c -5 ex.mpk >t.mpk
	run -1 --separate-stderr mtl-batch t.mpk
	assert_regex "$stderr" '^mtl-batch: t.mpk: record 7: truncated'
	run -2 mtl-batch --sampling bogus ex.mpk
	run -2 mtl-batch --start nosuch=2 ex.mpk
	run -2 mtl-batch -b 0 ex.mpk
}

@test "the batches stream ends with its end record, counting the batches" {
	run bats_pipe mtl-batch -q -b 2 ex.mpk \| mtl-dump -t end
	assert_success
	assert_output '{"type":"end","stream":"batches","records":3,"counts":{"batch":2}}'
	run bats_pipe mtl-batch -q -b 3 --shuffle-buffer 2 ex.mpk \| mtl-dump -t end
	assert_output '{"type":"end","stream":"batches","records":3,"counts":{"batch":2}}'
}

@test "an upstream that fails mid-stream: exit 1 and no batches, not a partial set" {
	# mtl-dump --pack fails at the bad line, after 3 whole records
	{ mtl-dump --head 2 ex.mpk; echo 'not JSON'; } >cut.jsonl
	run -1 --separate-stderr bats_pipe mtl-dump --pack cut.jsonl \| mtl-batch -q -b 1
	assert_equal "${stderr##*$'\n'}" "mtl-batch: <stdin>: truncated stream (no end record after 3 records)"
	assert_regex "$stderr" '^mtl-dump: cut.jsonl: line 4: '
	assert_output ''
	# streaming from a pipe: the batches so far went out, but no end record
	cut_stream 3 ex.mpk cut.mpk
	status=0
	cat cut.mpk | mtl-batch -q -b 1 --shuffle-buffer 1 >partial.mpk 2>err || status=$?
	assert_equal "$status" 1
	assert_equal "$(cat err)" "mtl-batch: <stdin>: truncated stream (no end record after 3 records)"
	run -1 --separate-stderr mtl-dump -t batch partial.mpk
	assert_equal "${#lines[@]}" 2
	assert_equal "$stderr" "mtl-dump: partial.mpk: truncated stream (no end record after 3 records)"
	# cut at every byte past the header: inside a record or between two
	size=$(stat -c %s ex.mpk)
	for cut in $(seq $((size - 200)) $((size - 1))); do
		head -c "$cut" ex.mpk >t.mpk
		run -1 --separate-stderr mtl-batch -q t.mpk
		assert_regex "$stderr" '^mtl-batch: t.mpk: (record [2-7]: truncated \(input ends inside the record\)|truncated stream \(no end record after [2-6] records\))$'
		assert_output ''
	done
}

@test "an upstream without examples is an error, not an empty batches stream" {
	head -n 1 "$MTL_ROOT/tests/data/examples.jsonl" | mtl-dump --pack >none.mpk
	run -1 --separate-stderr mtl-batch -q none.mpk
	assert_equal "$stderr" "mtl-batch: no examples in the input"
	assert_output ''
	run -1 --separate-stderr bats_pipe cat none.mpk \| mtl-batch -q --shuffle-buffer 4
	assert_equal "$stderr" "mtl-batch: no examples in the input"
	run -1 --separate-stderr mtl-batch -q --shuffle-buffer 4 none.mpk
	assert_output ''
	grep -e '"type":"header"' -e '"labels":{}' "$MTL_ROOT/tests/data/examples.jsonl" | mtl-dump --pack >nolab.mpk
	run -1 --separate-stderr mtl-batch -q --labelled-only nolab.mpk
	assert_equal "$stderr" "mtl-batch: no labelled examples in the input"
}
