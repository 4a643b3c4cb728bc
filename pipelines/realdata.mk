# realdata.mk - the public data sets a user would try first, as a honest
# baseline: TREC question classification (6 coarse classes) and WNUT-17
# emerging-entity recognition (6 types, BIO), trained together from
# scratch on a small encoder.
#
#   make -f pipelines/realdata.mk [DATA=dir] [VOCAB=vocab.txt] [OUT=out/realdata]
#
# DATA is a directory with trec/raw/{train_5500.label,TREC_10.label} and
# wnut17/raw/{wnut17train.conll,emerging.dev.conll,emerging.test.annotated},
# the upstream files byte for byte; ../shared/data when it exists, else the
# files are downloaded from their upstreams.  Either way every file is
# checked against its SHA-256 first.  The data are not part of mtl (TREC
# carries no licence statement; WNUT-17 is CC BY 4.0): nothing here is
# committed.
#
# VOCAB: a BERT WordPiece vocabulary (uncased); by default bge-small's,
# from models/ (make model MODEL=BAAI/bge-small-en-v1.5) or ../shared.
#
# Results go to docs/baselines.md by hand, with the command and the date.

include pipelines/common.mk

OUT ?= out/realdata
DATA ?= $(firstword $(wildcard ../shared/data) $(OUT)/data)
VOCAB ?= $(firstword $(wildcard models/bge-small-en-v1.5/vocab.txt ../shared/models/bge-small-en-v1.5/vocab.txt) models/bge-small-en-v1.5/vocab.txt)
LAYERS ?= 4
HIDDEN ?= 256
HEADS ?= 4
EPOCHS ?= 6
LR ?= 5e-4
BATCH ?= 32
SEED ?= 1

TREC_URL := https://cogcomp.seas.upenn.edu/Data/QA/QC
WNUT_URL := https://raw.githubusercontent.com/leondz/emerging_entities_17/e52a2d2a71ac1a051ca2d532eef28653c5c02603
define sums
9e4c8bdcaffb96ed61041bd64b564183d52793a8e91d84fc3a8646885f466ec3  trec/raw/train_5500.label
033f22c028c2bbba9ca682f68ffe204dc1aa6e1cf35dd6207f2d4ca67f0d0e8e  trec/raw/TREC_10.label
731820e13f71af324c6b55a1575ec2ce59fbaa2a0806f8f0400b98d56cd6a7a5  wnut17/raw/wnut17train.conll
e053b752b8155113ca66e7db08af5f2f5f43ab993694e4774f1ec5bad42312d8  wnut17/raw/emerging.dev.conll
2aa79b764e56ec9264a1b30fdd9b70195bd00ff400b62edd8f399d5f13c178f0  wnut17/raw/emerging.test.annotated
endef
export sums

.PHONY: realdata
realdata: $(OUT)/checked $(OUT)/base/config.json
	@$(MAKE) --no-print-directory -f pipelines/train.mk MODEL=$(OUT)/base TASKS=$(OUT)/tasks.json \
		TRAIN="$(OUT)/trec-train.tsv $(OUT)/wnut-train.conll" \
		DEV="$(OUT)/trec-test.tsv $(OUT)/wnut-dev.conll" OUT=$(OUT)/run \
		EPOCHS=$(EPOCHS) BATCH=$(BATCH) LR=$(LR) SEED=$(SEED) EVAL_EVERY=200 \
		TOKENIZE_OPTS="--replace-invalid --max-length 128"

# the raw files: from DATA, or downloaded; then checked
$(OUT)/data/%:
	@mkdir -p $(@D)
	case $* in trec/*) url=$(TREC_URL)/$(notdir $*);; *) url=$(WNUT_URL)/$(notdir $*);; esac; \
	curl -fsSL --retry 3 "$$url" -o $@.tmp && mv $@.tmp $@

# the data: checked, converted, and the tasks (no model)
$(OUT)/checked: $(addprefix $(DATA)/,trec/raw/train_5500.label trec/raw/TREC_10.label \
		wnut17/raw/wnut17train.conll wnut17/raw/emerging.dev.conll wnut17/raw/emerging.test.annotated)
	@mkdir -p $(OUT)
	cd $(DATA) && printf '%s\n' "$$sums" | sha256sum -c --quiet
	# TREC: "COARSE:fine question" -> TSV with the coarse class
	for s in train:train_5500 test:TREC_10; do \
		{ printf 'trec\ttext\n'; LC_ALL=C sed 's/^\([A-Z]*\):[^ ]* \(.*\)$$/\1\t\2/' $(DATA)/trec/raw/$${s#*:}.label; } \
			>$(OUT)/trec-$${s%%:*}.tsv; done
	cp $(DATA)/wnut17/raw/wnut17train.conll $(OUT)/wnut-train.conll
	cp $(DATA)/wnut17/raw/emerging.dev.conll $(OUT)/wnut-dev.conll
	cp $(DATA)/wnut17/raw/emerging.test.annotated $(OUT)/wnut-test.conll
	printf '%s\n' '{"tasks": [' \
		'{"name": "trec", "kind": "sequence", "labels": ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]},' \
		'{"name": "ner", "kind": "token", "labels": ["O", "B-corporation", "I-corporation", "B-creative-work", "I-creative-work", "B-group", "I-group", "B-location", "I-location", "B-person", "I-person", "B-product", "I-product"]}' \
		']}' >$(OUT)/tasks.json
	touch $@

# the encoder, drawn from SEED (pipelines/banking77.mk draws its own with
# the same settings: ENCODER_OPTS)
ENCODER_OPTS = --vocab $(VOCAB) --layers $(LAYERS) --hidden $(HIDDEN) --heads $(HEADS) --max-position 128
$(OUT)/base/config.json: $(OUT)/checked | mtl-programs
	$(MTL_BIN)mtl-init -q --overwrite -o $(OUT)/base $(ENCODER_OPTS) --seed $(SEED)
