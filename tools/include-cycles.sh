#!/bin/sh
# include-cycles.sh [DIR] - fails when the modules of DIR (default lib)
# include each other in a circle.
#
# A module is a name X: X.c, X.h and the parts of a split module (X_*.c,
# X_*.h, such as the internal header X_int.h its parts share, when X.h
# exists) are one node; every #include "Y.h" in one of its files is an
# edge to Y's module.  tsort finds the circles:
# the script prints the modules of each and exits 1, or exits 0 when the
# graph is a hierarchy.  (tools/, run by tests/layers.bats.)
dir=${1:-lib}
[ -d "$dir" ] || { echo "include-cycles.sh: '$dir' is not a directory" >&2; exit 2; }
# module NAME: NAME's module (the part before the first _ when that has a header)
module() {
	case $1 in
	*_*) [ -e "$dir/${1%%_*}.h" ] && { echo "${1%%_*}"; return; } ;;
	esac
	echo "$1"
}
edges=$(for f in "$dir"/*.c "$dir"/*.h; do
	[ -e "$f" ] || continue
	from=$(basename "$f"); from=$(module "${from%.[ch]}")
	sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)\.h".*/\1/p' "$f" |
	while read -r to; do
		to=$(module "$to")
		[ "$to" = "$from" ] || echo "$from $to"
	done
done)
out=$(printf '%s\n' "$edges" | tsort 2>&1 >/dev/null)
if [ -n "$out" ]; then
	printf '%s\n' "$out" | sed 's/^tsort: /include-cycles.sh: /' >&2
	exit 1
fi
exit 0
