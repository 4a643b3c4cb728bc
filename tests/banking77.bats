#!/usr/bin/env bats
# pipelines/banking77.mk end to end on a tiny cut of the real data (LIMIT:
# a few dozen sentences per file, one epoch, a one-layer encoder): every
# configuration trains from the same encoder, and every figure of the
# table is produced.  BANKING77, TREC and WNUT-17 are read from ../shared;
# without them the tests are skipped.

load helper

setup() {
	[ -f "$SHARED/data/banking77/train.jsonl" ] && [ -d "$SHARED/data/trec/raw" ] &&
		[ -d "$SHARED/data/wnut17/raw" ] || skip "needs ../shared/data (BANKING77, TREC, WNUT-17)"
	[ -f "$SHARED/models/bge-small-en-v1.5/vocab.txt" ] || skip "needs ../shared/models/bge-small-en-v1.5/vocab.txt"
	cd "$MTL_ROOT"
}

b77() {
	make --no-print-directory -f pipelines/banking77.mk MTL_BIN="$MTL_ROOT/${MTL_BUILD:-build}/" \
		DATA="$SHARED/data" VOCAB="$SHARED/models/bge-small-en-v1.5/vocab.txt" \
		LAYERS=1 HIDDEN=32 HEADS=2 EPOCHS=1 LIMIT=40 THREADS=1 "$@"
}

@test "banking77.mk: three trainings and the untrained encoder, every figure of the table" {
	out=$BATS_TEST_TMPDIR/b77
	run b77 OUT="$out" SEEDS="1 2"
	assert_success
	# the BANKING77 pairs: two different sentences of the same intent
	run jq -rn '[inputs] | (map({(.text): .intent}) | add) as $i
		| map(select(.text == .b77.positive or $i[.b77.positive] != .intent)) | length' "$out/in/b77-train.jsonl"
	assert_output 0
	assert_equal "$(wc -l <"$out/in/b77-train.jsonl")" 40
	assert_equal "$(jq '.tasks[0].labels | length' "$out/in/intent.json")" 77
	# the embeddings pool by mean (EMB_POOLING), TREC's head by CLS as in mtl
	for c in mtl both emb none; do
		assert_equal "$(jq -r .embeddings.pooling "$out/$c-s1/emb.json")" mean
	done
	assert_equal "$(jq -c '.tasks | map(.head.pooling)' "$out/in/tasks-both.json")" '["cls",null,null]'
	# one encoder per seed, whatever the configuration
	for s in 1 2; do
		run sha256sum "$out"/{mtl,both,emb,none}-s$s/init/model.safetensors
		assert_equal "$(cut -d' ' -f1 <<<"$output" | sort -u | wc -l)" 1
	done
	# the table: a row per run, then a mean per configuration
	t=$out/table.md
	assert_equal "$(grep -c '^| [a-z]* | [12] |' "$t")" 8
	assert_equal "$(grep -c '^| [a-z]* | mean of 2 |' "$t")" 4
	num='[01]\.[0-9]{4}'
	figs="$num \| $num \| $num \| $num \|$"
	for s in 1 2 'mean of 2'; do
		grep -Eq "^\| mtl \| $s \|.* \| $num \| $num \| $figs" "$t" || fail "mtl, seed $s: a figure is missing"
		grep -Eq "^\| both \| $s \|.* \| $num \| $num \| $figs" "$t" || fail "both, seed $s: a figure is missing"
		grep -Eq "^\| emb \| $s \|.* \| - \| - \| $figs" "$t" || fail "emb, seed $s: a figure is missing"
		grep -Eq "^\| none \| $s \|.* \| - \| - \| $figs" "$t" || fail "none, seed $s: a figure is missing"
	done
	# steps, wall and CPU seconds, the load averages of each training
	for c in mtl both emb; do
		grep -Eq "^\| $c \| 1 \| [1-9][0-9]* \| [0-9]+ \| [0-9]+ \| [0-9.]+ [0-9.]+ [0-9.]+ \|" "$t" ||
			fail "$c: no time"
	done
	# the embedding task trained in both and emb, not in mtl
	run mtl-dump -t step "$out/both-s1/steps.mpk"
	assert_output --partial '"b77":'
	run mtl-dump -t step "$out/mtl-s1/steps.mpk"
	refute_output --partial '"b77":'
	# done is done
	run b77 OUT="$out" SEEDS="1 2" -q "$out/table.md"
	assert_success
	# RUNS: a table of some runs, in its order
	run b77 OUT="$out" RUNS="emb-s2 mtl-s1"
	assert_success
	assert_equal "$(grep -o '^| [a-z]* | [0-9a-z ]* |' "$out/table.md" | tr -d ' ' | xargs)" \
		"|configuration|seed| |emb|2| |mtl|1|"
}

@test "banking77.mk: without BANKING77 it stops and says where it looked" {
	mkdir "$BATS_TEST_TMPDIR/data"
	ln -s "$SHARED/data/trec" "$SHARED/data/wnut17" "$BATS_TEST_TMPDIR/data/"
	run --separate-stderr b77 OUT="$BATS_TEST_TMPDIR/b77" DATA="$BATS_TEST_TMPDIR/data"
	assert_failure
	assert_equal "${stderr%%$'\n'*}" "banking77.mk: '$BATS_TEST_TMPDIR/data/banking77/train.jsonl' not found: BANKING77 is read from DATA/banking77 (give DATA=dir, see the top of pipelines/banking77.mk)"
	[ ! -e "$BATS_TEST_TMPDIR/b77/table.md" ]
}
