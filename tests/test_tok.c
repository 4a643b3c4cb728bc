/*
 * test_tok.c - the WordPiece tokenizer: every line of the Hugging Face
 * reference files in fixtures/tokref, over the bge tokenizer files in
 * fixtures/bge-tokenizer (agreement per file; any mismatch fails), the
 * plain-text cases of tests/tok-cases.txt over a small vocabulary built
 * here, and word ids, offsets, truncation and invalid UTF-8 handling.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "t.h"
#include "tok.h"

/* The small vocabulary of tests/tok-cases.txt: id = index. */
static const char *const small_vocab[] = {
	"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
	"hello", "world", ",", "!", "un", "##aff", "##able", "a", "##b",
	"cafe", "i", "\xe4\xb8\xad", "##s", ".", "'", "t", "don", "the",
	"##e", "b", "x", "##x", "-", "\xe2\x80\x94", "naive", "e", "##a",
	"\xcf\x83", "##\xcf\x83", "\xce\xb1", "#", "##hello",
};

static int check_ref(const struct mtl_tok *t, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, lines = 0, agree = 0, shown = 0;
	ssize_t n;
	struct mtl_tok_enc e;
	struct mtl_err err;

	if (!f) {
		T_OK(0, "open %s", path);
		return -1;
	}
	mtl_tok_enc_init(&e);
	while ((n = getline(&line, &cap, f)) > 0) {
		json_error_t je;
		json_t *j = json_loadb(line, (size_t)n, 0, &je), *ids;
		const char *text;
		size_t tlen, k;
		int same;

		lines++;
		text = json_string_value(json_object_get(j, "text"));
		tlen = json_string_length(json_object_get(j, "text"));
		ids = json_object_get(j, "ids");
		if (!text || !json_is_array(ids)) {
			T_OK(0, "%s:%zu: parse reference line", path, lines);
			json_decref(j);
			continue;
		}
		same = mtl_tok_encode(t, text, tlen, 0, 0, &e, &err) == 0 &&
		       e.n == json_array_size(ids);
		for (k = 0; same && k < e.n; k++)
			same = e.ids[k] == json_integer_value(json_array_get(ids, k));
		if (same) {
			agree++;
		} else if (shown++ < 5) {
			char *want = json_dumps(json_object_get(j, "tokens"), 0);
			T_NOTE("%s:%zu: mismatch: want %s", path, lines, want);
			printf("#   got:");
			for (k = 0; k < e.n; k++)
				printf(" %s", mtl_tok_piece(t, e.ids[k]));
			printf("\n");
			free(want);
		}
		json_decref(j);
	}
	free(line);
	fclose(f);
	mtl_tok_enc_release(&e);
	T_OK(lines > 0 && agree == lines, "%s: %zu/%zu lines agree (%.2f%%)",
	     path, agree, lines, lines ? 100.0 * (double)agree / (double)lines : 0);
	return 0;
}

static void test_reference(void)
{
	struct mtl_tok *t;
	struct mtl_err err;

	if (!T_OK(mtl_tok_load(&t, "fixtures/bge-tokenizer",
			       &err) == 0, "load bge tokenizer")) {
		T_NOTE("%s", err.msg);
		return;
	}
	T_OK(mtl_tok_vocab_size(t) == 30522, "bge vocab size 30522");
	T_OK(mtl_tok_max_length(t) == 512, "bge max length 512");
	check_ref(t, "fixtures/tokref/golden-tricky.jsonl");
	check_ref(t, "fixtures/tokref/golden-data.jsonl");
	mtl_tok_free(t);
}

/* Reads tok-cases.txt: JSON text line, pieces line, ids line. */
static void test_cases(const struct mtl_tok *t)
{
	FILE *f = fopen("tests/tok-cases.txt", "r");
	char *l[3] = { NULL, NULL, NULL };
	size_t cap[3] = { 0, 0, 0 }, lineno = 0;
	struct mtl_tok_enc e;
	struct mtl_err err;
	int cases = 0;

	if (!T_OK(f != NULL, "open tests/tok-cases.txt"))
		return;
	mtl_tok_enc_init(&e);
	for (;;) {
		ssize_t n = getline(&l[0], &cap[0], f);
		size_t at;
		json_error_t je;
		json_t *j;
		char got_p[1024] = "", got_i[1024] = "";

		if (n < 0)
			break;
		lineno++;
		if (l[0][0] != '"')
			continue; /* blank line or comment */
		at = lineno;
		if (getline(&l[1], &cap[1], f) < 0 || getline(&l[2], &cap[2], f) < 0) {
			T_OK(0, "tok-cases.txt:%zu: incomplete case", at);
			break;
		}
		lineno += 2;
		l[1][strcspn(l[1], "\n")] = 0;
		l[2][strcspn(l[2], "\n")] = 0;
		j = json_loads(l[0], JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
		if (!T_OK(json_is_string(j), "tok-cases.txt:%zu: text is a JSON string", at))
			continue;
		if (mtl_tok_encode(t, json_string_value(j), json_string_length(j),
				   MTL_TOK_NO_SPECIALS, 0, &e, &err) < 0)
			snprintf(got_p, sizeof(got_p), "error: %s", err.msg);
		for (size_t k = 0; k < e.n; k++) {
			size_t a = strlen(got_p), b = strlen(got_i);
			snprintf(got_p + a, sizeof(got_p) - a, "%s%s", k ? " " : "",
				 mtl_tok_piece(t, e.ids[k]));
			snprintf(got_i + b, sizeof(got_i) - b, "%s%d", k ? " " : "",
				 e.ids[k]);
		}
		cases++;
		if (!T_OK(strcmp(got_p, l[1]) == 0 && strcmp(got_i, l[2]) == 0,
			  "tok-cases.txt:%zu: %s", at, l[0][0] ? l[1] : ""))
			T_NOTE("want '%s' / '%s', got '%s' / '%s'", l[1], l[2],
			       got_p, got_i);
		json_decref(j);
	}
	T_OK(cases >= 20, "tok-cases.txt has %d cases", cases);
	for (int i = 0; i < 3; i++)
		free(l[i]);
	fclose(f);
	mtl_tok_enc_release(&e);
}

static int ids_are(const struct mtl_tok_enc *e, const int32_t *w, size_t n)
{
	if (e->n != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (e->ids[i] != w[i])
			return 0;
	return 1;
}

static int arr_is(const int32_t *a, size_t an, const int32_t *w, size_t n)
{
	return an == n && memcmp(a, w, n * sizeof(*a)) == 0;
}

static void test_api(const struct mtl_tok *t)
{
	struct mtl_tok_enc e;
	struct mtl_err err;
	const char *txt = "Hello, unaffable world!";

	mtl_tok_enc_init(&e);
	/* [CLS] hello , un ##aff ##able world ! [SEP] */
	T_OK(mtl_tok_encode(t, txt, strlen(txt), 0, 0, &e, &err) == 0, "encode");
	{
		int32_t ids[] = { 2, 5, 7, 9, 10, 11, 6, 8, 3 };
		int32_t wid[] = { -1, 0, 1, 2, 2, 2, 3, 4, -1 };
		int32_t st[] = { -1, 0, 5, 7, 9, 12, 17, 22, -1 };
		int32_t en[] = { -1, 5, 6, 9, 12, 16, 22, 23, -1 };
		T_OK(ids_are(&e, ids, 9), "ids with [CLS] [SEP]");
		T_OK(arr_is(e.word_ids, e.n, wid, 9), "word ids");
		T_OK(arr_is(e.starts, e.n, st, 9) && arr_is(e.ends, e.n, en, 9),
		     "byte offsets");
		T_OK(e.n_words == 5 && !e.truncated && e.unk == 0, "n_words 5");
	}
	/* truncation keeps [SEP]; "unaffable" loses ##able: one word lost */
	T_OK(mtl_tok_encode(t, txt, strlen(txt), 0, 6, &e, &err) == 0,
	     "encode truncated");
	{
		int32_t ids[] = { 2, 5, 7, 9, 10, 3 };
		T_OK(ids_are(&e, ids, 6), "truncated to 6 with [SEP] last");
		T_OK(e.truncated && e.words_lost == 3, "3 words lost (%d)",
		     e.words_lost);
	}
	T_OK(mtl_tok_encode(t, txt, strlen(txt), 0, 1, &e, &err) == MTL_ERR_ARG,
	     "max length 1 is refused");
	/* a special token inside text is matched before normalisation */
	{
		const char *s = "a[SEP]b x";
		int32_t ids[] = { 2, 12, 3, 24, 25, 3 };
		int32_t wid[] = { -1, 0, 1, 2, 3, -1 };
		T_OK(mtl_tok_encode(t, s, strlen(s), 0, 0, &e, &err) == 0 &&
		     ids_are(&e, ids, 6) && arr_is(e.word_ids, e.n, wid, 6),
		     "special token in text, word ids");
	}
	/* invalid UTF-8: error naming the byte, or dropped U+FFFD */
	{
		const char bad[] = "hello \xc3\x28 world";
		T_OK(mtl_tok_encode(t, bad, sizeof(bad) - 1, 0, 0, &e, &err) ==
		     MTL_ERR_FORMAT && e.n == 0, "invalid UTF-8 is an error");
		T_OK(strcmp(err.msg, "invalid UTF-8 at byte 6") == 0,
		     "error names the byte: '%s'", err.msg);
		int32_t ids[] = { 2, 5, 1, 6, 3 };  /* "(" is not in the vocab */
		T_OK(mtl_tok_encode(t, bad, sizeof(bad) - 1,
				    MTL_TOK_REPLACE_INVALID, 0, &e, &err) == 0 &&
		     ids_are(&e, ids, 5), "replaced and dropped");
		const char trunc[] = "a\xe4\xb8";
		T_OK(mtl_tok_encode(t, trunc, sizeof(trunc) - 1, 0, 0, &e, &err) ==
		     MTL_ERR_FORMAT, "truncated sequence at the end");
		const char sur[] = "\xed\xa0\x80";
		T_OK(mtl_tok_encode(t, sur, 3, 0, 0, &e, &err) == MTL_ERR_FORMAT,
		     "surrogate rejected");
		const char over[] = "\xc0\xaf";
		T_OK(mtl_tok_encode(t, over, 2, 0, 0, &e, &err) == MTL_ERR_FORMAT,
		     "overlong rejected");
	}
	/* pre-split words: word ids are the caller's, offsets in the join */
	{
		const char *w[] = { "Hello", "don't", "world" };
		int32_t ids[] = { 2, 5, 21, 19, 20, 6, 3 };
		int32_t wid[] = { -1, 0, 1, 1, 1, 2, -1 };
		int32_t st[] = { -1, 0, 6, 9, 10, 12, -1 };
		T_OK(mtl_tok_encode_words(t, w, 3, 0, 0, &e, &err) == 0 &&
		     ids_are(&e, ids, 7) && arr_is(e.word_ids, e.n, wid, 7) &&
		     arr_is(e.starts, e.n, st, 7) && e.n_words == 3,
		     "encode_words");
		const char *bw[] = { "ok", "\xff" };
		T_OK(mtl_tok_encode_words(t, bw, 2, 0, 0, &e, &err) ==
		     MTL_ERR_FORMAT && strstr(err.msg, "word 2") != NULL,
		     "invalid word named: '%s'", err.msg);
	}
	/* an over-long word is one [UNK] spanning all of it */
	{
		char big[5001];
		memset(big, 'x', 5000);
		big[5000] = 0;
		big[0] = ' ';
		T_OK(mtl_tok_encode(t, big, 5000, 0, 0, &e, &err) == 0 && e.n == 3 &&
		     e.ids[1] == 1 && e.starts[1] == 1 && e.ends[1] == 5000 &&
		     e.unk == 1, "long word: one [UNK] over bytes 1..5000");
	}
	/* word labels to token labels: first pieces only; lost words counted */
	{
		const char *w[] = { "unaffable", "\xe2\x80\x8b", "a", "hello" };
		int32_t wl[] = { 7, 8, -100, 9 }, out[16];
		int32_t want[] = { -100, 7, -100, -100, -100, 9, -100 };
		T_OK(mtl_tok_encode_words(t, w, 4, 0, 0, &e, &err) == 0 && e.n == 7 &&
		     mtl_tok_align(&e, wl, 4, -100, out) == 1 &&
		     arr_is(out, e.n, want, 7),
		     "align: zero-width word lost, unlabelled word ignored");
		T_OK(mtl_tok_encode_words(t, w, 4, 0, 4, &e, &err) == 0 &&
		     mtl_tok_align(&e, wl, 4, -100, out) == 2 && out[1] == 7,
		     "align after truncation: the cut labelled word is lost too");
	}
	{
		size_t bl;
		T_OK(mtl_tok_utf8_next_bad("ab\xe4\xb8x", 5, &bl) == 2 && bl == 2 &&
		     mtl_tok_utf8_next_bad("ab", 2, &bl) == 2 && bl == 0,
		     "utf8_next_bad: offset and maximal subpart");
	}
	/* an empty text is just [CLS] [SEP] */
	T_OK(mtl_tok_encode(t, "", 0, 0, 0, &e, &err) == 0 && e.n == 2,
	     "empty text");
	T_OK(mtl_tok_id(t, "##aff") == 10 && mtl_tok_id(t, "aff") == -1 &&
	     mtl_tok_id(t, "[MASK]") == 4, "mtl_tok_id");
	T_OK(mtl_tok_piece(t, 36) && strcmp(mtl_tok_piece(t, 36), "##hello") == 0 &&
	     mtl_tok_piece(t, 37) == NULL && mtl_tok_piece(t, -1) == NULL,
	     "mtl_tok_piece");
	mtl_tok_enc_release(&e);
	mtl_tok_enc_release(&e); /* a released enc may be released again */
}

static void test_options(void)
{
	struct mtl_tok *t;
	struct mtl_tok_opts o;
	struct mtl_tok_enc e;
	struct mtl_err err;
	int rc;
	const char *v[] = { "[UNK]", "[CLS]", "[SEP]", "Caf\xc3\xa9", "caf",
			    "##\xc3\xa9", "cafe", "Cafe" };

	mtl_tok_opts_default(&o);
	o.lowercase = 0;
	mtl_tok_enc_init(&e);
	T_OK(mtl_tok_new(&t, v, 8, &o, &err) == 0, "new cased tokenizer");
	T_OK(mtl_tok_encode(t, "Caf\xc3\xa9", 5, MTL_TOK_NO_SPECIALS, 0, &e, &err) == 0 &&
	     e.n == 1 && e.ids[0] == 3, "cased: accents kept, case kept");
	mtl_tok_free(t);
	o.lowercase = 1;
	o.strip_accents = 0;
	T_OK(mtl_tok_new(&t, v, 8, &o, &err) == 0, "new lowercase, accents kept");
	T_OK(mtl_tok_encode(t, "CAF\xc3\x89", 6, MTL_TOK_NO_SPECIALS, 0, &e, &err) == 0 &&
	     e.n == 2 && e.ids[0] == 4 && e.ids[1] == 5, "lowercased, accent kept");
	mtl_tok_free(t);
	T_OK(mtl_tok_new(&t, v, 3, NULL, &err) == 0, "defaults");
	/*
	 * U+1D16D (class 226) then U+1D165 (class 216): NFD's canonical
	 * ordering swaps them, and the [UNK] they give must still span both
	 * characters' bytes, not the empty [4, 4) (found by fuzz_tok).
	 */
	rc = mtl_tok_encode(t, "\xf0\x9d\x85\xad\xf0\x9d\x85\xa5", 8,
			    MTL_TOK_NO_SPECIALS, 0, &e, &err);
	T_OK(rc == 0 && e.n == 1 && e.ids[0] == 0 && e.starts[0] == 0 &&
	     e.ends[0] == 8, "reordered marks: [UNK] spans the whole word (%d..%d)",
	     e.n ? e.starts[0] : -1, e.n ? e.ends[0] : -1);
	mtl_tok_free(t);
	T_OK(mtl_tok_new(&t, v + 1, 2, NULL, &err) == MTL_ERR_FORMAT &&
	     strstr(err.msg, "[UNK]"), "vocab without [UNK] refused: '%s'",
	     err.msg);
	T_OK(mtl_tok_load(&t, "/nonexistent", &err) == MTL_ERR_IO,
	     "load of a missing dir fails: '%s'", err.msg);
	mtl_tok_free(NULL);
	mtl_tok_enc_release(&e);
}

static void put_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* A model directory with tokenizer.json only, then with overrides. */
static void test_load_dirs(void)
{
	char dir[] = "/tmp/mtl-test-tok-XXXXXX";
	struct mtl_tok *t = NULL;
	struct mtl_tok_enc e;
	struct mtl_err err;
	struct mtl_tok_opts o;
	char path[512];

	if (!T_OK(mkdtemp(dir) != NULL, "temp dir"))
		return;
	mtl_tok_enc_init(&e);
	put_file(dir, "tokenizer.json",
	      "{\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\"},"
	      " {\"id\": 3, \"content\": \"[CLS]\"}],"
	      " \"normalizer\": {\"type\": \"BertNormalizer\", \"lowercase\": false,"
	      "  \"strip_accents\": null, \"clean_text\": true, \"handle_chinese_chars\": true},"
	      " \"model\": {\"type\": \"WordPiece\", \"max_input_chars_per_word\": 4, \"unk_token\": \"<unk>\","
	      "  \"vocab\": {\"[UNK]\": 1, \"<unk>\": 0, \"[SEP]\": 2, \"[CLS]\": 3,"
	      "  \"Ab\": 4, \"##c\": 5, \"ab\": 6}}}");
	T_OK(mtl_tok_load(&t, dir, &err) == 0, "load tokenizer.json only: %s",
	     err.msg);
	if (t) {
		mtl_tok_get_opts(t, &o);
		T_OK(mtl_tok_vocab_size(t) == 7 && o.lowercase == 0 &&
		     o.strip_accents == 0 && o.max_input_chars == 4,
		     "vocab and options from tokenizer.json");
		/* <unk> is special (added_tokens); [SEP] is not listed: plain text */
		T_OK(mtl_tok_encode(t, "Abc<unk>abcde ab", 16, MTL_TOK_NO_SPECIALS,
				    0, &e, &err) == 0 && e.n == 5 &&
		     e.ids[0] == 4 && e.ids[1] == 5 && e.ids[2] == 0 &&
		     e.ids[3] == 0 && e.ids[4] == 6 && mtl_tok_unk_id(t) == 0,
		     "cased, added tokens special, 4-char limit, model.unk_token");
		T_OK(mtl_tok_encode(t, "[SEP]", 5, MTL_TOK_NO_SPECIALS, 0, &e,
				    &err) == 0 && e.n == 3 && e.unk == 3,
		     "a special not in added_tokens is text");
		mtl_tok_free(t);
		t = NULL;
	}
	put_file(dir, "tokenizer_config.json",
	      "{\"do_lower_case\": true, \"model_max_length\": 1000000000000000019884624838656}");
	put_file(dir, "config.json", "{\"max_position_embeddings\": 64}");
	T_OK(mtl_tok_load(&t, dir, &err) == 0, "load with tokenizer_config.json");
	if (t) {
		mtl_tok_get_opts(t, &o);
		T_OK(o.lowercase == 1 && o.strip_accents == 1 &&
		     mtl_tok_max_length(t) == 64,
		     "do_lower_case overrides; huge model_max_length ignored, 64 from config.json");
		mtl_tok_free(t);
		t = NULL;
	}
	put_file(dir, "config.json", "{\"max_position_embeddings\": 64");
	T_OK(mtl_tok_load(&t, dir, &err) == MTL_ERR_FORMAT &&
	     strstr(err.msg, "config.json:1:"), "bad JSON named with its position: '%s'",
	     err.msg);
	put_file(dir, "config.json", "{}");
	put_file(dir, "vocab.txt", "[UNK]\r\n[CLS]\r\n[SEP]\r\nab\r\n");
	T_OK(mtl_tok_load(&t, dir, &err) == MTL_ERR_FORMAT &&
	     strstr(err.msg, "added_tokens[0]"),
	     "added token missing from vocab.txt refused: '%s'", err.msg);
	put_file(dir, "tokenizer.json", "{}");
	T_OK(mtl_tok_load(&t, dir, &err) == 0 && mtl_tok_vocab_size(t) == 4 &&
	     mtl_tok_id(t, "ab") == 3, "vocab.txt wins, CRLF line ends stripped");
	mtl_tok_free(t);
	t = NULL;
	/* another model's vocabulary, even beside a vocab.txt, is refused */
	put_file(dir, "tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}");
	T_OK(mtl_tok_load(&t, dir, &err) == MTL_ERR_FORMAT &&
	     strstr(err.msg, "tokenizer.json: unsupported tokenizer model 'BPE' (mtl implements WordPiece only)"),
	     "a BPE tokenizer.json refused: '%s'", err.msg);
	put_file(dir, "tokenizer.json", "{\"model\": {\"type\": \"Unigram\"}}");
	T_OK(mtl_tok_load(&t, dir, &err) == MTL_ERR_FORMAT &&
	     strstr(err.msg, "unsupported tokenizer model 'Unigram'"),
	     "a Unigram tokenizer.json refused: '%s'", err.msg);
	put_file(dir, "tokenizer.json", "{\"model\": {\"vocab\": {}}}");
	T_OK(mtl_tok_load(&t, dir, &err) == MTL_ERR_FORMAT &&
	     strstr(err.msg, "unsupported tokenizer model '?'"),
	     "a model without a type refused: '%s'", err.msg);
	put_file(dir, "tokenizer.json", "{}");
	put_file(dir, "vocab.txt", "[UNK]\n\xc3\n[SEP]\n[CLS]\n");
	T_OK(mtl_tok_load(&t, dir, &err) == MTL_ERR_FORMAT &&
	     strstr(err.msg, "vocab.txt: line 2: invalid UTF-8 or a NUL byte"),
	     "a vocab.txt line that is not UTF-8 refused: '%s'", err.msg);
	snprintf(path, sizeof(path), "%s/vocab.txt", dir);
	remove(path);
	put_file(dir, "tokenizer.json",
		 "{\"model\": {\"type\": \"WordPiece\", \"vocab\": "
		 "{\"[UNK]\": 0, \"[CLS]\": 1, \"[SEP]\": 2, \"a\": 3, \"b\": 3}}}");
	T_OK(mtl_tok_load(&t, dir, &err) == MTL_ERR_FORMAT &&
	     strstr(err.msg, "model.vocab: 'a' and 'b' both have id 3"),
	     "two tokens on one id refused: '%s'", err.msg);
	mtl_tok_free(t);
	for (const char *const *n = (const char *const[]){ "tokenizer.json",
		"tokenizer_config.json", "config.json", "vocab.txt", NULL }; *n; n++) {
		snprintf(path, sizeof(path), "%s/%s", dir, *n);
		remove(path);
	}
	rmdir(dir);
	mtl_tok_enc_release(&e);
}

/*
 * Pair truncation, longest first, worked by hand with the tokenizers
 * library's rule (R = max - 3 tokens of room): only the longer text is cut
 * when it fits beside the shorter; else both go to R / 2, the longer (on
 * a tie, the second) keeping the odd token.
 */
static void test_pair_lengths(void)
{
	static const struct { size_t a, b, max, want_a, want_b; int rc; } c[] = {
		{ 7, 5, 12, 5, 4, 1 },   /* R 9: both cut; a, the longer, gets 5 */
		{ 10, 4, 17, 10, 4, 0 }, /* fits: 10 + 4 + 3 */
		{ 10, 4, 10, 4, 3, 1 },  /* R 7: both cut; a gets the odd one */
		{ 5, 5, 8, 2, 3, 1 },    /* a tie: b keeps the odd token */
		{ 4, 6, 8, 2, 3, 1 },    /* b the longer: b keeps it */
		{ 6, 4, 8, 3, 2, 1 },    /* a the longer: a keeps it */
		{ 3, 20, 12, 3, 6, 1 },  /* only the longer is cut: 9 - 3 */
		{ 0, 9, 5, 0, 2, 1 },    /* an empty first text: b alone */
		{ 3, 3, 3, 0, 0, 1 },    /* room for the specials only */
		{ 900, 2, 0, 900, 2, 0 }, /* 0: no limit */
		/* docs/tasks.md's table, L = 8 */
		{ 4, 4, 8, 2, 3, 1 }, { 6, 1, 8, 4, 1, 1 }, { 2, 7, 8, 2, 3, 1 },
		{ 7, 5, 8, 3, 2, 1 },
	};
	size_t a = 4, b = 4;

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t na = c[i].a, nb = c[i].b;
		int rc = mtl_tok_pair_lengths(&na, &nb, c[i].max);

		T_OK(rc == c[i].rc && na == c[i].want_a && nb == c[i].want_b,
		     "pair lengths: %zu + %zu to %zu gives %zu + %zu (%zu + %zu)",
		     c[i].a, c[i].b, c[i].max, c[i].want_a, c[i].want_b, na, nb);
	}
	T_OK(mtl_tok_pair_lengths(&a, &b, 2) == MTL_ERR_ARG && a == 4 && b == 4,
	     "pair lengths: below 3 there is no room for the specials");
}

int main(void)
{
	struct mtl_tok *t;
	struct mtl_err err;

	if (!T_OK(mtl_tok_new(&t, small_vocab,
			      sizeof(small_vocab) / sizeof(small_vocab[0]),
			      NULL, &err) == 0, "small vocab"))
		return t_done();
	test_api(t);
	test_cases(t);
	test_pair_lengths();
	mtl_tok_free(t);
	test_options();
	test_load_dirs();
	test_reference();
	return t_done();
}
