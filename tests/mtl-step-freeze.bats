#!/usr/bin/env bats
# mtl-step --freeze / --unfreeze-at from the command line: frozen files
# byte-identical, the trainable count, the backward record fields, bad
# specifications.  The tensor-by-tensor checks are in tests/test_freeze.c.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
	mtl-dump --pack "$MTL_ROOT/tests/data/step-examples.jsonl" >ex.mpk
	mtl-batch -q -b 2 -e 3 ex.mpk >b.mpk
}

@test "--freeze encoder: model.safetensors byte-identical to an untrained save, heads trained" {
	mtl-step -q -m "$FIXTURES/tiny" --lr 0 --weight-decay 0 -o ref b.mpk >/dev/null
	mtl-step -q -m "$FIXTURES/tiny" --lr 1e-2 --freeze encoder -o fz b.mpk >s.mpk
	cmp ref/model.safetensors fz/model.safetensors
	! cmp -s ref/heads.safetensors fz/heads.safetensors
	run bash -c "set -o pipefail; mtl-dump -t step s.mpk | jq -c '.backward_layers' | sort -u"
	assert_output 0
}

@test "the trainable parameter count goes to stderr and into the header" {
	mtl-step -m "$FIXTURES/tiny" --freeze encoder --freeze head:ner -o o b.mpk >/dev/null 2>err
	assert_equal "$(head -1 err)" "mtl-step: training 579 of 31048 parameters"
	! cmp -s o/heads.safetensors "$FIXTURES/tiny/heads.safetensors"
	run bash -c "set -o pipefail; mtl-step -q -m '$FIXTURES/tiny' --freeze layers:0-1 b.mpk | mtl-dump | jq -c 'select(.type == \"header\") | [.parameters, .trainable]'"
	assert_output '[31048,13960]'
	mtl-step -q -m "$FIXTURES/tiny" --freeze encoder b.mpk >/dev/null 2>err
	[ ! -s err ]
}

@test "frozen embeddings and lower layers: the backward stops above them" {
	run bash -c "set -o pipefail; mtl-step -q -m '$FIXTURES/tiny' --freeze embeddings --freeze layers:0 b.mpk | mtl-dump -t step | jq -c .backward_layers | sort -u"
	assert_output 1
	run bash -c "set -o pipefail; mtl-step -q -m '$FIXTURES/tiny' b.mpk | mtl-dump -t step | jq -c .backward_layers | sort -u"
	assert_output 2
}

@test "--unfreeze-at 4: the encoder backward starts at step 4 exactly" {
	run bash -c "set -o pipefail; mtl-step -q -m '$FIXTURES/tiny' --freeze encoder --unfreeze-at 4 b.mpk | mtl-dump -t step | jq -c '[.step, .backward_layers]'"
	assert_output $'[1,0]\n[2,0]\n[3,0]\n[4,2]\n[5,2]\n[6,2]'
}

@test "bad --freeze specifications are usage errors" {
	run -2 --separate-stderr mtl-step -q -m "$FIXTURES/tiny" --freeze layers:7 b.mpk
	assert_equal "$(head -1 <<<"$stderr")" "mtl-step: cannot freeze 'layers:7': the model has layers 0-1"
	run -2 --separate-stderr mtl-step -q -m "$FIXTURES/tiny" --freeze head:nope b.mpk
	assert_equal "$(head -1 <<<"$stderr")" "mtl-step: cannot freeze 'head:nope': no task 'nope'"
	run -2 mtl-step -q -m "$FIXTURES/tiny" --unfreeze-at 3 b.mpk
}

@test "mtl-score --features: a features stream of every real token's last hidden state" {
	mtl-score -q -m "$FIXTURES/tiny" --features ex.mpk >f.mpk
	run bash -c "set -o pipefail; mtl-dump f.mpk | jq -c 'select(.type == \"header\") | [.stream, .dim, (.encoder | length)]'"
	assert_output '["features",32,16]'
	# one record per example, len x 32 values, the lengths of the examples
	mtl-dump -t example ex.mpk | jq -c '[.id, (.ids | length)]' >expect
	mtl-dump -t features f.mpk | jq -c '[.id, .len]' >actual
	diff expect actual
	run bash -c "set -o pipefail; mtl-dump -t features f.mpk | jq '(.hidden | length) == .len * 32' | sort -u"
	assert_output true
}

@test "heads trained from cached features equal heads trained with --freeze encoder, dropout 0" {
	mtl-score -q -j 1 -m "$FIXTURES/tiny" --features ex.mpk >f.mpk
	mtl-step -q -j 1 -m "$FIXTURES/tiny" --lr 1e-2 --dropout 0 --freeze encoder -o frozen b.mpk >s1.mpk
	mtl-step -q -j 1 -m "$FIXTURES/tiny" --lr 1e-2 --dropout 0 --features f.mpk -o cached b.mpk >s2.mpk
	mtl-dump -t step s1.mpk | jq .loss >a
	mtl-dump -t step s2.mpk | jq .loss >b
	run bash -c "set -o pipefail; paste a b | awk '{ d = \$1 - \$2; if (d < 0) d = -d; if (d > 1e-5) print \"differ: \" \$0 }'"
	assert_output ''
	[ "$(wc -l <b)" -eq 6 ]
	# one thread, the same kernels: in fact bit-identical
	cmp frozen/heads.safetensors cached/heads.safetensors
	cmp frozen/model.safetensors cached/model.safetensors
	! cmp -s cached/heads.safetensors "$FIXTURES/tiny/heads.safetensors"
}

@test "--features refuses features of another encoder, and a batch example without features" {
	mtl-score -q -m "$FIXTURES/tiny" --features ex.mpk >f.mpk
	mtl-step -q -m "$FIXTURES/tiny" --lr 1e-2 -o other b.mpk >/dev/null
	run -1 --separate-stderr mtl-step -q -m other --features f.mpk b.mpk
	[[ "$stderr" == "mtl-step: f.mpk: features of another encoder (its hash is not the model's "* ]] || fail "$stderr"
	mtl-dump f.mpk | grep -v '"id":"e1"' | mtl-dump --pack >f1.mpk
	run -1 --separate-stderr mtl-step -q -m "$FIXTURES/tiny" --features f1.mpk b.mpk
	[[ "$stderr" == *"has no features (an id the features stream lacks)" ]] || fail "$stderr"
	run -2 mtl-step -q -m "$FIXTURES/tiny" --features f.mpk --unfreeze-at 2 b.mpk
}
