#!/usr/bin/env bats
# One command-line language (docs/cli.md) across every program: a short
# option means the same everywhere, exit codes, "did you mean" for unknown
# options and names, messages naming the program (not its path), JSON where
# a stream belongs, binary streams kept off terminals, and the man pages.

load helper

PROGRAMS="mtl-batch mtl-dump mtl-init mtl-report mtl-score mtl-search mtl-step mtl-tokenize"

setup() {
	cd "$BATS_TEST_TMPDIR"
}

@test "a short option means the same long option in every program" {
	for p in $PROGRAMS; do
		"$p" --help | grep -oE '^  -[a-zA-Z], --[a-z-]+' | sed 's/^  //; s/,//'
	done | sort -u | awk '{ a[$1] = a[$1] " " $2 } END { for (k in a) print k a[k] }' | sort >actual
	# -n is "at most N" (records in mtl-dump, embeddings in mtl-report)
	cat >expect <<-'E'
	-T --tasks
	-V --version
	-b --batch-size
	-c --corpus
	-e --epochs
	-f --format
	-h --help
	-j --threads
	-k --top
	-l --max-length
	-m --model
	-n --head --max
	-o --out
	-p --pack
	-q --quiet
	-s --summary
	-t --type
	-w --width
	E
	diff -u expect actual
}

@test "short options that moved say what to use instead" {
	for c in "mtl-batch -m 100:--max-tokens" "mtl-step -t 1:-j (--threads)" \
		 "mtl-score -t 1:-j (--threads)" "mtl-init -e x:--encoder" \
		 "mtl-report -e:--errors" "mtl-report -t x:--title" "mtl-tokenize -t ner:--task"; do
		cmd=${c%%:*} want=${c#*:}
		run -2 --separate-stderr $cmd
		assert_equal "${stderr_lines[0]}" "${cmd%% *}: unknown option '-$(cut -c1 <<<"${cmd#* -}")': use '$want'"
	done
}

@test "unknown options say 'did you mean', naming the program, not its path" {
	for p in $PROGRAMS; do
		run -2 --separate-stderr "$MTL_ROOT/${MTL_BUILD:-build}/$p" --qiuet
		assert_equal "${stderr_lines[0]}" "$p: unknown option '--qiuet' (did you mean '--quiet'?)"
		run -2 --separate-stderr "$MTL_ROOT/${MTL_BUILD:-build}/$p" --zzzzzz
		assert_equal "${stderr_lines[0]}" "$p: unknown option '--zzzzzz'"
		run -2 --separate-stderr "$MTL_ROOT/${MTL_BUILD:-build}/$p" -Z
		assert_equal "${stderr_lines[0]}" "$p: unknown option '-Z'"
		assert_equal "${stderr_lines[1]}" "usage: $p $(sed -n 's/^usage: [^ ]* //p' <<<"$("$p" --help)" | head -n 1)"
	done
	run -2 --separate-stderr mtl-dump --head
	assert_equal "${stderr_lines[0]}" "mtl-dump: option '--head' needs a value"
	run -2 --separate-stderr mtl-dump -n
	assert_equal "${stderr_lines[0]}" "mtl-dump: option '-n' needs a value"
	run -2 --separate-stderr mtl-dump --quiet=1
	assert_equal "${stderr_lines[0]}" "mtl-dump: option '--quiet' takes no value"
	run -2 --separate-stderr mtl-batch --s 1
	assert_equal "${stderr_lines[0]}" "mtl-batch: option '--s' is ambiguous"
	# unique prefixes still work
	mtl-dump --pack "$MTL_ROOT/tests/data/hand.jsonl" >s.mpk
	run -0 mtl-dump --hea 1 s.mpk
}

@test "a model directory that cannot be opened is exit 3 in every program" {
	mtl-dump --pack "$MTL_ROOT/tests/data/hand.jsonl" >s.mpk
	run -3 --separate-stderr mtl-tokenize -m nosuch s.mpk
	run -3 --separate-stderr mtl-score -m nosuch s.mpk
	assert_equal "$stderr" "mtl-score: cannot open 'nosuch/config.json': No such file or directory"
	run -3 --separate-stderr mtl-score -m nosuch --embed s.mpk
	run -3 --separate-stderr mtl-step -m nosuch s.mpk
	assert_equal "$stderr" "mtl-step: cannot open 'nosuch/config.json': No such file or directory"
	run -3 --separate-stderr mtl-init -o out --encoder nosuch
	assert_equal "$stderr" "mtl-init: cannot open 'nosuch/config.json': No such file or directory"
	run -3 --separate-stderr mtl-init -o out2 --encoder "$FIXTURES/tiny" --tasks nosuch.json
	# a directory that opens but holds a bad model is bad data: exit 1
	mkdir bad && echo '{' >bad/config.json
	run -1 mtl-score -m bad --embed s.mpk
}

@test "task and metric names say 'did you mean'" {
	echo '{"text":"hello"}' | mtl-tokenize -q -m "$FIXTURES/tiny" >dev.mpk
	mtl-batch -q dev.mpk >b.mpk
	run -2 --separate-stderr mtl-score -m "$FIXTURES/tiny" --tasks topc dev.mpk
	assert_equal "${stderr_lines[0]}" "mtl-score: --tasks: the model has no task 'topc' (did you mean 'topic'?)"
	run -2 --separate-stderr mtl-step -q -m "$FIXTURES/tiny" --task-weight topc=1 b.mpk
	assert_equal "${stderr_lines[0]}" "mtl-step: --task-weight: 'topc' is not one of the model's tasks (did you mean 'topic'?)"
	run -2 --separate-stderr mtl-step -q -m "$FIXTURES/tiny" -o out --eval dev.mpk --save-every 2 --best-metric topic:acuracy b.mpk
	assert_equal "${stderr_lines[0]}" "mtl-step: --best-metric: metric 'topic:acuracy': unknown figure 'acuracy': accuracy, f1, token_f1, entity_f1, micro_f1, mse, pearson, spearman, mrr@10, ndcg@10, recall@1, recall@10, recall@100, map@100, knn_accuracy or v_measure (did you mean 'topic:accuracy'?)"
	run -2 --separate-stderr mtl-step -q -m "$FIXTURES/tiny" -o out --eval dev.mpk --save-every 2 --best-metric tpoic:f1 b.mpk
	assert_equal "${stderr_lines[0]}" "mtl-step: --best-metric: metric 'tpoic:f1': the model has no task 'tpoic' (did you mean 'topic:f1'?)"
}

@test "mtl-dump --type: an unknown type is an error with a suggestion, not an empty success" {
	mtl-dump --pack "$MTL_ROOT/tests/data/hand.jsonl" >s.mpk
	run -2 --separate-stderr mtl-dump --type stpe s.mpk
	assert_equal "${stderr_lines[0]}" "mtl-dump: unknown record type 'stpe' (did you mean 'step'?)"
	run -2 --separate-stderr mtl-dump -t nonsense s.mpk
	assert_equal "${stderr_lines[0]}" "mtl-dump: unknown record type 'nonsense'"
	# a known type the stream does not hold is an empty success
	run -0 mtl-dump -t features s.mpk
	assert_output ''
}

@test "a JSON file where a stream is expected says so and points at mtl-dump --pack" {
	cp "$MTL_ROOT/tests/data/hand.jsonl" hand.jsonl
	msg="record 1: JSON text, not an mtl stream (mtl-tokenize makes examples from text; mtl-dump --pack turns mtl-dump's JSON lines back into a stream)"
	for cmd in mtl-dump mtl-batch "mtl-score -m $FIXTURES/tiny --embed" mtl-report; do
		run -1 --separate-stderr $cmd hand.jsonl
		assert_equal "$stderr" "${cmd%% *}: hand.jsonl: $msg"
	done
	echo '[1, 2]' >arr.json
	run -1 --separate-stderr mtl-dump arr.json
	assert_regex "$stderr" 'JSON text, not an mtl stream'
}

@test "a binary stream is not written to a terminal; --force writes it" {
	command -v script >/dev/null || skip "script (util-linux) is not installed"
	echo '{"text":"hello"}' >in.jsonl
	mtl-tokenize -q -m "$FIXTURES/tiny" in.jsonl >ex.mpk
	tty() {  # tty CMD...: runs CMD with standard output on a pseudo-terminal
		script -qec "$*" /dev/null </dev/null
	}
	for cmd in "mtl-tokenize -q -m $FIXTURES/tiny in.jsonl" "mtl-batch -q ex.mpk" \
		   "mtl-score -q -m $FIXTURES/tiny --embed ex.mpk" "mtl-dump --pack $MTL_ROOT/tests/data/hand.jsonl" \
		   "mtl-step -q -m $FIXTURES/tiny ex.mpk"; do
		run -2 tty "$cmd"
		assert_output --partial "${cmd%% *}: not writing a binary stream to a terminal (redirect or pipe it, e.g. into mtl-dump; --force writes it anyway)"
	done
	run -0 tty "mtl-tokenize -q --force -m $FIXTURES/tiny in.jsonl"
	assert_output --partial 'header'
	run -0 tty "mtl-dump ex.mpk"  # text is for terminals
	assert_output --partial '"type":"header"'
}

@test "mtl-report --errors N as users type it: --errors 5 is --errors=5" {
	mtl-dump --pack "$MTL_ROOT/tests/data/report/predictions.jsonl" >p.mpk
	mtl-report --errors=1 p.mpk >eq
	mtl-report --errors 1 p.mpk >space
	cmp eq space
	mtl-report --errors p.mpk >ten
	! cmp -s eq ten
	# a file named by digits is given as ./N
	cp p.mpk 7
	mtl-report --errors ./7 >seven
	cmp ten seven
	# anything else after --errors is a file
	run -3 --separate-stderr mtl-report --errors x p.mpk
	assert_regex "$stderr" "cannot open 'x'"
	run -2 mtl-report --errors=x p.mpk
}

@test "every man page renders from the source tree (man -l), mtl-step-mpi.1 too" {
	command -v man >/dev/null || skip "man is not installed"
	for page in "$MTL_ROOT"/docs/man/*.1; do
		run --separate-stderr env MANPAGER=cat MANWIDTH=80 man -l "$page"
		assert_success
		assert_equal "$stderr" ""
		assert_line --regexp "^NAME"
	done
	run env MANPAGER=cat man -l "$MTL_ROOT/docs/man/mtl-step-mpi.1"
	assert_line --regexp '^ +mtl-step-mpi - '
}
