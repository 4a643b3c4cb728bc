#!/usr/bin/env bats
# mtl-score --embed: sentence embeddings against the PyTorch reference,
# padding invariance, pooling options, and bad input.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
	# the reference rows as an examples stream
	{
		echo '{"type":"header","stream":"examples","version":[1,0]}'
		n=0
		json_array ids <"$FIXTURES/golden/embed.jsonl" | while read -r ids; do
			n=$((n + 1))
			echo "{\"type\":\"example\",\"id\":$n,\"ids\":[$(echo "$ids" | tr ' ' ',')]}"
		done
	} | mtl-dump --pack >ex.mpk
}

@test "embeddings match the reference (cls, mean, max) within 1e-5" {
	for mode in cls mean max; do
		mtl-score -q -m "$FIXTURES/tiny" --embed --pooling "$mode" ex.mpk | mtl-dump -t embedding |
			json_array embedding >actual
		json_array "embedding_$mode" <"$FIXTURES/golden/embed.jsonl" >expect
		run max_abs_diff actual expect
		assert_success
		awk -v d="$output" -v m="$mode" 'BEGIN { if (d == "shape" || d > 1e-5) { print m ": max abs diff " d; exit 1 } }'
	done
}

@test "batch size does not change the result (padding is masked)" {
	mtl-score -q -m "$FIXTURES/tiny" --embed -b 1 ex.mpk | mtl-dump -t embedding | json_array embedding >one
	mtl-score -q -m "$FIXTURES/tiny" --embed -b 2 ex.mpk | mtl-dump -t embedding | json_array embedding >two
	run max_abs_diff one two
	awk -v d="$output" 'BEGIN { exit !(d != "shape" && d <= 1e-5) }'
}

@test "the header describes the embeddings; --no-normalize keeps the norm" {
	run bash -c "mtl-score -q -m '$FIXTURES/tiny' --embed ex.mpk | mtl-dump -t header"
	assert_output --partial '"stream":"embeddings"'
	assert_output --partial '"dim":32,"pooling":"cls","normalized":true'
	mtl-score -q -m "$FIXTURES/tiny" --embed --no-normalize ex.mpk | mtl-dump -t embedding | json_array embedding >raw
	run awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i * $i; printf "%.3f\n", sqrt(s) }' raw
	refute_line '1.000'
}

@test "ids flow through, one record per example, in input order" {
	run bash -c "mtl-score -q -m '$FIXTURES/tiny' --embed -b 1 ex.mpk | mtl-dump -t embedding | grep -o '\"id\":[0-9]*'"
	assert_output $'"id":1\n"id":2'
}

@test "bad input: another vocabulary, a token id out of range, the wrong stream" {
	echo '{"type":"header","stream":"examples","version":[1,0],"vocab_hash":"0000000000000000"}' | mtl-dump --pack >v.mpk
	run -1 --separate-stderr mtl-score -m "$FIXTURES/tiny" --embed v.mpk
	assert_regex "$stderr" '^mtl-score: v.mpk: tokenized with another vocabulary than the model'
	printf '%s\n' '{"type":"header","stream":"examples","version":[1,0]}' \
		'{"type":"example","id":1,"ids":[2,99999,3]}' | mtl-dump --pack >o.mpk
	run -1 --separate-stderr mtl-score -m "$FIXTURES/tiny" --embed o.mpk
	assert_regex "$stderr" '^mtl-score: o.mpk: records 2-2: '
	mtl-score -q -m "$FIXTURES/tiny" --embed ex.mpk >emb.mpk
	run -1 --separate-stderr mtl-score -m "$FIXTURES/tiny" --embed emb.mpk
	assert_equal "$stderr" "mtl-score: emb.mpk: record 1: a stream of kind 'embeddings', expected 'examples'"
	run -1 --separate-stderr mtl-score -m "$BATS_TEST_TMPDIR" --embed ex.mpk
	assert_regex "$stderr" 'config.json'
	run -2 mtl-score --embed ex.mpk
	run -2 mtl-score -m "$FIXTURES/tiny" --embed --pooling bogus ex.mpk
}
