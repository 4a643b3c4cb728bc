#!/usr/bin/env bats
# A short libFuzzer run of each parser harness: a fixed number of runs from
# a fixed seed and the committed corpus (make fuzz-smoke-NAME), so that the
# same code always gives the same answer; make fuzz-NAME fuzzes open-ended.
# Skipped, saying so, where clang's fuzzer runtime is not installed.

load helper

fuzz_briefly() {
	command -v clang >/dev/null || skip "clang is not installed (apt-get install clang)"
	cd "$MTL_ROOT"
	run make --no-print-directory -s "fuzz-smoke-$1"
	assert_success
	assert_output --partial 'Done '
	refute_output --partial 'ERROR: '
	refute_output --partial 'runtime error: '
}

@test "fuzz: the stream reader and the record parsers survive random input" {
	fuzz_briefly mp
}

@test "fuzz: the safetensors reader survives random input" {
	fuzz_briefly st
}

@test "fuzz: the tokenizer and the task parser survive random input" {
	fuzz_briefly tok
}

@test "fuzz: the JSONL, CoNLL and TSV readers survive random input" {
	fuzz_briefly input
}

@test "fuzz: the tokenizer loader survives random vocab.txt, tokenizer.json and configs" {
	fuzz_briefly vocab
}

# A build directory of the real programs, three of them wrapped to fail on
# the fuzzed input ("in" or "in.*"): mtl-tokenize dies by SIGSEGV,
# mtl-report prints an AddressSanitizer report, mtl-dump hangs.
fake_build() {
	mkdir -p fake
	for p in "$MTL_ROOT/${MTL_BUILD:-build}"/mtl-*; do ln -s "$p" fake/; done
	for p in tokenize report dump; do
		rm fake/mtl-$p
		{
			echo '#!/usr/bin/env bash'
			echo 'case " $* " in *" in "*|*" in."*) ;; *) exec '"'$MTL_ROOT/${MTL_BUILD:-build}/mtl-$p'"' "$@" ;; esac'
			case $p in
			tokenize) echo 'kill -SEGV $$' ;;
			report) echo 'echo "==1==ERROR: AddressSanitizer: heap-buffer-overflow" >&2; echo "SUMMARY: AddressSanitizer: heap-buffer-overflow x.c:1" >&2; exit 86' ;;
			dump) echo 'exec sleep 30' ;;
			esac
		} >fake/mtl-$p
		chmod +x fake/mtl-$p
	done
}

@test "fuzz-programs: reports a crash, a sanitizer report and a hang, and keeps each input" {
	cd "$BATS_TEST_TMPDIR"
	fake_build
	run -1 "$MTL_ROOT/tools/fuzz-programs.sh" -b fake -n 15 -r 3 -t 1 -o work
	assert_output --regexp 'fuzz-programs: exit 139: mtl-tokenize: exit status 139: .*/work/findings/[0-9]+'
	assert_output --regexp 'fuzz-programs: crash: mtl-report: AddressSanitizer: heap-buffer-overflow x.c:1: .*/work/findings/[0-9]+'
	assert_output --regexp 'fuzz-programs: hang: mtl-dump: exit status 124: .*/work/findings/[0-9]+'
	assert_output --regexp 'fuzz-programs: 15 runs in [0-9]+ s \(exit 0: [0-9]+, 1: [0-9]+, 2: 0, 3: 0\): [1-9][0-9]* crashes, [1-9][0-9]* hangs, [1-9][0-9]* exit codes outside 0-3'
	# a finding replays from its directory
	d=$(grep -l mtl-report work/findings/*/cmd | head -1)
	d=${d%/cmd}
	[ -s "$d/in" ] && [ "$(cat "$d/status")" = 86 ]
	run -86 sh -c "cd '$d' && sh cmd"
}

@test "fuzz-programs: the real programs survive a short run" {
	cd "$BATS_TEST_TMPDIR"
	run -0 "$MTL_ROOT/tools/fuzz-programs.sh" -b "$MTL_ROOT/${MTL_BUILD:-build}" -n 20 -r 1 -o work
	assert_output --regexp 'fuzz-programs: 20 runs in [0-9]+ s \(exit 0: [0-9]+, 1: [0-9]+, 2: [0-9]+, 3: 0\): 0 crashes, 0 hangs, 0 exit codes outside 0-3'
}
