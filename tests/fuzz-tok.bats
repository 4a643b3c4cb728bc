#!/usr/bin/env bats
# A short libFuzzer run of the tokenizer and task-spec harness
# (tests/fuzz_tok.c; make fuzz-tokenize runs it for FUZZ_SECONDS, 60 by
# default).  Skipped, saying so, where clang is not installed.

load helper

@test "fuzz: the tokenizer and the task parser survive random input" {
	command -v clang >/dev/null || skip "clang is not installed (apt-get install clang)"
	cd "$MTL_ROOT"
	run make --no-print-directory -s fuzz-tokenize FUZZ_SECONDS="${FUZZ_BRIEF:-5}"
	assert_success
	assert_output --partial 'Done '
	refute_output --partial 'ERROR: '
}
