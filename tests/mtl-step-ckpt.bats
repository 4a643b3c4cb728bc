#!/usr/bin/env bats
# mtl-step checkpoints: the layout, rotation with the best one kept,
# resuming after kill -9 and after SIGTERM bit-identically, refusing a
# checkpoint that does not fit, and a full disk (the MTL_FS_FAIL_WRITE
# hook of lib/io/fs.c) leaving the previous checkpoint intact.  The tiny
# model with its dropout on, 20 steps of 2 examples, one thread.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
	mtl-dump --pack "$MTL_ROOT/tests/data/step-examples.jsonl" >ex.mpk
	mtl-batch -q -b 2 -e 10 ex.mpk >b.mpk
	TRAIN=(mtl-step -q -j 1 -m "$FIXTURES/tiny" --lr 1e-3 --save-every 3)
	BIG=(mtl-step -q -j 1 -m "$FIXTURES/tiny" --lr 1e-3 --save-every 250)
}

big_stream() {
	mtl-batch -q -b 2 -e 600 ex.mpk >big.mpk
	"${BIG[@]}" -o whole big.mpk >/dev/null
}

# same_model A B: the two directories hold the same encoder, heads and moments
same_model() {
	cmp "$1/model.safetensors" "$2/model.safetensors"
	cmp "$1/heads.safetensors" "$2/heads.safetensors"
	assert_equal "$(cat "$1/latest")" "$(cat "$2/latest")"
	cmp "$1/$(cat "$1/latest")/optimizer.safetensors" "$2/$(cat "$2/latest")/optimizer.safetensors"
}

# start_on_fifo OUT: mtl-step on big.mpk (1200 steps, a checkpoint every
# 250) through a FIFO that gets a random 50-90% of it and stays open (on
# fd 5: Bats owns fd 3).  The run reads what the FIFO holds, so it has
# done hundreds of steps and then waits for more; this waits until OUT
# has a complete checkpoint and a random moment more.
start_on_fifo() {
	local out=$1 size cut
	rm -f fifo
	mkfifo fifo
	"${BIG[@]}" -o "$out" fifo >/dev/null 2>err &
	pid=$!
	exec 5>fifo
	size=$(stat -c %s big.mpk)
	cut=$((size * (50 + RANDOM % 40) / 100))
	head -c "$cut" big.mpk >&5
	for _ in $(seq 200); do
		compgen -G "$out/checkpoint-*/COMPLETE" >/dev/null && break
		sleep 0.05
	done
	compgen -G "$out/checkpoint-*/COMPLETE" >/dev/null || fail "no checkpoint appeared"
	sleep "0.$((RANDOM % 3))"
}

@test "a checkpoint is a complete model directory with optimiser and trainer state" {
	"${TRAIN[@]}" -o out --keep 2 b.mpk >/dev/null
	run ls out
	assert_line checkpoint-000018
	assert_line checkpoint-000020
	refute_line checkpoint-000015
	assert_equal "$(cat out/latest)" checkpoint-000020
	for f in config.json model.safetensors heads.safetensors tasks.json vocab.txt \
		 modules.json 1_Pooling/config.json optimizer.safetensors trainer.json COMPLETE; do
		[ -f "out/checkpoint-000018/$f" ] || fail "checkpoint-000018/$f missing"
	done
	run jq -c '[.step, .batches, (.rng | length), .strategy]' out/checkpoint-000018/trainer.json
	assert_output '[18,18,4,{}]'
	# the final checkpoint is the final model
	cmp out/model.safetensors out/checkpoint-000020/model.safetensors
	# and a checkpoint is a model directory mtl-step accepts
	run bash -c "set -o pipefail; mtl-step -q -m out/checkpoint-000018 --lr 1e-3 b.mpk | mtl-dump -t step | wc -l"
	assert_output 20
}

@test "kill -9 after a checkpoint, then --resume: bit-identical to an uninterrupted run" {
	big_stream
	start_on_fifo cut
	kill -9 "$pid"
	wait "$pid" || true
	exec 5>&-
	[ ! -e cut/model.safetensors ] || fail "the killed run finished"
	# as if the kill had hit a save: its temporary directory is cleared
	mkdir cut/.checkpoint-000999.tmp
	"${BIG[@]}" -o cut --resume big.mpk >/dev/null
	same_model whole cut
	! compgen -G "cut/.checkpoint-*" >/dev/null
}

@test "SIGTERM and SIGINT save a checkpoint and exit 143 or 130; resuming is bit-identical" {
	big_stream
	for sig in TERM INT; do
		start_on_fifo "s$sig"
		kill -s "$sig" "$pid"
		status=0
		wait "$pid" || status=$?
		exec 5>&-
		[ "$sig" = TERM ] && assert_equal "$status" 143
		[ "$sig" = INT ] && assert_equal "$status" 130
		run grep -c "stopped by signal .* after step [0-9]*: checkpoint saved in 's$sig'" err
		assert_output 1
		step=$(cat "s$sig/latest")
		[ -f "s$sig/$step/COMPLETE" ]
		"${BIG[@]}" -o "s$sig" --resume big.mpk >/dev/null
		same_model whole "s$sig"
	done
}

@test "--resume trusts only complete checkpoints and starts afresh without one" {
	"${TRAIN[@]}" -o out b.mpk >/dev/null
	rm out/checkpoint-000020/COMPLETE
	run --separate-stderr mtl-step -j 1 -m "$FIXTURES/tiny" -o out --save-every 3 --resume b.mpk
	assert_success
	assert_equal "$(grep resuming <<<"$stderr")" "mtl-step: resuming from 'out/checkpoint-000018': step 18, 18 batches consumed"
	run --separate-stderr mtl-step -j 1 -m "$FIXTURES/tiny" -o fresh --resume b.mpk
	assert_equal "$(grep afresh <<<"$stderr")" "mtl-step: no complete checkpoint in 'fresh': starting afresh"
}

@test "--resume refuses another model shape, task spec or vocabulary, and a shorter stream" {
	"${TRAIN[@]}" -o out b.mpk >/dev/null
	rm -r out/checkpoint-000020
	cp -r out/checkpoint-000018 keep
	# the edits below would fail verification: unlist the files edited
	sed -i -e '/ config.json$/d' -e '/ tasks.json$/d' -e '/ vocab.txt$/d' \
		out/checkpoint-000018/COMPLETE out/checkpoint-000018/MANIFEST
	jq '.num_attention_heads = 2' keep/config.json >out/checkpoint-000018/config.json
	run -1 --separate-stderr "${TRAIN[@]}" -o out --resume b.mpk
	assert_equal "$stderr" "mtl-step: cannot resume: checkpoint 'out/checkpoint-000018' has another model shape (vocab 312, hidden 32, 2 layers, 2 heads, intermediate 64) than the run (vocab 312, hidden 32, 2 layers, 4 heads, intermediate 64)"
	cp keep/config.json out/checkpoint-000018/
	jq '.tasks[0].labels[0] = "trade"' keep/tasks.json >out/checkpoint-000018/tasks.json
	run -1 --separate-stderr "${TRAIN[@]}" -o out --resume b.mpk
	assert_equal "$stderr" "mtl-step: cannot resume: checkpoint 'out/checkpoint-000018': task 0 ('topic') differs from the run's ('topic')"
	cp keep/tasks.json out/checkpoint-000018/
	sed '100s/.*/zzzz/' keep/vocab.txt >out/checkpoint-000018/vocab.txt
	run -1 --separate-stderr "${TRAIN[@]}" -o out --resume b.mpk
	assert_equal "$stderr" "mtl-step: cannot resume: checkpoint 'out/checkpoint-000018' has another tokenizer vocabulary than the model '$FIXTURES/tiny'"
	cp keep/vocab.txt out/checkpoint-000018/
	mtl-batch -q -b 2 -e 4 ex.mpk >short.mpk
	run -1 --separate-stderr "${TRAIN[@]}" -o out --resume short.mpk
	assert_equal "$stderr" "mtl-step: short.mpk: 8 batches, fewer than the 18 the checkpoint consumed: not the stream of the run"
}

@test "a full disk while saving leaves the previous checkpoint, latest and the run resumable" {
	"${TRAIN[@]}" -o whole --keep 100 b.mpk >/dev/null
	failed_late=0
	# fail the Nth atomic write, for N across the first checkpoints
	for n in 1 7 19 31 43 58 71 89 97 113 131; do
		rm -rf out
		MTL_FS_FAIL_WRITE=$n run -3 --separate-stderr "${TRAIN[@]}" -o out b.mpk
		[[ "$stderr" == *"No space left on device"* ]] || fail "n=$n: $stderr"
		compgen -G "out/.checkpoint-*" >/dev/null && fail "n=$n: a temporary directory was left"
		[ -e out/latest ] || continue
		failed_late=1
		last=$(cat out/latest)
		[ -f "out/$last/COMPLETE" ] || fail "n=$n: latest names an incomplete $last"
		for d in out/checkpoint-*; do
			[ -f "$d/COMPLETE" ] || fail "n=$n: $d has no marker"
			cmp "$d/model.safetensors" "whole/${d#out/}/model.safetensors"
			cmp "$d/optimizer.safetensors" "whole/${d#out/}/optimizer.safetensors"
		done
		"${TRAIN[@]}" -o out --resume b.mpk >/dev/null
		same_model whole out
	done
	[ "$failed_late" = 1 ] || fail "no failure happened after a first checkpoint"
}

@test "--best-metric: the best checkpoint survives rotation and is recorded" {
	"${TRAIN[@]}" -o out --keep 1 --eval ex.mpk --best-metric loss b.mpk >s.mpk
	best=$(cut -d' ' -f1 out/best)
	[ -f "out/$best/COMPLETE" ] || fail "best $best was rotated away"
	run ls -d out/checkpoint-*
	[ "${#lines[@]}" -le 2 ] || fail "more than latest and best kept: ${lines[*]}"
	# the best is the lowest eval loss at a checkpoint step (3, 6, ..., 18, 20)
	want=$(mtl-dump -t eval s.mpk | jq -s -r 'map(select(.step % 3 == 0 or .step == 20)) | min_by(.loss) | .step')
	assert_equal "$best" "$(printf 'checkpoint-%06d' "$want")"
	run jq -r '.best.checkpoint' "out/checkpoint-000020/trainer.json"
	assert_output "$best"
	run -2 mtl-step -q -m "$FIXTURES/tiny" -o o --save-every 3 --eval ex.mpk --best-metric topic:recall b.mpk
	run -2 mtl-step -q -m "$FIXTURES/tiny" -o o --best-metric loss b.mpk
}
