#!/usr/bin/env bats
# mtl-dump: JSON lines <-> msgpack streams, and bad input of every kind.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
	cp "$MTL_ROOT/tests/data/hand.jsonl" .
}

@test "--pack then dump round-trips hand-made JSON lines byte for byte" {
	mtl-dump --pack hand.jsonl >s.mpk
	mtl-dump s.mpk >actual
	cmp hand.jsonl actual
}

@test "reads standard input, with or without -" {
	mtl-dump --pack <hand.jsonl >s.mpk
	run bash -c 'set -o pipefail; mtl-dump - <s.mpk | cmp - hand.jsonl && mtl-dump <s.mpk | cmp - hand.jsonl'
	assert_success
}

@test "--head N keeps the header and N records" {
	mtl-dump --pack hand.jsonl >s.mpk
	run mtl-dump --head 2 s.mpk
	assert_success
	assert_equal "${#lines[@]}" 3
	assert_equal "${lines[2]}" "$(sed -n 3p hand.jsonl)"
	run mtl-dump --head 0 s.mpk
	assert_output "$(head -n 1 hand.jsonl)"
}

@test "--type selects records; the header only when asked" {
	mtl-dump --pack hand.jsonl >s.mpk
	run mtl-dump --type stats s.mpk
	assert_output '{"type":"stats","examples":2}'
	run mtl-dump -t header -t stats s.mpk
	assert_equal "${#lines[@]}" 2
}

@test "--summary pretty-prints the header and counts records per type" {
	mtl-dump --pack hand.jsonl >s.mpk
	run mtl-dump --summary s.mpk
	assert_success
	assert_line '  "stream": "examples",'
	assert_line 'records: 6'
	assert_line --regexp '^  example +2$'
	assert_line --regexp '^  stats +1$'
	assert_line --regexp '^  end +1$'
}

@test "float32 arrays written by programs show as JSON arrays" {
	# the f32 extension: [0.5, -1] as little-endian float32
	printf '\x83\xa4type\xa6header\xa6stream\xa1x\xa7version\x92\x01\x00' >f.mpk
	printf '\x82\xa4type\xa1v\xa1e\xc7\x08\x01\x00\x00\x00\x3f\x00\x00\x80\xbf' >>f.mpk
	run mtl-dump f.mpk
	assert_success
	assert_line '{"type":"v","e":[0.5,-1.0]}'
}

@test "a truncated stream is an error naming the record" {
	mtl-dump --pack hand.jsonl >s.mpk
	head -c -3 s.mpk >t.mpk
	run -1 --separate-stderr mtl-dump t.mpk
	assert_equal "$stderr" "mtl-dump: t.mpk: record 6: truncated (input ends inside the record)"
	# everything before the bad record was shown
	assert_equal "${#lines[@]}" 5
}

@test "a stream cut after whole records: shown, then an error for the missing end" {
	mtl-dump --pack hand.jsonl >s.mpk
	cut_stream 3 s.mpk cut.mpk
	run -1 --separate-stderr mtl-dump cut.mpk
	assert_equal "$stderr" "mtl-dump: cut.mpk: truncated stream (no end record after 3 records)"
	assert_output "$(head -n 3 hand.jsonl)"
	run -1 --separate-stderr mtl-dump --summary cut.mpk
	assert_equal "$stderr" "mtl-dump: cut.mpk: truncated stream (no end record after 3 records)"
	# anything after the end record is refused too
	cat s.mpk cut.mpk >twice.mpk
	run -1 --separate-stderr mtl-dump twice.mpk
	assert_equal "$stderr" "mtl-dump: twice.mpk: record 7: data after the end record"
}

@test "a format 1.0 stream (no end record) is shown with a warning; --pack gives it one" {
	sed '1s/"version":\[1,1\]/"version":[1,0]/' hand.jsonl >old.jsonl
	mtl-dump --pack old.jsonl >whole.mpk
	cut_stream 5 whole.mpk old.mpk
	run -0 --separate-stderr mtl-dump old.mpk
	assert_equal "$stderr" "mtl-dump: warning: old.mpk: no end record after 5 records (format 1.0): it may be incomplete"
	assert_output "$(head -n 5 old.jsonl)"
	# no other program takes it
	run -1 --separate-stderr mtl-batch -q old.mpk
	assert_equal "$stderr" "mtl-batch: old.mpk: truncated stream (no end record after 5 records); format 1.0 streams have none: mtl-dump OLD | mtl-dump --pack adds it"
	run --separate-stderr bats_pipe mtl-dump old.mpk \| mtl-dump --pack \| mtl-dump -t end
	assert_success
	assert_output '{"type":"end","stream":"examples","records":5,"counts":{"example":2,"embedding":1,"stats":1}}'
}

@test "--pack counts what it packed: an edited dump packs back whole; nothing after the end line" {
	run bats_pipe grep -v '"type":"stats"' hand.jsonl \| mtl-dump --pack \| mtl-dump -t end
	assert_success
	assert_output '{"type":"end","stream":"examples","records":4,"counts":{"example":2,"embedding":1}}'
	head -n 4 hand.jsonl | mtl-dump --pack >s.mpk
	run mtl-dump -t end s.mpk
	assert_output '{"type":"end","stream":"examples","records":4,"counts":{"example":2,"embedding":1}}'
	{ cat hand.jsonl; sed -n 2p hand.jsonl; } >after.jsonl
	run -1 --separate-stderr mtl-dump --pack after.jsonl
	assert_equal "$stderr" "mtl-dump: after.jsonl: line 7: a record after the end record"
}

@test "live: each record is shown as it comes, and the end is checked at the end" {
	mtl-dump --pack hand.jsonl >s.mpk
	cut_stream 3 s.mpk cut.mpk
	for stream in s.mpk:6 cut.mpk:3; do
		n=${stream#*:} stream=${stream%:*}
		rm -f in out
		mkfifo in out
		mtl-dump <in >out 2>err 3>&- &
		pid=$!
		exec 5>in 6<out
		# the whole stream, but the writer stays: no end of input yet
		cat "$stream" >&5
		for i in $(seq "$n"); do
			read -r -t 60 -u 6 line || fail "record $i of $stream not shown before the end of input"
			assert_equal "$line" "$(sed -n "${i}p" hand.jsonl)"
		done
		exec 5>&-
		status=0
		wait "$pid" || status=$?
		exec 6<&-
		if [ "$stream" = s.mpk ]; then
			assert_equal "$status" 0
		else
			assert_equal "$status" 1
			assert_equal "$(cat err)" "mtl-dump: <stdin>: truncated stream (no end record after 3 records)"
		fi
	done
}

@test "random bytes are refused with one line and exit 1" {
	head -c 4096 /dev/urandom >r.bin
	run -1 --separate-stderr mtl-dump r.bin
	assert_regex "$stderr" '^mtl-dump: r.bin: record 1: '
	assert_equal "$(printf '%s\n' "$stderr" | wc -l)" 1
}

@test "a record that is not a map, or has no type, is refused" {
	printf '\x83\xa4type\xa6header\xa6stream\xa1x\xa7version\x92\x01\x00\x05' >a.mpk
	run -1 --separate-stderr mtl-dump a.mpk
	assert_equal "$stderr" "mtl-dump: a.mpk: record 2: not a map"
	printf '\x83\xa4type\xa6header\xa6stream\xa1x\xa7version\x92\x01\x00\x81\xa1a\x01' >b.mpk
	run -1 --separate-stderr mtl-dump b.mpk
	assert_equal "$stderr" 'mtl-dump: b.mpk: record 2: no string "type" in the record'
}

@test "a stream without a header, an empty input, a newer version are refused" {
	printf '{"type":"example"}\n' >x.jsonl
	run -1 --separate-stderr mtl-dump --pack x.jsonl
	assert_equal "$stderr" 'mtl-dump: x.jsonl: line 1: the first record is not a header (type "example")'
	run -1 --separate-stderr mtl-dump </dev/null
	assert_equal "$stderr" "mtl-dump: <stdin>: empty input, expected a stream of kind 'any'"
	printf '{"type":"header","stream":"x","version":[2,0]}\n' >v.jsonl
	run -1 --separate-stderr mtl-dump --pack v.jsonl
	assert_regex "$stderr" 'line 1: stream format version 2 is newer'
}

@test "--pack: invalid JSON, invalid UTF-8, duplicate keys name the line" {
	{ head -n 1 hand.jsonl; printf '{"type":"x", }\n'; } >bad.jsonl
	run -1 --separate-stderr mtl-dump --pack bad.jsonl
	assert_regex "$stderr" '^mtl-dump: bad.jsonl: line 2: column [0-9]+: '
	{ head -n 1 hand.jsonl; printf '{"type":"x","s":"\xff"}\n'; } >utf.jsonl
	run -1 --separate-stderr mtl-dump --pack utf.jsonl
	assert_regex "$stderr" '^mtl-dump: utf.jsonl: line 2: .*(UTF-8|decode byte)'
	{ head -n 1 hand.jsonl; printf '{"type":"x","type":"y"}\n'; } >dup.jsonl
	run -1 --separate-stderr mtl-dump --pack dup.jsonl
	assert_regex "$stderr" 'line 2: .*duplicate'
	{ head -n 1 hand.jsonl; printf '[1]\n'; } >arr.jsonl
	run -1 --separate-stderr mtl-dump --pack arr.jsonl
	assert_equal "$stderr" 'mtl-dump: arr.jsonl: line 2: not a map'
}

@test "stdout closed early (| head -1) ends quietly" {
	for i in $(seq 1 3000); do sed -n 2p hand.jsonl; done >body
	{ head -n 1 hand.jsonl; cat body; } | mtl-dump --pack >big.mpk
	# mtl-dump ends by SIGPIPE (128 + 13), quietly: the normal end of a pipeline
	run --separate-stderr bash -c 'mtl-dump big.mpk | head -n 1; [ "${PIPESTATUS[*]}" = "141 0" ]'
	assert_success
	assert_output "$(head -n 1 hand.jsonl)"
	assert_equal "$stderr" ""
}

@test "a write error (disk full) is reported with exit 3" {
	mtl-dump --pack hand.jsonl >s.mpk
	run -3 --separate-stderr bash -c 'mtl-dump s.mpk >/dev/full'
	assert_regex "$stderr" 'write error.*No space left on device'
	run -3 --separate-stderr bash -c 'mtl-dump --pack hand.jsonl >/dev/full'
	assert_regex "$stderr" 'No space left on device'
}

@test "usage: --help, --version, unknown option, missing file" {
	run -0 mtl-dump --help
	assert_line --partial 'usage: mtl-dump'
	run -0 mtl-dump --version
	assert_output --regexp '^mtl-dump [0-9]+\.[0-9]+\.[0-9]+$'
	run -2 --separate-stderr mtl-dump --bogus
	assert_regex "$stderr" 'usage: mtl-dump'
	run -2 mtl-dump --head x
	run -3 --separate-stderr mtl-dump nonexistent.mpk
	assert_equal "$stderr" "mtl-dump: cannot open 'nonexistent.mpk': No such file or directory"
}

@test "valgrind: the round trip is clean" {
	command -v valgrind >/dev/null || skip "valgrind is not installed"
	[ "${MTL_BUILD:-build}" = build ] || skip "valgrind does not run sanitizer builds"
	vg="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite"
	run -0 bash -c "$vg mtl-dump --pack hand.jsonl >s.mpk && $vg mtl-dump s.mpk >actual"
	cmp hand.jsonl actual
	run -1 $vg mtl-dump "$MTL_ROOT/tests/data/hand.jsonl"
}

# emb N: an embeddings stream of the rows given as JSON lines {"id", "embedding"}
emb() {
	{ echo '{"type":"header","stream":"embeddings","version":[1,0],"program":"t","args":[],"dim":2}'
	  cat; } | mtl-dump --pack
}

@test "--npy: a float32 little-endian v1.0 matrix (header and data parsed here), ids one a line" {
	printf '%s\n' '{"type":"embedding","id":7,"embedding":[0.5,-1.25]}' \
		'{"type":"embedding","id":"b","text":"x","embedding":[2,0.375]}' \
		'{"type":"embedding","id":-3,"embedding":[-8,0.0625]}' \
		'{"type":"stats","count":3}' | emb >e.mpk
	run --separate-stderr mtl-dump --npy e.npy e.mpk
	assert_success
	assert_output $'7\nb\n-3'
	assert_equal "$stderr" "mtl-dump: 3 vectors"
	# magic, version 1.0, header length (little-endian u16); 10 + 118 = 128, a multiple of 64
	cmp <(head -c 8 e.npy) <(printf '\223NUMPY\001\000')
	assert_equal "$(od -An -t u2 -j 8 -N 2 --endian=little e.npy | tr -d ' ')" 118
	dict=$(dd if=e.npy bs=1 skip=10 count=118 2>/dev/null)
	assert_equal "$dict" "$(printf "%-117s" "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }")"
	assert_equal "$(tail -c +128 e.npy | head -c 1 | od -An -c | tr -d ' ')" '\n'
	assert_equal "$(stat -c %s e.npy)" $((128 + 3 * 2 * 4))
	run bash -c "set -o pipefail; od -An -v -t f4 -j 128 --endian=little e.npy | xargs"
	assert_output '0.5 -1.25 2 0.375 -8 0.0625'
	# the bytes themselves: 0.5 is 0x3f000000, little-endian
	assert_equal "$(od -An -t x1 -j 128 -N 4 e.npy | xargs)" '00 00 00 3f'
	# an empty stream is a 0 x 0 matrix
	: | emb >none.mpk
	mtl-dump -q --npy none.npy none.mpk >ids
	[ ! -s ids ]
	want="{'descr': '<f4', 'fortran_order': False, 'shape': (0, 0), }"
	assert_equal "$(dd if=none.npy bs=1 skip=10 count=${#want} 2>/dev/null)" "$want"
}

@test "--tsv: the id, then each value, tab-separated, reading back to the same float32" {
	printf '%s\n' '{"type":"embedding","id":7,"embedding":[0.5,-1.25]}' \
		'{"type":"embedding","id":"b","embedding":[0.1,3e-8]}' | emb >e.mpk
	run -0 --separate-stderr mtl-dump --tsv e.mpk
	assert_output $'7\t0.5\t-1.25\nb\t0.100000001\t2.99999989e-08'
	# a predictions stream with --with-embedding works too
	printf '%s\n' '{"type":"header","stream":"predictions","version":[1,0],"program":"t","args":[]}' \
		'{"type":"prediction","id":1,"embedding":[1,2]}' '{"type":"metrics","task":"x"}' | mtl-dump --pack >p.mpk
	run -0 mtl-dump -q --tsv p.mpk
	assert_output $'1\t1\t2'
}

@test "--npy and --tsv: bad input and misuse fail, naming the record" {
	printf '%s\n' '{"type":"embedding","id":1,"embedding":[1,2]}' '{"type":"embedding","id":2,"embedding":[1,2,3]}' | emb >dim.mpk
	run -1 --separate-stderr mtl-dump --tsv dim.mpk
	assert_equal "$stderr" "mtl-dump: dim.mpk: record 3: embedding has 3 values, the first had 2"
	printf '%s\n' '{"type":"embedding","id":"a\nb","embedding":[1,2]}' | emb >nl.mpk
	run -1 --separate-stderr mtl-dump --npy nl.npy nl.mpk
	assert_equal "$stderr" "mtl-dump: nl.mpk: record 2: the id holds a tab or line break: it cannot be written one a line"
	printf '%s\n' '{"type":"embedding","id":1,"embedding":[1,null]}' | emb >nan.mpk
	run -1 --separate-stderr mtl-dump --tsv nan.mpk
	assert_regex "$stderr" '^mtl-dump: nan.mpk: record 2: '
	printf '%s\n' '{"type":"embedding","id":[1],"embedding":[1,2]}' | emb >id.mpk
	run -1 --separate-stderr mtl-dump --tsv id.mpk
	assert_equal "$stderr" "mtl-dump: id.mpk: record 2: the id is neither a string nor an integer"
	printf '%s\n' '{"type":"header","stream":"predictions","version":[1,0],"program":"t","args":[]}' \
		'{"type":"prediction","id":1,"labels":{}}' | mtl-dump --pack >p.mpk
	run -1 --separate-stderr mtl-dump --tsv p.mpk
	assert_equal "$stderr" 'mtl-dump: p.mpk: record 2: no "embedding" array of numbers (score with --embed or --with-embedding)'
	mtl-dump --pack hand.jsonl >s.mpk
	run -1 --separate-stderr mtl-dump --npy x.npy s.mpk
	assert_regex "$stderr" "not an embeddings stream \\(make one with mtl-score --embed\\)"
	[ ! -e x.npy ]
	printf '%s\n' '{"type":"embedding","id":1,"embedding":[1,2]}' | emb >ok.mpk
	run -3 --separate-stderr bash -c 'set -o pipefail; mtl-dump --npy /dev/stdout ok.mpk | cat'
	assert_regex "$stderr" "'/dev/stdout': the .npy output must be a file \\(its shape is written last\\), not a pipe"
	run -3 --separate-stderr mtl-dump --npy nosuchdir/x.npy ok.mpk
	assert_equal "$stderr" "mtl-dump: cannot create 'nosuchdir/x.npy': No such file or directory"
	run -3 --separate-stderr bash -c 'mtl-dump --tsv ok.mpk >/dev/full'
	run -2 mtl-dump --npy x.npy --tsv ok.mpk
	run -2 mtl-dump --tsv -t embedding ok.mpk
	run -2 mtl-dump --pack --tsv ok.mpk
}
