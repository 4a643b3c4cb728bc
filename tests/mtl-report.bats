#!/usr/bin/env bats
# mtl-report: figures on hand-made streams (tests/data/report/, worked out
# by hand in the comments), each output format's structure, options, and
# bad input.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
	for s in steps predictions embeddings; do
		mtl-dump --pack "$MTL_ROOT/tests/data/report/$s.jsonl" >$s.mpk
	done
}

@test "text: the predictions report, figure for figure" {
	# topic: gold a a b b c c, predicted a b b b c a: accuracy 4/6; a: P 1/2 R 1/2,
	# b: P 2/3 R 1 F1 0.8, c: P 1 R 1/2 F1 2/3; macro F1 (0.5+0.8+2/3)/3.
	# ner: 12 scored words, 10 right; entities: PER 2 found + 1 spurious + 1
	# lost, LOC 2 found + 1 wrong span; 1 more lost of unknown type, so micro
	# P 4/6, R 4/7, F1 8/13.
	mtl-report --errors predictions.mpk >actual
	diff -u "$MTL_ROOT/tests/data/report/predictions.txt" actual
}

@test "text: training curves, summary, evaluations and skips" {
	run mtl-report steps.mpk
	assert_success
	# 400 tokens in 50+50+60+40 ms
	assert_line '4 step records (steps 1 to 5), epochs 1 to 2, 1 skipped; 0.20 s, 400 tokens, 2000 tokens/s'
	assert_line 'loss: final 1.2000, best 1.0000 at step 3'
	# topic: f1 0.4 at step 2, 0.7 at step 5; ner: only 0.3 at step 2
	assert_line 'best eval F1: topic 0.7000 (step 5), ner 0.3000 (step 2)'
	assert_line --regexp '^loss +2\.0000 +1\.2000 +1\.0000 \(3\) +2\.0000 \(1\)  █▅▁▂$'
	assert_line --regexp '^grad norm +3\.5000 +1\.5000 +1\.5000 \(5\) +3\.5000 \(1\)  █▅ ▁$'
	assert_line --regexp '^grad cosine topic/ner +-0\.2500 +0\.5000 '
	assert_line --regexp '^labelled topic +4 +4 +2 \(3\) +4 \(1\) '
	assert_line --regexp '^ +2  ner +0\.7000 +- +0\.3000$'
	assert_line --regexp '^ +4  non-finite loss$'
}

@test "json: every figure, parseable" {
	mtl-report -f json --errors=1 steps.mpk predictions.mpk embeddings.mpk >r.json
	run jq -r '.predictions.tasks.topic | [.accuracy, .macro_f1, .classes.b.precision, .classes.b.f1, .classes.b.support, .confusion[2][0], .errors.total, (.errors.shown|length)] | @tsv' r.json
	assert_output "$(printf '0.6666666666666666\t0.6555555555555556\t0.6666666666666666\t0.8\t2\t1\t2\t1')"
	run jq -r '.predictions.tasks.ner.entities | [.micro.precision, .micro.recall, .micro.f1, .micro.support, .lost, .types.PER.lost, .types.LOC.fn, .mode] | @tsv' r.json
	assert_output "$(printf '0.6666666666666666\t0.5714285714285714\t0.6153846153846153\t7\t2\t1\t1\tconlleval')"
	run jq -c '.predictions.tasks.ner.errors.shown[0] | [.id, .words[6], .gold[4], .pred[4]]' r.json
	assert_output '["n2","Bob","I-LOC","O"]'
	run jq -c '.steps | [.records, .totals.tokens_per_second, .series.loss, .series.grad_norm, .stats.losses.ner.min_step, .eval[1].task, .skips[0].step]' r.json
	assert_output '[4,2000,[2,1.5,1,1.2],[3.5,2.5,null,1.5],3,"ner",4]'
	run jq -c '.embeddings | [.total, .dim, .pooling, .normalized, .labels[2], .similarity[0], .similarity[3][2]]' r.json
	assert_output '[4,3,"mean",false,"7",[1,0,0.7071067811865475,-1],-0.7071067811865475]'
}

@test "markdown: headings and tables, with | and markup escaped" {
	run mtl-report -f markdown --errors predictions.mpk embeddings.mpk
	assert_success
	assert_line '## Task topic (sequence)'
	assert_line '| label | precision | recall | f1 | support | predicted |'
	assert_line '| --- | ---: | ---: | ---: | ---: | ---: |'
	assert_line '| s2 | second \| \<b\> | a | b |'
	assert_line '| 4 | delta \| pipe & \<amp\> "q" | -1.000 | 0.000 | -0.707 | 1.000 |'
	assert_line '- n2: Mary went to New **York** (I-LOC→O) (not scored: with Bob)'
	assert_line '| micro | 0.6667 | 0.5714 | 0.6154 | 7 | 6 | 4 | 2 |'
}

@test "html: one well-formed file with SVG charts and heat maps, nothing external" {
	mtl-report -f html --errors --title 'a <title> & "q"' -o r.html steps.mpk predictions.mpk embeddings.mpk
	if command -v xmllint >/dev/null; then
		xmllint --noout r.html
	else
		echo "# xmllint is absent: well-formedness not checked" >&3
	fi
	run grep -c '<svg' r.html
	# 9 charts (loss, dev loss, accuracy, dev accuracy, dev F1, weights,
	# cosine, lr, grad norm), 2 confusion, 1 similarity
	assert_output 12
	run grep -Ec '<script|src=|href=|@import|url\(' r.html
	assert_output 0
	run grep -c '<title>a &lt;title&gt; &amp; &quot;q&quot;</title>' r.html
	assert_output 1
	grep -q 'delta | pipe &amp; &lt;amp&gt; &quot;q&quot;' r.html
	grep -q '<mark>York<sub>I-LOC→O</sub></mark>' r.html
	grep -q '<span class="lost">Bob</span>' r.html
}

@test "--strict: an I- tag after O starts no entity" {
	cat >s.jsonl <<-'EOF'
	{"type":"header","stream":"predictions","version":[1,0],"tasks":[{"name":"ner","kind":"token","labels":["O","B-X","I-X"]}]}
	{"type":"prediction","id":1,"tasks":{"ner":{"pred":["O","I-X","O"],"gold":["O","I-X","I-X"]}}}
	EOF
	mtl-dump --pack s.jsonl >s.mpk
	# conlleval: gold X[1,3), predicted X[1,2): 0 found, 1 predicted, 1 gold
	run bash -c "set -o pipefail; mtl-report -f json s.mpk | jq -c '.predictions.tasks.ner.entities.micro | [.tp, .fp, .fn]'"
	assert_output '[0,1,1]'
	# strict: neither has an entity
	run bash -c "set -o pipefail; mtl-report -f json --strict s.mpk | jq -c '.predictions.tasks.ner.entities | [.mode, .micro.tp, .micro.fp, .micro.fn]'"
	assert_output '["strict",0,0,0]'
}

@test "standard input, and several streams of one kind pooled" {
	head -2 "$MTL_ROOT/tests/data/report/predictions.jsonl" | mtl-dump --pack >a.mpk
	{ head -1 "$MTL_ROOT/tests/data/report/predictions.jsonl"; sed -n '3,7p' "$MTL_ROOT/tests/data/report/predictions.jsonl"; } | mtl-dump --pack >b.mpk
	run bash -c 'set -o pipefail; mtl-report -f json a.mpk b.mpk | jq -c ".predictions | [.streams, .records, .tasks.topic.accuracy, .tasks.topic.scored]"'
	assert_output '[2,6,0.6666666666666666,6]'
	run bash -c 'set -o pipefail; mtl-report -f json <embeddings.mpk | jq .embeddings.total'
	assert_output 4
	run bash -c 'set -o pipefail; mtl-report -f json --max 2 - <embeddings.mpk | jq -c "[.embeddings.shown, .embeddings.similarity]"'
	assert_output '[2,[[1,0],[0,1]]]'
}

@test "-o writes the file whole and nothing on stdout" {
	run mtl-report -o out.txt predictions.mpk
	assert_success
	assert_output ''
	mtl-report predictions.mpk >expect
	cmp expect out.txt
	run bash -c 'set -o pipefail; ls | grep -c tmp'
	assert_output 0
	run -3 --separate-stderr mtl-report -o nodir/out.txt predictions.mpk
	assert_regex "$stderr" "^mtl-report: cannot create a file beside 'nodir/out.txt': "
}

@test "bad input: wrong kind, truncated, unknown labels, missing file" {
	printf '{"type":"header","stream":"examples","version":[1,0]}\n' | mtl-dump --pack >ex.mpk
	run -1 --separate-stderr mtl-report predictions.mpk ex.mpk
	assert_equal "$stderr" "mtl-report: ex.mpk: record 1: cannot report a 'examples' stream (expected steps, predictions or embeddings)"
	assert_output ''
	head -c -5 predictions.mpk >cut.mpk
	run -1 --separate-stderr mtl-report cut.mpk
	assert_equal "$stderr" "mtl-report: cut.mpk: record 14: truncated (input ends inside the record)"
	sed 's/"pred":"c","gold":"c"/"pred":"d","gold":"c"/' "$MTL_ROOT/tests/data/report/predictions.jsonl" | mtl-dump --pack >bad.mpk
	run -1 --separate-stderr mtl-report bad.mpk
	assert_equal "$stderr" "mtl-report: bad.mpk: record 6: task 'topic': unknown pred label 'd'"
	sed 's/"I-PER","O","O","B-LOC",null/"I-PER","O","O","B-XYZ",null/' "$MTL_ROOT/tests/data/report/predictions.jsonl" | mtl-dump --pack >bad2.mpk
	run -1 --separate-stderr mtl-report bad2.mpk
	assert_equal "$stderr" "mtl-report: bad2.mpk: record 9: task 'ner': unknown gold label 'B-XYZ'"
	run -1 --separate-stderr mtl-report </dev/null
	assert_equal "$stderr" "mtl-report: <stdin>: empty input, expected a stream of kind 'any'"
	run -3 --separate-stderr mtl-report nosuch.mpk
	assert_equal "$stderr" "mtl-report: cannot open 'nosuch.mpk': No such file or directory"
}

@test "a stream whose writer was killed (no end record): exit 1 and no report" {
	# each cut after its last record, before the end record: the steps of
	# a run stopped early, predictions without their metrics record
	for s in steps:8 predictions:13 predictions:12 embeddings:5; do
		n=${s#*:} s=${s%:*}
		cut_stream "$n" "$s.mpk" cut.mpk
		run -1 --separate-stderr mtl-report -o out.txt cut.mpk
		assert_equal "$stderr" "mtl-report: cut.mpk: truncated stream (no end record after $n records)"
		[ ! -e out.txt ] || fail "a report of the cut $s stream was written"
		# beside a whole stream, too
		run -1 --separate-stderr mtl-report "$s.mpk" cut.mpk
		assert_output ''
	done
}

@test "--help, --version and usage errors" {
	run -0 mtl-report --help
	assert_line --index 0 'usage: mtl-report [options] [FILE...]'
	run -0 mtl-report --version
	assert_output --regexp '^mtl-report [0-9]+\.[0-9]+\.[0-9]+$'
	run -2 --separate-stderr mtl-report --bogus predictions.mpk
	assert_regex "$stderr" 'usage: mtl-report'
	run -2 --separate-stderr mtl-report -f pdf predictions.mpk
	assert_regex "$stderr" "^mtl-report: unknown format 'pdf'"
	run -2 mtl-report --max 0 embeddings.mpk
	run -2 mtl-report --errors=x predictions.mpk
}

@test "embeddings from mtl-score (float32 extension arrays): cosines agree with awk" {
	{
		echo '{"type":"header","stream":"examples","version":[1,0]}'
		n=0
		json_array ids <"$FIXTURES/golden/embed.jsonl" | while read -r ids; do
			n=$((n + 1))
			echo "{\"type\":\"example\",\"id\":$n,\"ids\":[$(echo "$ids" | tr ' ' ',')]}"
		done
	} | mtl-dump --pack >ex.mpk
	# mean pooling: the tiny model's CLS vectors are all nearly parallel
	mtl-score -q -m "$FIXTURES/tiny" --embed --pooling mean --no-normalize ex.mpk >emb.mpk
	mtl-dump -t embedding emb.mpk | json_array embedding >vectors
	[ "$(wc -l <vectors)" -ge 2 ]
	# cosine of the first two vectors, computed independently
	want=$(head -2 vectors | awk '{ for (i = 1; i <= NF; i++) v[NR, i] = $i; n = NF }
		END { for (i = 1; i <= n; i++) { ab += v[1, i] * v[2, i]; aa += v[1, i] ^ 2; bb += v[2, i] ^ 2 }
		      printf "%.6f\n", ab / sqrt(aa * bb) }')
	run bash -c "set -o pipefail; mtl-report -f json emb.mpk | jq -r '.embeddings | [.total == $(wc -l <vectors), .normalized, (.similarity[0][1] * 1000000 | round / 1000000), (.similarity[1][1] - 1 | fabs < 1e-12)] | @tsv'"
	assert_output "$(printf 'true\tfalse\t%s\ttrue' "$(echo "$want" | sed 's/0*$//')")"
}

@test "a token task whose labels are not BIO tags gets tag scores and no entity section" {
	cat >pos.jsonl <<-'EOF'
	{"type":"header","stream":"predictions","version":[1,0],"tasks":[{"name":"pos","kind":"token","labels":["NOUN","VERB"]}]}
	{"type":"prediction","id":1,"tasks":{"pos":{"pred":["NOUN","VERB","VERB"],"gold":["NOUN","VERB","NOUN"]}}}
	EOF
	mtl-dump --pack pos.jsonl >pos.mpk
	run mtl-report pos.mpk
	assert_success
	assert_line '1 examples, 0 without gold labels (not scored); per word: tag accuracy 0.6667 (2 of 3); macro F1 0.6667, micro F1 0.6667'
	refute_line --partial 'Entities'
	run bash -c "set -o pipefail; mtl-report -f json pos.mpk | jq -c '.predictions.tasks.pos | [has(\"entities\"), .confusion]'"
	assert_output '[false,[[1,1],[0,1]]]'
}

@test "mtl-step's evaluation records (per-metric maps) make the evaluation table" {
	cd "$BATS_TEST_TMPDIR"
	printf '%s\n' '{"type":"header","stream":"steps","version":[1,0],"tasks":[{"name":"topic","kind":"sequence","labels":["a","b"]}]}' \
		'{"type":"step","step":1,"loss":2.0,"losses":{"topic":2.0}}' \
		'{"type":"eval","step":1,"loss":1.5,"losses":{"topic":1.25,"ner":0.5},"accuracy":{"topic":0.75,"ner":0.875},"f1":{"topic":0.5,"ner":0.625}}' |
		mtl-dump --pack >s.mpk
	run mtl-report s.mpk
	assert_success
	assert_line --regexp '^ +1 +topic +1\.2500 +0\.7500 +0\.5000$'
	assert_line --regexp '^ +1 +ner +0\.5000 +0\.8750 +0\.6250$'
}

@test "predictions without gold labels: the predicted labels and entities, not an accuracy of 0 of 0" {
	cat >u.jsonl <<-'EOF2'
	{"type":"header","stream":"predictions","version":[1,0],"tasks":[{"name":"topic","kind":"sequence","labels":["a","b"]},{"name":"ner","kind":"token","labels":["O","B-PER","I-PER"]}]}
	{"type":"prediction","id":1,"tasks":{"topic":{"pred":"a","gold":null},"ner":{"pred":["B-PER","I-PER","O","I-PER"],"gold":null}}}
	{"type":"prediction","id":2,"tasks":{"topic":{"pred":"a"},"ner":{"pred":["O","O","O","B-PER"]}}}
	{"type":"prediction","id":3,"tasks":{"topic":{"pred":"b"},"ner":{"pred":["O"]}}}
	EOF2
	mtl-dump --pack u.jsonl >u.mpk
	run mtl-report u.mpk
	assert_success
	refute_output --partial 'accuracy'
	assert_line '3 examples, none with gold labels: predictions only (3 predicted labels)'
	assert_line --regexp '^a +2 +66\.7%$'
	assert_line --regexp '^b +1 +33\.3%$'
	assert_line '3 examples, none with gold labels: predictions only (9 predicted words)'
	assert_line --regexp '^I-PER +2 +22\.2%$'
	# B-PER I-PER, a lone I-PER (conlleval: an entity), B-PER
	assert_line --regexp '^PER +3$'
	run bash -c "set -o pipefail; mtl-report -f json u.mpk | jq -c '.predictions.tasks | [.topic.predicted, .topic.accuracy, .ner.predicted.O, .ner.entities.types.PER.predicted_entities]'"
	assert_output '[{"a":2,"b":1},null,5,3]'
	run mtl-report -f html u.mpk
	assert_output --partial 'Predicted labels of topic'
	# --strict: the lone I-PER is no entity
	run mtl-report --strict u.mpk
	assert_line --regexp '^PER +2$'
}

@test "html: dev curves beside the training ones, constant weights in a sentence, --smooth" {
	run mtl-report -f html steps.mpk
	assert_success
	assert_output --partial '<title>Dev F1</title>'
	assert_output --partial '<p>Task weights constant: topic 1.0000</p>'
	refute_output --partial 'class="smooth"'
	run mtl-report -f html --smooth 0.6 steps.mpk
	assert_output --partial 'class="smooth"'
	run -2 --separate-stderr mtl-report --smooth 1 steps.mpk
	assert_regex "$stderr" "smooth takes a weight in \[0, 1\), not '1'"
	run -2 mtl-report --smooth x steps.mpk
}
