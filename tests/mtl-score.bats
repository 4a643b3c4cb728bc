#!/usr/bin/env bats
# mtl-score --embed: sentence embeddings against the PyTorch reference,
# padding invariance, pooling options, and bad input.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
	# the reference rows as an examples stream
	{
		echo '{"type":"header","stream":"examples","version":[1,1]}'
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

# mixed.mpk: 40 examples of 3 to 62 tokens in an order unrelated to length
mixed_setup() {
	{
		echo '{"type":"header","stream":"examples","version":[1,0]}'
		awk 'BEGIN { s = 7; for (n = 1; n <= 40; n++) {
			s = (s * 1103515245 + 12345) % 2147483648; len = 3 + s % 60
			printf "{\"type\":\"example\",\"id\":%d,\"ids\":[2", n
			for (t = 1; t < len - 1; t++) {
				s = (s * 1103515245 + 12345) % 2147483648; printf ",%d", 5 + s % 300 }
			print ",3]}" } }'
	} | mtl-dump --pack >mixed.mpk
}

@test "--sort-window: length-sorted batches give the same records in input order, with less padding" {
	mixed_setup
	for mode in cls mean max; do
		# batches of 4 exactly (--batch-tokens 0): sorting alone
		mtl-score -m "$FIXTURES/tiny" --embed --pooling "$mode" -b 4 --sort-window 16 \
			--batch-tokens 0 mixed.mpk 2>sorted.err | mtl-dump -t embedding >sorted
		mtl-score -m "$FIXTURES/tiny" --embed --pooling "$mode" -b 4 --sort-window 0 mixed.mpk \
			2>unsorted.err | mtl-dump -t embedding >unsorted
		# the same bits: padding is masked exactly, whatever the batch
		assert_equal "$(cat sorted)" "$(cat unsorted)"
	done
	run -0 bash -c "grep -o '\"id\":[0-9]*' sorted | cut -d: -f2 | tr '\n' ' '"
	assert_output "$(seq -s ' ' 1 40) "
	# the final line counts the padded positions: sorting cuts them
	sorted=$(sed -n 's/.*: .*; \([0-9]*\) token positions for \([0-9]*\) tokens.*$/\1 \2/p' sorted.err)
	unsorted=$(sed -n 's/.*: .*; \([0-9]*\) token positions for \([0-9]*\) tokens.*$/\1 \2/p' unsorted.err)
	assert_equal "${sorted#* }" "${unsorted#* }"
	(( ${sorted% *} < ${unsorted% *} ))
}

@test "the real tokens alone (and with --embed and CLS, the last layer's CLS rows) give the whole forward's bytes with every attention kernel" {
	mixed_setup
	# the reference: the predictions' whole forward, one example a batch
	# (no padding to leave out); a kernel this CPU lacks falls back to
	# the default (MTL_ATTN)
	for k in c avx2 avx512 unfused; do
		for mode in cls mean; do
			MTL_ATTN=$k mtl-score -q -m "$FIXTURES/tiny" --with-embedding --pooling "$mode" -b 1 mixed.mpk |
				mtl-dump | jq -c 'select(.embedding) | .embedding' >whole
			MTL_ATTN=$k mtl-score -q -m "$FIXTURES/tiny" --embed --pooling "$mode" -b 8 \
				--sort-window 0 mixed.mpk | mtl-dump | jq -c 'select(.embedding) | .embedding' >embed
			MTL_ATTN=$k mtl-score -q -m "$FIXTURES/tiny" --with-embedding --probs --pooling "$mode" -b 8 \
				--sort-window 0 mixed.mpk | mtl-dump | tail -n +2 >pred8
			MTL_ATTN=$k mtl-score -q -m "$FIXTURES/tiny" --with-embedding --probs --pooling "$mode" -b 1 \
				mixed.mpk | mtl-dump | tail -n +2 >pred1
			[ "$(wc -l <whole)" -eq 40 ]
			cmp embed whole
			cmp pred8 pred1
		done
	done
}

@test "--batch-tokens: batches of many short examples give the same records as batches of -b" {
	mixed_setup
	for mode in --embed --probs --features; do
		mtl-score -q -m "$FIXTURES/tiny" $mode -b 2 --sort-window 40 --batch-tokens 0 mixed.mpk |
			mtl-dump | tail -n +2 >small
		mtl-score -q -m "$FIXTURES/tiny" $mode -b 2 --sort-window 40 --batch-tokens 100000 mixed.mpk |
			mtl-dump | tail -n +2 >large
		[ -s small ]
		assert_equal "$(cat large)" "$(cat small)"
	done
	run -2 mtl-score -m "$FIXTURES/tiny" --embed --batch-tokens -1 mixed.mpk
	assert_output --partial "batch-tokens"
}

@test "--sort-window: predictions and their metrics equal the unsorted run's" {
	mtl-dump --pack "$FIXTURES/golden/predict-examples.jsonl" >pex.mpk
	mtl-score -q -m "$FIXTURES/tiny" --probs -b 2 --sort-window 64 pex.mpk | mtl-dump >sorted
	mtl-score -q -m "$FIXTURES/tiny" --probs -b 2 --sort-window 0 pex.mpk | mtl-dump >unsorted
	run -0 diff <(tail -n +2 sorted) <(tail -n +2 unsorted)
	# the window's records are counted once, and the end record follows the metrics
	assert_equal "$(tail -n 1 sorted)" '{"type":"end","stream":"predictions","records":7,"counts":{"prediction":4,"metrics":2}}'
	mixed_setup
	mtl-score -q -m "$FIXTURES/tiny" --features -b 4 --sort-window 16 mixed.mpk | mtl-dump >sorted
	mtl-score -q -m "$FIXTURES/tiny" --features -b 4 mixed.mpk | mtl-dump >unsorted
	run -0 diff <(tail -n +2 sorted) <(tail -n +2 unsorted)
	# three windows
	assert_equal "$(tail -n 1 sorted)" '{"type":"end","stream":"features","records":41,"counts":{"features":40}}'
	run -2 mtl-score -m "$FIXTURES/tiny" --embed --sort-window -1 mixed.mpk
}

@test "the header describes the embeddings; --no-normalize keeps the norm" {
	run bash -c "set -o pipefail; mtl-score -q -m '$FIXTURES/tiny' --embed ex.mpk | mtl-dump -t header"
	assert_output --partial '"stream":"embeddings"'
	assert_output --partial '"dim":32,"pooling":"cls","normalized":true'
	mtl-score -q -m "$FIXTURES/tiny" --embed --no-normalize ex.mpk | mtl-dump -t embedding | json_array embedding >raw
	run awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i * $i; printf "%.3f\n", sqrt(s) }' raw
	refute_line '1.000'
}

@test "ids flow through, one record per example, in input order" {
	run bash -c "set -o pipefail; mtl-score -q -m '$FIXTURES/tiny' --embed -b 1 ex.mpk | mtl-dump -t embedding | grep -o '\"id\":[0-9]*'"
	assert_output $'"id":1\n"id":2'
}

@test "--embed on threads: batches side by side give one thread's records, in input order" {
	mixed_setup
	# 40 examples in batches of 2: 20 batches, enough for 2 and 3
	# threads; 18 side by side (9 or 6 a thread), the 2 smallest after
	mtl-score -m "$FIXTURES/tiny" --embed -b 2 --batch-tokens 0 -j 1 mixed.mpk 2>one.err |
		mtl-dump -t embedding >one
	for j in 2 3; do
		mtl-score -m "$FIXTURES/tiny" --embed -b 2 --batch-tokens 0 -j $j mixed.mpk 2>side.err |
			mtl-dump -t embedding >side
		assert_equal "$(cat side)" "$(cat one)"
		grep -q "; 18 of 20 batches side by side on $j threads$" side.err
	done
	run -1 grep -q 'side by side' one.err
	run -0 bash -c "grep -o '\"id\":[0-9]*' side | cut -d: -f2 | tr '\n' ' '"
	assert_output "$(seq -s ' ' 1 40) "
	# too few batches for the threads (7 of 6 examples and one of 4, for
	# 2 threads' 8): each batch on both
	mtl-score -m "$FIXTURES/tiny" --embed -b 6 --batch-tokens 0 -j 2 mixed.mpk 2>few.err |
		mtl-dump -t embedding >few
	assert_equal "$(cat few)" "$(cat one)"
	run -1 grep -q 'side by side' few.err
	# a bad token id in a batch among others: the same message as one thread's
	mtl-dump mixed.mpk | sed '/"id":17,/s/"ids":\[2,/"ids":[2,99999,/' | mtl-dump --pack >bad.mpk
	run -1 --separate-stderr mtl-score -q -m "$FIXTURES/tiny" --embed -b 2 --batch-tokens 0 -j 1 bad.mpk
	one_err=$stderr
	assert_regex "$one_err" '^mtl-score: bad.mpk: records [0-9]+-[0-9]+: '
	run -1 --separate-stderr mtl-score -q -m "$FIXTURES/tiny" --embed -b 2 --batch-tokens 0 -j 2 bad.mpk
	assert_equal "$stderr" "$one_err"
}

@test "predictions on threads: one batch of 40 in parts side by side gives one thread's records" {
	mixed_setup
	mtl-score -q -m "$FIXTURES/tiny" --probs -b 40 --batch-tokens 0 -j 1 mixed.mpk |
		mtl-dump -t prediction >one
	for j in 2 3; do
		mtl-score -q -m "$FIXTURES/tiny" --probs -b 40 --batch-tokens 0 -j $j mixed.mpk |
			mtl-dump -t prediction >parts
		[ "$(wc -l <parts)" -eq 40 ]
		assert_equal "$(cat parts)" "$(cat one)"
	done
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
	run -3 --separate-stderr mtl-score -m "$BATS_TEST_TMPDIR" --embed ex.mpk
	assert_regex "$stderr" 'config.json'
	run -2 mtl-score --embed ex.mpk
	run -2 mtl-score -m "$FIXTURES/tiny" --embed --pooling bogus ex.mpk
}

# The reference's predictions for the training rows (fixtures/tiny with its
# heads, eval mode) against mtl-score's.
predict_setup() {
	mtl-dump --pack "$FIXTURES/golden/predict-examples.jsonl" >pex.mpk
	mtl-score -q -m "$FIXTURES/tiny" --probs pex.mpk >pred.mpk
}

@test "predictions: labels per example and per word equal the reference's" {
	predict_setup
	run bash -c "set -o pipefail; mtl-dump -t prediction pred.mpk | sed 's/\"score\":[^,]*,//' | grep -o '\"topic\":{\"pred\":\"[a-z]*\",\"gold\":[a-z\"]*'"
	assert_output "$(sed 's/.*"topic_pred": "\([a-z]*\)", "topic_gold": \([a-z"]*\),.*/"topic":{"pred":"\1","gold":\2/' \
		"$FIXTURES/golden/predict-expect.jsonl")"
	mtl-dump -t prediction pred.mpk | sed 's/.*"ner":{"pred":\[\([^]]*\)\].*/\1/' >actual
	sed 's/.*"ner_pred": \[\([^]]*\)\].*/\1/; s/", "/","/g' "$FIXTURES/golden/predict-expect.jsonl" >expect
	diff -u expect actual
	mtl-dump -t prediction pred.mpk | sed -n 's/.*"ner":{[^}]*"gold":\(null\|\[[^]]*\]\).*/\1/p' >actual
	sed 's/.*"ner_gold": \(null\|\[[^]]*\]\).*/\1/; s/", "/","/g' "$FIXTURES/golden/predict-expect.jsonl" >expect
	diff -u expect actual
}

@test "predictions: probabilities equal the reference's within 1e-6" {
	predict_setup
	mtl-dump -t prediction pred.mpk | sed 's/.*"topic":{[^}]*"probs":\[\([^]]*\)\].*/\1/' | tr ',' ' ' >actual
	json_array topic_probs <"$FIXTURES/golden/predict-expect.jsonl" >expect
	run max_abs_diff actual expect
	awk -v d="$output" 'BEGIN { exit !(d != "shape" && d <= 1e-6) }'
}

@test "predictions: metrics records at the end, and --tasks selects" {
	predict_setup
	run bash -c "set -o pipefail; mtl-dump -t metrics pred.mpk | grep -o '\"task\":\"[a-z]*\",\"kind\":\"[a-z]*\",\"scored\":[0-9]*'"
	# topic: rows 0 and 2 labelled; ner: 4 + 5 labelled words
	assert_output $'"task":"topic","kind":"sequence","scored":2\n"task":"ner","kind":"token","scored":9'
	run bash -c "set -o pipefail; mtl-score -q -m '$FIXTURES/tiny' --tasks ner pex.mpk | mtl-dump -t prediction | grep -c topic"
	assert_output 0
	run -2 mtl-score -q -m "$FIXTURES/tiny" --tasks nosuch pex.mpk
	run -1 --separate-stderr mtl-score -m "$FIXTURES/tiny-f16" pex.mpk
	assert_regex "$stderr" 'has no tasks.json'
}

@test "predictions: words cut off by truncation count as lost gold entities" {
	mkdir m && cp -r "$FIXTURES/tiny/." m/
	printf '{"words":["john","smith","won","in","paris","london"],"ner":["B-PER","I-PER","O","O","B-LOC","B-LOC"]}\n' >t.jsonl
	mtl-tokenize -q -m m --max-length 6 t.jsonl >t.mpk
	run bash -c "set -o pipefail; mtl-score -q -m m t.mpk | mtl-dump -t prediction"
	assert_output --partial '"gold_lost":{"LOC":2}'
	# the report counts them as gold and as missed
	run bash -c "set -o pipefail; mtl-score -q -m m t.mpk | mtl-report - | grep -E '^(LOC|micro) '"
	assert_line --regexp '^LOC +0\.0000 +0\.0000 +0\.0000 +2 +0 +0 +2$'
	assert_line --regexp '^micro .* 3 +1 +0 +2$'
	run bash -c "set -o pipefail; mtl-score -q -m m t.mpk | mtl-dump -t metrics | grep -o '\"entity_recall\":[0-9.]*'"
	assert_output '"entity_recall":0.0'
}

@test "predictions: a word that gives no token is predicted O, and reports read it" {
	printf '%s\n' '{"type":"header","stream":"examples","version":[1,0],"tasks":[{"name":"ner","kind":"token","labels":["O","B-PER","I-PER","B-LOC","I-LOC"]}]}' \
		'{"type":"example","id":1,"ids":[2,230,213,3],"word_ids":[-1,0,2,-1],"words":["john","\ufe0f","paris"],"labels":{"ner":[-100,1,3,-100]}}' |
		mtl-dump --pack >z.mpk
	run bash -c "set -o pipefail; mtl-score -q -m '$FIXTURES/tiny' --tasks ner z.mpk | mtl-dump -t prediction | grep -o '\"pred\":\[[^]]*\]'"
	assert_output --regexp '^"pred":\["[A-Z-]+","O","[A-Z-]+"\]$'
	run bash -c "set -o pipefail; mtl-score -q -m '$FIXTURES/tiny' --tasks ner z.mpk | mtl-report -"
	assert_success
}

@test "progress on a terminal: a total and an ETA from the file's size, the time taken at the end" {
	head -1 "$MTL_ROOT/tests/data/step-examples.jsonl" >big.jsonl
	for i in $(seq 1000 1999); do
		echo "{\"type\":\"example\",\"id\":\"e$i\",\"ids\":[2,214,218,91,247,3],\"labels\":{\"topic\":0}}"
	done >>big.jsonl
	mtl-dump --pack big.jsonl >big.mpk
	# script(1) gives the program a terminal
	script -qec "mtl-score -m '$FIXTURES/tiny' -b 250 big.mpk >/dev/null" /dev/null | tr '\r' '\n' >err
	run grep -oE 'example [0-9]+/[0-9]+, [0-9.]+ example/s, ETA [0-9]+:[0-9]{2}' err
	[ "${#lines[@]}" -ge 1 ] || fail "no progress line"
	# the header's bytes make the estimate a little low, the end record's
	# a little high
	for l in "${lines[@]}"; do
		total=$(echo "$l" | sed -E 's/example [0-9]+\/([0-9]+),.*/\1/')
		[ "$total" -ge 980 ] && [ "$total" -le 1020 ] || fail "total $total in '$l'"
	done
	run grep -cE '^mtl-score: example 1000, [0-9.]+ example/s, [0-9]+:[0-9]{2}; ' err
	assert_output 1
	# from a pipe nothing is known ahead: no total
	run bash -c "set -o pipefail; script -qec \"cat big.mpk | mtl-score -m '$FIXTURES/tiny' -b 250 >/dev/null\" /dev/null | tr '\r' '\n' | grep -c 'example 250, '"
	assert_output 1
}

# raw_setup [LABELS]: m/, the tiny model (its ner labels replaced by the
# JSON array LABELS: the head is the same, the tags it names differ), and
# raw.mpk, two raw texts (one not ASCII) tokenized by it
raw_setup() {
	mkdir m && cp -r "$FIXTURES/tiny/." m/
	if [ -n "${1:-}" ]; then
		jq --argjson l "$1" '.tasks[1].labels = $l' "$FIXTURES/tiny/tasks.json" >m/tasks.json
	fi
	printf '%s\n' '{"text":"Zoë Müller flew to 東京, then Paris."}' '{"text":"john smith"}' >raw.jsonl
	mtl-tokenize -q -m m raw.jsonl >raw.mpk
}

@test "raw text: the examples carry each word's bytes, the predictions its characters" {
	raw_setup
	run bash -c "set -o pipefail; mtl-dump -t example raw.mpk | jq -c '[.word_starts, .word_ends]' | head -1"
	# ë, ü: 2 bytes; 東, 京: 3
	assert_output '[[0,5,13,18,21,24,27,29,34,39],[4,12,17,20,24,27,28,33,39,40]]'
	mtl-score -q -m m raw.mpk | mtl-dump -t prediction >p.jsonl
	run jq -c '[.words, .offsets]' p.jsonl
	assert_line --index 0 '[["Zoë","Müller","flew","to","東","京",",","then","Paris","."],[[0,3],[4,10],[11,15],[16,18],[19,20],[20,21],[21,22],[23,27],[28,33],[33,34]]]'
	assert_line --index 1 '[["john","smith"],[[0,4],[5,10]]]'
	# offsets index the text by character (jq slices by code point, as Python does)
	run jq -r '. as $p | [range(.words|length)] | map($p.text[$p.offsets[.][0]:$p.offsets[.][1]] == $p.words[.]) | all' p.jsonl
	assert_output $'true\ntrue'
}

@test "raw text: entity spans grouped as entity F1 groups them, scored by the words' mean" {
	raw_setup
	mtl-score -q -m m --probs raw.mpk | mtl-dump -t prediction >p.jsonl
	# the tiny model tags I-PER I-PER O I-PER ... : an I- without a B- opens
	# an entity (conlleval), and a tag of O closes it
	run jq -c '.tasks.ner.pred' p.jsonl
	assert_line --index 0 '["O","I-PER","I-PER","O","I-PER","I-PER","I-PER","I-PER","O","I-PER"]'
	run jq -c '.tasks.ner.entities | map([.type, .start, .end, .text, .words])' p.jsonl
	assert_line --index 0 '[["PER",4,15,"Müller flew",[1,3]],["PER",19,27,"東京, then",[4,8]],["PER",33,34,".",[9,10]]]'
	assert_line --index 1 '[["PER",0,10,"john smith",[0,2]]]'
	# the text is the text's characters [start, end)
	run jq -r '. as $p | .tasks.ner.entities | map($p.text[.start:.end] == .text) | all' p.jsonl
	assert_output $'true\ntrue'
	# an entity's score: the mean over its words of the predicted tag's probability
	run jq -r '.tasks.ner as $t | $t.entities[] | ([range(.words[0]; .words[1])] | map($t.probs[.] | max) | add / length) - .score | fabs < 1e-6' p.jsonl
	assert_output $'true\ntrue\ntrue\ntrue'
	# a sequence task: the label and its probability
	run jq -r '.tasks.topic | (.probs | max) - .score | fabs < 1e-7' p.jsonl
	assert_output $'true\ntrue'
}

@test "raw text: IOBES singles are entities of one word; labels that are no tag scheme give no entities" {
	raw_setup '["O","S-PER","S-LOC","B-LOC","E-LOC"]'
	run bash -c "set -o pipefail; mtl-score -q -m m raw.mpk | mtl-dump -t prediction | jq -c '.tasks.ner.entities | map([.type, .text, .words])' | tail -1"
	assert_output '[["LOC","john",[0,1]],["LOC","smith",[1,2]]]'
	rm -r m
	raw_setup '["N","V","A","D","P"]'
	run bash -c "set -o pipefail; mtl-score -q -m m raw.mpk | mtl-dump -t prediction | jq -c '.tasks.ner | [has(\"pred\"), has(\"entities\")]'"
	assert_output $'[true,false]\n[true,false]'
}

@test "word input: offsets into the words joined by spaces; hand-made word_starts that are no text's are ignored" {
	mkdir m && cp -r "$FIXTURES/tiny/." m/
	printf '{"words":["Zoë","smith"],"ner":["B-PER","I-PER"]}\n' >w.jsonl
	mtl-tokenize -q -m m w.jsonl >w.mpk
	run bash -c "set -o pipefail; mtl-score -q -m m w.mpk | mtl-dump -t prediction | jq -c '[.text, .words, .offsets, (.tasks.ner.entities | map(.text))]'"
	assert_output '["Zoë smith",["Zoë","smith"],[[0,3],[4,9]],["smith"]]'
	# (the tiny model tags Zoë O and smith I-PER: one entity)
	# a start inside a character, and too few entries: no offsets, no surface text
	printf '%s\n' '{"type":"header","stream":"examples","version":[1,0],"tasks":[{"name":"ner","kind":"token","labels":["O","B-PER","I-PER","B-LOC","I-LOC"]}]}' \
		'{"type":"example","id":1,"text":"Zoë x","ids":[2,230,213,3],"word_ids":[-1,0,1,-1],"word_starts":[0,3],"word_ends":[4,5]}' \
		'{"type":"example","id":2,"text":"Zoë x","ids":[2,230,213,3],"word_ids":[-1,0,1,-1],"word_starts":[0],"word_ends":[4]}' |
		mtl-dump --pack >h.mpk
	run bash -c "set -o pipefail; mtl-score -q -m m --tasks ner h.mpk | mtl-dump -t prediction | jq -c '[has(\"offsets\"), has(\"words\"), (.tasks.ner.entities[0] | keys)]'"
	assert_output $'[false,false,["score","type","words"]]\n[false,false,["score","type","words"]]'
}

@test "examples cut short (an upstream killed): exit 1, and the output has no end record" {
	run bats_pipe mtl-score -q -m "$FIXTURES/tiny" --embed ex.mpk \| mtl-dump -t end
	assert_success
	assert_output '{"type":"end","stream":"embeddings","records":3,"counts":{"embedding":2}}'
	cut_stream 2 ex.mpk cut.mpk
	for mode in --embed ""; do
		status=0
		# no sort window: the one example is scored before the cut is met
		mtl-score -q -m "$FIXTURES/tiny" $mode -b 1 --sort-window 0 cut.mpk >out.mpk 2>err || status=$?
		assert_equal "$status" 1
		assert_equal "$(cat err)" "mtl-score: cut.mpk: truncated stream (no end record after 2 records)"
		# what was scored went out, but the stream says it is not whole
		run -1 --separate-stderr mtl-report out.mpk
		assert_equal "$stderr" "mtl-report: out.mpk: truncated stream (no end record after 2 records)"
	done
}

# min_cosine A B: the smallest cosine between lines of two files of
# space-separated numbers (vectors, one a line).
min_cosine() {
	paste -d'|' "$1" "$2" | awk -F'|' '
		{ na = split($1, a, " "); nb = split($2, b, " ");
		  if (na != nb || !na) { print "shape"; exit }
		  ab = aa = bb = 0
		  for (i = 1; i <= na; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i] }
		  c = ab / sqrt(aa * bb); if (NR == 1 || c < m) m = c }
		END { printf "%.8f\n", m }'
}

@test "--int8: embeddings within cosine 0.995 of fp32's, the same predictions" {
	mixed_setup
	mtl-score -q -m "$FIXTURES/tiny" --embed mixed.mpk | mtl-dump -t embedding | json_array embedding >fp32
	mtl-score -q -m "$FIXTURES/tiny" --embed --int8 mixed.mpk | mtl-dump -t embedding | json_array embedding >int8
	[ "$(wc -l <int8)" -eq 40 ]
	run min_cosine fp32 int8
	echo "min cosine $output"
	awk -v c="$output" 'BEGIN { exit !(c != "shape" && c >= 0.995) }'
	# int8 did run: the embeddings differ
	run max_abs_diff fp32 int8
	awk -v d="$output" 'BEGIN { exit !(d != "shape" && d > 0) }'
	# the labels, without their scores
	mtl-dump --pack "$FIXTURES/golden/predict-examples.jsonl" >pex.mpk
	mtl-score -q -m "$FIXTURES/tiny" pex.mpk | mtl-dump -t prediction | sed 's/"score":[^,}]*//g' >expect
	mtl-score -q -m "$FIXTURES/tiny" --int8 pex.mpk | mtl-dump -t prediction | sed 's/"score":[^,}]*//g' >actual
	diff -u expect actual
}

@test "valgrind: the encoder's run is clean and its embeddings are the native run's bytes" {
	# valgrind has no AVX-512: the GELU's default clone and the AVX2
	# products run there, where the native run may take AVX-512 ones
	command -v valgrind >/dev/null || skip "valgrind is not installed"
	[ "${MTL_BUILD:-build}" = build ] || skip "valgrind does not run sanitizer builds"
	mtl-score -q -m "$FIXTURES/tiny" --embed -j 2 ex.mpk | mtl-dump -t embedding >native
	run -0 bash -c "valgrind -q --error-exitcode=99 mtl-score -q -m '$FIXTURES/tiny' --embed -j 2 ex.mpk | mtl-dump -t embedding >vg"
	cmp native vg
}
