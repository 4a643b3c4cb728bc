#!/usr/bin/env bats
# lib/'s modules form layers (tools/layers.sh): each folder of lib/ is a
# floor, no module includes a header from a floor above its own, and no
# module includes another that (through others) includes it back.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
	export MTL_FLOORS="low high"
	mkdir -p l/low l/high
}

@test "layers: lib/ is in floors, with no include upward and no circle" {
	unset MTL_FLOORS
	run --separate-stderr "$MTL_ROOT/tools/layers.sh" "$MTL_ROOT/lib"
	assert_success
	assert_output ''
	[ -z "$stderr" ]
}

@test "layers: an include from a floor above is found and named" {
	printf '#include "b.h"\n' >l/low/a.c
	: >l/low/a.h
	: >l/high/b.h
	run -1 --separate-stderr "$MTL_ROOT/tools/layers.sh" l
	[ "$stderr" = 'layers.sh: low/a.c includes b.h from high, a floor above low' ]
}

@test "layers: an include from the same floor or below is allowed" {
	printf '#include "a.h"\n#include "c.h"\n' >l/high/b.c
	: >l/high/b.h
	: >l/high/c.h
	: >l/low/a.h
	run --separate-stderr "$MTL_ROOT/tools/layers.sh" l
	assert_success
	[ -z "$stderr" ]
}

@test "layers: a circle through a third module is found and named" {
	printf '#include "b.h"\n' >l/low/a.c
	printf '#include "c.h"\n' >l/low/b.h
	printf '#include "a.h"\n' >l/low/c.c
	: >l/low/a.h
	: >l/low/c.h
	run -1 --separate-stderr "$MTL_ROOT/tools/layers.sh" l
	assert_output ''
	[[ $stderr == *'contains a loop'* ]]
	[[ $stderr == *' a'* && $stderr == *' b'* && $stderr == *' c'* ]]
}

@test "layers: the parts of a split module and its internal header are the module" {
	printf '#include "x_int.h"\n' >l/high/x.c
	printf '#include "x_int.h"\n#include "y.h"\n' >l/high/x_out.c
	printf '#include "x.h"\n' >l/high/x_int.h
	printf '#include "y.h"\n' >l/high/x.h
	: >l/low/y.h
	run "$MTL_ROOT/tools/layers.sh" l
	assert_success
}

@test "layers: a folder that is no floor, and a name in two floors, are errors" {
	mkdir l/extra
	: >l/low/a.h
	: >l/high/a.h
	run -1 --separate-stderr "$MTL_ROOT/tools/layers.sh" l
	[[ $stderr == *"l/extra is not a floor (floors, bottom up: low high)"* ]]
	[[ $stderr == *"a.h is in more than one floor"* ]]
}

@test "layers: a directory that is not there is a usage error" {
	run -2 --separate-stderr "$MTL_ROOT/tools/layers.sh" nowhere
	[[ $stderr == *"'nowhere' is not a directory"* ]]
}
