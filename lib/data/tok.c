/*
 * tok.c - BERT WordPiece tokenizer matching Hugging Face's fast tokenizer;
 * see tok.h for the contract and docs/tokenize.md for the rules.
 *
 * Text is processed in one pass: each input code point goes through
 * cleaning, CJK spacing, NFD + mark stripping and lowercasing, and what
 * comes out is fed straight to the pre-tokenizer, which collects the
 * current word (code points with their source byte offsets) and hands
 * complete words to WordPiece.  ASCII takes a table-driven fast path.
 *
 * Character classes follow Unicode 8.0 where HF's Rust tables do: a
 * character that utf8proc (newer Unicode) calls punctuation, a
 * nonspacing mark or a control/format/private-use character, but that was
 * not yet assigned in Unicode 8.0 (tok_uni8.c), counts as unassigned.
 *
 * This file holds encoding and the trie's lookups; building the
 * vocabulary and loading a model directory are in tok_vocab.c
 * (tok_int.h).
 */
#include "tok_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "tok_uni8.h"

struct mtl_tok_scratch {
	uint32_t *cp;      /* current word: code points */
	int32_t *cs, *ce;  /* and their source byte ranges */
	size_t wn, wcap;
	char *wb;          /* the word as UTF-8 */
	int32_t *bpos;     /* byte offset of each char in wb, plus the end */
	size_t wbcap, bcap;
};

/* --- character classes --- */

enum { A_WORD, A_DROP, A_SPACE, A_PUNCT };

/*
 * What cleaning and pre-tokenisation make of each ASCII byte.  \v and \f
 * are Cc, which cleaning drops before whitespace is mapped to spaces.
 */
static const uint8_t ascii_tab[128] = {
	[0x00 ... 0x08] = A_DROP, ['\t'] = A_SPACE, ['\n'] = A_SPACE,
	[0x0B ... 0x0C] = A_DROP, ['\r'] = A_SPACE, [0x0E ... 0x1F] = A_DROP,
	[' '] = A_SPACE, [0x7F] = A_DROP,
	['!' ... '/'] = A_PUNCT, [':' ... '@'] = A_PUNCT,
	['[' ... '`'] = A_PUNCT, ['{' ... '~'] = A_PUNCT,
};

static inline int ascii_class(uint32_t c)
{
	return ascii_tab[c & 0x7F];
}

/* Rust char::is_whitespace: the White_Space property. */
static int is_white(uint32_t c)
{
	if (c < 0x80)
		return (c >= 0x09 && c <= 0x0D) || c == 0x20;
	return c == 0x85 || c == 0xA0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
	       c == 0x202F || c == 0x205F || c == 0x3000;
}

static int assigned8(uint32_t c)
{
	size_t lo = 0, hi = mtl_tok_uni8_n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c < mtl_tok_uni8_ranges[mid][0])
			hi = mid;
		else if (c > mtl_tok_uni8_ranges[mid][1])
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

/* General category as Unicode 8.0 had it (for the classes we test). */
static int cat8(uint32_t c)
{
	int cat = utf8proc_category((utf8proc_int32_t)c);

	switch (cat) {
	case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF:
	case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_MN:
	case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD:
	case UTF8PROC_CATEGORY_PS: case UTF8PROC_CATEGORY_PE:
	case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
	case UTF8PROC_CATEGORY_PO:
		return assigned8(c) ? cat : UTF8PROC_CATEGORY_CN;
	default:
		return cat;
	}
}

static int is_punct_cat(int cat)
{
	return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

/* The ranges HF's BertNormalizer pads with spaces (by code point). */
static int is_cjk(uint32_t c)
{
	return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
	       (c >= 0x20000 && c <= 0x2A6DF) ||
	       (c >= 0x2A700 && c <= 0x2B73F) ||
	       (c >= 0x2B740 && c <= 0x2B81F) ||
	       (c >= 0x2B920 && c <= 0x2CEAF) ||
	       (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/*
 * Decodes one strictly valid UTF-8 character at s[0..n) (n >= 1).  Returns
 * its length and sets *cp, or returns -k where k >= 1 is the length of the
 * maximal prefix of a valid sequence (the bytes one U+FFFD replaces).
 */
static int utf8_dec(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char b = s[0];
	int len, i;
	uint32_t c, lo = 0x80, hi = 0xBF;

	if (b < 0x80) {
		*cp = b;
		return 1;
	}
	if (b >= 0xC2 && b <= 0xDF) {
		len = 2;
		c = b & 0x1F;
	} else if (b >= 0xE0 && b <= 0xEF) {
		len = 3;
		c = b & 0x0F;
		if (b == 0xE0)
			lo = 0xA0;
		else if (b == 0xED)
			hi = 0x9F;
	} else if (b >= 0xF0 && b <= 0xF4) {
		len = 4;
		c = b & 0x07;
		if (b == 0xF0)
			lo = 0x90;
		else if (b == 0xF4)
			hi = 0x8F;
	} else {
		return -1;
	}
	for (i = 1; i < len; i++) {
		if ((size_t)i >= n || s[i] < lo || s[i] > hi)
			return -i;
		c = (c << 6) | (s[i] & 0x3F);
		lo = 0x80;
		hi = 0xBF;
	}
	*cp = c;
	return len;
}

static int utf8_enc(uint32_t c, char *o)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (char)(0xC0 | (c >> 6));
		o[1] = (char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (char)(0xE0 | (c >> 12));
		o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
		o[2] = (char)(0x80 | (c & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (c >> 18));
	o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
	o[3] = (char)(0x80 | (c & 0x3F));
	return 4;
}

/* --- vocabulary trie --- */

/* The child of node along byte b, or 0 when there is none. */
static uint32_t child(const struct mtl_tok *t, uint32_t node, unsigned char b)
{
	const struct tok_node *nd;

	if (node < 2)
		return t->root_child[node][b];
	nd = &t->nodes[node];
	for (uint32_t c = nd->first; c < nd->first + nd->n; c++)
		if (t->cb[c] == b)
			return c;
	return 0;
}

/* Id of the exact key s[0..n) under root cont, or -1. */
static int32_t lookup(const struct mtl_tok *t, const unsigned char *s,
		      size_t n, int cont)
{
	uint32_t node = (uint32_t)cont;

	for (size_t i = 0; i < n; i++)
		if (!(node = child(t, node, s[i])))
			return -1;
	return t->nodes[node].id;
}

/*
 * Longest entry under root cont that is a prefix of s[0..n) ending on a
 * character boundary: its id, and its length in *len; -1 when none.
 */
static int32_t longest(const struct mtl_tok *t, const unsigned char *s,
		       size_t n, int cont, size_t *len)
{
	uint32_t node = (uint32_t)cont;
	int32_t id = -1;

	for (size_t i = 0; i < n; i++) {
		if (!(node = child(t, node, s[i])))
			break;
		if (t->nodes[node].id >= 0 &&
		    (i + 1 == n || (s[i + 1] & 0xC0) != 0x80)) {
			id = t->nodes[node].id;
			*len = i + 1;
		}
	}
	return id;
}

int32_t mtl_tok_vocab_size(const struct mtl_tok *t) { return t->n_ids; }
int32_t mtl_tok_unk_id(const struct mtl_tok *t) { return t->unk; }
int32_t mtl_tok_pad_id(const struct mtl_tok *t) { return mtl_tok_id(t, "[PAD]"); }
uint64_t mtl_tok_vocab_hash(const struct mtl_tok *t) { return t->vocab_hash; }
long mtl_tok_max_length(const struct mtl_tok *t) { return t->max_length; }
void mtl_tok_get_opts(const struct mtl_tok *t, struct mtl_tok_opts *o)
{
	*o = t->o;
}

int32_t mtl_tok_id(const struct mtl_tok *t, const char *s)
{
	size_t n = strlen(s);

	const unsigned char *u = (const unsigned char *)s;

	if (n > 2 && s[0] == '#' && s[1] == '#')
		return lookup(t, u + 2, n - 2, 1);
	return lookup(t, u, n, 0);
}

const char *mtl_tok_piece(const struct mtl_tok *t, int32_t id)
{
	if (id < 0 || id >= t->n_ids)
		return NULL;
	return t->pool + t->piece_off[id];
}

/* --- encoding --- */

void mtl_tok_enc_init(struct mtl_tok_enc *e)
{
	memset(e, 0, sizeof(*e));
}

void mtl_tok_enc_release(struct mtl_tok_enc *e)
{
	if (!e)
		return;
	free(e->ids);
	free(e->word_ids);
	free(e->starts);
	free(e->ends);
	if (e->s) {
		free(e->s->cp);
		free(e->s->cs);
		free(e->s->ce);
		free(e->s->wb);
		free(e->s->bpos);
		free(e->s);
	}
	memset(e, 0, sizeof(*e));
}

/* Encoding state for one call. */
struct enc {
	const struct mtl_tok *t;
	struct mtl_tok_enc *e;
	struct mtl_tok_scratch *s;
	int32_t fixed_word;  /* >= 0: every word gets this index */
	int nfd;
	int oom;
};

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t nc = *cap ? *cap : 64;
	void *np;

	if (need <= *cap)
		return 0;
	while (nc < need)
		nc *= 2;
	np = realloc(*p, nc * elem);
	if (!np)
		return -1;
	*p = np;
	*cap = nc;
	return 0;
}

static void push(struct enc *x, int32_t id, int32_t wid, int32_t s, int32_t en)
{
	struct mtl_tok_enc *e = x->e;

	if (e->n == e->cap) {
		size_t nc = e->cap ? e->cap * 2 : 256;
		int32_t *a = realloc(e->ids, nc * sizeof(int32_t));
		if (a)
			e->ids = a;
		int32_t *b = realloc(e->word_ids, nc * sizeof(int32_t));
		if (b)
			e->word_ids = b;
		int32_t *c = realloc(e->starts, nc * sizeof(int32_t));
		if (c)
			e->starts = c;
		int32_t *d = realloc(e->ends, nc * sizeof(int32_t));
		if (d)
			e->ends = d;
		if (!a || !b || !c || !d) {
			x->oom = 1;
			return;
		}
		e->cap = nc;
	}
	e->ids[e->n] = id;
	e->word_ids[e->n] = wid;
	e->starts[e->n] = s;
	e->ends[e->n] = en;
	e->n++;
}

static int32_t next_word(struct enc *x)
{
	return x->fixed_word >= 0 ? x->fixed_word : x->e->n_words++;
}

/*
 * Pushes token id for characters [a, b) of the collected word.  Its span
 * runs from the earliest start to the latest end among them: NFD's
 * canonical reordering can move a later mark before an earlier one, so
 * the first character's start need not be the smallest.
 */
static void push_chars(struct enc *x, int32_t id, int32_t wid, size_t a,
		       size_t b)
{
	const struct mtl_tok_scratch *s = x->s;
	int32_t st = s->cs[a], en = s->ce[a];

	for (size_t i = a + 1; i < b; i++) {
		if (s->cs[i] < st)
			st = s->cs[i];
		if (s->ce[i] > en)
			en = s->ce[i];
	}
	push(x, id, wid, st, en);
}

/* WordPiece over the collected word, then empties it. */
static void flush(struct enc *x)
{
	struct mtl_tok_scratch *s = x->s;
	const struct mtl_tok *t = x->t;
	size_t n = s->wn, start = 0, mark = x->e->n;
	int32_t wid;

	if (n == 0)
		return;
	s->wn = 0;
	wid = next_word(x);
	if (n > (size_t)t->o.max_input_chars) {
		push_chars(x, t->unk, wid, 0, n);
		return;
	}
	if (grow((void **)&s->wb, &s->wbcap, 4 * n + 1, 1) < 0 ||
	    grow((void **)&s->bpos, &s->bcap, n + 1, sizeof(int32_t)) < 0) {
		x->oom = 1;
		return;
	}
	{
		int32_t b = 0;
		for (size_t i = 0; i < n; i++) {
			s->bpos[i] = b;
			b += utf8_enc(s->cp[i], s->wb + b);
		}
		s->bpos[n] = b;
	}
	while (start < n) {
		size_t end = start, blen = 0;
		int32_t id = longest(t, (const unsigned char *)s->wb + s->bpos[start],
				     (size_t)(s->bpos[n] - s->bpos[start]),
				     start > 0, &blen);
		if (id < 0) {
			x->e->n = mark;
			push_chars(x, t->unk, wid, 0, n);
			return;
		}
		while ((size_t)(s->bpos[end] - s->bpos[start]) < blen)
			end++;
		push_chars(x, id, wid, start, end);
		start = end;
	}
}

/* Appends c (source bytes [cs, ce)) to the current word. */
static void append(struct enc *x, uint32_t c, int32_t cs, int32_t ce)
{
	struct mtl_tok_scratch *s = x->s;
	size_t i;

	/*
	 * A word over the limit becomes one [UNK] whatever else it holds, so
	 * only its end offset matters: memory stays bounded on any input.
	 */
	if (s->wn > (size_t)x->t->o.max_input_chars) {
		if (ce > s->ce[s->wn - 1])
			s->ce[s->wn - 1] = ce;
		return;
	}
	if (s->wn == s->wcap) {
		size_t nc = s->wcap ? s->wcap * 2 : 64;
		uint32_t *a = realloc(s->cp, nc * sizeof(*a));
		if (a)
			s->cp = a;
		int32_t *b = realloc(s->cs, nc * sizeof(*b));
		if (b)
			s->cs = b;
		int32_t *d = realloc(s->ce, nc * sizeof(*d));
		if (d)
			s->ce = d;
		if (!a || !b || !d) {
			x->oom = 1;
			return;
		}
		s->wcap = nc;
	}
	i = s->wn++;
	/* NFD's canonical ordering: a mark moves before marks of higher class */
	if (x->nfd && c >= 0x300) {
		int cc = utf8proc_get_property((utf8proc_int32_t)c)->combining_class;
		while (cc && i > 0 && s->cp[i - 1] >= 0x300 &&
		       utf8proc_get_property((utf8proc_int32_t)s->cp[i - 1])
				       ->combining_class > cc) {
			s->cp[i] = s->cp[i - 1];
			s->cs[i] = s->cs[i - 1];
			s->ce[i] = s->ce[i - 1];
			i--;
		}
	}
	s->cp[i] = c;
	s->cs[i] = cs;
	s->ce[i] = ce;
}

/* The pre-tokenizer's view of one normalised character. */
static void pretok(struct enc *x, uint32_t c, int32_t cs, int32_t ce)
{
	if (is_white(c)) {
		flush(x);
	} else if ((c < 0x80 && ascii_class(c) == A_PUNCT) ||
		   (c >= 0x80 && is_punct_cat(cat8(c)))) {
		flush(x);
		append(x, c, cs, ce);
		flush(x);
	} else {
		append(x, c, cs, ce);
	}
}

static void lower_emit(struct enc *x, uint32_t c, int32_t cs, int32_t ce)
{
	if (x->t->o.lowercase) {
		if (c == 0x130) {
			pretok(x, 'i', cs, ce);
			c = 0x307;
		} else {
			c = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
		}
	}
	pretok(x, c, cs, ce);
}

/* Normalises one non-ASCII input character and feeds the result on. */
static void norm_char(struct enc *x, uint32_t c, int32_t cs, int32_t ce)
{
	const struct mtl_tok_opts *o = &x->t->o;
	int cjk;

	if (o->clean_text) {
		int cat;
		if (c == 0xFFFD)
			return;
		cat = cat8(c);
		if (cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
		    cat == UTF8PROC_CATEGORY_CO)
			return;
		if (is_white(c)) {
			flush(x);
			return;
		}
	}
	cjk = o->chinese_chars && is_cjk(c);
	if (cjk)
		flush(x);
	if (x->nfd) {
		utf8proc_int32_t d[32];
		int bc = 0;
		utf8proc_ssize_t k = utf8proc_decompose_char(
			(utf8proc_int32_t)c, d, 32, UTF8PROC_DECOMPOSE, &bc);
		if (k < 1 || k > 32) {
			d[0] = (utf8proc_int32_t)c;
			k = 1;
		}
		for (utf8proc_ssize_t i = 0; i < k; i++) {
			uint32_t dc = (uint32_t)d[i];
			if (dc >= 0x300 && cat8(dc) == UTF8PROC_CATEGORY_MN)
				continue;
			lower_emit(x, dc, cs, ce);
		}
	} else {
		lower_emit(x, c, cs, ce);
	}
	if (cjk)
		flush(x);
}

/* Whether a special token starts at p; its index, or -1. */
static int match_special(const struct mtl_tok *t, const char *p, size_t n)
{
	int best = -1;

	for (int i = 0; i < t->n_sp; i++)
		if (t->sp[i].len <= n && memcmp(p, t->sp[i].s, t->sp[i].len) == 0 &&
		    (best < 0 || t->sp[i].len > t->sp[best].len))
			best = i;
	return best;
}

/*
 * Tokenizes text[0..len) whose byte 0 is at offset base of the whole
 * input.  Returns 0 or MTL_ERR_FORMAT (invalid UTF-8 at byte *bad).
 */
static int run(struct enc *x, const char *text, size_t len, int32_t base,
	       int flags, size_t *bad)
{
	const struct mtl_tok *t = x->t;
	const unsigned char *u = (const unsigned char *)text;
	int lower = t->o.lowercase;
	size_t i = 0;

	while (i < len && !x->oom) {
		unsigned char b = u[i];
		int32_t pos = base + (int32_t)i;
		if (t->sp_first[b]) {
			int k = match_special(t, text + i, len - i);
			if (k >= 0) {
				flush(x);
				push(x, t->sp[k].id, next_word(x), pos,
				     pos + (int32_t)t->sp[k].len);
				i += t->sp[k].len;
				continue;
			}
		}
		if (b < 0x80) {
			switch (ascii_class(b)) {
			case A_DROP:
				if (!t->o.clean_text)
					pretok(x, b, pos, pos + 1);
				break;
			case A_SPACE:
				flush(x);
				break;
			case A_PUNCT:
				flush(x);
				append(x, b, pos, pos + 1);
				flush(x);
				break;
			default:
				append(x, lower && b >= 'A' && b <= 'Z' ? b + 32u : b,
				       pos, pos + 1);
			}
			i++;
			continue;
		}
		uint32_t c;
		int l = utf8_dec(u + i, len - i, &c);
		if (l < 0) {
			if (!(flags & MTL_TOK_REPLACE_INVALID)) {
				*bad = i;
				return MTL_ERR_FORMAT;
			}
			c = 0xFFFD;
			l = -l;
		}
		norm_char(x, c, pos, pos + l);
		i += (size_t)l;
	}
	flush(x);
	return 0;
}

static int setup(struct enc *x, const struct mtl_tok *t, struct mtl_tok_enc *e,
		 int flags, struct mtl_err *err)
{
	memset(x, 0, sizeof(*x));
	x->t = t;
	x->e = e;
	x->fixed_word = -1;
	x->nfd = t->o.strip_accents > 0;
	if (!e->s) {
		e->s = calloc(1, sizeof(*e->s));
		if (!e->s)
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	x->s = e->s;
	x->s->wn = 0;
	e->n = 0;
	e->n_words = 0;
	e->truncated = 0;
	e->words_lost = 0;
	e->unk = 0;
	if (!(flags & MTL_TOK_NO_SPECIALS))
		push(x, t->cls, -1, -1, -1);
	return 0;
}

static int finish_enc(struct enc *x, int flags, size_t max_len,
		      struct mtl_err *err)
{
	struct mtl_tok_enc *e = x->e;
	int specials = !(flags & MTL_TOK_NO_SPECIALS);

	if (max_len > 0 && specials && max_len < 2) {
		e->n = 0;
		return mtl_err_set(err, MTL_ERR_ARG,
				   "max length %zu leaves no room for [CLS] and [SEP]",
				   max_len);
	}
	if (max_len > 0 && e->n + (size_t)specials > max_len) {
		size_t keep = max_len - (size_t)specials;
		int32_t last = -2;
		for (size_t i = keep; i < e->n; i++)
			if (e->word_ids[i] != last) {
				last = e->word_ids[i];
				if (last >= 0)
					e->words_lost++;
			}
		e->n = keep;
		e->truncated = 1;
	}
	if (specials)
		push(x, x->t->sep, -1, -1, -1);
	if (x->oom) {
		e->n = 0;
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < e->n; i++)
		e->unk += e->ids[i] == x->t->unk;
	return 0;
}

int mtl_tok_encode(const struct mtl_tok *t, const char *text, size_t len,
		   int flags, size_t max_len, struct mtl_tok_enc *e,
		   struct mtl_err *err)
{
	struct enc x;
	size_t bad = 0;
	int rc;

	if (len > INT32_MAX - 8) {
		e->n = 0;
		return mtl_err_set(err, MTL_ERR_ARG, "text too long (%zu bytes)",
				   len);
	}
	rc = setup(&x, t, e, flags, err);
	if (rc < 0)
		return rc;
	rc = run(&x, text, len, 0, flags, &bad);
	if (rc < 0) {
		e->n = 0;
		return mtl_err_set(err, rc, "invalid UTF-8 at byte %zu", bad);
	}
	return finish_enc(&x, flags, max_len, err);
}

int mtl_tok_encode_words(const struct mtl_tok *t, const char *const *words,
			 size_t n, int flags, size_t max_len,
			 struct mtl_tok_enc *e, struct mtl_err *err)
{
	struct enc x;
	size_t bad = 0, base = 0;
	int rc;

	if (n > INT32_MAX / 2) {
		e->n = 0;
		return mtl_err_set(err, MTL_ERR_ARG, "too many words");
	}
	rc = setup(&x, t, e, flags, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(words[i]);
		if (len > INT32_MAX - 8 - base) {
			e->n = 0;
			return mtl_err_set(err, MTL_ERR_ARG, "text too long");
		}
		x.fixed_word = (int32_t)i;
		rc = run(&x, words[i], len, (int32_t)base, flags, &bad);
		if (rc < 0) {
			e->n = 0;
			return mtl_err_set(err, rc,
					   "word %zu: invalid UTF-8 at byte %zu",
					   i + 1, bad);
		}
		base += len + 1;
	}
	e->n_words = (int32_t)n;
	return finish_enc(&x, flags, max_len, err);
}

size_t mtl_tok_align(const struct mtl_tok_enc *e, const int32_t *word_labels,
		     size_t n_words, int32_t ignore, int32_t *out)
{
	size_t lost = 0, w = 0;

	for (size_t i = 0; i < e->n; i++) {
		int32_t wi = e->word_ids[i];
		int first = wi >= 0 && (size_t)wi < n_words &&
			    (i == 0 || e->word_ids[i - 1] != wi);
		out[i] = first ? word_labels[wi] : ignore;
	}
	/* word ids rise monotonically: walk them to find words with no token */
	for (size_t i = 0; i <= e->n; i++) {
		size_t upto = n_words;
		if (i < e->n) {
			if (e->word_ids[i] < 0)
				continue;
			upto = (size_t)e->word_ids[i];
		}
		for (; w < upto && w < n_words; w++)
			lost += word_labels[w] != ignore;
		if (i < e->n && w == upto)
			w = upto + 1;
	}
	return lost;
}

size_t mtl_tok_utf8_next_bad(const char *s, size_t n, size_t *bad_len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		uint32_t c;
		int l;
		if (u[i] < 0x80) {
			i++;
			continue;
		}
		l = utf8_dec(u + i, n - i, &c);
		if (l < 0) {
			*bad_len = (size_t)-l;
			return i;
		}
		i += (size_t)l;
	}
	*bad_len = 0;
	return n;
}

int mtl_tok_pair_lengths(size_t *na, size_t *nb, size_t max_len)
{
	size_t room, *shorter, *longer, keep_s, keep_l;

	if (!max_len)
		return 0;
	if (max_len < 3)
		return MTL_ERR_ARG;
	room = max_len - 3;
	if (*na + *nb <= room)
		return 0;
	/* as tokenizers' truncate_encodings: a is "shorter" on a tie */
	shorter = *na > *nb ? nb : na;
	longer = *na > *nb ? na : nb;
	keep_s = *shorter;
	if (keep_s > room)
		keep_l = keep_s;
	else
		keep_l = keep_s > room - keep_s ? keep_s : room - keep_s;
	if (keep_s + keep_l > room) {
		keep_s = room / 2;
		keep_l = room / 2 + room % 2;
	}
	if (*shorter > keep_s)
		*shorter = keep_s;
	if (*longer > keep_l)
		*longer = keep_l;
	return 1;
}
