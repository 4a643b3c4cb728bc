#!/usr/bin/env bats
# tools/fetch_model.sh (make model): downloads from a Hub-shaped mirror,
# checks sizes and hashes, and refuses what does not match.

load helper

setup() {
	command -v jq >/dev/null && command -v curl >/dev/null || skip "needs jq and curl (make deps)"
	cd "$BATS_TEST_TMPDIR"
	# a mirror laid out like the Hub: /org/tiny/resolve/main/FILE and the
	# tree listing /api/models/org/tiny/tree/main (curl drops the query
	# string of file:// URLs)
	repo=mirror/org/tiny/resolve/main
	mkdir -p "$repo/1_Pooling" mirror/api/models/org/tiny/tree
	for f in config.json model.safetensors vocab.txt tokenizer_config.json modules.json \
		sentence_bert_config.json 1_Pooling/config.json tasks.json; do
		cp "$FIXTURES/tiny/$f" "$repo/$f"
	done
	{
		echo '['
		sep=
		for f in config.json model.safetensors vocab.txt tokenizer_config.json modules.json \
			sentence_bert_config.json 1_Pooling/config.json tasks.json; do
			size=$(wc -c <"$repo/$f" | tr -d ' ')
			if [ "$f" = model.safetensors ]; then
				lfs=",\"lfs\":{\"oid\":\"$(sha256sum "$repo/$f" | cut -d' ' -f1)\",\"size\":$size}"
			else
				lfs=
			fi
			printf '%s{"type":"file","path":"%s","size":%s,"oid":"%s"%s}\n' "$sep" "$f" "$size" \
				"$(git hash-object "$repo/$f")" "$lfs"
			sep=,
		done
		echo ']'
	} >mirror/api/models/org/tiny/tree/main
	export HF_ENDPOINT="file://$BATS_TEST_TMPDIR/mirror"
}

@test "fetches the files mtl reads and checks every one" {
	run -0 "$MTL_ROOT/tools/fetch_model.sh" org/tiny dest
	assert_line 'fetch_model: org/tiny is in dest'
	for f in config.json model.safetensors vocab.txt 1_Pooling/config.json; do
		cmp "$FIXTURES/tiny/$f" "dest/$f"
	done
	[ ! -e dest/tasks.json ] # not a file of a Hub encoder that mtl reads
	mtl-init -q --encoder dest -o copy
}

@test "a corrupted download is refused: size, SHA-256, git blob hash" {
	printf 'x' >>"$repo/vocab.txt"
	run -1 --separate-stderr "$MTL_ROOT/tools/fetch_model.sh" org/tiny dest
	assert_regex "$stderr" 'vocab.txt: [0-9]+ bytes, the Hub lists [0-9]+'
	cp "$FIXTURES/tiny/vocab.txt" "$repo/vocab.txt"
	sed -i 's/"hidden_size": 32/"hidden_size": 33/' "$repo/config.json"
	run -1 --separate-stderr "$MTL_ROOT/tools/fetch_model.sh" org/tiny dest2
	assert_regex "$stderr" 'config.json: git blob hash mismatch'
	cp "$FIXTURES/tiny/config.json" "$repo/config.json"
	printf '\x01' | dd of="$repo/model.safetensors" bs=1 seek=200 conv=notrunc 2>/dev/null
	run -1 --separate-stderr "$MTL_ROOT/tools/fetch_model.sh" org/tiny dest3
	assert_regex "$stderr" 'model.safetensors: SHA-256 mismatch'
	[ ! -e dest3/model.safetensors ]
}

@test "no such model, or no network, says so" {
	run -1 --separate-stderr "$MTL_ROOT/tools/fetch_model.sh" org/nosuch dest
	assert_regex "$stderr" 'cannot list org/nosuch'
}
