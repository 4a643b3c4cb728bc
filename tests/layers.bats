#!/usr/bin/env bats
# lib/'s modules form layers: no module includes another that (through
# others) includes it back (tools/include-cycles.sh).

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
}

@test "layers: lib/ has no include circle between its modules" {
	run "$MTL_ROOT/tools/include-cycles.sh" "$MTL_ROOT/lib"
	assert_success
	assert_output ''
}

@test "layers: a circle through a third module is found and named" {
	mkdir l
	printf '#include "b.h"\n' >l/a.c
	printf '#include "c.h"\n' >l/b.h
	printf '#include "a.h"\n' >l/c.c
	: >l/a.h
	: >l/c.h
	run -1 --separate-stderr "$MTL_ROOT/tools/include-cycles.sh" l
	assert_output ''
	[[ $stderr == *'contains a loop'* ]]
	[[ $stderr == *' a'* && $stderr == *' b'* && $stderr == *' c'* ]]
}

@test "layers: the parts of a split module and its internal header are the module" {
	mkdir l
	printf '#include "x_int.h"\n' >l/x.c
	printf '#include "x_int.h"\n#include "y.h"\n' >l/x_out.c
	printf '#include "x.h"\n' >l/x_int.h
	printf '#include "y.h"\n' >l/x.h
	: >l/y.h
	run "$MTL_ROOT/tools/include-cycles.sh" l
	assert_success
}

@test "layers: a directory that is not there is a usage error" {
	run -2 --separate-stderr "$MTL_ROOT/tools/include-cycles.sh" nowhere
	[[ $stderr == *"'nowhere' is not a directory"* ]]
}
