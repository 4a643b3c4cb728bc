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

# The workflows' defaults on a fresh clone: train.mk trains the demo's tiny
# encoder (made first) on the demo data; embed.mk and eval.mk then use that
# trained model.  Only the scratch places and one epoch are given.
@test "pipelines: the defaults run, and a changed setting re-runs what depends on it" {
	cd "$MTL_ROOT"
	d="$BATS_TEST_TMPDIR/demo"
	bin="MTL_BIN=$MTL_ROOT/${MTL_BUILD:-build}/"
	run make --no-print-directory -f pipelines/train.mk DEMO_RUN="$d" OUT="$d/train" EPOCHS=1 "$bin"
	assert_success
	assert_output --partial 'Entities of ner (conlleval)'
	[ -s "$d/base/config.json" ] && [ -s "$d/train/model/heads.safetensors" ]
	t=(make --no-print-directory -f pipelines/train.mk DEMO_RUN="$d" OUT="$d/train" EPOCHS=1 "$bin")
	run "${t[@]}" -q "$d/train/report.txt" "$d/train/report.html"
	assert_success
	# LR: training and what follows, not tokenizing or batching
	run "${t[@]}" -n LR=2e-3
	assert_output --partial 'mtl-step'
	refute_output --partial 'mtl-tokenize'
	refute_output --partial 'mtl-batch'
	run "${t[@]}" -n SEED=2
	assert_output --partial 'mtl-batch'
	run "${t[@]}" -n TOKENIZE_OPTS=--lowercase
	assert_output --partial 'mtl-tokenize'
	run "${t[@]}" -n REPORT_OPTS=--errors=3
	assert_output --partial 'mtl-report'
	refute_output --partial 'mtl-score'
	# back to the values of the run: up to date again
	run "${t[@]}" -q "$d/train/report.txt"
	assert_success
	# embed.mk and eval.mk default to that trained model
	run make --no-print-directory -f pipelines/embed.mk DEMO_RUN="$d" OUT="$d/embed" "$bin"
	assert_success
	assert_output --partial "--model $d/train/model"
	run make --no-print-directory -f pipelines/eval.mk DEMO_RUN="$d" OUT="$d/eval" "$bin"
	assert_success
	assert_output --partial 'Task topic (sequence)'
}

@test "pipelines: an empty file list is an error, and the programs are built first" {
	cd "$MTL_ROOT"
	for v in DEV TRAIN MODEL; do
		run -2 make --no-print-directory -n -f pipelines/train.mk OUT="$BATS_TEST_TMPDIR/t" "$v="
		assert_output --partial "$v is empty: give $v=..."
	done
	run -2 make --no-print-directory -n -f pipelines/embed.mk OUT="$BATS_TEST_TMPDIR/e" SENTENCES=
	assert_output --partial 'SENTENCES is empty'
	run -2 make --no-print-directory -n -f pipelines/eval.mk OUT="$BATS_TEST_TMPDIR/v" DATA=
	assert_output --partial 'DATA is empty'
	run -2 make --no-print-directory -n -f pipelines/train.mk OUT="$BATS_TEST_TMPDIR/t" MODEL=fixtures/tiny-f16
	assert_output --partial 'has no tasks.json: give TASKS=tasks.json'
	# in the source tree, with the default MTL_BIN, every workflow builds
	# the programs (before any stage that runs one)
	for mk in train embed eval demo compare-balancing realdata banking77; do
		run make --no-print-directory -n -f "pipelines/$mk.mk" OUT="$BATS_TEST_TMPDIR/$mk" \
			DEMO_RUN="$BATS_TEST_TMPDIR/demo-$mk"
		assert_line --regexp "^make .*-f Makefile programs$"
	done
}
