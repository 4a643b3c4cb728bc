#!/usr/bin/env bats
# mtl-step --balance: every strategy trains on a tiny batch stream (the
# tests/data/step-examples.jsonl batches of mtl-step.bats) and writes
# weights, coefficients and cosines that mtl-report reads; a stream
# without one task's labels; --task-weight; --balance-every; pair texts
# and --contrastive; bad options.  One thread per run: the OpenMP threads
# of many short runs only spin against each other on a shared machine.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
	mtl-dump --pack "$MTL_ROOT/tests/data/step-examples.jsonl" >ex.mpk
	mtl-batch -q -b 2 -e 1 ex.mpk >b.mpk
}

@test "every --balance value, at the encoder and at its output, trains with finite numbers" {
	for k in static uncertainty dwa gradnorm rlw pcgrad cagrad nash; do
		for at in encoder encoder-output; do
			mtl-step -q -j 1 -m "$FIXTURES/tiny" --lr 1e-3 --balance $k --grad-at $at b.mpk >s.mpk
			mtl-dump -t step s.mpk >s.json
			run jq -r '[.loss, .grad_norm, .weights.topic, .weights.ner] | map(isinfinite or isnan or . == null) | any' s.json
			assert_output $'false\nfalse'
			[ "$(wc -l <s.json)" -eq 2 ] || fail "$k $at: $(wc -l <s.json) steps"
		done
	done
}

@test "gradient methods record coefficients, a topic/ner cosine and their time" {
	for k in gradnorm pcgrad cagrad nash; do
		mtl-step -q -j 1 -m "$FIXTURES/tiny" --lr 1e-3 --balance $k b.mpk | mtl-dump -t step >s.json
		run jq -r '[(.cosine.topic.ner | fabs <= 1), (.coef | length == 2), .balance_ms >= 0] | all' s.json
		assert_output $'true\ntrue'
	done
	# loss weighting alone has no per-task gradients: no cosine
	mtl-step -q -j 1 -m "$FIXTURES/tiny" --lr 1e-3 --balance dwa b.mpk | mtl-dump -t step >s.json
	run jq -c '[.cosine, .coef]' s.json
	assert_output $'[null,null]\n[null,null]'
}

@test "mtl-report plots the weights and the gradient cosine of a balanced run" {
	mtl-step -q -j 1 -m "$FIXTURES/tiny" --lr 1e-3 --balance pcgrad b.mpk >s.mpk
	run mtl-report s.mpk
	assert_success
	# pcgrad keeps the weights at 1: constant, so said in a sentence
	assert_line --regexp '^constant: .*weight topic 1\.0000'
	refute_line --regexp '^weight topic '
	assert_line --regexp '^grad cosine topic/ner +-?0\.[0-9]{4} '
}

@test "static: the task spec weights, or --task-weight" {
	run bash -c "set -o pipefail; mtl-step -q -j 1 -m '$FIXTURES/tiny' --lr 1e-3 b.mpk | mtl-dump -t step | jq -c '.weights'"
	assert_output $'{"topic":1,"ner":0.5}\n{"topic":1,"ner":0.5}'
	run bash -c "set -o pipefail; mtl-step -q -j 1 -m '$FIXTURES/tiny' --lr 1e-3 --task-weight ner=2 --task-weight topic=0.25 b.mpk | mtl-dump -t step | jq -r '[.weights.topic, .weights.ner, (.loss - (0.25 * .losses.topic + 2 * .losses.ner) | fabs < 1e-9)] | @tsv'"
	assert_output $'0.25\t2\ttrue\n0.25\t2\ttrue'
}

@test "uncertainty: weights exp(-s) start at 1 and move; DWA holds 1 for two steps" {
	mtl-batch -q -b 2 -e 3 ex.mpk >b3.mpk
	run bash -c "set -o pipefail; mtl-step -q -j 1 -m '$FIXTURES/tiny' --lr 1e-2 --balance uncertainty b3.mpk | mtl-dump -t step | jq -r '.weights.topic != 1' | tr '\n' ' '"
	assert_output 'false true true true true true '
	run bash -c "set -o pipefail; mtl-step -q -j 1 -m '$FIXTURES/tiny' --lr 1e-2 --balance dwa --dwa-temperature 0.5 b3.mpk | mtl-dump -t step | jq -r '[.weights.topic == 1, (.weights.topic + .weights.ner - 2 | fabs < 1e-9)] | @tsv' | tr '\n' ' '"
	assert_output $'true\ttrue true\ttrue false\ttrue false\ttrue false\ttrue false\ttrue '
}

@test "--balance-every 2: per-task gradients on every other step" {
	mtl-batch -q -b 2 -e 2 ex.mpk >b2.mpk
	run bash -c "set -o pipefail; mtl-step -q -j 1 -m '$FIXTURES/tiny' --lr 1e-3 --balance pcgrad --balance-every 2 b2.mpk | mtl-dump -t step | jq -c '[.step, (.cosine != null), .coef.topic]'"
	[ "${#lines[@]}" -eq 4 ]
	[[ ${lines[0]} == '[1,true,'* ]] && [[ ${lines[1]} == '[2,false,null]' ]]
	[[ ${lines[2]} == '[3,true,'* ]] && [[ ${lines[3]} == '[4,false,null]' ]]
}

@test "a stream with no ner labels trains under every strategy" {
	# keep only the topic labels: ner is missing from every batch
	jq -c 'del(.labels.ner)' "$MTL_ROOT/tests/data/step-examples.jsonl" >topic.jsonl
	mtl-dump --pack topic.jsonl >t.mpk
	mtl-batch -q -b 2 t.mpk >tb.mpk
	for k in uncertainty dwa gradnorm rlw pcgrad cagrad nash; do
		run bash -c "set -o pipefail; mtl-step -q -j 1 -m '$FIXTURES/tiny' --lr 1e-3 --balance $k tb.mpk | mtl-dump -t step | jq -r '[.labelled.ner == 0, (.loss | isnan | not), .grad_norm > 0] | all'"
		assert_output $'true\ntrue' || fail "$k"
	done
}

@test "bad --balance options are usage errors" {
	run -2 --separate-stderr mtl-step -j 1 -m "$FIXTURES/tiny" --balance mgda b.mpk
	[[ $stderr == *"static, uncertainty, dwa, gradnorm, rlw, pcgrad, cagrad or nash, not 'mgda'"* ]]
	run -2 --separate-stderr mtl-step -j 1 -m "$FIXTURES/tiny" --grad-at heads b.mpk
	run -2 --separate-stderr mtl-step -j 1 -m "$FIXTURES/tiny" --task-weight nosuch=1 b.mpk
	[[ $stderr == *"'nosuch' is not one of the model's tasks"* ]]
	run -2 --separate-stderr mtl-step -j 1 -m "$FIXTURES/tiny" --task-weight topic b.mpk
	run -2 --separate-stderr mtl-step -j 1 -m "$FIXTURES/tiny" --dwa-temperature 0 b.mpk
	run -2 --separate-stderr mtl-step -j 1 -m "$FIXTURES/tiny" --balance-every 0 b.mpk
	# per-task gradients ignore freezing: refused; loss weighting trains frozen
	run -2 --separate-stderr mtl-step -j 1 -m "$FIXTURES/tiny" --balance pcgrad --freeze embeddings b.mpk
	[[ $stderr == *"does not combine with --freeze"* ]]
	run bash -c "set -o pipefail; mtl-step -q -j 1 -m '$FIXTURES/tiny' --balance dwa --freeze embeddings b.mpk | mtl-dump -t step | jq -r '.grad_norm > 0'"
	assert_output $'true\ntrue'
}

@test "JSONL \"pair\" texts: pair_ids per example, pair_ids/pair_lengths per batch" {
	printf '%s\n' '{"id":"a","text":"the match was won","pair":"a team won the game","topic":"sports"}' \
		'{"id":"b","text":"shares fell today","pair":"the market dropped","topic":"business"}' \
		'{"id":"c","text":"new phone released","topic":"tech"}' >p.jsonl
	mtl-tokenize -q -m "$FIXTURES/tiny" p.jsonl >p.mpk
	run bash -c "set -o pipefail; mtl-dump -t example p.mpk | jq -c '[.id, (.pair_ids | length), .pair_ids[0], .pair_ids[-1]]'"
	assert_output $'["a",7,2,3]\n["b",10,2,3]\n["c",0,null,null]'
	# the pair is tokenized as a text of its own: the same ids as a "text"
	printf '%s\n' '{"id":"a","text":"a team won the game"}' | mtl-tokenize -q -m "$FIXTURES/tiny" >q.mpk
	[ "$(mtl-dump -t example q.mpk | jq -c .ids)" = "$(mtl-dump -t example p.mpk | jq -c 'select(.id == "a") | .pair_ids')" ]
	# a batch carries pairs only when each of its examples has one
	mtl-batch -q -b 2 p.mpk >pb.mpk
	run bash -c "set -o pipefail; mtl-dump -t batch pb.mpk | jq -c '[.example_ids, .pair_lengths, (.pair_ids | length)]'"
	assert_output $'[["a","b"],[7,10],20]\n[["c"],null,0]'
	printf '%s\n' '{"text":"x","pair":3}' >bad.jsonl
	run -1 --separate-stderr mtl-tokenize -m "$FIXTURES/tiny" bad.jsonl
	[[ $stderr == *"'pair' must be a string"* ]]
}

@test "--contrastive: the InfoNCE term joins the loss, with pairs or dropout views" {
	printf '%s\n' '{"id":"a","text":"the match was won","pair":"a team won the game","topic":"sports"}' \
		'{"id":"b","text":"shares fell today","pair":"the market dropped","topic":"business"}' \
		'{"id":"c","text":"new phone released","pair":"a phone is out","topic":"tech"}' >p.jsonl
	mtl-tokenize -q -m "$FIXTURES/tiny" p.jsonl >p.mpk
	mtl-batch -q -b 3 -e 2 p.mpk >pb.mpk
	mtl-step -q -j 1 -m "$FIXTURES/tiny" --lr 1e-3 --contrastive 0.5 pb.mpk | mtl-dump -t step >s.json
	# loss = topic loss + 0.5 InfoNCE
	run jq -r '[(.loss - (.losses.topic + 0.5 * .contrastive) | fabs < 1e-9), .contrastive > 0] | all' s.json
	assert_output $'true\ntrue'
	# without pairs: two dropout views of each batch
	mtl-step -q -j 1 -m "$FIXTURES/tiny" --lr 1e-3 --contrastive 1 --dropout 0.1 b.mpk | mtl-dump -t step >d.json
	run jq -r '.contrastive > 0' d.json
	assert_output $'true\ntrue'
	# refused with per-task gradients; the temperature must be positive
	run -2 --separate-stderr mtl-step -j 1 -m "$FIXTURES/tiny" --contrastive 1 --balance pcgrad b.mpk
	run -2 --separate-stderr mtl-step -j 1 -m "$FIXTURES/tiny" --contrastive 1 --contrastive-temperature 0 b.mpk
}

@test "--resume continues a balanced run bit for bit: the strategy's state is in the checkpoint" {
	mtl-batch -q -b 2 -e 4 ex.mpk >b4.mpk
	for k in uncertainty dwa gradnorm rlw pcgrad; do
		T=(mtl-step -q -j 1 -m "$FIXTURES/tiny" --lr 1e-2 --balance $k --save-every 3 --keep 9)
		"${T[@]}" -o whole b4.mpk >whole.mpk
		run jq -r '.strategy.method' whole/checkpoint-000003/trainer.json
		assert_output $k
		# a run that stopped after step 3: its checkpoint alone, then --resume
		mkdir -p cut
		cp -r whole/checkpoint-000003 cut/
		echo checkpoint-000003 >cut/latest
		"${T[@]}" -o cut --resume b4.mpk >cut.mpk
		cmp whole/model.safetensors cut/model.safetensors || fail "$k: the resumed model differs"
		cmp whole/heads.safetensors cut/heads.safetensors || fail "$k: the resumed heads differ"
		[ "$(mtl-dump -t step whole.mpk | jq -c '[.step, .loss, .weights]' | tail -n 5)" = \
		  "$(mtl-dump -t step cut.mpk | jq -c '[.step, .loss, .weights]')" ] || fail "$k: the steps differ"
		rm -rf whole cut
	done
	# another method's checkpoint is refused
	mtl-step -q -j 1 -m "$FIXTURES/tiny" --balance dwa --save-every 3 -o d b4.mpk >/dev/null
	run -1 --separate-stderr mtl-step -q -j 1 -m "$FIXTURES/tiny" --balance rlw -o d --resume b4.mpk
	[[ $stderr == *"balances tasks by 'dwa', not 'rlw'"* ]]
}
