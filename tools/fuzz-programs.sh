#!/usr/bin/env bash
# fuzz-programs.sh - mutation fuzzing of the programs themselves: runs the
# sanitizer build of each mtl-* program on mutated files (text into
# mtl-tokenize; every kind of stream into each program that reads it;
# model directories with one file mutated into every loader; tasks.json
# and vocab.txt into mtl-init) and reports crashes (sanitizer reports),
# hangs (the run outlives a timeout) and exit codes outside 0-3.
#
# Usage: tools/fuzz-programs.sh [-b BUILD] [-s SECONDS] [-n RUNS] [-r SEED] [-t TIMEOUT] [-o DIR]
#
#   -b BUILD    the programs' directory (default build-san; make SANITIZE=1)
#   -s SECONDS  how long to fuzz (default 60)
#   -n RUNS     stop after RUNS runs instead (the same runs for the same seed)
#   -r SEED     random seed (default 1): picks and mutations follow from it
#   -t TIMEOUT  seconds one run may take before it counts as a hang (30)
#   -o DIR      work directory (default BUILD/fuzz-programs)
#
# Each finding is kept in DIR/findings/N/: the inputs, `cmd` (run it with
# `sh cmd` from that directory to replay), `stderr` and `status`.  The
# first three of each kind (program and sanitizer summary) are kept.  Exit
# status 1 when anything was found, 2 on a usage error.
set -u

build=build-san seconds=60 max_runs=0 seed=1 timeout=30 work=
while getopts b:s:n:r:t:o: opt; do
	case $opt in
	b) build=$OPTARG ;;
	s) seconds=$OPTARG ;;
	n) max_runs=$OPTARG ;;
	r) seed=$OPTARG ;;
	t) timeout=$OPTARG ;;
	o) work=$OPTARG ;;
	*) echo "usage: fuzz-programs.sh [-b BUILD] [-s SECONDS] [-n RUNS] [-r SEED] [-t TIMEOUT] [-o DIR]" >&2
	   exit 2 ;;
	esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "$build" 2>/dev/null && pwd) || { echo "fuzz-programs: no '$build' (make SANITIZE=1 programs)" >&2; exit 2; }
for p in tokenize batch step score report dump init; do
	[ -x "$bin/mtl-$p" ] || { echo "fuzz-programs: '$bin/mtl-$p' is missing" >&2; exit 2; }
done
work=${work:-$bin/fuzz-programs}
mutate=$root/tools/mutate.pl
model=$root/fixtures/tiny

# sanitizer reports get exit codes of their own, apart from 1 (bad input);
# hard_rss_limit_mb turns a memory bomb into a report
export ASAN_OPTIONS=exitcode=86:detect_leaks=1:hard_rss_limit_mb=2048:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=87
export OMP_NUM_THREADS=1

mkdir -p "$work" && work=$(cd "$work" && pwd) || exit 2
rm -rf "$work/run" "$work/findings"
mkdir -p "$work/seeds" "$work/run" "$work/findings" || exit 2
seeds=$work/seeds

# --- seeds: text in three formats, then every stream kind made from them ---
cat >"$seeds/seed.jsonl" <<'J'
{"id": "a", "text": "John lives in Paris.", "topic": "sports", "ner": null}
{"words": ["John", "lives", "in", "Paris"], "ner": ["B-PER", "O", "O", "B-LOC"], "topic": "tech"}
{"text": "héllo \"quoted\"\tand 中文 😀", "topic": null}
{"id": 7, "words": ["x"], "ner": ["O"]}
J
printf 'John\tB-PER\nlives\tO\nin\tO\nParis\tB-LOC\n\nhello O\n' >"$seeds/seed.conll"
printf 'id\ttext\ttopic\tner\nq1\tHello world\tsports\t\nq2\tJohn lives\t\tB-PER O\n' >"$seeds/seed.tsv"
(
	cd "$seeds" &&
	"$bin/mtl-tokenize" -q -m "$model" seed.jsonl >examples.mpk &&
	"$bin/mtl-batch" -q -b 2 -e 2 examples.mpk >batches.mpk &&
	"$bin/mtl-step" -q -t 1 -m "$model" batches.mpk >steps.mpk &&
	"$bin/mtl-score" -q -t 1 -m "$model" examples.mpk >predictions.mpk &&
	"$bin/mtl-score" -q -t 1 -m "$model" --embed examples.mpk >embeddings.mpk &&
	"$bin/mtl-score" -q -t 1 -m "$model" --features examples.mpk >features.mpk &&
	"$bin/mtl-dump" batches.mpk >batches.jsonl &&
	cp "$model/tasks.json" tasks.json && cp "$model/vocab.txt" vocab.txt
) || { echo "fuzz-programs: cannot make the seed streams with '$bin'" >&2; exit 2; }
model_files=(config.json tasks.json vocab.txt tokenizer_config.json special_tokens_map.json
	     model.safetensors heads.safetensors modules.json sentence_bert_config.json
	     1_Pooling/config.json)

# pick WORD...: one of the words, at random, in REPLY (no subshell: bash
# reseeds $RANDOM in each, and the runs must follow from the seed)
pick() { local a=("$@"); REPLY=${a[RANDOM % ${#a[@]}]}; }

# mut SEED_FILE OUT: a mutated copy (spliced with another seed at times)
mut() {
	pick "$seeds"/*
	perl "$mutate" "$n" "$1" "$2" "$REPLY" || exit 2
}

# One run: writes its mutated inputs into the current directory and sets
# cmd[] to the command.  The model is used in place unless a file of it
# mutates.
setup() {
	local kind s f
	cmd=()
	pick text text stream stream stream stream model model tasks vocab
	kind=$REPLY
	case $kind in
	text)
		pick jsonl conll tsv
		f=$REPLY
		mut "$seeds/seed.$f" in.$f
		pick "" --replace-invalid --skip-bad
		cmd=("$bin/mtl-tokenize" -q -m "$model" -f "$f" $REPLY in.$f)
		;;
	stream)
		pick examples batches steps predictions embeddings features batches.jsonl
		s=$REPLY
		f=$seeds/$s.mpk
		[ "$s" = batches.jsonl ] && f=$seeds/$s
		mut "$f" in
		case $s in
		examples) pick "$bin/mtl-batch -q -b 2" "$bin/mtl-batch -q --shuffle-buffer 2" \
			"$bin/mtl-score -q -t 1 -m $model" "$bin/mtl-score -q -t 1 -m $model --embed" \
			"$bin/mtl-dump" "$bin/mtl-step -q -t 1 -m $model --eval in $seeds/batches.mpk"; cmd=($REPLY) ;;
		batches) pick "$bin/mtl-step -q -t 1 -m $model" "$bin/mtl-dump -s"; cmd=($REPLY) ;;
		features) pick "$bin/mtl-step -q -t 1 -m $model --features in $seeds/batches.mpk" "$bin/mtl-dump"; cmd=($REPLY) ;;
		batches.jsonl) cmd=("$bin/mtl-dump" --pack) ;;
		*) pick "$bin/mtl-report" "$bin/mtl-report -f json" "$bin/mtl-report -f html -e" "$bin/mtl-dump"; cmd=($REPLY) ;;
		esac
		# the mutated stream is the last argument unless an option took it
		case " ${cmd[*]} " in *" in "*) ;; *) cmd+=(in) ;; esac
		;;
	model)
		cp -r "$model" m
		pick "${model_files[@]}"
		f=$REPLY
		mut "$model/$f" m/$f
		pick "$bin/mtl-tokenize -q -m m $seeds/seed.jsonl" \
			"$bin/mtl-score -q -t 1 -m m $seeds/examples.mpk" \
			"$bin/mtl-score -q -t 1 -m m --embed $seeds/examples.mpk" \
			"$bin/mtl-step -q -t 1 -m m -o out $seeds/batches.mpk" \
			"$bin/mtl-init -q -o out -e m"; cmd=($REPLY)
		;;
	tasks)
		mut "$seeds/tasks.json" tasks.json
		pick "$bin/mtl-init -q -o out -e $model -T tasks.json" \
			"$bin/mtl-tokenize -q -m $model -T tasks.json $seeds/seed.jsonl"; cmd=($REPLY)
		;;
	vocab)
		mut "$seeds/vocab.txt" vocab.txt
		cmd=("$bin/mtl-init" -q -o out --vocab vocab.txt --layers 1 --hidden 8 --heads 2 --max-position 16)
		;;
	esac
}

declare -A kept
status=()
runs=0 crashes=0 hangs=0 badexit=0 found=0
start=$SECONDS end=$((SECONDS + seconds))
n=$seed
RANDOM=$seed
cd "$work/run" || exit 2
while if [ "$max_runs" -gt 0 ]; then [ "$runs" -lt "$max_runs" ]; else [ "$SECONDS" -lt "$end" ]; fi; do
	rm -rf cur && mkdir cur && cd cur || exit 2
	setup
	timeout -k 5 "$timeout" "${cmd[@]}" >/dev/null 2>stderr </dev/null
	rc=$?
	runs=$((runs + 1))
	[ $rc -le 3 ] && status[$rc]=$(( ${status[$rc]:-0} + 1 ))
	what=
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		what=hang hangs=$((hangs + 1))
	elif grep -qE 'ERROR: [A-Za-z]+Sanitizer|runtime error:|hard rss limit' stderr; then
		what=crash crashes=$((crashes + 1))
	elif [ $rc -gt 3 ]; then
		what="exit $rc" badexit=$((badexit + 1))
	fi
	cd .. || exit 2
	if [ -n "$what" ]; then
		summary=$(grep -m1 -E 'SUMMARY: |runtime error:|hard rss limit' cur/stderr | sed 's/^.*SUMMARY: //')
		key="${cmd[0]##*/} $what ${summary:-}"
		kept[$key]=$(( ${kept[$key]:-0} + 1 ))
		if [ "${kept[$key]}" -le 3 ]; then
			found=$((found + 1))
			dir=$work/findings/$found
			mv cur "$dir"
			printf '%q ' "${cmd[@]}" >"$dir/cmd"
			echo >>"$dir/cmd"
			echo "$rc" >"$dir/status"
			echo "fuzz-programs: $what: ${cmd[0]##*/}: ${summary:-exit status $rc}: $dir"
		fi
	fi
	n=$((n + 1))
done
rm -rf cur
echo "fuzz-programs: $runs runs in $((SECONDS - start)) s (exit 0: ${status[0]:-0}, 1: ${status[1]:-0}, 2: ${status[2]:-0}, 3: ${status[3]:-0}): $crashes crashes, $hangs hangs, $badexit exit codes outside 0-3"
[ $((crashes + hangs + badexit)) -eq 0 ]
