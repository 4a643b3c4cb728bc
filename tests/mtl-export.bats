#!/usr/bin/env bats
# mtl-export: one task of a model as a transformers classifier directory.
# fixtures/export/ holds tasks and heads over fixtures/tiny's encoder;
# fixtures/golden/export-TASK/ is what the export must write (written by
# tools/make_fixtures.py from the mapping's definition) and
# golden/export-expect.jsonl the probabilities the reference's
# BertForSequenceClassification / BertForTokenClassification give when
# loaded from those directories with Hugging Face's names.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
	mkdir m && cp -r "$FIXTURES/tiny/." m/ && cp "$FIXTURES/export/"* m/
}

@test "export: each mappable task writes the directory transformers loads" {
	for t in topic intent ner; do
		mtl-export -q -m m --task "$t" -o "out-$t"
		diff -u "$FIXTURES/golden/export-$t/config.json" "out-$t/config.json"
		cmp "$FIXTURES/golden/export-$t/model.safetensors" "out-$t/model.safetensors"
		for f in vocab.txt tokenizer_config.json special_tokens_map.json; do
			cmp "m/$f" "out-$t/$f"
		done
	done
	run jq -c '[.architectures, .num_labels, .id2label["1"], .label2id["B-PER"]]' out-ner/config.json
	assert_output '[["BertForTokenClassification"],5,"B-PER",1]'
	run jq -c '[.architectures, .num_labels, .id2label["2"], .problem_type]' out-topic/config.json
	assert_output '[["BertForSequenceClassification"],3,"tech","single_label_classification"]'
}

# The probabilities of the exported classifiers (the reference, loading the
# golden directories that the test above shows mtl-export writes) against
# mtl-score's on the mtl model.
@test "export: transformers' probabilities equal mtl-score's within 1e-5" {
	mtl-dump --pack "$FIXTURES/golden/predict-examples.jsonl" >pex.mpk
	mtl-score -q -m m --probs pex.mpk | mtl-dump -t prediction >pred.jsonl
	for t in topic intent; do
		jq -r ".tasks.$t.probs | map(tostring) | join(\" \")" pred.jsonl >actual
		jq -r ".${t}_probs | map(tostring) | join(\" \")" "$FIXTURES/golden/export-expect.jsonl" >expect
		run max_abs_diff actual expect
		echo "$t: $output"
		awk -v d="$output" 'BEGIN { exit !(d != "shape" && d <= 1e-5) }'
	done
	jq -r '.tasks.ner.probs | flatten | map(tostring) | join(" ")' pred.jsonl >actual
	jq -r '.ner_probs | flatten | map(tostring) | join(" ")' "$FIXTURES/golden/export-expect.jsonl" >expect
	run max_abs_diff actual expect
	echo "ner: $output"
	awk -v d="$output" 'BEGIN { exit !(d != "shape" && d <= 1e-5) }'
}

@test "export: heads without a counterpart are refused, saying why, and nothing is written" {
	run -1 --separate-stderr mtl-export -m m --task mood -o out
	assert_equal "$stderr" "mtl-export: task 'mood': pools by mean, but BertForSequenceClassification reads the [CLS] token; train the task with \"pooling\": \"cls\""
	run -1 --separate-stderr mtl-export -m m --task chunk -o out
	assert_regex "$stderr" "^mtl-export: task 'chunk': a hidden layer \(8 units\) has no place in BertForTokenClassification"
	run -1 --separate-stderr mtl-export -m "$FIXTURES/tiny" --task topic -o out
	assert_regex "$stderr" "task 'topic': a hidden layer of 16 tanh units has no place in BertForSequenceClassification.*\"hidden\": 32 and \"activation\": \"tanh\""
	[ ! -e out ]
}

@test "export: usage and model errors" {
	run -0 mtl-export --help
	assert_line --partial 'usage: mtl-export'
	run -2 mtl-export -m m -o out
	assert_output --partial "has 5 tasks: choose one with --task"
	run -2 mtl-export -m m --task nosuch -o out
	assert_output --partial "the model has no task 'nosuch'"
	run -2 mtl-export -m m --task ner
	run -2 mtl-export -m m --task ner -o out extra
	run -3 mtl-export -m nosuch --task ner -o out
	run -1 --separate-stderr mtl-export -m "$FIXTURES/tiny-f16" -o out
	assert_equal "$stderr" "mtl-export: '$FIXTURES/tiny-f16' has no tasks.json: nothing to export"
	touch file
	run -3 --separate-stderr mtl-export -q -m m --task ner -o file/out
	assert_regex "$stderr" "^mtl-export: .*file/out"
}
