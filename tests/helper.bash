# helper.bash - loaded by every Bats file: bats-support, bats-assert, and
# the freshly built programs first on PATH (build/, or build-san/ for
# make test SANITIZE=1, as tests/run.sh passes MTL_BUILD).
bats_require_minimum_version 1.5.0
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

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
