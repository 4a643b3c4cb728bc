#!/usr/bin/env bats
# docs/recipes.md: every command of the page, extracted from it and run as
# written, on the demo data and the demo model; then their outputs checked.

load helper

setup_file() {
	# the model the recipes share, made once by the page's first recipe
	cd "$BATS_FILE_TMPDIR"
	ln -sfn "$MTL_ROOT/fixtures" fixtures
	recipe "A model to try these on" >model.sh
	PATH="$MTL_ROOT/${MTL_BUILD:-build}:$PATH" bash -e model.sh 2>/dev/null
}

# recipe TITLE [N]: the Nth (default 1st) sh block under "## TITLE"
recipe() {
	awk -v title="## $1" -v want="${2:-1}" '
		/^## / { in_sec = ($0 == title); n = 0; next }
		in_sec && /^```sh$/ { n++; on = (n == want); next }
		on && /^```$/ { exit }
		on { print }' "$MTL_ROOT/docs/recipes.md"
}
export -f recipe

setup() {
	cd "$BATS_FILE_TMPDIR"
}

run_recipe() {  # run_recipe TITLE [N]: runs it with -e and pipefail
	recipe "$@" >r.sh
	[ -s r.sh ] || { echo "no recipe '$1' in docs/recipes.md"; return 1; }
	bash -e -o pipefail r.sh
}

@test "the demo model: two tasks over the demo vocabulary" {
	[ -f demo-model/config.json ] && [ -f demo-model/tasks.json ] && [ -f demo-model/heads.safetensors ]
	run recipe "A model to try these on"
	assert_output --partial 'mtl-init -o demo-model'
}

@test "recipe: embed a text file to .npy (and TSV)" {
	run --separate-stderr run_recipe "Embed a text file to .npy"
	assert_success
	assert_equal "$(cat sentences.ids | tr '\n' ' ')" "1 2 3 4 5 6 7 8 9 10 11 12 "
	dim=$(jq .hidden_size demo-model/config.json)
	assert_equal "$(dd if=sentences.npy bs=1 skip=10 count=60 2>/dev/null | grep -o "'shape': ([0-9]*, [0-9]*)")" "'shape': (12, $dim)"
	assert_equal "$(stat -c %s sentences.npy)" $((128 + 12 * dim * 4))
	run --separate-stderr run_recipe "Embed a text file to .npy" 2
	assert_success
	assert_equal "$(wc -l <sentences.tsv)" 12
	# the same vectors: row 3 of the .npy is line 3 of the TSV
	od -An -v -t f4 -j $((128 + 2 * dim * 4)) -N $((dim * 4)) --endian=little sentences.npy | xargs -n1 >npy3
	sed -n 3p sentences.tsv | cut -f2- | tr '\t' '\n' >tsv3
	assert_equal "$(sed -n 3p sentences.tsv | cut -f1)" 3
	# (od prints 8 digits, the TSV 9)
	d=$(max_abs_diff <(xargs <npy3) <(xargs <tsv3))
	awk -v d="$d" 'BEGIN { exit !(d < 1e-7) }'
}

@test "recipe: train on a CSV of labelled sentences" {
	run --separate-stderr run_recipe "Train on a CSV of labelled sentences"
	assert_success
	[ -f topic-model/model.safetensors ] && [ -f topic-model/heads.safetensors ]
	assert_line --regexp '^100 examples, 0 without gold labels'
	# one epoch of 600 sentences learns the topics: well above chance (0.25)
	acc=$(grep -o 'accuracy [0-9.]*' <<<"$output" | head -n 1 | cut -d' ' -f2)
	awk -v a="$acc" 'BEGIN { exit !(a >= 0.6) }'
	run mtl-dump -t stats topics.mpk
	assert_output --partial '"labelled":{"topic":600,"ner":0}'
}

@test "recipe: fine-tune in less memory (--recompute, --low-memory): the same trained weights" {
	[ -f topic-model/heads.safetensors ] || run_recipe "Train on a CSV of labelled sentences" >/dev/null 2>&1
	run_recipe "Fine-tune in less memory"
	run_recipe "Fine-tune in less memory" 2
	for m in lean least; do
		cmp topic-model/model.safetensors topic-model-$m/model.safetensors
		cmp topic-model/heads.safetensors topic-model-$m/heads.safetensors
		cmp <(mtl-dump -t step steps.mpk | jq -c '[.loss, .grad_norm]') \
		    <(mtl-dump -t step steps-$m.mpk | jq -c '[.loss, .grad_norm]')
	done
}

@test "recipe: export a task for transformers" {
	[ -f topic-model/heads.safetensors ] || run_recipe "Train on a CSV of labelled sentences" >/dev/null 2>&1
	run --separate-stderr run_recipe "Export a task for transformers"
	assert_success
	[ -f topic-hf/model.safetensors ] && [ -f topic-hf/vocab.txt ]
	run jq -c '[.architectures, .num_labels, .id2label["0"]]' topic-hf/config.json
	assert_output '[["BertForSequenceClassification"],4,"business"]'
}

@test "recipe: train classification + NER from CoNLL + JSONL with early stopping" {
	run_recipe "Train classification + NER from CoNLL + JSONL with early stopping"
	run --separate-stderr run_recipe "Train classification + NER from CoNLL + JSONL with early stopping" 2
	assert_success
	[ -f ner-model/model.safetensors ] && [ -f ner-model/heads.safetensors ]
	# the best evaluation's entity F1 is the one mtl-report gives the saved model
	best=$(mtl-dump -t eval steps.mpk | jq -s '.[-1].best.value * 10000 | round')
	report=$(grep -E '^micro ' <<<"$output" | awk '{ printf "%d", $4 * 10000 + 0.5 }')
	assert_equal "$report" "$best"
	grep -q "saving the best model in 'ner-model'" <<<"$stderr"
	run bash -c "set -o pipefail; mtl-dump -t step steps.mpk | wc -l"
	steps=$output
	if grep -q 'stopping early' <<<"$stderr"; then
		[ "$steps" -lt 190 ] || fail "stopped early but ran $steps steps"
	fi
}

@test "recipe: tag raw text and get entity spans as JSON lines" {
	[ -f ner-model/heads.safetensors ] || {
		run_recipe "Train classification + NER from CoNLL + JSONL with early stopping" >/dev/null 2>&1
		run_recipe "Train classification + NER from CoNLL + JSONL with early stopping" 2 >/dev/null 2>&1
	}
	run --separate-stderr run_recipe "Tag raw text and get entity spans as JSON lines"
	assert_success
	assert_equal "${#lines[@]}" 2
	# one JSON object a sentence, its entities' text the text's characters
	printf '%s\n' "${lines[@]}" >spans.jsonl
	run jq -r '. as $p | [.id, (.entities | type), (.entities | map($p.text[.start:.end] == .text) | all)] | @tsv' spans.jsonl
	assert_output $'1\tarray\ttrue\n2\tarray\ttrue'
}

@test "recipe: semantic search over your sentences, and the evaluators" {
	run --separate-stderr run_recipe "Semantic search over your sentences"
	assert_success
	assert_equal "$(wc -l <hits.jsonl)" 3
	# the query is the text of s03, so s03 is the first hit, with cosine 1
	run jq -r '[.query, .id, .rank] | @tsv' hits.jsonl
	assert_line --index 0 $'q1\ts03\t1'
	awk -F'"score":' 'NR == 1 { exit !($2 + 0 > 0.99999) }' hits.jsonl
	run --separate-stderr run_recipe "Semantic search over your sentences" 2
	assert_success
	run jq -c '[.labels, (.knn_accuracy | type), (.probe_accuracy | type), (.vmeasure | type), .same_label.queries > 0]' eval.json
	assert_output '[4,"number","number","number",true]'
}
