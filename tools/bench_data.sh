#!/bin/sh
# bench_data.sh - the data path at scale: mtl-tokenize and mtl-batch over
# N generated sentences (tools/gen-bench-text.pl, a fixed seed), each
# stage timed alone (from a file) and as one pipeline, with the peak
# resident memory of each process; mtl-batch both in memory (the default)
# and streaming (--shuffle-buffer).  Used by make bench-data.
#
# Usage: tools/bench_data.sh BUILD_DIR VOCAB N [SHUFFLE_BUFFER]
set -eu
build=$1 vocab=$2 n=$3 buf=${4:-10000}
dir=$build/bench/data
mkdir -p "$dir"
text=$dir/text-$n.txt
if [ ! -s "$text" ]; then
	# about 7,300 lines a megabyte
	mb=$(( n / 7000 + 1 ))
	perl tools/gen-bench-text.pl --mb "$mb" | head -n "$n" >"$text"
fi
if [ ! -f "$dir/model/config.json" ]; then
	"$build/mtl-init" -q --overwrite -o "$dir/model" --vocab "$vocab" \
		--layers 1 --hidden 32 --heads 2 --max-position 128
fi
mb=$(( $(wc -c <"$text") / 1000000 ))
echo "# $n sentences ($mb MB of text), vocabulary $vocab"
echo "# CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-40s %10s %14s %12s\n' stage seconds sentences/s "peak RSS MB"
run() { # NAME COMMAND...: times one command, its output to /dev/null
	name=$1
	shift
	/usr/bin/time -f '%e %M' -o "$dir/time" "$@" >"$dir/out"
	read -r s kb <"$dir/time"
	printf '%-40s %10s %14s %12s\n' "$name" "$s" \
		"$(awk -v n="$n" -v s="$s" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')" \
		"$(( kb / 1024 ))"
}
run "mtl-tokenize (text file)" "$build/mtl-tokenize" -q -m "$dir/model" -f text "$text"
mv "$dir/out" "$dir/examples.mpk"
echo "# examples stream: $(( $(wc -c <"$dir/examples.mpk") / 1000000 )) MB"
run "mtl-batch (in memory)" "$build/mtl-batch" -q "$dir/examples.mpk"
run "mtl-batch --shuffle (in memory)" "$build/mtl-batch" -q --shuffle "$dir/examples.mpk"
run "mtl-batch --shuffle-buffer $buf" "$build/mtl-batch" -q --shuffle --shuffle-buffer "$buf" "$dir/examples.mpk"
# the pipeline as users run it: both processes at once
start=$(date +%s.%N)
"$build/mtl-tokenize" -q -m "$dir/model" -f text "$text" |
	"$build/mtl-batch" -q --shuffle --shuffle-buffer "$buf" >/dev/null
end=$(date +%s.%N)
awk -v n="$n" -v a="$start" -v b="$end" -v buf="$buf" \
	'BEGIN { printf "%-40s %10.2f %14.0f %12s\n", "pipeline (shuffle-buffer " buf ")", b - a, n / (b - a), "-" }'
rm -f "$dir/out" "$dir/time"
