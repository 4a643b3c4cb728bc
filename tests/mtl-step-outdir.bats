#!/usr/bin/env bats
# mtl-step's output directory is one unit (docs/training.md): the final
# model published through MANIFEST, one run per directory (the lock), no
# silent mix with another run's checkpoints, checksums verified on
# --resume with a fallback, leftovers of kills cleaned, rotation that
# never follows a symlink, and the umask respected.  The tiny model, 20
# steps of 2 examples, one thread.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
	mtl-dump --pack "$MTL_ROOT/tests/data/step-examples.jsonl" >ex.mpk
	mtl-batch -q -b 2 -e 10 ex.mpk >b.mpk
	TRAIN=(mtl-step -q -j 1 -m "$FIXTURES/tiny" --lr 1e-3)
}

# files DIR: the model files of DIR, one "name checksum" a line (not the
# model card, README.md, whose command line names the directory)
files() {
	(cd "$1" && find . -type f ! -name MANIFEST ! -name .lock ! -name README.md | sort | xargs md5sum)
}

@test "a save cut short at any write: readers see the old model or refuse, never a mix" {
	"${TRAIN[@]}" -o out b.mpk >/dev/null
	cp -r out old
	"${TRAIN[@]}" --lr 5e-4 -o new b.mpk >/dev/null
	old_set=$(files old)
	new_set=$(files new)
	[ "$old_set" != "$new_set" ]
	refused=0
	# MTL_FS_FAIL_WRITE=N: the Nth atomic write fails (a full disk): the
	# save of the final model stops there, as a kill would stop it
	for n in 1 2 3 4 5 6 7 8 9 10 11 12 13; do
		rm -rf out
		cp -r old out
		MTL_FS_FAIL_WRITE=$n run -3 "${TRAIN[@]}" --lr 5e-4 -o out b.mpk
		run mtl-score -q -m out ex.mpk
		if [ "$status" = 0 ]; then
			assert_equal "$(files out)" "$old_set"
		else
			assert_equal "$status" 1
			assert_output --partial "'out' is half-written: a save is under way or was interrupted ('MANIFEST' says pending)"
			refused=$((refused + 1))
		fi
	done
	[ "$refused" -gt 8 ] || fail "only $refused cut saves were refused"
	"${TRAIN[@]}" --lr 5e-4 -o out b.mpk >/dev/null
	assert_equal "$(files out)" "$new_set"
	run -0 mtl-score -q -m out ex.mpk
	# a previous model's tokenizer file is not left beside the new one
	cp "$FIXTURES/tiny/tokenizer_config.json" out/tokenizer.json
	"${TRAIN[@]}" --lr 5e-4 -o out b.mpk >/dev/null
	[ ! -e out/tokenizer.json ]
	# a file changed after the save is named
	printf 'x' | dd of=out/heads.safetensors bs=1 seek=200 conv=notrunc 2>/dev/null
	run -1 mtl-score -q -m out ex.mpk
	assert_output --partial "'out/heads.safetensors': checksum mismatch"
}

@test "a fresh run refuses another run's checkpoints; --overwrite removes them, --resume keeps them" {
	"${TRAIN[@]}" --save-every 5 -o out b.mpk >/dev/null
	cp out/model.safetensors first.safetensors
	run -1 --separate-stderr "${TRAIN[@]}" --save-every 5 --lr 5e-4 -o out b.mpk
	assert_equal "$stderr" "mtl-step: 'out' holds the checkpoints of another run (newest: checkpoint-000020): give --resume to continue it, or --overwrite to remove them and start afresh"
	cmp out/model.safetensors first.safetensors
	# without --save-every too: a later --resume would continue the other run
	run -1 --separate-stderr "${TRAIN[@]}" --lr 5e-4 -o out b.mpk
	run -2 "${TRAIN[@]}" --resume --overwrite -o out b.mpk
	touch out/checkpoint-000015/extra
	"${TRAIN[@]}" --save-every 7 --lr 5e-4 --overwrite -o out b.mpk >/dev/null
	"${TRAIN[@]}" --save-every 7 --lr 5e-4 -o clean b.mpk >/dev/null
	run ls out
	refute_line checkpoint-000015
	refute_line checkpoint-000010
	assert_line checkpoint-000014
	assert_equal "$(cat out/latest)" checkpoint-000020
	cmp out/checkpoint-000020/model.safetensors clean/checkpoint-000020/model.safetensors
	# --resume continues it
	run -0 --separate-stderr "${TRAIN[@]}" --save-every 7 --lr 5e-4 -o out --resume b.mpk
}

@test "one run per output directory: a second one says which pid holds it" {
	rm -f fifo
	mkfifo fifo
	"${TRAIN[@]}" --save-every 5 -o out fifo >/dev/null 2>err &
	pid=$!
	exec 5>fifo
	for _ in $(seq 200); do
		[ -s out/.lock ] && break
		sleep 0.05
	done
	run -1 --separate-stderr "${TRAIN[@]}" --save-every 5 -o out b.mpk
	assert_equal "$stderr" "mtl-step: 'out' is in use by another run (pid $pid): one run at a time per output directory"
	run -1 --separate-stderr "${TRAIN[@]}" -o out --resume b.mpk
	assert_equal "$stderr" "mtl-step: 'out' is in use by another run (pid $pid): one run at a time per output directory"
	cat b.mpk >&5
	exec 5>&-
	wait "$pid"
	# the lock ends with the run
	"${TRAIN[@]}" --save-every 5 -o out --resume b.mpk >/dev/null
}

@test "--resume skips a checkpoint with a flipped bit, says so, and stays bit-identical" {
	"${TRAIN[@]}" --save-every 3 -o whole b.mpk >/dev/null
	"${TRAIN[@]}" --save-every 3 -o out b.mpk >/dev/null
	rm -r out/checkpoint-000020
	echo checkpoint-000018 >out/latest
	# one bit of the optimiser state of step 18
	f=out/checkpoint-000018/optimizer.safetensors
	off=$(($(stat -c %s "$f") - 17))
	byte=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
	printf "\\$(printf %03o $((byte ^ 4)))" | dd of="$f" bs=1 seek="$off" conv=notrunc 2>/dev/null
	run -0 --separate-stderr "${TRAIN[@]}" --save-every 3 -o out --resume b.mpk
	assert_equal "${stderr_lines[0]}" "mtl-step: skipping checkpoints that fail verification:"
	[[ "${stderr_lines[1]}" == "'out/checkpoint-000018/optimizer.safetensors': checksum mismatch ("*"): the file changed after it was written" ]] ||
		fail "${stderr_lines[1]}"
	cmp out/model.safetensors whole/model.safetensors
	cmp out/checkpoint-000020/optimizer.safetensors whole/checkpoint-000020/optimizer.safetensors
	# when none passes, the run stops and names them
	for d in out/checkpoint-*; do
		printf 'x' | dd of="$d/trainer.json" bs=1 seek=3 conv=notrunc 2>/dev/null
	done
	run -1 --separate-stderr "${TRAIN[@]}" --save-every 3 -o out --resume b.mpk
	assert_equal "${stderr_lines[-1]}" "mtl-step: cannot resume: no checkpoint of 'out' passes verification"
	assert_equal "${#stderr_lines[@]}" 5
}

@test "leftovers of killed runs are removed at the next start" {
	"${TRAIN[@]}" --save-every 5 -o out b.mpk >/dev/null
	echo stale >out/latest.tmp.a1b2c3
	echo stale >out/model.safetensors.tmp.zz9zz9
	mkdir out/.checkpoint-000025.tmp out/checkpoint-000030
	echo half >out/checkpoint-000030/config.json
	# not ours: a symlink and a file that merely looks temporary
	ln -s /nonexistent out/checkpoint-000035
	echo mine >out/notes.tmp
	"${TRAIN[@]}" -o out --save-every 5 --resume b.mpk >/dev/null
	run ls -A out
	refute_line latest.tmp.a1b2c3
	refute_line model.safetensors.tmp.zz9zz9
	refute_line .checkpoint-000025.tmp
	refute_line checkpoint-000030
	assert_line checkpoint-000035
	assert_line notes.tmp
}

@test "rotation and --overwrite never follow a symlinked checkpoint out of OUT" {
	"${TRAIN[@]}" --save-every 5 -o victim b.mpk >/dev/null
	before=$(files victim)
	mkdir out
	ln -s ../victim/checkpoint-000015 out/checkpoint-000001
	"${TRAIN[@]}" --save-every 3 --keep 1 -o out b.mpk >/dev/null
	[ -L out/checkpoint-000001 ]
	assert_equal "$(files victim)" "$before"
	"${TRAIN[@]}" --save-every 3 --keep 1 --overwrite -o out b.mpk >/dev/null
	[ ! -e out/checkpoint-000001 ] && [ ! -L out/checkpoint-000001 ]
	assert_equal "$(files victim)" "$before"
}

@test "files and directories take 0666 and 0777 less the umask" {
	(umask 002 && "${TRAIN[@]}" --save-every 10 -o g b.mpk >/dev/null)
	assert_equal "$(stat -c %a g/config.json g/MANIFEST g/latest g/checkpoint-000010/COMPLETE g/1_Pooling/config.json)" "$(printf '664\n%.0s' 1 2 3 4 5)"
	assert_equal "$(stat -c %a g g/checkpoint-000010 g/1_Pooling)" "$(printf '775\n%.0s' 1 2 3)"
	(umask 077 && "${TRAIN[@]}" --save-every 10 -o p b.mpk >/dev/null)
	assert_equal "$(stat -c %a p/model.safetensors p/checkpoint-000010/optimizer.safetensors)" "$(printf '600\n%.0s' 1 2)"
}
