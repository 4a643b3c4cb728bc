#!/usr/bin/env bash
# run.sh - runs every C unit test (build/tests/test_*) and every Bats file
# (tests/*.bats), shows failures, and ends with one line that counts all
# of them: "N passed, N failed, N skipped".  Exit status 1 when anything
# failed (a crashed test binary counts as one failure more).
#
# The suites run MTL_TEST_JOBS at a time (default: the number of CPUs), each
# into a log of its own; the results are counted and shown in a fixed order
# (C tests, then Bats files by name), so the output does not depend on
# which finished first.  MTL_TEST_JOBS=1 runs them one after another.
#
# Usage: tests/run.sh [BUILD_DIR]     (from the repository root)
set -u
build=${1:-build}
jobs=${MTL_TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
passed=0 failed=0 skipped=0
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

count() {  # count TAP lines of one suite; $1 = suite name, $2 = its log, $3 = exit code
	local p f s log=$2
	s=$(grep -cE '^ok [0-9]+ .*# ?[sS][kK][iI][pP]' "$log")
	p=$(grep -cE '^ok [0-9]+' "$log")
	f=$(grep -cE '^not ok [0-9]+' "$log")
	p=$((p - s))
	if [ "$f" -gt 0 ]; then
		echo "FAIL $1"
		grep -E -A8 '^not ok' "$log" | sed 's/^/    /'
	elif [ "$3" -ne 0 ]; then
		echo "FAIL $1: exited with status $3"
		tail -n 20 "$log" | sed 's/^/    /'
		f=1
	else
		if [ "$s" -gt 0 ]; then echo "ok   $1 ($p passed, $s skipped)"; else echo "ok   $1 ($p passed)"; fi
	fi
	grep -E '^ok [0-9]+ .*# ?[sS][kK][iI][pP]' "$log" | sed 's/^/    /'
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

suites=()
for t in "$build"/tests/test_*; do
	[ -x "$t" ] && suites+=("$t")
done
have_bats=1
if ! command -v bats >/dev/null; then
	have_bats=0
else
	for b in tests/*.bats; do
		[ -e "$b" ] && suites+=("$b")
	done
fi

# run suite i into $logs/i.log, its exit status into $logs/i.rc
run_one() {
	local i=$1 s=${suites[$1]} rc
	case $s in
	*.bats) MTL_BUILD=$build bats --tap "$s" >"$logs/$i.log" 2>&1 ;;
	*) "$s" >"$logs/$i.log" 2>&1 ;;
	esac
	rc=$?
	echo "$rc" >"$logs/$i.rc"
}

running=0
for i in "${!suites[@]}"; do
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
	run_one "$i" &
	running=$((running + 1))
done
wait

for i in "${!suites[@]}"; do
	s=${suites[$i]}
	count "${s##*/}" "$logs/$i.log" "$(cat "$logs/$i.rc" 2>/dev/null || echo 1)"
done
if [ "$have_bats" -eq 0 ]; then
	echo "bats is not installed (make deps installs it)"
	failed=$((failed + 1))
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
