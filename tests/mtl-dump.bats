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
