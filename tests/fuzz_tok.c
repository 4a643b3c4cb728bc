/*
 * fuzz_tok.c - libFuzzer harness for the tokenizer: any bytes, under each
 * option set, flag and a truncation length taken from the first byte, must
 * give a clean error (exactly when mtl_tok_utf8_next_bad finds a bad
 * byte) or an encoding whose invariants hold: ids in range, [CLS] first
 * and [SEP] last, word ids non-decreasing, offsets inside the input.
 * Also feeds the bytes to the task-spec parser.  Run with
 * `make fuzz-tokenize` (or fuzz-tok).
 */
#include <stdlib.h>
#include <string.h>

#include "task.h"
#include "tok.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static const char *const vocab[] = {
	"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "##a", "b", "##b",
	"ab", "##ab", "\xc3\xa9", "##\xc3\xa9", "\xe4\xb8\xad", "x", "##x",
	"!", "i", "\xcf\x83", "##\xcf\x83", "[", "]", "#", "##",
};

static struct mtl_tok *toks[4];

static void check(const struct mtl_tok *t, const char *s, size_t n, int flags,
		  size_t max_len, struct mtl_tok_enc *e)
{
	struct mtl_err err;
	size_t bl, bad = mtl_tok_utf8_next_bad(s, n, &bl);
	int rc = mtl_tok_encode(t, s, n, flags, max_len, e, &err);
	int specials = !(flags & MTL_TOK_NO_SPECIALS);

	if (rc < 0) {
		if (rc != MTL_ERR_FORMAT || e->n != 0 ||
		    (flags & MTL_TOK_REPLACE_INVALID) || bad == n)
			abort();
		return;
	}
	if (bad != n && !(flags & MTL_TOK_REPLACE_INVALID))
		abort();
	if (max_len && e->n > max_len)
		abort();
	if (specials && (e->n < 2 || e->ids[0] != 2 || e->ids[e->n - 1] != 3 ||
			 e->word_ids[0] != -1 || e->word_ids[e->n - 1] != -1))
		abort();
	for (size_t i = 0; i < e->n; i++) {
		if (e->ids[i] < 0 || e->ids[i] >= mtl_tok_vocab_size(t))
			abort();
		if (e->word_ids[i] < 0)
			continue;
		if (e->starts[i] < 0 || e->ends[i] > (int32_t)n ||
		    e->starts[i] >= e->ends[i] || e->word_ids[i] >= e->n_words)
			abort();
		if (i > 0 && e->word_ids[i - 1] > e->word_ids[i])
			abort();
	}
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct mtl_tok_enc e;
	struct mtl_tasks *ts;
	struct mtl_err err;
	unsigned char b;

	if (!toks[0]) {
		struct mtl_tok_opts o;
		for (int i = 0; i < 4; i++) {
			mtl_tok_opts_default(&o);
			o.lowercase = i != 1;
			o.strip_accents = i == 2 ? 0 : -1;
			o.chinese_chars = i != 3;
			o.clean_text = i != 3;
			o.max_input_chars = i == 3 ? 5 : 100;
			if (mtl_tok_new(&toks[i], vocab, sizeof(vocab) / sizeof(vocab[0]),
					&o, &err) < 0)
				abort();
		}
	}
	if (size == 0)
		return 0;
	b = data[0];
	mtl_tok_enc_init(&e);
	check(toks[b & 3], (const char *)data + 1, size - 1, (b >> 2) & 3,
	      (b >> 4) ? (size_t)(b >> 4) + 1 : 0, &e);
	/* the same struct reused for a second, different encode */
	check(toks[(b + 1) & 3], (const char *)data, size, MTL_TOK_REPLACE_INVALID,
	      0, &e);
	mtl_tok_enc_release(&e);
	if (mtl_task_parse(&ts, (const char *)data, size, "fuzz", &err) == 0)
		mtl_task_free(ts);
	return 0;
}
