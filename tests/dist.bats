#!/usr/bin/env bats
# mtl-step-mpi under mpirun: N processes on a global batch take the step
# one process takes on it (losses, counts and final weights), the stream
# and the records stay rank 0's, a rank that fails or dies ends the
# whole job with an error instead of leaving the others waiting, and rank
# 0's last checkpoint then resumes the run.
# Skipped, with the reason, when mpirun or build/mtl-step-mpi is absent.

load helper

setup() {
	command -v mpirun >/dev/null || skip "mpirun is not installed (make deps installs openmpi-bin)"
	command -v mtl-step-mpi >/dev/null || skip "mtl-step-mpi was not built (no MPI found, or make MPI=0)"
	cd "$BATS_TEST_TMPDIR"
	# root may run MPI jobs here (CI containers); more ranks than cores
	export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
	export OMPI_MCA_rmaps_base_oversubscribe=1
	# containers often forbid the cross-process reads (CMA) of Open MPI's
	# shared-memory transport; plain copies work everywhere
	export OMPI_MCA_btl_vader_single_copy_mechanism=none
	# under make test SANITIZE=1, LeakSanitizer reports Open MPI's own
	# allocations (from plugins unloaded by then, so they cannot be
	# suppressed by name): leak checks stay on for mtl-step, off for ranks
	MPIRUN=(env ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" mpirun)
	mtl-dump --pack "$MTL_ROOT/tests/data/step-examples.jsonl" >ex.mpk
	# 4 examples in batches of 3: every step has a batch of 3 rows
	# (split 1 + 2) and one of 1 row (rank 0 gets none of it)
	mtl-batch -q -b 3 -e 4 ex.mpk >b.mpk
	ARGS=(-q -m "$FIXTURES/tiny" -j 1 --dropout 0 --lr 1e-3 --accumulate 2)
}

# fields F of the step records of S, one line per step
steps() {
	mtl-dump -t step "$1" | jq -c "$2"
}

# close A B: every number of file A within 1e-5 relative of B's
close() {
	paste -d' ' "$1" "$2" | tr -d '[]' | tr ',' ' ' | awk '
		{ n = NF / 2; for (i = 1; i <= n; i++) { a = $i; b = $(i + n);
		  d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b;
		  if (d > 1e-5 * m + 1e-12) { print "line " NR ": " $0; bad = 1 } } }
		END { exit bad }'
}

@test "2 ranks take the steps of 1 process: losses, counts, norms and final weights" {
	mtl-step "${ARGS[@]}" -o one --eval ex.mpk b.mpk >one.mpk
	"${MPIRUN[@]}" -np 2 mtl-step-mpi "${ARGS[@]}" -o two --eval ex.mpk b.mpk >two.mpk
	[ "$(steps one.mpk .step | wc -l)" -eq 4 ]
	# counts are exact: the global batch's, not rank 0's share
	steps one.mpk '[.step, .epoch, .labelled, .tokens, .lr]' >a
	steps two.mpk '[.step, .epoch, .labelled, .tokens, .lr]' >b
	run diff a b
	assert_success
	steps one.mpk '[.loss, .losses.topic, .losses.ner, .grad_norm, .accuracy.ner]' >a
	steps two.mpk '[.loss, .losses.topic, .losses.ner, .grad_norm, .accuracy.ner]' >b
	run close a b
	assert_success
	# and the weights the two runs saved (st_cmp: 1e-5 relative)
	run "$MTL_ROOT/${MTL_BUILD:-build}/tests/st_cmp" two/model.safetensors one/model.safetensors 1e-5 1e-7
	assert_success
	run "$MTL_ROOT/${MTL_BUILD:-build}/tests/st_cmp" two/heads.safetensors one/heads.safetensors 1e-5 1e-7
	assert_success
	# the weights did move: the comparison can fail
	run "$MTL_ROOT/${MTL_BUILD:-build}/tests/st_cmp" two/model.safetensors "$FIXTURES/tiny/model.safetensors" 1e-5 1e-7
	assert_failure
	# rank 0 evaluated the final weights
	mtl-dump -t eval one.mpk | jq -c '[.step, .loss, .labelled.ner]' >a
	mtl-dump -t eval two.mpk | jq -c '[.step, .loss, .labelled.ner]' >b
	run close a b
	assert_success
	# only rank 0 wrote: one header, one eval, comm_ms on every step, one end
	run bash -c "set -o pipefail; mtl-dump two.mpk | jq -r .type | sort | uniq -c | tr -s ' '"
	assert_output $' 1 end\n 1 eval\n 1 header\n 4 step'
	run bash -c "set -o pipefail; mtl-dump -t step two.mpk | jq '.comm_ms >= 0' | sort -u"
	assert_output true
}

@test "3 ranks, input on stdin, batches smaller than the group" {
	mtl-batch -q -b 2 -e 2 ex.mpk >b2.mpk
	mtl-step "${ARGS[@]}" b2.mpk >one.mpk
	"${MPIRUN[@]}" -np 3 mtl-step-mpi "${ARGS[@]}" <b2.mpk >three.mpk
	steps one.mpk '[.labelled, .tokens]' >a
	steps three.mpk '[.labelled, .tokens]' >b
	run diff a b
	assert_success
	steps one.mpk '[.loss, .grad_norm]' >a
	steps three.mpk '[.loss, .grad_norm]' >b
	run close a b
	assert_success
}

@test "a rank that fails ends the job, naming the rank and the cause" {
	# rank 1 alone cannot load its model (exit 3): rank 0 must not wait for it
	run -3 --separate-stderr timeout 60 "${MPIRUN[@]}" -np 1 mtl-step-mpi "${ARGS[@]}" b.mpk : \
		-np 1 mtl-step-mpi -q -m missing b.mpk
	assert_regex "$stderr" "mtl-step: rank 1: cannot open 'missing/config.json'"
	# a corrupt stream: rank 0 stops, and takes rank 1 with it
	head -c 300 b.mpk >cut.mpk
	run -1 --separate-stderr timeout 60 "${MPIRUN[@]}" -np 2 mtl-step-mpi "${ARGS[@]}" cut.mpk
	assert_regex "$stderr" "mtl-step: rank 0: cut.mpk: record [0-9]+: truncated"
	# ranks that start from different weights are caught by the check
	mtl-step -q -m "$FIXTURES/tiny" --lr 1e-2 -o other b.mpk >/dev/null
	run -1 --separate-stderr timeout 60 "${MPIRUN[@]}" -np 1 mtl-step-mpi "${ARGS[@]}" b.mpk : \
		-np 1 mtl-step-mpi -q -m other b.mpk
	assert_regex "$stderr" "mtl-step: rank [01]: the ranks' weights differ at the start"
}

@test "--low-memory under mpirun: refused at the start, with the reason" {
	run --separate-stderr timeout 60 "${MPIRUN[@]}" -np 2 mtl-step-mpi -q -m "$FIXTURES/tiny" -j 1 --low-memory b.mpk
	[ "$status" -ne 0 ]
	assert_regex "$stderr" "--low-memory runs in one process"
}

# rank_pid JOB R: the pid of rank R among the processes of mpirun JOB
rank_pid() {
	local p
	for p in $(pgrep -P "$1"); do
		if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# has_step S: stream S holds a step record already
has_step() {
	[ -n "$(mtl-dump -q -t step -n 1 "$1" 2>/dev/null)" ]
}

# until_running JOB CMD...: waits until mpirun job JOB has a rank 1 (its
# pid into $victim) and CMD succeeds.  However loaded the machine, a
# bounded wait: the test fails after 120 s, or when the job ends first.
until_running() {
	local job=$1 deadline=$((SECONDS + 120))

	shift
	victim=
	until [ -n "$victim" ] && "$@" >/dev/null; do
		[ -n "$victim" ] || victim=$(rank_pid "$job" 1) || victim=
		kill -0 "$job" 2>/dev/null || fail "mpirun ended before the kill: $(cat err)"
		if [ $SECONDS -ge $deadline ]; then
			kill "$job"
			fail "120 s after the start: rank 1 '${victim}', no '$*' yet"
		fi
		sleep 0.2
	done
}

@test "killing one rank ends the job with an error within seconds" {
	# a stream of some 10000 steps: the job would run for a minute
	mtl-batch -q -b 3 -e 5000 ex.mpk >long.mpk
	"${MPIRUN[@]}" -np 2 mtl-step-mpi "${ARGS[@]}" long.mpk >s.mpk 2>err 3>&- &
	job=$!
	until_running "$job" has_step s.mpk
	kill -KILL "$victim"
	# the job ends seconds after the kill (left alone, rank 0 would wait
	# for rank 1 for ever); timed from the kill, not from the start
	start=$SECONDS
	while kill -0 "$job" 2>/dev/null && [ $((SECONDS - start)) -lt 20 ]; do
		sleep 0.1
	done
	if kill -0 "$job" 2>/dev/null; then
		kill "$job"
		fail "mpirun still runs 20 s after rank 1 was killed"
	fi
	run wait "$job"
	assert_failure
	# mpirun says which rank ended and how
	run cat err
	assert_output --regexp "rank 1.*signal 9|signal 9.*rank 1|rank 1.*Killed"
	# the job stopped early, and what rank 0 wrote is a readable stream
	run bash -c "set -o pipefail; mtl-dump -t step -n 1 s.mpk | jq .step"
	assert_output 1
	[ "$(mtl-dump -t step s.mpk 2>/dev/null | wc -l)" -lt 5000 ]
}

@test "a killed rank leaves rank 0's last checkpoint, and the run resumes from it" {
	mtl-batch -q -b 3 -e 5000 ex.mpk >long.mpk
	"${MPIRUN[@]}" -np 2 mtl-step-mpi "${ARGS[@]}" --save-every 20 -o ck long.mpk >s.mpk 2>err 3>&- &
	job=$!
	until_running "$job" compgen -G "ck/checkpoint-*/COMPLETE"
	kill -KILL "$victim"
	run wait "$job"
	assert_failure
	# rank 0 may still be saving its interrupted state after mpirun has
	# gone: wait until it lets go of ck's lock
	for _ in $(seq 600); do flock -n ck/.lock true && break; sleep 0.1; done
	[ ! -e ck/model.safetensors ] || fail "the killed run finished"
	# --resume takes the newest complete checkpoint; the kill may have come
	# between its COMPLETE marker and the update of ck/latest
	last=$(ls -d ck/checkpoint-*/COMPLETE | sort | tail -n 1)
	last=$(basename "$(dirname "$last")")
	[ -f "ck/$last/COMPLETE" ]
	# resume with 2 ranks on the stream up to 2 steps past the checkpoint
	# (its header says how many batches it holds; the run's schedule stays)
	step=$(jq .step "ck/$last/trainer.json")
	done=$(jq .batches "ck/$last/trainer.json")
	total=$(mtl-dump -t header long.mpk | jq .total_batches)
	mtl-dump --head $((done + 4)) long.mpk | sed "1s/\"total_batches\":$total/\"total_batches\":$((done + 4))/" |
		mtl-dump --pack >part.mpk
	"${MPIRUN[@]}" -np 2 mtl-step-mpi "${ARGS[@]}" --total-steps $((total / 2)) -o ck --resume part.mpk >r.mpk
	run bash -c "set -o pipefail; mtl-dump -t step r.mpk | jq .step"
	assert_output "$(printf '%s\n%s' $((step + 1)) $((step + 2)))"
	# and the checkpoint is a model directory one process trains
	run bash -c "set -o pipefail; mtl-step -q -m ck/$last -j 1 b.mpk | mtl-dump -t step | wc -l"
	assert_output 8
}

@test "with dropout on, a resumed 2-rank run is bit-identical to an uninterrupted one" {
	DROP=(-q -m "$FIXTURES/tiny" -j 1 --dropout 0.2 --lr 1e-3 --accumulate 2 --save-every 2)
	"${MPIRUN[@]}" -np 2 mtl-step-mpi "${DROP[@]}" -o whole b.mpk >/dev/null
	# the same run stopped after step 2 (its first 4 batches), then resumed
	# (a stream of its own: its header says 4 batches; the schedule stays
	# the whole run's 4 steps)
	mtl-dump --head 4 b.mpk | sed '1s/"total_batches":[0-9]*/"total_batches":4/' |
		mtl-dump --pack >part.mpk
	"${MPIRUN[@]}" -np 2 mtl-step-mpi "${DROP[@]}" --total-steps 4 -o cut part.mpk >/dev/null
	run jq -c '.rank_rngs | length' cut/checkpoint-000002/trainer.json
	assert_output 2
	"${MPIRUN[@]}" -np 2 mtl-step-mpi "${DROP[@]}" -o cut --resume b.mpk >/dev/null
	cmp cut/model.safetensors whole/model.safetensors
	cmp cut/heads.safetensors whole/heads.safetensors
	cmp cut/checkpoint-000004/optimizer.safetensors whole/checkpoint-000004/optimizer.safetensors
}

@test "one rank, or no mpirun at all: the one-process trainer, number for number" {
	mtl-step "${ARGS[@]}" b.mpk >a.mpk
	"${MPIRUN[@]}" -np 1 mtl-step-mpi "${ARGS[@]}" b.mpk >b.mpk1
	# one rank through MPI: the very same numbers and no comm_ms
	steps a.mpk '[.loss, .grad_norm, .labelled]' >a
	steps b.mpk1 '[.loss, .grad_norm, .labelled]' >b
	run diff a b
	assert_success
	run bash -c "set -o pipefail; mtl-dump -t step b.mpk1 | jq 'has(\"comm_ms\")' | sort -u"
	assert_output false
	# and without mpirun at all (MPI's singleton start)
	ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" mtl-step-mpi "${ARGS[@]}" b.mpk >c.mpk
	steps c.mpk '[.loss, .grad_norm, .labelled]' >c
	run diff a c
	assert_success
}
