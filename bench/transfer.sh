#!/usr/bin/env bash
# transfer.sh - the measurements of docs/transfer.md: an encoder
# "pretrained" on the demo's NER labels only (PRE=ner, the default) or on
# both tasks (PRE=both), then fine-tuned on both demo tasks (topic, NER)
# with new heads under each freezing scenario; prints
# per scenario the median ms per step (with its backward share), the
# trainable parameters and the dev metrics at the end.
#
# Usage: [PRE=ner|both] bench/transfer.sh [WORKDIR] [THREADS]   (from the
# repository root, after make; about a minute on one core)
set -euo pipefail
W=${1:-out/transfer}
TH=${2:-1}
B=$PWD/build
D=$PWD/fixtures/demo
mkdir -p "$W"
cd "$W"

# a 4-layer, hidden-64 encoder over the demo vocabulary
"$B/mtl-init" -q -o base --vocab "$D/vocab.txt" --layers 4 --hidden 64 \
	--heads 4 --intermediate 128 --max-position 64 --seed 1
# "pretraining": NER only (or both tasks), 3 epochs, everything trains
if [ "${PRE:-ner}" = both ]; then
	cp "$D/tasks.json" ner.json
else
	jq '.tasks |= map(select(.name == "ner"))' "$D/tasks.json" >ner.json
fi
"$B/mtl-init" -q -o base-ner --encoder base --tasks ner.json --seed 1
"$B/mtl-tokenize" -q -m base-ner "$D/train.jsonl" >pre.ex.mpk
"$B/mtl-batch" -q -b 32 -e 3 --shuffle --seed 1 pre.ex.mpk >pre.b.mpk
"$B/mtl-step" -q -j "$TH" -m base-ner --lr 1e-3 --warmup-ratio 0.1 \
	-o pretrained pre.b.mpk >pre.steps.mpk
# the transfer start: that encoder, both tasks, new heads
"$B/mtl-init" -q -o start --encoder pretrained --tasks "$D/tasks.json" --seed 2
"$B/mtl-tokenize" -q -m start "$D/train.jsonl" >train.ex.mpk
"$B/mtl-tokenize" -q -m start "$D/dev.jsonl" >dev.ex.mpk
"$B/mtl-batch" -q -b 32 -e 2 --shuffle --seed 2 train.ex.mpk >train.b.mpk

t0=$(date +%s.%N)
"$B/mtl-score" -q -j "$TH" -m start --features train.ex.mpk >train.feat.mpk
t1=$(date +%s.%N)
echo "features: $(echo "($t1 - $t0) * 1000" | bc -l | cut -d. -f1) ms for $(du -h train.feat.mpk | cut -f1)"

run() {  # run NAME ARGS...
	local name=$1
	shift
	"$B/mtl-step" -q -j "$TH" -m start --lr 1e-3 --warmup-ratio 0.1 \
		--eval dev.ex.mpk "$@" train.b.mpk >"$name.steps.mpk"
	"$B/mtl-dump" "$name.steps.mpk" | jq -s -r --arg n "$name" '
		(map(select(.type == "header"))[0].trainable) as $tr |
		(map(select(.type == "step")) | map(.ms) | sort | .[length / 2 | floor]) as $ms |
		(map(select(.type == "step")) | map(.backward_ms) | sort | .[length / 2 | floor]) as $bms |
		(map(select(.type == "eval")) | last) as $e |
		"| \($n) | \($tr) | \($ms * 100 | round / 100) | \($bms * 100 | round / 100) | \($e.accuracy.topic * 1000 | round / 10) | \($e.f1.topic * 1000 | round / 10) | \($e.f1.ner * 1000 | round / 10) |"'
}

echo "| scenario | trainable | ms/step | backward ms | dev topic acc % | dev topic F1 % | dev NER F1 % |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
run "everything frozen" --freeze encoder --freeze heads
run "encoder frozen" --freeze encoder
run "encoder frozen, cached features" --features train.feat.mpk
run "embeddings + layers 0-1 frozen" --freeze embeddings --freeze layers:0-1
run "head ner frozen" --freeze head:ner
run "gradual: encoder frozen until step 76" --freeze encoder --unfreeze-at 76
run "nothing frozen" 
