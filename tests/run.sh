#!/usr/bin/env bash
# run.sh - runs every C unit test (build/tests/test_*) and every Bats file
# (tests/*.bats), shows failures, and ends with one line that counts all
# of them: "N passed, N failed, N skipped".  Exit status 1 when anything
# failed (a crashed test binary counts as one failure more).
#
# Usage: tests/run.sh [BUILD_DIR]     (from the repository root)
set -u
build=${1:-build}
passed=0 failed=0 skipped=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

count() {  # count TAP lines of one suite in $log; $1 = suite name, $2 = exit code
	local p f s
	s=$(grep -cE '^ok [0-9]+ .*# ?[sS][kK][iI][pP]' "$log")
	p=$(grep -cE '^ok [0-9]+' "$log")
	f=$(grep -cE '^not ok [0-9]+' "$log")
	p=$((p - s))
	if [ "$f" -gt 0 ]; then
		echo "FAIL $1"
		grep -E -A8 '^not ok' "$log" | sed 's/^/    /'
	elif [ "$2" -ne 0 ]; then
		echo "FAIL $1: exited with status $2"
		tail -n 20 "$log" | sed 's/^/    /'
		f=1
	else
		if [ "$s" -gt 0 ]; then echo "ok   $1 ($p passed, $s skipped)"; else echo "ok   $1 ($p passed)"; fi
	fi
	grep -E '^ok [0-9]+ .*# ?[sS][kK][iI][pP]' "$log" | sed 's/^/    /'
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	"$t" >"$log" 2>&1
	count "${t##*/}" $?
done

if ! command -v bats >/dev/null; then
	echo "bats is not installed (make deps installs it)"
	failed=$((failed + 1))
else
	for b in tests/*.bats; do
		[ -e "$b" ] || continue
		MTL_BUILD=$build bats --tap "$b" >"$log" 2>&1
		count "${b##*/}" $?
	done
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
