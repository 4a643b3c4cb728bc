#!/usr/bin/env bats
# mtl-search: top-k cosine search of a queries' embeddings stream in a
# corpus's, through mtl-dump; on hand-made vectors and on a tiny model;
# bad input.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
}

# The corpus: a and 7 point the same way (equal scores for every query),
# and a vector that is not normalised (scores are cosines all the same).
corpus() {
	printf '%s\n' '{"type":"embedding","id":"a","embedding":[1,0]}' \
		'{"type":"embedding","id":"b","embedding":[0,1]}' \
		'{"type":"embedding","id":7,"embedding":[2,0]}' \
		'{"type":"embedding","id":"d","embedding":[-0.6,0.8]}' | emb_stream 2 >c.mpk
	printf '%s\n' '{"type":"embedding","id":"q1","embedding":[0.6,0.8]}' \
		'{"type":"embedding","id":-2,"text":"x","embedding":[0,-3]}' | emb_stream 2 >q.mpk
}

@test "hits by hand: best first, a tie in corpus order, ids of any type" {
	corpus
	# q1 = (0.6, 0.8): a 0.6, b 0.8, 7 0.6, d 0.28; -2 = (0, -1): a 0, b -1, 7 0, d -0.8
	cat >expect <<-'EOF'
	{"type":"hit","query":"q1","id":"b","rank":1,"score":0.8}
	{"type":"hit","query":"q1","id":"a","rank":2,"score":0.6}
	{"type":"hit","query":"q1","id":7,"rank":3,"score":0.6}
	{"type":"hit","query":-2,"id":"a","rank":1,"score":0.0}
	{"type":"hit","query":-2,"id":7,"rank":2,"score":0.0}
	{"type":"hit","query":-2,"id":"d","rank":3,"score":-0.8}
	EOF
	run -0 bats_pipe mtl-search -q -k 3 --corpus c.mpk q.mpk \| mtl-dump -t hit
	assert_output "$(cat expect)"
	run -0 bash -c 'set -o pipefail; mtl-search -q -c c.mpk -k 3 - <q.mpk | mtl-dump -t header'
	assert_output --partial '"stream":"search"'
	assert_output --partial '"k":3,"dim":2,"queries":2,"corpus":4}'
}

@test "-k larger than the corpus gives every corpus row once; -o writes a whole stream" {
	corpus
	mtl-search -q -k 50 -c c.mpk -o s.mpk q.mpk
	run -0 mtl-dump -t end s.mpk
	assert_output '{"type":"end","stream":"search","records":9,"counts":{"hit":8}}'
	run -0 bats_pipe mtl-dump -t hit s.mpk \| grep -c '"query":"q1"'
	assert_output 4
	run -0 bats_pipe mtl-dump -t hit s.mpk \| tail -1
	assert_output '{"type":"hit","query":-2,"id":"b","rank":4,"score":-1.0}'
}

@test "a tiny model's embeddings: k hits per query, ranked, the same on 1 and 2 threads" {
	mtl-init -q -o m --vocab "$FIXTURES/demo/vocab.txt" --hidden 32 --heads 2 --layers 1 --seed 3
	mtl-tokenize -q -m m "$FIXTURES/demo/sentences.jsonl" >s.mpk
	mtl-score -q -m m --embed s.mpk >e.mpk
	n=$(mtl-dump -t embedding e.mpk | wc -l)
	mtl-search -q -k 5 -c e.mpk e.mpk >one.mpk
	mtl-search -q -k 5 -j 2 -c e.mpk e.mpk >two.mpk
	mtl-dump -t hit one.mpk >hits
	mtl-dump -t hit two.mpk | cmp - hits
	assert_equal "$(wc -l <hits)" $((5 * n))
	assert_equal "$(grep -c '"rank":1,' hits)" "$n"
	# every query's scores never increase with the rank
	run -0 bash -c "jq -r '[.query, .score] | @tsv' hits | awk -F'\t' '\$1 == q && \$2 > s + 0 { print \"up at \" NR } { q = \$1; s = \$2 }'"
	assert_output ''
}

@test "bad input: not an embeddings stream, another dimension, truncated, no such file" {
	corpus
	printf '%s\n' '{"type":"embedding","id":1,"embedding":[1,2,3]}' | emb_stream 3 >q3.mpk
	run -1 --separate-stderr mtl-search -c c.mpk q3.mpk
	assert_equal "$stderr" "mtl-search: q3.mpk: queries of dimension 3, but the corpus 'c.mpk' has dimension 2"
	assert_output ''
	mtl-dump --pack "$MTL_ROOT/tests/data/hand.jsonl" >ex.mpk
	run -1 --separate-stderr mtl-search -c ex.mpk q.mpk
	assert_equal "$stderr" "mtl-search: ex.mpk: record 1: a stream of kind 'examples', expected 'embeddings'"
	head -c 60 c.mpk >cut.mpk
	run -1 --separate-stderr mtl-search -c cut.mpk q.mpk
	assert_regex "$stderr" '^mtl-search: cut.mpk: record [0-9]+: truncated'
	printf '%s\n' '{"type":"embedding","id":1,"embedding":[1,1e39]}' | emb_stream 2 >nan.mpk
	run -1 --separate-stderr mtl-search -c nan.mpk q.mpk
	assert_equal "$stderr" "mtl-search: nan.mpk: record 2: embedding value 1 is not finite"
	run -3 --separate-stderr mtl-search -c nosuch.mpk q.mpk
	assert_regex "$stderr" "^mtl-search: cannot open 'nosuch.mpk'"
	[ ! -e out.mpk ]
	run -1 mtl-search -c ex.mpk -o out.mpk q.mpk
	[ ! -e out.mpk ] # nothing written when the input is bad
}

@test "usage: --corpus required, -k in range, --help" {
	run -2 --separate-stderr mtl-search q.mpk
	assert_regex "$stderr" '^mtl-search: --corpus is required'
	run -2 --separate-stderr mtl-search -c c.mpk -k 0 q.mpk
	assert_regex "$stderr" -- '--top'
	run -0 mtl-search --help
	assert_line --partial 'usage: mtl-search'
}
