#!/usr/bin/env bats
# mtl-tokenize: labels aligned to tokens from JSONL (mixed label
# availability), CoNLL (tab, space and whitespace-only breaks) and TSV;
# header and stats; line-numbered errors; the bge tokenizer against
# Hugging Face's ids on the reference lines (fixtures/tokref) and, with
# ../shared, on WNUT-17.  Expected outputs were checked
# by hand against the small vocabulary below (id = line number - 1).

load helper

setup() {
	set -o pipefail  # a crash upstream of a pipe must fail the test
	cd "$BATS_TEST_TMPDIR"
	mkdir -p m
	printf '%s\n' '[PAD]' '[UNK]' '[CLS]' '[SEP]' '[MASK]' hello world , '!' \
		un '##aff' '##able' john lives in paris . >m/vocab.txt
	cat >m/tasks.json <<-'J'
	{"tasks": [
	 {"name": "topic", "kind": "sequence", "labels": ["greet", "other"]},
	 {"name": "ner", "kind": "token", "labels": ["O", "B-PER", "B-LOC"]}
	]}
	J
}

examples() {  # examples() ARGS...: the example records as JSON lines
	mtl-tokenize -q "$@" >out.mpk && mtl-dump -t example out.mpk
}

@test "JSONL: sequence, token, both and no labels; word labels on first pieces" {
	cat >in.jsonl <<-'J'
	{"id": "a", "text": "Hello, world!", "topic": "greet"}
	{"words": ["John", "lives", "in", "unaffable", "Paris."], "ner": ["B-PER", "O", "O", "O", "B-LOC"], "topic": "other"}
	{"text": "hello", "topic": null}
	{"id": 7, "words": ["John", "x"], "tags": ["B-PER", null]}
	J
	cat >expect <<-'J'
	{"type":"example","id":"a","text":"Hello, world!","ids":[2,5,7,6,8,3],"word_ids":[-1,0,1,2,3,-1],"word_starts":[0,5,7,12],"word_ends":[5,6,12,13],"labels":{"topic":0},"truncated":false}
	{"type":"example","id":2,"text":"John lives in unaffable Paris.","ids":[2,12,13,14,9,10,11,15,16,3],"word_ids":[-1,0,1,2,3,3,3,4,4,-1],"words":["John","lives","in","unaffable","Paris."],"labels":{"topic":1,"ner":[-100,1,0,0,0,-100,-100,2,-100,-100]},"truncated":false}
	{"type":"example","id":3,"text":"hello","ids":[2,5,3],"word_ids":[-1,0,-1],"word_starts":[0],"word_ends":[5],"labels":{},"truncated":false}
	{"type":"example","id":7,"text":"John x","ids":[2,12,1,3],"word_ids":[-1,0,1,-1],"words":["John","x"],"labels":{"ner":[-100,1,-100,-100]},"truncated":false}
	J
	examples -m m in.jsonl >actual
	diff -u expect actual
}

@test "JSONL: header names tasks, vocabulary hash and sizes; stats count labels" {
	printf '%s\n' '{"text":"hello","topic":"greet"}' \
		'{"words":["john","x"],"ner":["B-PER","O"],"topic":"other"}' \
		'{"text":"world"}' >in.jsonl
	mtl-tokenize -q -m m in.jsonl >out.mpk
	run mtl-dump -t header out.mpk
	assert_output --partial '"stream":"examples"'
	assert_output --partial '"tasks":[{"name":"topic","kind":"sequence","labels":["greet","other"]},{"name":"ner","kind":"token","labels":["O","B-PER","B-LOC"]}]'
	# FNV-1a 64 of the vocab.txt bytes, computed independently here
	want=$(perl -e 'local $/; my $d = <STDIN>; use integer; my $h = 0xcbf29ce484222325;
		for my $c (unpack "C*", $d) { $h ^= $c; $h = ($h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF }
		printf "%016x", $h' <m/vocab.txt)
	assert_output --partial "\"vocab_hash\":\"$want\""
	assert_output --partial '"max_length":0,"vocab_size":17'
	run mtl-dump -t stats out.mpk
	assert_output '{"type":"stats","examples":3,"tokens":10,"labelled":{"topic":2,"ner":1},"tasks_per_example":{"none":1,"one":1,"several":1},"label_counts":{"topic":{"greet":1,"other":1},"ner":{"O":1,"B-PER":1,"B-LOC":0}},"truncated":0,"words_lost":0,"labels_lost":0,"unknown_labels_skipped":0,"unk":1,"unk_rate":0.25,"bad_records_skipped":0,"no_tokens":0}'
}

@test "the header's pad_id is [PAD]'s id, and mtl-batch pads with it" {
	rm m/tasks.json
	printf '%s\n' '[UNK]' '[CLS]' '[SEP]' '[PAD]' hello world >m/vocab.txt
	printf '%s\n' '{"text":"hello world"}' '{"text":"hello"}' >in.jsonl
	mtl-tokenize -q -m m in.jsonl >out.mpk
	run -0 mtl-dump -t header out.mpk
	assert_output --partial '"ignore_index":-100,"pad_id":3}'
	mtl-batch -q -b 2 out.mpk >b.mpk
	run -0 mtl-dump -t batch b.mpk
	assert_output --partial '"ids":[1,4,5,2,1,4,2,3]'
	printf '%s\n' '[UNK]' '[CLS]' '[SEP]' hello >m/vocab.txt
	mtl-tokenize -q -m m in.jsonl >out.mpk
	run -0 mtl-dump -t header out.mpk
	refute_output --partial 'pad_id'
}

@test "CoNLL: tab or space columns, whitespace-only breaks, -DOCSTART-, no final newline" {
	printf 'John\tB-PER\nlives\tO\n\t\nin O\nParis  x  B-LOC\n \n-DOCSTART- -X- O\n\nhello\tO\n\n\n\nunaffable O' >in.conll
	cat >expect <<-'J'
	{"type":"example","id":1,"text":"John lives","ids":[2,12,13,3],"word_ids":[-1,0,1,-1],"words":["John","lives"],"labels":{"ner":[-100,1,0,-100]},"truncated":false}
	{"type":"example","id":4,"text":"in Paris","ids":[2,14,15,3],"word_ids":[-1,0,1,-1],"words":["in","Paris"],"labels":{"ner":[-100,0,2,-100]},"truncated":false}
	{"type":"example","id":9,"text":"hello","ids":[2,5,3],"word_ids":[-1,0,-1],"words":["hello"],"labels":{"ner":[-100,0,-100]},"truncated":false}
	{"type":"example","id":13,"text":"unaffable","ids":[2,9,10,11,3],"word_ids":[-1,0,0,0,-1],"words":["unaffable"],"labels":{"ner":[-100,0,-100,-100,-100]},"truncated":false}
	J
	examples -m m -f conll in.conll >actual
	diff -u expect actual
	# the extension says the format when --format is not given
	examples -m m in.conll >actual
	diff -u expect actual
	cp in.conll in.dat
	run -1 --separate-stderr mtl-tokenize -m m in.dat
	assert_regex "$stderr" '^mtl-tokenize: in.dat: line 1: '
}

@test "TSV: header row, empty cells unlabelled, token tags per space-separated word" {
	printf 'id\ttext\ttopic\tner\nq1\tHello world\tgreet\t\nq2\tJohn lives\t\tB-PER O\n' >in.tsv
	cat >expect <<-'J'
	{"type":"example","id":"q1","text":"Hello world","ids":[2,5,6,3],"word_ids":[-1,0,1,-1],"word_starts":[0,6],"word_ends":[5,11],"labels":{"topic":0},"truncated":false}
	{"type":"example","id":"q2","text":"John lives","ids":[2,12,13,3],"word_ids":[-1,0,1,-1],"words":["John","lives"],"labels":{"ner":[-100,1,0,-100]},"truncated":false}
	J
	examples -m m -f tsv in.tsv >actual
	diff -u expect actual
}

@test "--max-length truncates, keeps [SEP] and counts lost words" {
	echo '{"words":["John","unaffable","Paris"],"ner":["B-PER","O","B-LOC"]}' >in.jsonl
	run examples -m m --max-length 4 in.jsonl
	assert_success
	assert_output '{"type":"example","id":1,"text":"John unaffable Paris","ids":[2,12,9,3],"word_ids":[-1,0,1,-1],"words":["John","unaffable","Paris"],"labels":{"ner":[-100,1,0,-100]},"truncated":true,"words_lost":2,"lost_labels":{"ner":[2]}}'
	run mtl-tokenize -m m --max-length 4 in.jsonl
	assert_output --partial '1 truncated (2 words lost)'
	run -2 mtl-tokenize -m m --max-length 1 in.jsonl
}

@test "without a task spec it only tokenizes" {
	rm m/tasks.json
	echo '{"text":"hello world","topic":"whatever"}' >in.jsonl
	run examples -m m in.jsonl
	assert_output '{"type":"example","id":1,"text":"hello world","ids":[2,5,6,3],"word_ids":[-1,0,1,-1],"word_starts":[0,6],"word_ends":[5,11],"labels":{},"truncated":false}'
}

bad_input() {  # bad_input 'INPUT' 'MESSAGE' [ARGS]: exit 1 with the message
	printf "$1" >bad.in
	run -1 --separate-stderr mtl-tokenize -m m "${@:3}" bad.in
	assert_equal "$stderr" "mtl-tokenize: bad.in: $2"
}

@test "bad input: line-numbered errors, exit 1" {
	bad_input '{"text":"hello"}\n{"text":"hello","topic":"nope"}\n' "line 2: task 'topic': unknown label 'nope'"
	bad_input '{"id":1}\n' "line 1: missing 'text' (or 'words')"
	bad_input '{"text":5}\n' "line 1: 'text' is not a string"
	bad_input '{"text":"hello","topic":1}\n' "line 1: task 'topic': the label must be a string"
	bad_input '{"text":"a\xff"}\n' 'line 1: invalid UTF-8 at byte 11'
	bad_input '{"text":"hello"\n' "line 1: column 15: '}' expected near end of file"
	bad_input '[1]\n' 'line 1: not a JSON object'
	bad_input '{"words":["a"],"ner":["O","O"]}\n' "line 1: task 'ner': 2 labels for 1 words"
	bad_input '{"words":["a", 3]}\n' 'line 1: words[1] is not a string'
	bad_input '{"text":"hello","ner":["O"]}\n' "line 1: task 'ner': token labels need 'words'"
	bad_input '{"words":["john"],"ner":["B-PER"],"tags":["O"]}\n' "line 1: both 'ner' and 'tags'"
	bad_input 'John B-PER\n\nlives\n' 'line 3: no tag column' -f conll
	bad_input 'John B-PER\nlives X\n' "line 1: task 'ner': word 2: unknown label 'X'" -f conll
	bad_input 'John B-PER\nx\xc3 O\n' 'line 2: invalid UTF-8 at byte 2' -f conll
	bad_input 'a\0b O\n' 'line 1: NUL byte at byte 2' -f conll
	bad_input 'text\ttopic\nhello\n' 'line 2: 1 fields, the header has 2' -f tsv
	bad_input 'words\ttopic\n' "line 1: the header has no 'text' column" -f tsv
	bad_input 'text,topic\n"a"b,greet\n' 'line 2: field 1: text after its closing quote' -f csv
	bad_input 'text,topic\n"open,greet\n' 'line 2: field 1: no closing quote' -f csv
	bad_input 'text,topic\nhello\n' 'line 2: 1 fields, the header has 2' -f csv
	bad_input '{"text":"hello","topc":"greet"}\n' "line 1: unknown key 'topc' (did you mean 'topic'?)" --strict
	bad_input '{"text":"hello","source":"x"}\n' "line 1: unknown key 'source'" --strict
	bad_input 'text\tnotes\nhello\tx\n' "line 1: unknown column 'notes'" -f tsv --strict
}

@test "text without tokens is [CLS] [SEP], counted and warned about once, never fatal" {
	# empty, blank, a lone combining mark, a zero-width space; then a word
	printf '{"text":""}\n{"text":"   "}\n{"text":"\\u0301"}\n{"text":"\\u200b","pair":""}\n{"text":"hello"}\n' >in.jsonl
	run --separate-stderr bash -c 'set -o pipefail; mtl-tokenize -m m in.jsonl | mtl-dump -t example | jq -c .ids'
	assert_success
	assert_output $'[2,3]\n[2,3]\n[2,3]\n[2,3]\n[2,5,3]'
	assert_equal "$(grep -c warning <<<"$stderr")" 1
	assert_regex "$stderr" 'mtl-tokenize: warning: 5 texts gave no tokens \(empty, blank or only dropped characters\): each is \[CLS\] \[SEP\], as Hugging Face gives it'
	run -0 --separate-stderr bash -c 'set -o pipefail; mtl-tokenize -q -m m in.jsonl | mtl-dump -t stats | jq .no_tokens'
	assert_output 5
	# a labelled word that vanishes keeps the example; its label is lost
	echo '{"words":["\u200b"],"ner":["B-PER"],"topic":"greet"}' >w.jsonl
	run -0 --separate-stderr bash -c 'set -o pipefail; mtl-tokenize -q -m m w.jsonl | mtl-dump -t example -t stats | jq -c "[.ids, .labels, .labels_lost, .no_tokens]"'
	assert_output $'[[2,3],{"topic":0,"ner":[-100,-100]},null,null]\n[null,null,1,1]'
	# a 100,000-line file with one empty line goes through
	{ seq 1 49999 | sed 's/.*/{"text":"hello"}/'; echo '{"text":""}'; seq 1 50000 | sed 's/.*/{"text":"world"}/'; } >big.jsonl
	run -0 --separate-stderr bash -c 'set -o pipefail; mtl-tokenize -q -m m big.jsonl | mtl-dump -t stats | jq -c "[.examples, .no_tokens]"'
	assert_output '[100000,1]'
}

@test "--format text: one text a line, blank ones too, ids are line numbers; stdin" {
	printf 'Hello world\r\n\nJohn lives in Paris.\n' >in.txt
	cat >expect <<-'J'
	{"type":"example","id":1,"text":"Hello world","ids":[2,5,6,3],"word_ids":[-1,0,1,-1],"word_starts":[0,6],"word_ends":[5,11],"labels":{},"truncated":false}
	{"type":"example","id":2,"text":"","ids":[2,3],"word_ids":[-1,-1],"labels":{},"truncated":false}
	{"type":"example","id":3,"text":"John lives in Paris.","ids":[2,12,13,14,15,16,3],"word_ids":[-1,0,1,2,3,4,-1],"word_starts":[0,5,11,14,19],"word_ends":[4,10,13,19,20],"labels":{},"truncated":false}
	J
	examples -m m in.txt >actual
	diff -u expect actual
	mtl-tokenize -q -m m -f text <in.txt >out.mpk
	mtl-dump -t example out.mpk >actual
	diff -u expect actual
	# without --format, standard input is JSON lines: the first line is bad
	run -1 --separate-stderr mtl-tokenize -q -m m <in.txt
	assert_regex "$stderr" '^mtl-tokenize: <stdin>: line 1: '
}

@test "CSV with a header: RFC 4180 quotes, named text and label columns" {
	printf '%s\r\n' 'id,sentence,label,ner' '1,"Hello, world!",greet,' '2,"John ""x"" lives",other,' \
		'3,"hello' 'world",,' '4,John lives,,B-PER O' >in.csv
	cat >expect <<-'J'
	{"type":"example","id":"1","text":"Hello, world!","ids":[2,5,7,6,8,3],"word_ids":[-1,0,1,2,3,-1],"word_starts":[0,5,7,12],"word_ends":[5,6,12,13],"labels":{"topic":0},"truncated":false}
	{"type":"example","id":"2","text":"John \"x\" lives","ids":[2,12,1,1,1,13,3],"word_ids":[-1,0,1,2,3,4,-1],"word_starts":[0,5,6,7,9],"word_ends":[4,6,7,8,14],"labels":{"topic":1},"truncated":false}
	{"type":"example","id":"3","text":"hello\nworld","ids":[2,5,6,3],"word_ids":[-1,0,1,-1],"word_starts":[0,6],"word_ends":[5,11],"labels":{},"truncated":false}
	{"type":"example","id":"4","text":"John lives","ids":[2,12,13,3],"word_ids":[-1,0,1,-1],"words":["John","lives"],"labels":{"ner":[-100,1,0,-100]},"truncated":false}
	J
	examples -m m --text-field sentence --label-field topic=label in.csv >actual
	diff -u expect actual
	# the label column must be named: without it, 'label' is just an unknown column
	run -1 --separate-stderr mtl-tokenize -q -m m in.csv
	assert_equal "$stderr" "mtl-tokenize: in.csv: line 1: the header has no 'text' column"
	run -2 --separate-stderr mtl-tokenize -m m --label-field topc=label in.csv
	assert_equal "${stderr_lines[0]}" "mtl-tokenize: --label-field: no task 'topc' (did you mean 'topic'?)"
	run -2 mtl-tokenize -m m --label-field topic in.csv
}

@test "a key close to a task's name is a warning with a suggestion, once; --strict makes it an error" {
	printf '%s\n' '{"text":"hello","topc":"greet"}' '{"text":"world","topc":"other"}' '{"text":"x","source":"web"}' >in.jsonl
	run -0 --separate-stderr bash -c 'set -o pipefail; mtl-tokenize -q -m m in.jsonl | mtl-dump -t stats | jq -c .labelled'
	assert_output '{"topic":0,"ner":0}'
	assert_equal "$stderr" "mtl-tokenize: warning: in.jsonl: line 1: unknown key 'topc' (did you mean 'topic'?)"
	run -1 --separate-stderr mtl-tokenize -q -m m --strict in.jsonl
	assert_equal "$stderr" "mtl-tokenize: in.jsonl: line 1: unknown key 'topc' (did you mean 'topic'?)"
	printf 'text\ttopic\ttpoic\nhello\tgreet\tx\n' >in.tsv
	run --separate-stderr bash -c 'mtl-tokenize -q -m m in.tsv >/dev/null'
	assert_equal "$stderr" "mtl-tokenize: warning: in.tsv: line 1: unknown column 'tpoic' (did you mean 'topic'?)"
}

@test "--skip-bad goes on and counts; --unknown-label skip drops the label" {
	printf '%s\n' '{"text":"hello","topic":"nope"}' '{"text":5}' '{"text":"world"}' >in.jsonl
	run bash -c 'set -o pipefail; mtl-tokenize -m m --skip-bad in.jsonl 2>&1 >/dev/null'
	assert_success
	assert_line -n 0 "mtl-tokenize: warning: in.jsonl: line 1: task 'topic': unknown label 'nope' (skipped)"
	assert_line -n 1 "mtl-tokenize: warning: in.jsonl: line 2: 'text' is not a string (skipped)"
	run bash -c 'set -o pipefail; mtl-tokenize -q -m m --skip-bad in.jsonl | mtl-dump -t stats | grep -o "\"examples\":1,.*\"bad_records_skipped\":2"'
	assert_success
	run bash -c 'set -o pipefail; mtl-tokenize -q -m m --unknown-label skip in.jsonl 2>&1 >/dev/null'
	assert_failure 1
	assert_output "mtl-tokenize: in.jsonl: line 2: 'text' is not a string"
	printf '%s\n' '{"text":"hello","topic":"nope"}' '{"words":["john"],"ner":["B-X"]}' >in.jsonl
	run examples -m m --unknown-label skip in.jsonl
	assert_line -n 0 '{"type":"example","id":1,"text":"hello","ids":[2,5,3],"word_ids":[-1,0,-1],"word_starts":[0],"word_ends":[5],"labels":{},"truncated":false}'
	assert_line -n 1 '{"type":"example","id":2,"text":"john","ids":[2,12,3],"word_ids":[-1,0,-1],"words":["john"],"labels":{"ner":[-100,-100,-100]},"truncated":false}'
}

@test "--skip-bad on CoNLL drops the whole sentence of a bad line" {
	printf 'John B-PER\nlives Q\nin O\n\nParis B-LOC\nx\xff O\ny O\n\nhello O\n' >in.conll
	run bash -c 'set -o pipefail; mtl-tokenize -m m -f conll --skip-bad in.conll 2>&1 >/dev/null | grep warning'
	assert_line -n 0 "mtl-tokenize: warning: in.conll: line 1: task 'ner': word 2: unknown label 'Q' (skipped)"
	assert_line -n 1 'mtl-tokenize: warning: in.conll: line 6: invalid UTF-8 at byte 2 (skipped)'
	run --separate-stderr examples -m m -f conll --skip-bad in.conll
	assert_output '{"type":"example","id":9,"text":"hello","ids":[2,5,3],"word_ids":[-1,0,-1],"words":["hello"],"labels":{"ner":[-100,0,-100]},"truncated":false}'
}

@test "--replace-invalid turns bad bytes into U+FFFD, which tokenization drops" {
	printf '{"text":"hello \xff\xfe world"}\n' >in.jsonl
	run examples -m m --replace-invalid in.jsonl
	assert_output "{\"type\":\"example\",\"id\":1,\"text\":\"hello $(printf '\xef\xbf\xbd\xef\xbf\xbd') world\",\"ids\":[2,5,6,3],\"word_ids\":[-1,0,1,-1],\"word_starts\":[0,13],\"word_ends\":[5,18],\"labels\":{},\"truncated\":false}"
}

@test "several files of different formats make one stream; line ids get the file name" {
	printf 'John\tB-PER\nlives\tO\n' >a.conll
	printf '{"text":"hello","topic":"greet"}\n{"id":7,"text":"world"}\n' >b.jsonl
	run bash -c 'set -o pipefail; mtl-tokenize -q -m m a.conll b.jsonl | mtl-dump -t example | grep -o "\"id\":[^,]*"'
	assert_output $'"id":"a.conll:1"\n"id":"b.jsonl:1"\n"id":7'
	run bash -c 'set -o pipefail; mtl-tokenize -q -m m a.conll b.jsonl | mtl-dump -t stats | grep -o "\"examples\":[0-9]*"'
	assert_output '"examples":3'
	# a bad line names its own file
	printf 'John\tB-PER\nlives\tX\n' >c.conll
	run -1 --separate-stderr mtl-tokenize -q -m m b.jsonl c.conll
	assert_regex "$stderr" "^mtl-tokenize: c.conll: line 1: "
}

@test "usage: --help, --version, unknown options, missing model" {
	run -0 mtl-tokenize --help
	assert_line -n 0 'usage: mtl-tokenize --model DIR [options] [FILE...]'
	run -0 mtl-tokenize --version
	assert_output --regexp '^mtl-tokenize [0-9]'
	run -2 mtl-tokenize --bogus
	run -2 mtl-tokenize
	run -2 --separate-stderr mtl-tokenize -m m -f jsnl
	assert_equal "${stderr_lines[0]}" "mtl-tokenize: unknown format 'jsnl' (did you mean 'jsonl'?)"
	run -2 --separate-stderr mtl-tokenize -m m -f conll --task nre in.conll
	assert_equal "${stderr_lines[0]}" "mtl-tokenize: no task 'nre' (did you mean 'ner'?)"
	run -2 --separate-stderr mtl-tokenize -m m -t ner
	assert_equal "${stderr_lines[0]}" "mtl-tokenize: unknown option '-t': use '--task'"
	run -2 mtl-tokenize -m m -f xml
	run -2 mtl-tokenize -m m --task topic -f conll
	run -3 mtl-tokenize -m nonexistent /dev/null
	run -3 mtl-tokenize -m m nonexistent.jsonl
	echo '{"tasks": []}' >m/tasks.json
	run -1 --separate-stderr mtl-tokenize -m m /dev/null
	assert_equal "$stderr" "mtl-tokenize: m/tasks.json: 'tasks' must be a non-empty array"
}

@test "bge: ids equal Hugging Face's on all 1,675 reference lines; model max length" {
	command -v jq >/dev/null || skip "jq is not installed"
	cat "$FIXTURES/tokref/golden-tricky.jsonl" "$FIXTURES/tokref/golden-data.jsonl" >ref.jsonl
	jq -c '{text}' ref.jsonl >in.jsonl
	mtl-tokenize -q -m "$FIXTURES/bge-tokenizer" in.jsonl >out.mpk
	mtl-dump -t example out.mpk | jq -c .ids >actual
	jq -c .ids ref.jsonl >expect
	diff -u expect actual
	run mtl-dump -t header out.mpk
	assert_output --partial '"max_length":512,"vocab_size":30522'
}

@test "bge: WNUT-17 CoNLL (tab-only lines as breaks) keeps every tag" {
	skip_without_shared
	mkdir -p w
	for f in vocab.txt tokenizer.json tokenizer_config.json config.json; do
		ln -s "$SHARED/models/bge-large-en-v1.5/$f" w/
	done
	raw=$SHARED/data/wnut17/raw/wnut17train.conll
	labels=$(cut -f2 "$raw" | grep . | sort -u | jq -R . | jq -sc .)
	echo "{\"tasks\":[{\"name\":\"ner\",\"kind\":\"token\",\"labels\":$labels}]}" >w/tasks.json
	mtl-tokenize -q -m w -f conll "$raw" >out.mpk
	# every tag of the file is in the stats, and sentences = tab-only lines
	mtl-dump -t stats out.mpk | jq -r '.label_counts.ner | to_entries[] | "\(.value) \(.key)"' | sort >actual
	cut -f2 "$raw" | grep . | sort | uniq -c | awk '{print $1, $2}' | sort >expect
	diff -u expect actual
	run bash -c "set -o pipefail; mtl-dump -t stats out.mpk | jq .examples"
	assert_output "$(grep -c -P '^\t?$' "$raw" | tr -d ' ')"
}
