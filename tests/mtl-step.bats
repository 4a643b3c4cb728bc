#!/usr/bin/env bats
# mtl-step: the steps stream, schedules, accumulation, evaluation, saving
# a model that loads again, numerical safety, and bad input.  The model
# is fixtures/tiny; the batches come from hand-written examples
# (tests/data/step-examples.jsonl) through mtl-dump --pack and mtl-batch.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
	mtl-dump --pack "$MTL_ROOT/tests/data/step-examples.jsonl" >ex.mpk
	mtl-batch -q -b 2 -e 3 ex.mpk >b.mpk
}

@test "one step record per batch, with every field, after a steps header" {
	mtl-step -q -m "$FIXTURES/tiny" --lr 1e-3 b.mpk >s.mpk
	mtl-dump s.mpk >s.json
	run jq -c 'select(.type == "header") | [.stream, .total_steps, .accumulate, (.tasks | map(.name))]' s.json
	assert_output '["steps",6,1,["topic","ner"]]'
	run jq -c 'select(.type == "step") | [.step, .epoch, (.labelled | [.topic, .ner]), .tokens, (.weights | [.topic, .ner])]' s.json
	assert_output $'[1,1,[1,4],13,[1,0.5]]\n[2,1,[1,5],13,[1,0.5]]\n[3,2,[1,4],13,[1,0.5]]\n[4,2,[1,5],13,[1,0.5]]\n[5,3,[1,4],13,[1,0.5]]\n[6,3,[1,5],13,[1,0.5]]'
	# loss = sum of weight * task loss; every number finite and positive
	run jq -r 'select(.type == "step") | (.loss - (.losses.topic + 0.5 * .losses.ner)) | fabs < 1e-9' s.json
	refute_output --partial false
	run jq -r 'select(.type == "step") | [.grad_norm > 0, .ms > 0, .accuracy.topic >= 0] | all' s.json
	refute_output --partial false
}

@test "learning-rate schedules: linear decay, warm-up, cosine, constant" {
	run bash -c "set -o pipefail; mtl-step -q -m '$FIXTURES/tiny' --lr 0.006 b.mpk | mtl-dump -t step | jq -r '.lr * 1000 | round'"
	assert_output $'6\n5\n4\n3\n2\n1'
	run bash -c "set -o pipefail; mtl-step -q -m '$FIXTURES/tiny' --lr 0.006 --warmup 2 b.mpk | mtl-dump -t step | jq -r '.lr * 10000 | round'"
	assert_output $'0\n30\n60\n45\n30\n15'
	# Hugging Face's ceil(50 * 0.1) = 5 warm-up steps, not ceil(0.1f * 50) = 6
	run bash -c "set -o pipefail; mtl-step -q -m '$FIXTURES/tiny' --lr 0.006 --warmup-ratio 0.1 --total-steps 50 b.mpk | mtl-dump -t step | jq -r '.lr * 10000 | round'"
	assert_output $'0\n12\n24\n36\n48\n60'
	run bash -c "set -o pipefail; mtl-step -q -m '$FIXTURES/tiny' --lr 0.006 --schedule cosine --total-steps 4 b.mpk | mtl-dump -t step | jq -r '.lr * 10000 | round'"
	assert_output $'60\n51\n30\n9\n0\n0'
	run bash -c "set -o pipefail; mtl-step -q -m '$FIXTURES/tiny' --lr 0.006 --schedule constant b.mpk | mtl-dump -t step | jq -r '.lr * 1000 | round' | sort -u"
	assert_output 6
}

@test "--accumulate N: one step per N batches, labels counted over all N" {
	run bash -c "set -o pipefail; mtl-step -q -m '$FIXTURES/tiny' --accumulate 2 b.mpk | mtl-dump | jq -c 'select(.type == \"header\" or .type == \"step\") | [.total_steps, .step, .labelled.topic, .labelled.ner, .tokens]'"
	assert_output $'[3,null,null,null,null]\n[null,1,2,9,26]\n[null,2,2,9,26]\n[null,3,2,9,26]'
}

@test "--no-gemm-split: BLIS's own threading gives the losses of the default column slices" {
	mtl-step -q -m "$FIXTURES/tiny" -j 2 --lr 1e-3 --no-gemm-split b.mpk | mtl-dump -t step | jq .loss >a
	mtl-step -q -m "$FIXTURES/tiny" -j 2 --lr 1e-3 b.mpk | mtl-dump -t step | jq .loss >b
	run bash -c "set -o pipefail; paste a b | awk '{ d = \$1 - \$2; if (d < 0) d = -d; if (d > 1e-6) print \"differ: \" \$0 }'"
	assert_output ''
	[ "$(wc -l <b)" -eq 6 ]
	# --gemm-split names the default
	mtl-step -q -m "$FIXTURES/tiny" -j 2 --lr 1e-3 --gemm-split b.mpk | mtl-dump -t step | jq .loss >c
	cmp b c
}

@test "--recompute: the same steps and the same trained weights, byte for byte" {
	# dropout on (the fixture's 0.1), a frozen lower layer and two threads
	mtl-step -q -m "$FIXTURES/tiny" -j 2 --lr 1e-3 --freeze layers:0-0 -o a b.mpk |
		mtl-dump -t step | jq -c '[.loss, .grad_norm]' >a.txt
	mtl-step -q -m "$FIXTURES/tiny" -j 2 --lr 1e-3 --freeze layers:0-0 --recompute -o b b.mpk |
		mtl-dump -t step | jq -c '[.loss, .grad_norm]' >b.txt
	[ "$(wc -l <a.txt)" -eq 6 ]
	cmp a.txt b.txt
	cmp a/model.safetensors b/model.safetensors
	cmp a/heads.safetensors b/heads.safetensors
	! cmp -s a/model.safetensors "$FIXTURES/tiny/model.safetensors"
}

@test "--low-memory: the same steps and the same trained weights, byte for byte" {
	# dropout on (the fixture's 0.1), clipping that bites, layer-wise decay,
	# two threads; with --recompute as well
	low_memory_same "$FIXTURES/tiny" b.mpk --lr 1e-3 --layer-decay 0.9
	[ "$(wc -l <lm-a.txt)" -eq 6 ]
	run jq -s 'map(.[1] > 0.5) | all' lm-a.txt
	assert_output true
	low_memory_same "$FIXTURES/tiny" b.mpk --lr 1e-3 --layer-decay 0.9 --recompute
}

@test "--low-memory with --freeze and --unfreeze-at: the same bytes as without" {
	# a frozen lower layer (the backward stops above it), a frozen upper
	# layer (run through, left out), frozen embeddings and a head; and
	# everything trained again from step 4
	low_memory_same "$FIXTURES/tiny" b.mpk --lr 1e-3 --freeze layers:0-0
	low_memory_same "$FIXTURES/tiny" b.mpk --lr 1e-3 --freeze layers:1-1 --freeze head:ner
	low_memory_same "$FIXTURES/tiny" b.mpk --lr 1e-3 --freeze embeddings --unfreeze-at 4
	low_memory_same "$FIXTURES/tiny" b.mpk --lr 1e-3 --freeze encoder
}

@test "--low-memory refuses what needs every gradient at once" {
	for v in "--accumulate 2" "--balance pcgrad" "--contrastive 0.1"; do
		run mtl-step -q -m "$FIXTURES/tiny" --low-memory $v b.mpk
		assert_failure 2
		assert_line --partial "--low-memory updates each layer during its backward"
	done
}

@test "--out writes a model directory that --model accepts again" {
	mtl-step -q -m "$FIXTURES/tiny" --lr 1e-3 -o trained b.mpk >/dev/null
	for f in config.json model.safetensors heads.safetensors tasks.json vocab.txt \
		 tokenizer_config.json special_tokens_map.json modules.json 1_Pooling/config.json; do
		[ -f "trained/$f" ] || fail "trained/$f missing"
	done
	! cmp -s trained/heads.safetensors "$FIXTURES/tiny/heads.safetensors"
	run bash -c "set -o pipefail; mtl-step -q -m trained --lr 1e-3 b.mpk | mtl-dump -t step | wc -l"
	assert_success
	assert_output 6
	# the trained model fits the training data better than the original
	a=$(mtl-step -q -m "$FIXTURES/tiny" --lr 0 --eval ex.mpk b.mpk | mtl-dump -t eval | jq .loss)
	b=$(mtl-step -q -m trained --lr 0 --eval ex.mpk b.mpk | mtl-dump -t eval | jq .loss)
	run jq -n "$b < $a"
	assert_output true
}

@test "--eval --eval-every N writes eval records with loss, accuracy and F1" {
	mtl-step -q -m "$FIXTURES/tiny" --eval ex.mpk --eval-every 4 b.mpk >s.mpk
	run bash -c "set -o pipefail; mtl-dump -t eval s.mpk | jq -c '[.step, .examples, (.tasks | map_values(.labelled)), (.tasks.ner | keys)]'"
	assert_output $'[4,4,{"topic":2,"ner":9},["accuracy","entity_f1","f1","labelled","loss"]]\n[6,4,{"topic":2,"ner":9},["accuracy","entity_f1","f1","labelled","loss"]]'
	# loss = sum of weight * task loss, as for steps
	run bash -c "set -o pipefail; mtl-dump -t eval s.mpk | jq -r '(.loss - (.tasks.topic.loss + 0.5 * .tasks.ner.loss)) | fabs < 1e-9'"
	assert_output $'true\ntrue'
	# mtl-report reads the stream: its curves and its table of evaluations
	run mtl-report s.mpk
	assert_success
	assert_output --partial '6 step records (steps 1 to 6)'
	assert_output --regexp '   6  ner +[0-9.]+ +[0-9.]+ +[0-9.]+'
	run -2 --separate-stderr mtl-step -m "$FIXTURES/tiny" --eval-every 2 b.mpk
	assert_equal "${stderr%%$'\n'*}" "mtl-step: --eval-every needs --eval FILE"
}

@test "a non-finite loss skips the step; --max-bad-steps in a row stop with exit 1" {
	run -1 --separate-stderr bash -c "set -o pipefail; mtl-step -q -m '$FIXTURES/tiny' --lr 1e30 --max-bad-steps 2 b.mpk | mtl-dump | jq -c 'select(.type != \"header\") | [.type, .step, .reason]'"
	assert_output $'["step",1,null]\n["skip",2,"non-finite loss"]\n["skip",2,"non-finite loss"]'
	# and the steps stream it leaves has no end record: mtl-dump says so
	assert_equal "$stderr" $'mtl-step: b.mpk: record 4: 2 steps in a row had a non-finite loss or gradient; stopping\nmtl-dump: <stdin>: truncated stream (no end record after 4 records)'
}

@test "bad input: wrong stream kind, task mismatch, vocabulary, corrupt record" {
	run -1 --separate-stderr mtl-step -m "$FIXTURES/tiny" ex.mpk
	assert_equal "$stderr" "mtl-step: ex.mpk: record 1: a stream of kind 'examples', expected 'batches'"

	sed 's/"B-LOC","I-LOC"/"B-ORG","I-ORG"/' "$MTL_ROOT/tests/data/step-examples.jsonl" |
		mtl-dump --pack | mtl-batch -q >other.mpk
	run -1 --separate-stderr mtl-step -m "$FIXTURES/tiny" other.mpk
	assert_equal "$stderr" "mtl-step: other.mpk: task 'ner': label 3 is 'B-ORG' in the stream, 'B-LOC' in the model"

	sed 's/"max_length"/"vocab_hash":"0123456789abcdef","max_length"/' "$MTL_ROOT/tests/data/step-examples.jsonl" |
		mtl-dump --pack | mtl-batch -q >vocab.mpk
	run -1 --separate-stderr mtl-step -m "$FIXTURES/tiny" vocab.mpk
	assert_output ''
	assert_regex "$stderr" "^mtl-step: vocab.mpk: tokenized with another vocabulary than the model"

	# the first record from a file: mtl-batch into a pipe that mtl-dump
	# --head closes early would die of SIGPIPE (141) now and then
	mtl-batch -q -b 2 ex.mpk >two.mpk
	{
		mtl-dump --head 1 two.mpk
		echo '{"type":"batch","epoch":1,"index":1,"size":1,"seq_len":3,"ids":[2,16,3],"lengths":[3],"example_ids":["x"],"labels":{"topic":[9]}}'
	} | mtl-dump --pack >corrupt.mpk
	run -1 --separate-stderr mtl-step -q -m "$FIXTURES/tiny" corrupt.mpk
	assert_regex "$stderr" "^mtl-step: corrupt.mpk: record 3: .*topic.*9"

	run -1 --separate-stderr mtl-step -m "$FIXTURES/tiny" /dev/null
	assert_regex "$stderr" "^mtl-step: /dev/null: .*empty"
}

@test "batches cut short (mtl-batch killed): exit 1, checkpoints kept, no final model" {
	# 3 of the 6 batches, as a writer that failed after them leaves them
	cut_stream 4 b.mpk cut.mpk
	status=0
	mtl-step -q -m "$FIXTURES/tiny" --lr 1e-3 -o out --save-every 2 cut.mpk >s.mpk 2>err || status=$?
	assert_equal "$status" 1
	assert_equal "$(cat err)" "mtl-step: cut.mpk: truncated stream (no end record after 4 records)"
	[ -f out/checkpoint-000002/COMPLETE ] || fail "the checkpoint of step 2 is gone"
	[ ! -e out/model.safetensors ] || fail "a final model was written"
	# the steps so far went out, without an end record
	run -1 --separate-stderr mtl-dump -t step s.mpk
	assert_equal "${#lines[@]}" 3
	assert_equal "$stderr" "mtl-dump: s.mpk: truncated stream (no end record after 4 records)"
	# cut inside a record: the same
	head -c -3 b.mpk >mid.mpk
	run -1 --separate-stderr mtl-step -q -m "$FIXTURES/tiny" -o out2 mid.mpk
	assert_equal "$stderr" "mtl-step: mid.mpk: record 8: truncated (input ends inside the record)"
	[ ! -e out2/model.safetensors ]
	# and a whole stream ends the steps stream with its end record
	run bats_pipe mtl-step -q -m "$FIXTURES/tiny" b.mpk \| mtl-dump -t end
	assert_success
	assert_output '{"type":"end","stream":"steps","records":7,"counts":{"step":6}}'
}

@test "a batches stream must hold the total_batches its header promised" {
	mtl-dump b.mpk | sed '1s/"total_batches":6/"total_batches":7/' | mtl-dump --pack >more.mpk
	run -1 --separate-stderr mtl-step -q -m "$FIXTURES/tiny" -o out more.mpk
	assert_equal "$stderr" "mtl-step: more.mpk: 6 batches, but its header promised total_batches 7"
	[ ! -e out/model.safetensors ]
	mtl-dump b.mpk | sed '1s/"total_batches":6/"total_batches":5/' | mtl-dump --pack >fewer.mpk
	run -1 --separate-stderr mtl-step -q -m "$FIXTURES/tiny" --accumulate 2 fewer.mpk
	assert_equal "$stderr" "mtl-step: fewer.mpk: 6 batches, but its header promised total_batches 5"
}

@test "a garbled total_batches is bad input (exit 1), a missing one a usage error (exit 2)" {
	mtl-dump b.mpk >b.json
	for v in '"6"' -6 1e3 99999999999; do
		sed "1s/\"total_batches\":6/\"total_batches\":$v/" b.json | mtl-dump --pack >tb.mpk
		run -1 --separate-stderr mtl-step -q -m "$FIXTURES/tiny" tb.mpk
		assert_equal "$stderr" 'mtl-step: tb.mpk: record 1: "total_batches" is not an integer in [0, 2147483647]'
	done
	sed '1s/,"total_batches":6//' b.json | mtl-dump --pack >tb.mpk
	run -2 --separate-stderr mtl-step -q -m "$FIXTURES/tiny" tb.mpk
	assert_regex "$stderr" "^mtl-step: tb.mpk: the stream does not say how many batches"
}

@test "usage errors exit 2; --help and --version exit 0" {
	run -2 --separate-stderr mtl-step b.mpk
	assert_equal "${stderr%%$'\n'*}" "mtl-step: --model is required"
	run -2 --separate-stderr mtl-step -m "$FIXTURES/tiny" --schedule steep b.mpk
	assert_equal "${stderr%%$'\n'*}" "mtl-step: --schedule takes linear, cosine or constant, not 'steep'"
	run -2 mtl-step -m "$FIXTURES/tiny" --label-smoothing 1 b.mpk
	run -0 mtl-step --help
	assert_line --index 0 "usage: mtl-step --model DIR [options] [BATCHES]"
	run -0 mtl-step --version
	assert_output --regexp '^mtl-step [0-9]'
	run -1 --separate-stderr mtl-step -m "$FIXTURES/tiny-f16" b.mpk
	assert_regex "$stderr" "no tasks.json"
}

@test "learns the demo end to end: mtl-init, mtl-tokenize, mtl-batch, mtl-step" {
	D=$FIXTURES/demo
	mtl-init -q -o m --vocab "$D/vocab.txt" --hidden 64 --layers 2 --heads 4 \
		--intermediate 256 --max-position 64 --seed 1
	cp "$D/tasks.json" m/
	mtl-tokenize -q -m m "$D/train.jsonl" >train.mpk
	mtl-tokenize -q -m m "$D/test.jsonl" >test.mpk
	mtl-batch -q -b 32 -e 4 --shuffle --seed 3 train.mpk >b.mpk
	mtl-step -q -m m -j 1 --lr 2e-3 --warmup-ratio 0.1 --eval test.mpk -o tuned b.mpk >steps.mpk
	run bash -c "set -o pipefail; mtl-dump -t eval steps.mpk | jq -c '[.step, .examples, .tasks.topic.accuracy >= 0.95, .tasks.ner.accuracy >= 0.95]'"
	assert_output '[300,300,true,true]'
	# the saved model scores the same test set as well
	mtl-batch -q -b 1000 test.mpk >tb.mpk
	run bash -c "set -o pipefail; mtl-step -q -m tuned --lr 0 --eval test.mpk tb.mpk | mtl-dump -t eval | jq -c '[.tasks.topic.accuracy >= 0.95, .tasks.ner.accuracy >= 0.95]'"
	assert_output '[true,true]'
}
