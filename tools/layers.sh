#!/bin/sh
# layers.sh [DIR] - checks that the modules under DIR (default lib) form
# layers: exits 1, saying why, when
#   - a module includes a header from a floor above its own,
#   - modules include each other in a circle,
#   - a folder of DIR is not a floor, or two floors hold the same file name
#     (headers are included by name alone);
# 0 when all is well; 2 on a usage error.  (tools/, run by tests/layers.bats.)
#
# DIR's folders are its floors, from the bottom up in MTL_FLOORS (default:
# the floors of lib/, as docs/architecture.md draws them).  A module is a
# name X: X.c, X.h and the parts of a split module (X_*.c, X_*.h, such as
# the internal header X_int.h its parts share, when X.h exists) are one
# node; every #include "Y.h" in one of its files is an edge to Y's module.
# tsort finds the circles.
dir=${1:-lib}
floors=${MTL_FLOORS:-base io nn data heads model train report}
[ -d "$dir" ] || { echo "layers.sh: '$dir' is not a directory" >&2; exit 2; }
status=0
say() { echo "layers.sh: $*" >&2; status=1; }

for d in "$dir"/*/; do
	[ -d "$d" ] || continue
	f=$(basename "$d")
	case " $floors " in
	*" $f "*) ;;
	*) say "$dir/$f is not a floor (floors, bottom up: $floors)" ;;
	esac
done
dups=$(ls "$dir"/*/ 2>/dev/null | grep -v -e '^$' -e ':$' | sort | uniq -d)
for f in $dups; do
	say "$f is in more than one floor"
done

# One awk over every file: the headers' floors first (from the names
# alone), then each #include line gives an edge "FROM TO" between two
# modules, or a line "UP ..." for an include from a floor above.
edges=$(awk -v floors="$floors" '
	function floor_of(path,  n, p) {
		n = split(path, p, "/")
		return p[n - 1]
	}
	function base(path,  n, p) {
		n = split(path, p, "/")
		return p[n]
	}
	# the module of a name: the part before the first _ when it has a header
	function module(x,  p) {
		p = x; sub(/_.*/, "", p)
		return (p != x && (p in home)) ? p : x
	}
	BEGIN {
		n = split(floors, fl, " ")
		for (i = 1; i <= n; i++) height[fl[i]] = i
		for (i = 1; i < ARGC; i++) {
			h = base(ARGV[i])
			if (h ~ /\.h$/) { sub(/\.h$/, "", h); home[h] = floor_of(ARGV[i]) }
		}
	}
	/^[ \t]*#[ \t]*include[ \t]*"[^"]*\.h"/ {
		to = $0; sub(/^[^"]*"/, "", to); sub(/\.h".*/, "", to)
		here = floor_of(FILENAME)
		from = base(FILENAME); sub(/\.[ch]$/, "", from); from = module(from)
		if ((to in home) && height[home[to]] > height[here])
			print "UP " here "/" base(FILENAME) " includes " to ".h from " home[to] ", a floor above " here
		to = module(to)
		if (to != from) print from " " to
	}' "$dir"/*/*.c "$dir"/*/*.h 2>/dev/null)
up=$(printf '%s\n' "$edges" | sed -n 's/^UP //p')
[ -z "$up" ] || { printf '%s\n' "$up" | sed 's/^/layers.sh: /' >&2; status=1; }
out=$(printf '%s\n' "$edges" | grep -v '^UP ' | tsort 2>&1 >/dev/null)
if [ -n "$out" ]; then
	printf '%s\n' "$out" | sed 's/^tsort: /layers.sh: /' >&2
	status=1
fi
exit $status
