#!/usr/bin/env bats
# mtl-step for a run left alone: entity F1 among the evaluation figures,
# --best-metric saving the best model in OUT, --patience stopping early,
# progress lines when stderr is not a terminal, and --out checked before
# the first step.  The model is fixtures/tiny (its ner task has BIO tags).

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
	mtl-dump --pack "$MTL_ROOT/tests/data/step-examples.jsonl" >ex.mpk
	mtl-batch -q -b 2 -e 3 ex.mpk >b.mpk
}

@test "eval records carry ner's entity F1, the same as mtl-score's for the model" {
	mtl-step -q -m "$FIXTURES/tiny" --lr 1e-3 --eval ex.mpk -o trained b.mpk >s.mpk
	run bash -c "set -o pipefail; mtl-dump -t eval s.mpk | jq -c '[(.tasks.topic | has(\"entity_f1\")), (.tasks.ner | keys)]'"
	assert_output '[false,["accuracy","entity_f1","f1","labelled","loss"]]'
	a=$(mtl-dump -t eval s.mpk | jq .tasks.ner.entity_f1)
	b=$(mtl-score -q -m trained ex.mpk | mtl-dump | jq 'select(.type == "metrics" and .task == "ner") | .entity_f1')
	[ -n "$a" ] && [ "$a" = "$b" ] || fail "eval $a, mtl-score $b"
}

@test "--best-metric: OUT holds the model of the best evaluation, --final last the last" {
	mtl-step -m "$FIXTURES/tiny" --lr 1e-3 --eval ex.mpk --eval-every 2 --save-every 2 \
		--best-metric ner:entity_f1 -o out b.mpk >s.mpk 2>err
	best=$(mtl-dump -t eval s.mpk | jq -s '.[-1].best.step')
	run bash -c "set -o pipefail; mtl-dump -t eval s.mpk | jq -c '[.step, .best.metric, .best.step <= .step]'"
	assert_line --index 0 '[2,"ner:entity_f1",true]'
	# not vacuous: the best is not the last step here
	[ "$best" -lt 6 ] || fail "the best evaluation is the last one ($best)"
	grep -q "saving the best model in 'out': step $best, ner:entity_f1" err
	ck=$(printf 'out/checkpoint-%06d' "$best")
	cmp out/model.safetensors "$ck/model.safetensors"
	cmp out/heads.safetensors "$ck/heads.safetensors"
	! cmp -s out/heads.safetensors out/checkpoint-000006/heads.safetensors

	mtl-step -q -m "$FIXTURES/tiny" --lr 1e-3 --eval ex.mpk --eval-every 2 --save-every 2 \
		--best-metric ner:entity_f1 --final last -o last b.mpk >/dev/null
	cmp last/heads.safetensors last/checkpoint-000006/heads.safetensors
	cmp last/model.safetensors out/checkpoint-000006/model.safetensors
}

@test "--patience N stops after N evaluations without improvement" {
	mtl-step -q -m "$FIXTURES/tiny" --lr 0 --eval ex.mpk --eval-every 1 \
		--best-metric loss --patience 2 -o out b.mpk >s.mpk 2>err
	best=$(mtl-dump -t eval s.mpk | jq -r 'select(.step == 1) | .loss' | xargs printf '%.4f')
	run cat err
	assert_output "mtl-step: stopping early at step 3: loss did not improve in 2 evaluations (best $best at step 1)"
	run bash -c "set -o pipefail; mtl-dump -t step s.mpk | wc -l"
	assert_output 3
	run bash -c "set -o pipefail; mtl-dump -t eval s.mpk | jq -c '[.step, .best.step, .best.stale, .best.patience, .best.stop]'"
	assert_output $'[1,1,0,2,null]\n[2,1,1,2,null]\n[3,1,2,2,true]'
	[ -f out/model.safetensors ]
	# without --patience the same run goes to the end
	run bash -c "set -o pipefail; mtl-step -q -m '$FIXTURES/tiny' --lr 0 --eval ex.mpk --eval-every 1 --best-metric loss b.mpk | mtl-dump -t step | wc -l"
	assert_output 6
}

@test "off a terminal: a progress line per interval, each evaluation, a closing line" {
	run --separate-stderr mtl-step -m "$FIXTURES/tiny" --eval ex.mpk --eval-every 3 \
		--progress-every 0 b.mpk
	assert_success
	run bash -c "set -o pipefail; printf '%s\n' \"\$0\" | sed -E 's/[0-9.]+ step\/s/R step\/s/; s/(ETA |, )[0-9]+:[0-9]{2}/\1T/; s/loss [0-9.]+/loss L/g; s/(accuracy|f1) [0-9.]+/\1 F/g'" "$stderr"
	assert_line --index 1 'mtl-step: no --out: the trained model will not be saved'
	assert_line --index 2 'mtl-step: step 1/6, R step/s, ETA T, loss L'
	assert_line --index 5 'mtl-step: eval at step 3: loss L, topic accuracy F f1 F, ner accuracy F token_f1 F entity_f1 F'
	assert_line --index 6 'mtl-step: step 4/6, R step/s, ETA T, loss L, last eval: loss L, topic accuracy F f1 F, ner accuracy F token_f1 F entity_f1 F'
	assert_line --index 10 'mtl-step: done: step 6, R step/s, T, loss L, last eval: loss L, topic accuracy F f1 F, ner accuracy F token_f1 F entity_f1 F'
	[ "${#lines[@]}" -eq 11 ]
	# the default interval (30 s) leaves out the per-step lines of a short run
	run --separate-stderr mtl-step -m "$FIXTURES/tiny" b.mpk
	run bash -c "set -o pipefail; printf '%s\n' \"\$0\" | grep -c 'step [0-9]/6'" "$stderr"
	assert_output 0
	run --separate-stderr mtl-step -q -m "$FIXTURES/tiny" --progress-every 0 b.mpk
	[ -z "$stderr" ]
}

@test "--out is checked before the first step: an unwritable OUT fails with exit 3" {
	touch file
	run -3 --separate-stderr mtl-step -m "$FIXTURES/tiny" -o file/out b.mpk
	[ -z "$output" ] || fail "steps were written"
	assert_equal "$stderr" "mtl-step: --out: cannot create directory 'file/out': Not a directory"
	mkdir ro && chmod 555 ro
	if [ "$(id -u)" -ne 0 ]; then
		run -3 --separate-stderr mtl-step -m "$FIXTURES/tiny" -o ro b.mpk
		[ -z "$output" ]
	fi
	# a new OUT is created up front, and nothing is left in it but the model
	mtl-step -q -m "$FIXTURES/tiny" -o new/dir b.mpk >/dev/null
	run ls -A new/dir
	refute_output --partial check
}

@test "usage: --patience, --best-metric and --final misused exit 2" {
	run -2 --separate-stderr mtl-step -m "$FIXTURES/tiny" --patience 2 --eval ex.mpk b.mpk
	assert_equal "${stderr_lines[0]}" "mtl-step: --best-metric needs --eval FILE, --patience needs --best-metric"
	run -2 --separate-stderr mtl-step -m "$FIXTURES/tiny" --best-metric ner:entity_f1 b.mpk
	assert_equal "${stderr_lines[0]}" "mtl-step: --best-metric needs --eval FILE, --patience needs --best-metric"
	run -2 --separate-stderr mtl-step -q -m "$FIXTURES/tiny" --eval ex.mpk --best-metric topic:entity_f1 b.mpk
	assert_equal "${stderr_lines[0]}" "mtl-step: --best-metric: metric 'topic:entity_f1': 'topic' is a sequence task: it has accuracy, f1, knn_accuracy and v_measure (entity_f1 is for token tasks)"
	run -2 --separate-stderr mtl-step -q -m "$FIXTURES/tiny" --eval ex.mpk --best-metric nre:f1 b.mpk
	assert_equal "${stderr_lines[0]}" "mtl-step: --best-metric: metric 'nre:f1': the model has no task 'nre' (did you mean 'ner:f1'?)"
	run -2 --separate-stderr mtl-step -m "$FIXTURES/tiny" --final best b.mpk --final worst
	assert_equal "${stderr_lines[0]}" "mtl-step: --final takes best or last, not 'worst'"
}
