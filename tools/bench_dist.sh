#!/bin/sh
# bench_dist.sh - data-parallel training on this machine: one process
# with T threads against T processes (mtl-step-mpi under mpirun) of one
# thread each, on the same global batches, and the share of each step
# that rank 0 spent blocked in the reductions (the step records' comm_ms
# over ms), and what summing the gradient block costs alone
# (bench/bench_allreduce.c: one MPI_Allreduce after a barrier, so no
# rank's lateness counts).  make bench-dist runs it; docs/distributed.md
# has the figures.
#
# Usage: tools/bench_dist.sh BUILD_DIR [SHAPE...]     (shapes: tiny small)
#
#   tiny   2 layers, hidden 64, intermediate 256, the demo's 312-word
#          vocabulary (the shape tests/test_learn.c trains)
#   small  bge-small's shape: 12 layers, hidden 384, 12 heads,
#          intermediate 1536, a 30522-word vocabulary
#
# Models are drawn at random by mtl-init (the vocabulary beyond the
# demo's words is filler), batches are the demo's training sentences
# joined four by four (about 60 tokens each, topic labels).  Each
# configuration runs STEPS steps (BENCH_DIST_STEPS_tiny, _small); the
# figures are medians over the steps after the first two.
set -eu
build=${1:?usage: tools/bench_dist.sh BUILD_DIR [SHAPE...]}
shift
[ $# -gt 0 ] || set -- tiny small
threads=${BENCH_DIST_THREADS:-2}
out=$build/bench/dist
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_WAIT_POLICY=PASSIVE
demo=fixtures/demo

load() { cut -d' ' -f1-3 /proc/loadavg; }

# median of the numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "nan" }'; }

# summary STEPS_FILE: median ms, median comm_ms, tokens per second
summary() {
	"$build/mtl-dump" -t step "$1" | jq -r 'select(.step > 2) | .ms' | median >"$out/ms"
	"$build/mtl-dump" -t step "$1" | jq -r 'select(.step > 2) | (.comm_ms // 0)' | median >"$out/comm"
	tok=$("$build/mtl-dump" -t step "$1" | jq -r .tokens | median)
	awk -v ms="$(cat "$out/ms")" -v c="$(cat "$out/comm")" -v tok="$tok" \
		'BEGIN { printf "%9.1f ms/step %8.0f tokens/s  comm %7.1f ms (%4.1f%%)\n", ms, tok / ms * 1000, c, 100 * c / ms }'
}

for shape in "$@"; do
	m=$out/model-$shape
	case $shape in
	tiny)
		steps=${BENCH_DIST_STEPS_tiny:-100} b=32
		[ -d "$m" ] || "$build/mtl-init" -q -o "$m" --vocab $demo/vocab.txt --hidden 64 \
			--layers 2 --heads 4 --intermediate 256 --max-position 64 --seed 1 ;;
	small)
		steps=${BENCH_DIST_STEPS_small:-8} b=16
		if [ ! -d "$m" ]; then
			{ cat $demo/vocab.txt; i=$(wc -l <$demo/vocab.txt); \
			  awk -v from="$i" 'BEGIN { for (k = from; k < 30522; k++) print "filler" k }'; } >"$out/vocab-small.txt"
			"$build/mtl-init" -q -o "$m" --vocab "$out/vocab-small.txt" --hidden 384 \
				--layers 12 --heads 12 --intermediate 1536 --max-position 128 --seed 1
		fi ;;
	*)
		echo "bench_dist: unknown shape '$shape' (tiny, small)" >&2
		exit 2 ;;
	esac
	cp $demo/tasks.json "$m/"
	# the demo's sentences are short (about 15 tokens): four in a row
	# make one example of about 60, the length of bench-train's 16x64
	jq -c -s '[range(0; length - 3; 4) as $i | .[$i:$i + 4]] | .[] |
		{id: .[0].id, words: (map(.words) | add), topic: .[0].topic}' \
		$demo/train.jsonl >"$out/long.jsonl"
	"$build/mtl-tokenize" -q -m "$m" "$out/long.jsonl" >"$out/train-$shape.mpk"
	"$build/mtl-batch" -q -b $b -e 10 --shuffle --seed 3 "$out/train-$shape.mpk" |
		"$build/mtl-dump" | head -n $((steps + 1)) | "$build/mtl-dump" --pack >"$out/b-$shape.mpk"
	args="-q -m $m --lr 1e-4 --schedule constant"
	echo "$shape: batch $b, $steps steps; load before: $(load)"
	printf '  1 process   x 1 thread        '
	"$build/mtl-step" $args -j 1 "$out/b-$shape.mpk" >"$out/s1.mpk"
	summary "$out/s1.mpk"
	printf '  1 process   x %d threads       ' "$threads"
	"$build/mtl-step" $args -j "$threads" "$out/b-$shape.mpk" >"$out/s2.mpk"
	summary "$out/s2.mpk"
	printf '  1 process   x %d threads split ' "$threads"
	"$build/mtl-step" $args -j "$threads" --gemm-split "$out/b-$shape.mpk" >"$out/s2.mpk"
	summary "$out/s2.mpk"
	printf '  %d processes x 1 thread        ' "$threads"
	mpirun --oversubscribe -np "$threads" "$build/mtl-step-mpi" $args -j 1 "$out/b-$shape.mpk" >"$out/s3.mpk"
	summary "$out/s3.mpk"
	# the sum alone: the gradient block (every parameter), no training
	params=$("$build/mtl-dump" -t header "$out/s1.mpk" | jq .parameters)
	printf '  the sum alone: '
	mpirun --oversubscribe -np "$threads" "$build/mpi/bench/bench_allreduce" "$params" 5
	echo "  load after: $(load)"
done
