# helper.bash - loaded by every Bats file: bats-support, bats-assert, and
# the freshly built programs first on PATH (build/, or build-san/ for
# make test SANITIZE=1, as tests/run.sh passes MTL_BUILD); pipefail and
# bats_pipe, so that a failure upstream of a pipe fails the test; and a
# teardown that fails a test in which any process wrote a sanitizer report.
bats_require_minimum_version 1.5.0
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

# A pipeline fails when any of its commands does, not only the last: a
# crash or an error upstream of a pipe is not hidden (in the test body and
# its command substitutions; `bash -c` strings set it themselves).
set -o pipefail

# bats_pipe A \| B [\| C...]: runs A | B | ... with pipefail, for `run`
# (as bats-core 1.10's; Debian 12 has bats 1.8).
if ! declare -F bats_pipe >/dev/null; then
	bats_pipe() {
		local cmds=() cur=() arg IFS='|'

		for arg in "$@"; do
			if [ "$arg" = '|' ]; then
				cmds+=("$(printf '%q ' "${cur[@]}")")
				cur=()
			else
				cur+=("$arg")
			fi
		done
		cmds+=("$(printf '%q ' "${cur[@]}")")
		(set -o pipefail; eval "${cmds[*]}")
	}
fi

# Sanitizer builds (make test SANITIZE=1): a report from any process of a
# test (upstream of a pipe, inside `bash -c`, with its stderr thrown away)
# goes to a file under the test's own directory, and the process exits 86,
# a status no program uses; teardown then fails the test and shows it.
if [ -n "${BATS_TEST_TMPDIR:-}" ]; then
	MTL_SAN_LOGS=$BATS_TEST_TMPDIR/sanitizer
	mkdir -p "$MTL_SAN_LOGS"
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86:log_path=$MTL_SAN_LOGS/asan"
	export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1:exitcode=86:log_path=$MTL_SAN_LOGS/ubsan"
	export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}exitcode=86:log_path=$MTL_SAN_LOGS/lsan"
fi

# sanitizer_check: fails, printing them, when sanitizer reports were
# written during the test.  The teardown of every file (a file with a
# teardown of its own calls it there).
sanitizer_check() {
	local f found=0

	for f in "${MTL_SAN_LOGS:-/nonexistent}"/*; do
		[ -e "$f" ] || continue
		printf '# sanitizer report %s:\n' "${f##*/}"
		sed 's/^/#   /' "$f"
		found=1
	done
	return "$found"
}

teardown() {
	sanitizer_check
}

MTL_ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
PATH="$MTL_ROOT/${MTL_BUILD:-build}:$PATH"
FIXTURES=$MTL_ROOT/fixtures
SHARED=$MTL_ROOT/../shared

# skip_without_shared: skips the test, saying why, when ../shared is absent.
skip_without_shared() {
	[ -d "$SHARED/tokref" ] || skip "../shared is absent (reference material)"
}

# json_array KEY < JSONL: prints, per line, the numbers of the array KEY
# holds (space-separated).  Enough for the flat arrays our streams carry.
json_array() {
	sed -n "s/.*\"$1\": *\[\([^]]*\)\].*/\1/p" | tr -d ' ' | tr ',' ' '
}

# max_abs_diff A B: the largest |a-b| over numbers at the same positions of
# two files of space-separated numbers (the files must have the same shape).
max_abs_diff() {
	paste -d'|' "$1" "$2" | awk -F'|' '
		{ na = split($1, a, " "); nb = split($2, b, " ");
		  if (na != nb) { print "shape"; bad = 1; exit }
		  for (i = 1; i <= na; i++) { d = a[i] - b[i]; if (d < 0) d = -d; if (d > m) m = d } }
		END { if (!bad) printf "%.3g\n", m + 0 }'
}

# cut_stream N IN OUT: the first N records of stream IN (the header
# counts), as a writer that fails after writing them leaves them: without
# the end record.  mtl-dump --pack is that writer: it stops at a bad line.
cut_stream() {
	local rc=0

	{ mtl-dump -q --head "$(($1 - 1))" "$2" && echo 'not JSON'; } >"$3.jsonl"
	mtl-dump --pack "$3.jsonl" >"$3" 2>/dev/null || rc=$?
	rm -f "$3.jsonl"
	[ "$rc" -eq 1 ]
}
export -f json_array max_abs_diff cut_stream

# emb_stream DIM: an embeddings stream (format 1.1, dimension DIM) of the
# JSON lines on stdin, for the tests of mtl-search and mtl-report's
# evaluators.
emb_stream() {
	{ echo "{\"type\":\"header\",\"stream\":\"embeddings\",\"version\":[1,1],\"program\":\"t\",\"args\":[],\"dim\":$1}"
	  cat; } | mtl-dump --pack
}

# tokenize_refuses FILE TEXT MESSAGE: FILE, written by printf TEXT, is bad
# input to `mtl-tokenize -m m`: exit 1 and MESSAGE as the whole of stderr.
tokenize_refuses() {
	printf "$2" >"$1"
	run -1 --separate-stderr mtl-tokenize -q -m m "$1"
	assert_equal "$stderr" "$3"
}

# low_memory_same MODEL BATCHES [ARGS...]: mtl-step ARGS on 2 threads with
# clipping that bites, with and without --low-memory, writes the same
# losses and norms and the same trained bytes (into lm-a and lm-b).
low_memory_same() {
	local m=$1 b=$2 v
	shift 2
	rm -rf lm-a lm-b
	for v in a b; do
		mtl-step -q -m "$m" -j 2 --clip 0.5 "$@" $([ $v = b ] && echo --low-memory) \
			-o lm-$v "$b" | mtl-dump -t step | jq -c '[.loss, .grad_norm]' >lm-$v.txt
	done
	[ -s lm-a.txt ]
	cmp lm-a.txt lm-b.txt
	cmp lm-a/model.safetensors lm-b/model.safetensors
	cmp lm-a/heads.safetensors lm-b/heads.safetensors
}
