#!/usr/bin/env bats
# mtl-init: new random encoders and copies of pretrained ones, as complete
# Hugging Face directories that mtl-score accepts.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
}

@test "a new encoder from a vocabulary: files, config, reproducible by seed" {
	run -0 --separate-stderr mtl-init -o a --vocab "$FIXTURES/demo/vocab.txt" --layers 3 --hidden 48 --heads 6 --seed 7
	assert_regex "$stderr" "wrote 'a': 3 layers, hidden 48, 6 heads"
	for f in config.json model.safetensors vocab.txt tokenizer_config.json modules.json \
		1_Pooling/config.json sentence_bert_config.json; do
		[ -f "a/$f" ] || fail "a/$f is missing"
	done
	grep -q '"num_hidden_layers": 3' a/config.json
	grep -q '"intermediate_size": 192' a/config.json
	grep -q '"vocab_size": 313' a/config.json
	cmp a/vocab.txt "$FIXTURES/demo/vocab.txt"
	mtl-init -q -o b --vocab "$FIXTURES/demo/vocab.txt" --layers 3 --hidden 48 --heads 6 --seed 7
	cmp a/model.safetensors b/model.safetensors
	mtl-init -q -o c --vocab "$FIXTURES/demo/vocab.txt" --layers 3 --hidden 48 --heads 6 --seed 8
	! cmp -s a/model.safetensors c/model.safetensors
}

@test "--encoder copies a pretrained encoder exactly, tokenizer and pooling included" {
	mtl-init -q -o m --encoder "$FIXTURES/tiny"
	cmp m/model.safetensors "$FIXTURES/tiny/model.safetensors"
	cmp m/vocab.txt "$FIXTURES/tiny/vocab.txt"
	grep -q '"pooling_mode_cls_token": true' m/1_Pooling/config.json
	# F16 and BF16 encoders load too (and are written back as F32)
	mtl-init -q -o h --encoder "$FIXTURES/tiny-bf16"
	run bash -c "set -o pipefail; head -c 200 h/model.safetensors | grep -c F32"
	assert_output 1
}

@test "the new model embeds text: mtl-score accepts it" {
	mtl-init -q -o m --vocab "$FIXTURES/demo/vocab.txt" --hidden 32 --heads 2
	printf '%s\n' '{"type":"header","stream":"examples","version":[1,0]}' \
		'{"type":"example","id":1,"ids":[2,40,41,3]}' | mtl-dump --pack >ex.mpk
	run bash -c 'set -o pipefail; mtl-score -q -m m --embed ex.mpk | mtl-dump -t embedding | json_array embedding | wc -w'
	assert_output 32
}

@test "bad arguments and bad encoders are refused clearly" {
	run -2 --separate-stderr mtl-init -o x --vocab "$FIXTURES/demo/vocab.txt" --hidden 30 --heads 4
	assert_regex "$stderr" 'not a multiple of --heads'
	run -2 mtl-init -o x
	run -2 mtl-init --vocab "$FIXTURES/demo/vocab.txt"
	run -2 mtl-init -o x --encoder "$FIXTURES/tiny" --vocab "$FIXTURES/demo/vocab.txt"
	run -3 --separate-stderr mtl-init -o x --vocab nosuch.txt
	assert_equal "$stderr" "mtl-init: cannot open 'nosuch.txt': No such file or directory"
	printf 'a\nb\n' >novocab.txt
	run -1 --separate-stderr mtl-init -o x --vocab novocab.txt
	assert_equal "$stderr" "mtl-init: 'novocab.txt' has no [PAD] token"
	mkdir broken && cp "$FIXTURES/tiny/config.json" broken/
	run -3 --separate-stderr mtl-init -o y --encoder broken
	assert_regex "$stderr" 'model.safetensors'
}

@test "--tasks makes a multi-task model: tasks.json and new heads from the seed" {
	mtl-init -q -o a --encoder "$FIXTURES/tiny" --tasks "$FIXTURES/demo/tasks.json" --seed 3
	cmp a/model.safetensors "$FIXTURES/tiny/model.safetensors"
	grep -q '"name": "ner"' a/tasks.json
	! cmp -s a/heads.safetensors "$FIXTURES/tiny/heads.safetensors"
	mtl-init -q -o b --encoder "$FIXTURES/tiny" --tasks "$FIXTURES/demo/tasks.json" --seed 3
	cmp a/heads.safetensors b/heads.safetensors
	# it predicts at once (untrained): every demo task, every example
	mtl-tokenize -q -m a "$FIXTURES/demo/dev.jsonl" >dev.mpk
	run bash -c 'set -o pipefail; mtl-score -q -m a dev.mpk | mtl-dump --summary | grep -E "^  (prediction|metrics) "'
	assert_line --regexp '^  prediction +300$'
	assert_line --regexp '^  metrics +2$'
	printf '{"tasks": [{"name": "x", "kind": "nope", "labels": ["a"]}]}' >bad.json
	run -1 --separate-stderr mtl-init -o c --encoder "$FIXTURES/tiny" --tasks bad.json
	assert_regex "$stderr" "bad.json"
}

@test "an existing model directory is refused without --overwrite; --tasks is checked before any write" {
	mtl-init -q -o a --encoder "$FIXTURES/tiny"
	cp a/model.safetensors first.safetensors
	run -1 --separate-stderr mtl-init -q -o a --vocab "$FIXTURES/tiny/vocab.txt" --seed 5
	assert_equal "$stderr" "mtl-init: 'a' holds a model already: give --overwrite to replace it"
	cmp a/model.safetensors first.safetensors
	# --overwrite replaces it whole: no tokenizer.json of the old model left
	cp "$FIXTURES/tiny/vocab.txt" a/tokenizer.json
	mtl-init -q -o a --vocab "$FIXTURES/tiny/vocab.txt" --hidden 32 --heads 2 --overwrite
	[ ! -e a/tokenizer.json ]
	assert_equal "$(jq .hidden_size a/config.json)" 32
	cp a/model.safetensors second.safetensors
	# an empty directory is not a model
	mkdir e
	mtl-init -q -o e --encoder "$FIXTURES/tiny"
	# a bad task spec: nothing written, not even the encoder
	printf '{"tasks": [{"name": "x", "kind": "nope", "labels": ["a"]}]}' >bad.json
	run -1 --separate-stderr mtl-init -o c --encoder "$FIXTURES/tiny" --tasks bad.json
	refute_output --partial wrote
	[ ! -e c ]
	run -1 --separate-stderr mtl-init -o a --overwrite --encoder "$FIXTURES/tiny" --tasks bad.json
	cmp a/model.safetensors second.safetensors
	run -0 grep -c '^crc32c ' a/MANIFEST
}
