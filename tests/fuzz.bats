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
