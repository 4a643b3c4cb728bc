#!/bin/sh
# fetch_model.sh MODEL DEST - downloads a Hugging Face model repository's
# files that mtl reads (configuration, weights, tokenizer, pooling) into
# DEST, and checks each against the Hub's listing: the size, and the
# SHA-256 of large (LFS) files or the git blob hash of small ones.
#
# Environment: HF_ENDPOINT (default https://huggingface.co; a file:// URL
# of a mirror works too), HF_REVISION (default main), HF_TOKEN (optional,
# for gated models).  Needs curl, jq, sha256sum and git.
set -eu
model=${1:?usage: fetch_model.sh MODEL DEST}
dest=${2:?usage: fetch_model.sh MODEL DEST}
endpoint=${HF_ENDPOINT:-https://huggingface.co}
rev=${HF_REVISION:-main}
for tool in curl jq sha256sum git; do
	command -v "$tool" >/dev/null || { echo "fetch_model: needs $tool (apt-get install curl jq git)" >&2; exit 1; }
done
auth=
[ -n "${HF_TOKEN:-}" ] && auth="Authorization: Bearer $HF_TOKEN"
get() { curl -fsSL --retry 3 ${auth:+-H "$auth"} "$@"; }

mkdir -p "$dest"
listing="$dest/.listing.json"
get "$endpoint/api/models/$model/tree/$rev?recursive=true" -o "$listing" 2>/dev/null ||
	get "$endpoint/api/models/$model/tree/$rev" -o "$listing" ||
	{ echo "fetch_model: cannot list $model at $endpoint (no network, or no such model)" >&2; exit 1; }

# what mtl reads, when the repository has it
wanted='^(config\.json|model\.safetensors|model\.safetensors\.index\.json|model-[0-9]+-of-[0-9]+\.safetensors|vocab\.txt|tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|modules\.json|sentence_bert_config\.json|config_sentence_transformers\.json|1_Pooling/config\.json)$'
jq -r --arg re "$wanted" '.[] | select(.type == "file" and (.path | test($re))) |
	[.path, .size, (.lfs.oid // "-"), .oid] | @tsv' "$listing" >"$dest/.files"
[ -s "$dest/.files" ] || { echo "fetch_model: $model lists none of the files mtl reads" >&2; exit 1; }
grep -qE '^(model\.safetensors|model\.safetensors\.index\.json)	' "$dest/.files" ||
	{ echo "fetch_model: $model has no model.safetensors (mtl reads safetensors weights only)" >&2; exit 1; }

while IFS="$(printf '\t')" read -r path size sha256 blob; do
	out="$dest/$path"
	mkdir -p "$(dirname "$out")"
	echo "fetch_model: $path ($size bytes)"
	get "$endpoint/$model/resolve/$rev/$path" -o "$out.part"
	got=$(wc -c <"$out.part" | tr -d ' ')
	[ "$got" = "$size" ] || { echo "fetch_model: $path: $got bytes, the Hub lists $size" >&2; exit 1; }
	if [ "$sha256" != - ]; then
		sum=$(sha256sum "$out.part" | cut -d' ' -f1)
		[ "$sum" = "$sha256" ] || { echo "fetch_model: $path: SHA-256 mismatch" >&2; exit 1; }
	else
		sum=$(git hash-object "$out.part")
		[ "$sum" = "$blob" ] || { echo "fetch_model: $path: git blob hash mismatch" >&2; exit 1; }
	fi
	mv "$out.part" "$out"
done <"$dest/.files"
rm -f "$listing" "$dest/.files"
echo "fetch_model: $model is in $dest"
