#!/usr/bin/env bats
# The Makefile workflows: the demo's train + embed run end to end on the
# shipped data, keep every stream, and re-running does nothing new.

load helper

@test "the demo workflow runs end to end and keeps every stream" {
	cd "$MTL_ROOT"
	out="$BATS_TEST_TMPDIR/demo"
	run make --no-print-directory -f pipelines/demo.mk demo-run DEMO="$out" DEMO_EPOCHS=1 \
		MTL_BIN="$MTL_ROOT/${MTL_BUILD:-build}/"
	assert_success
	for f in base/config.json train/init/heads.safetensors train/train.examples.mpk \
		train/dev.examples.mpk train/train.batches.mpk train/steps.mpk \
		train/model/model.safetensors train/model/heads.safetensors \
		train/dev.predictions.mpk train/report.txt train/report.html \
		embed/embeddings.mpk embed/similarity.txt embed/similarity.html; do
		[ -s "$out/$f" ] || fail "$f is missing or empty"
	done
	# each stream is what its stage says
	for s in train.examples:examples train.batches:batches steps:steps dev.predictions:predictions; do
		run mtl-dump --head 0 "$out/train/${s%%:*}.mpk"
		assert_output --partial "\"stream\":\"${s##*:}\""
	done
	grep -q 'Task topic (sequence)' "$out/train/report.txt"
	grep -q '<svg' "$out/train/report.html"
	# nothing changed: nothing is redone (make -q: 0 when up to date)
	run make --no-print-directory -f pipelines/train.mk MODEL="$out/base" \
		TASKS=fixtures/demo/tasks.json TRAIN=fixtures/demo/train.jsonl DEV=fixtures/demo/dev.jsonl \
		OUT="$out/train" EPOCHS=1 BATCH=32 LR=1e-3 EVAL_EVERY=75 \
		MTL_BIN="$MTL_ROOT/${MTL_BUILD:-build}/" -q "$out/train/report.html" "$out/train/report.txt"
	assert_success
	# eval.mk scores the trained model on the test split
	run make --no-print-directory -f pipelines/eval.mk MODEL="$out/train/model" \
		DATA=fixtures/demo/test.jsonl OUT="$out/eval" MTL_BIN="$MTL_ROOT/${MTL_BUILD:-build}/"
	assert_success
	assert_output --partial 'Task topic (sequence)'
	[ -s "$out/eval/predictions.mpk" ] && [ -s "$out/eval/report.html" ]
}
