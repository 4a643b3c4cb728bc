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
 */
#include "tok.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <utf8proc.h>

#include "tok_uni8.h"

#define TOK_MAX_SPECIALS 64
#define TOK_MAX_FILE ((size_t)1 << 30)

/*
 * The vocabulary is a byte trie (node 0: root of plain entries, node 1:
 * root of "##" continuations, stored without the prefix), so WordPiece
 * finds the longest matching piece in one walk over the word rather than
 * by hashing every candidate prefix.  The children of a node are the
 * consecutive nodes [first, first + n), cb[c] is the byte on the edge into
 * node c, and blocks are laid out depth-first so that a walk stays in
 * nearby memory.  The roots have direct 256-entry tables.
 */
struct tok_node {
	uint32_t first; /* first child */
	uint32_t n;     /* number of children */
	int32_t id;     /* entry ending here, or -1 */
};

struct tok_special {
	const char *s; /* in t->pool */
	size_t len;
	int32_t id;
};

struct mtl_tok {
	struct mtl_tok_opts o;
	char *pool;          /* every entry, NUL-terminated */
	size_t pool_len;
	uint32_t *piece_off; /* id -> offset in pool, UINT32_MAX: no entry */
	int32_t n_ids;
	struct tok_node *nodes;
	uint8_t *cb;
	uint32_t n_nodes;
	uint32_t root_child[2][256]; /* 0: none */
	struct tok_special sp[TOK_MAX_SPECIALS];
	int n_sp;
	uint8_t sp_first[256];
	int32_t unk, cls, sep;
	uint64_t vocab_hash;
	long max_length;
};

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

/*
 * The trie under construction: nodes in order of creation, edges in an
 * open addressing table keyed by (parent, byte).
 */
struct trie_build {
	uint64_t *edges;  /* (key << 32 | child), key = (parent << 8 | byte) + 1 */
	size_t mask;
	uint32_t *parent;
	uint8_t *byte;
	int32_t *id;
	uint32_t n;
};

static size_t tb_slot(const struct trie_build *b, uint32_t key)
{
	return (size_t)(((uint64_t)key * 0x9E3779B97F4A7C15ULL) >> 32) & b->mask;
}

/* Adds key s[0..len) under root cont; a later duplicate replaces the id. */
static void tb_insert(struct trie_build *b, const unsigned char *s,
		      size_t len, int cont, int32_t id)
{
	uint32_t node = (uint32_t)cont;

	for (size_t i = 0; i < len; i++) {
		uint32_t key = (node << 8 | s[i]) + 1, c = 0;
		size_t k;
		for (k = tb_slot(b, key); b->edges[k]; k = (k + 1) & b->mask)
			if ((uint32_t)(b->edges[k] >> 32) == key) {
				c = (uint32_t)b->edges[k];
				break;
			}
		if (!c) {
			c = b->n++;
			b->parent[c] = node;
			b->byte[c] = s[i];
			b->id[c] = -1;
			b->edges[k] = (uint64_t)key << 32 | c;
		}
		node = c;
	}
	b->id[node] = id;
}

/* Lays the built trie out breadth-first into t; 0 or MTL_ERR_NOMEM. */
static int tb_compact(struct mtl_tok *t, const struct trie_build *b)
{
	uint32_t n = b->n, *start = calloc((size_t)n + 1, sizeof(uint32_t));
	uint32_t *kids = malloc((size_t)n * sizeof(uint32_t));
	uint32_t *order = malloc((size_t)n * sizeof(uint32_t));
	uint32_t *fill = malloc(((size_t)n + 1) * sizeof(uint32_t));
	uint32_t next = 2;
	int rc = 0;

	t->nodes = malloc((size_t)n * sizeof(*t->nodes));
	t->cb = calloc(n, 1);
	if (!start || !kids || !order || !fill || !t->nodes || !t->cb) {
		rc = MTL_ERR_NOMEM;
		goto out;
	}
	/* children of each node, grouped by parent, each group by byte */
	for (uint32_t c = 2; c < n; c++)
		start[b->parent[c] + 1]++;
	for (uint32_t v = 0; v < n; v++)
		start[v + 1] += start[v];
	memcpy(fill, start, ((size_t)n + 1) * sizeof(uint32_t));
	for (uint32_t c = 2; c < n; c++) {
		uint32_t at = fill[b->parent[c]]++;
		while (at > start[b->parent[c]] && b->byte[kids[at - 1]] > b->byte[c]) {
			kids[at] = kids[at - 1];
			at--;
		}
		kids[at] = c;
	}
	/*
	 * Depth-first: a popped node gets its children's block next, so a walk
	 * down the trie stays in nearby memory.  order[] is the stack of
	 * (old, new) node pairs still to lay out.
	 */
	order[0] = 1;
	fill[0] = 1;
	order[1] = 0;
	fill[1] = 0;
	for (uint32_t top = 2; top > 0;) {
		uint32_t v = order[--top], i = fill[top];
		t->nodes[i] = (struct tok_node){ next, start[v + 1] - start[v], b->id[v] };
		for (uint32_t k = start[v]; k < start[v + 1]; k++) {
			t->cb[next + k - start[v]] = b->byte[kids[k]];
			if (i < 2)
				t->root_child[i][b->byte[kids[k]]] = next + k - start[v];
		}
		for (uint32_t k = start[v + 1]; k > start[v]; k--) {
			order[top] = kids[k - 1];
			fill[top++] = next + (k - 1 - start[v]);
		}
		next += start[v + 1] - start[v];
	}
	t->n_nodes = n;
out:
	free(start);
	free(kids);
	free(order);
	free(fill);
	return rc;
}

void mtl_tok_opts_default(struct mtl_tok_opts *o)
{
	o->lowercase = 1;
	o->strip_accents = -1;
	o->chinese_chars = 1;
	o->clean_text = 1;
	o->max_input_chars = 100;
}

/*
 * Builds t's tables from n entries given as (ptr, len) pairs; the
 * specials are added by the caller afterwards.
 */
static int build_vocab(struct mtl_tok *t, const char *const *v,
		       const size_t *lens, size_t n, struct mtl_err *err)
{
	struct trie_build b = { 0 };
	size_t total = 0, cap = 16;
	uint64_t h = 0xcbf29ce484222325ULL;
	int rc = 0;

	if (n == 0)
		return mtl_err_set(err, MTL_ERR_FORMAT, "empty vocabulary");
	if (n > INT32_MAX / 4)
		return mtl_err_set(err, MTL_ERR_FORMAT, "vocabulary too large");
	for (size_t i = 0; i < n; i++) {
		total += lens[i] + 1;
		/* trie nodes fit 24 bits, for the (parent << 8 | byte) keys */
		if (total > (1u << 23))
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "vocabulary too large");
	}
	/* at most one node and one edge per key byte */
	while (cap < 2 * total)
		cap *= 2;
	t->pool = malloc(total);
	t->piece_off = malloc(n * sizeof(*t->piece_off));
	b.edges = calloc(cap, sizeof(*b.edges));
	b.parent = malloc((total + 2) * sizeof(*b.parent));
	b.byte = malloc(total + 2);
	b.id = malloc((total + 2) * sizeof(*b.id));
	if (!t->pool || !t->piece_off || !b.edges || !b.parent || !b.byte || !b.id) {
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		goto out;
	}
	b.mask = cap - 1;
	b.n = 2;
	b.id[0] = b.id[1] = -1;
	t->n_ids = (int32_t)n;
	for (size_t i = 0; i < n; i++) {
		uint32_t off = (uint32_t)t->pool_len;
		const unsigned char *u = (const unsigned char *)v[i];
		memcpy(t->pool + off, v[i], lens[i]);
		t->pool[off + lens[i]] = 0;
		t->pool_len += lens[i] + 1;
		t->piece_off[i] = off;
		for (size_t k = 0; k < lens[i]; k++) {
			h ^= u[k];
			h *= 0x100000001b3ULL;
		}
		h ^= '\n';
		h *= 0x100000001b3ULL;
		if (lens[i] > 2 && v[i][0] == '#' && v[i][1] == '#')
			tb_insert(&b, u + 2, lens[i] - 2, 1, (int32_t)i);
		else
			tb_insert(&b, u, lens[i], 0, (int32_t)i);
	}
	t->vocab_hash = h;
	if (tb_compact(t, &b) < 0)
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
out:
	free(b.edges);
	free(b.parent);
	free(b.byte);
	free(b.id);
	return rc;
}

static int add_special(struct mtl_tok *t, const char *s, int32_t id)
{
	size_t len = strlen(s);

	if (len == 0 || t->n_sp >= TOK_MAX_SPECIALS || id < 0 || id >= t->n_ids)
		return -1;
	for (int i = 0; i < t->n_sp; i++)
		if (t->sp[i].len == len && memcmp(t->sp[i].s, s, len) == 0)
			return 0;
	/* point into the pool: the entry of id when it spells s */
	if (strcmp(t->pool + t->piece_off[id], s) != 0)
		return -1;
	t->sp[t->n_sp++] = (struct tok_special){ t->pool + t->piece_off[id],
						 len, id };
	t->sp_first[(unsigned char)s[0]] = 1;
	return 0;
}

/* Completes t: specials by default, the ids of unk_name, [CLS] and [SEP]. */
static int finish(struct mtl_tok *t, const char *unk_name, struct mtl_err *err)
{
	static const char *const names[] = { "[PAD]", "[UNK]", "[CLS]",
					     "[SEP]", "[MASK]" };

	if (t->n_sp == 0)
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			int32_t id = mtl_tok_id(t, names[i]);
			if (id >= 0)
				add_special(t, names[i], id);
		}
	t->unk = mtl_tok_id(t, unk_name);
	t->cls = mtl_tok_id(t, "[CLS]");
	t->sep = mtl_tok_id(t, "[SEP]");
	if (t->unk < 0 || t->cls < 0 || t->sep < 0)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "vocabulary lacks %s",
				   t->unk < 0 ? unk_name :
				   t->cls < 0 ? "[CLS]" : "[SEP]");
	if (t->o.max_input_chars <= 0)
		t->o.max_input_chars = 100;
	if (t->o.strip_accents < 0)
		t->o.strip_accents = t->o.lowercase;
	return 0;
}

int mtl_tok_new(struct mtl_tok **out, const char *const *vocab, size_t n,
		const struct mtl_tok_opts *o, struct mtl_err *err)
{
	struct mtl_tok *t = calloc(1, sizeof(*t));
	size_t *lens = calloc(n ? n : 1, sizeof(*lens));
	int rc;

	if (!t || !lens) {
		free(t);
		free(lens);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	if (o)
		t->o = *o;
	else
		mtl_tok_opts_default(&t->o);
	for (size_t i = 0; i < n; i++)
		lens[i] = strlen(vocab[i]);
	rc = build_vocab(t, vocab, lens, n, err);
	free(lens);
	if (rc == 0)
		rc = finish(t, "[UNK]", err);
	if (rc < 0) {
		mtl_tok_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

void mtl_tok_free(struct mtl_tok *t)
{
	if (!t)
		return;
	free(t->pool);
	free(t->piece_off);
	free(t->nodes);
	free(t->cb);
	free(t);
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

/* --- loading a model directory --- */

/* Reads a whole file; 0, MTL_ERR_IO (errno 2 kept in *enoent) or NOMEM. */
static int read_file(const char *path, char **buf, size_t *len, int *enoent,
		     struct mtl_err *err)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	size_t n = 0, cap = 0;

	*enoent = 0;
	if (!f) {
		*enoent = errno == ENOENT;
		return mtl_err_set(err, MTL_ERR_IO, "cannot open '%s': %s",
				   path, strerror(errno));
	}
	for (;;) {
		if (cap - n < 65536) {
			char *nb;
			if (cap > TOK_MAX_FILE) {
				free(b);
				fclose(f);
				return mtl_err_set(err, MTL_ERR_FORMAT,
						   "'%s' is too large", path);
			}
			cap = cap ? cap * 2 : 262144;
			nb = realloc(b, cap);
			if (!nb) {
				free(b);
				fclose(f);
				return mtl_err_set(err, MTL_ERR_NOMEM,
						   "out of memory");
			}
			b = nb;
		}
		size_t k = fread(b + n, 1, cap - n - 1, f);
		n += k;
		if (k == 0)
			break;
	}
	if (ferror(f)) {
		free(b);
		fclose(f);
		return mtl_err_set(err, MTL_ERR_IO, "cannot read '%s'", path);
	}
	fclose(f);
	b[n] = 0;
	*buf = b;
	*len = n;
	return 0;
}

/*
 * Parses a JSON file into *out; flags for jansson (config files need
 * JSON_DECODE_INT_AS_REAL: transformers writes model_max_length as 1e30).
 */
static int load_json(const char *path, json_t **out, int flags, int *enoent,
		     struct mtl_err *err)
{
	json_error_t je;
	FILE *f = fopen(path, "rb");

	*enoent = 0;
	*out = NULL;
	if (!f) {
		*enoent = errno == ENOENT;
		return mtl_err_set(err, MTL_ERR_IO, "cannot open '%s': %s",
				   path, strerror(errno));
	}
	*out = json_loadf(f, JSON_REJECT_DUPLICATES | (size_t)flags, &je);
	fclose(f);
	if (!*out)
		return mtl_err_set(err, MTL_ERR_FORMAT, "%s:%d:%d: %s", path,
				   je.line, je.column, je.text);
	return 0;
}

/* A JSON boolean or null (null: leave *v) into *v; -1 on another type. */
static int json_flag(json_t *o, const char *key, int *v)
{
	json_t *j = json_object_get(o, key);

	if (!j || json_is_null(j))
		return 0;
	if (!json_is_boolean(j))
		return -1;
	*v = json_is_true(j);
	return 0;
}

static int load_vocab_txt(struct mtl_tok *t, const char *path,
			  struct mtl_err *err, int *enoent)
{
	char *buf = NULL;
	size_t len = 0, n = 0, i, k;
	const char **v;
	size_t *lens;
	int rc;

	rc = read_file(path, &buf, &len, enoent, err);
	if (rc < 0)
		return rc;
	for (i = 0; i < len; i++)
		n += buf[i] == '\n';
	if (len > 0 && buf[len - 1] != '\n')
		n++;
	v = malloc((n ? n : 1) * sizeof(*v));
	lens = malloc((n ? n : 1) * sizeof(*lens));
	if (!v || !lens) {
		free(v);
		free(lens);
		free(buf);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	rc = 0;
	for (i = 0, k = 0; i < len && k < n; k++) {
		size_t j = i, bl;
		while (j < len && buf[j] != '\n')
			j++;
		v[k] = buf + i;
		lens[k] = j - i;
		if (lens[k] > 0 && buf[j - 1] == '\r')
			lens[k]--;
		/* a NUL would cut the entry short in the pool */
		if (mtl_tok_utf8_next_bad(v[k], lens[k], &bl) != lens[k] ||
		    memchr(v[k], 0, lens[k])) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "%s: line %zu: invalid UTF-8 or a NUL byte",
					 path, k + 1);
			break;
		}
		i = j + 1;
	}
	if (rc == 0 && (rc = build_vocab(t, v, lens, n, err)) < 0)
		mtl_err_prefix(err, rc, "%s", path);
	free(v);
	free(lens);
	free(buf);
	return rc;
}

static int load_vocab_json(struct mtl_tok *t, json_t *tj, const char *path,
			   struct mtl_err *err)
{
	json_t *vo = json_object_get(json_object_get(tj, "model"), "vocab");
	const char *key;
	json_t *val;
	size_t n = 0;
	const char **v;
	size_t *lens;
	int rc;

	if (!json_is_object(vo))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "%s: no model.vocab object", path);
	json_object_foreach(vo, key, val) {
		json_int_t id = json_is_integer(val) ? json_integer_value(val)
						      : -1;
		if (id < 0 || id > INT32_MAX / 4)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "%s: model.vocab: bad id for '%s'",
					   path, key);
		if ((size_t)id + 1 > n)
			n = (size_t)id + 1;
	}
	if (n > 4 * json_object_size(vo) + 16)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "%s: model.vocab: ids too sparse", path);
	v = calloc(n ? n : 1, sizeof(*v));
	lens = calloc(n ? n : 1, sizeof(*lens));
	if (!v || !lens) {
		free(v);
		free(lens);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	rc = 0;
	json_object_foreach(vo, key, val) {
		size_t id = (size_t)json_integer_value(val);
		if (v[id]) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "%s: model.vocab: '%.100s' and '%.100s' both have id %zu",
					 path, v[id], key, id);
			break;
		}
		v[id] = key;
		lens[id] = strlen(key);
	}
	for (size_t i = 0; i < n; i++)
		if (!v[i])
			v[i] = "";
	if (rc == 0)
		rc = build_vocab(t, v, lens, n, err);
	free(v);
	free(lens);
	return rc;
}

int mtl_tok_load(struct mtl_tok **out, const char *dir, struct mtl_err *err)
{
	struct mtl_tok *t = calloc(1, sizeof(*t));
	json_t *tj = NULL, *tc = NULL, *cj = NULL, *j;
	char path[4096], tjpath[4096];
	int rc = 0, enoent;
	long maxlen = 0;

	if (!t)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	mtl_tok_opts_default(&t->o);

	snprintf(tjpath, sizeof(tjpath), "%s/tokenizer.json", dir);
	rc = load_json(tjpath, &tj, 0, &enoent, err);
	if (rc < 0 && !enoent)
		goto out;
	if (tj) {
		json_t *norm = json_object_get(tj, "normalizer");
		json_t *model = json_object_get(tj, "model");
		json_t *type = json_object_get(model, "type");

		/* BPE, Unigram and WordLevel vocabularies are not WordPiece's */
		if (model && !json_is_null(model) &&
		    !(json_is_string(type) && !strcmp(json_string_value(type), "WordPiece"))) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "%s: unsupported tokenizer model '%.40s' (mtl implements WordPiece only)",
					 tjpath, json_is_string(type) ? json_string_value(type) : "?");
			goto out;
		}
		if (json_is_object(norm) &&
		    json_is_string(json_object_get(norm, "type")) &&
		    strcmp(json_string_value(json_object_get(norm, "type")),
			   "BertNormalizer") == 0) {
			if (json_flag(norm, "lowercase", &t->o.lowercase) ||
			    json_flag(norm, "strip_accents", &t->o.strip_accents) ||
			    json_flag(norm, "handle_chinese_chars", &t->o.chinese_chars) ||
			    json_flag(norm, "clean_text", &t->o.clean_text)) {
				rc = mtl_err_set(err, MTL_ERR_FORMAT,
						 "%s: normalizer: a flag is not a boolean",
						 tjpath);
				goto out;
			}
		} else if (norm && !json_is_null(norm)) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "%s: unsupported normalizer (want BertNormalizer)",
					 tjpath);
			goto out;
		}
		j = json_object_get(model, "max_input_chars_per_word");
		if (json_is_integer(j) && json_integer_value(j) > 0 &&
		    json_integer_value(j) < INT_MAX)
			t->o.max_input_chars = (int)json_integer_value(j);
		j = json_object_get(model, "continuing_subword_prefix");
		if (json_is_string(j) && strcmp(json_string_value(j), "##")) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "%s: unsupported continuing_subword_prefix '%s'",
					 tjpath, json_string_value(j));
			goto out;
		}
	}

	snprintf(path, sizeof(path), "%s/tokenizer_config.json", dir);
	rc = load_json(path, &tc, JSON_DECODE_INT_AS_REAL, &enoent, err);
	if (rc < 0 && !enoent)
		goto out;
	if (tc) {
		if (json_flag(tc, "do_lower_case", &t->o.lowercase) ||
		    json_flag(tc, "strip_accents", &t->o.strip_accents) ||
		    json_flag(tc, "tokenize_chinese_chars", &t->o.chinese_chars)) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "%s: a tokenizer flag is not a boolean",
					 path);
			goto out;
		}
		j = json_object_get(tc, "model_max_length");
		if (json_is_number(j) && json_number_value(j) >= 1 &&
		    json_number_value(j) < 1e9)
			maxlen = (long)json_number_value(j);
	}

	snprintf(path, sizeof(path), "%s/config.json", dir);
	rc = load_json(path, &cj, JSON_DECODE_INT_AS_REAL, &enoent, err);
	if (rc < 0 && !enoent)
		goto out;
	j = json_object_get(cj, "max_position_embeddings");
	if (json_is_number(j) && json_number_value(j) >= 1 &&
	    json_number_value(j) < 1e9 &&
	    (maxlen == 0 || json_number_value(j) < (double)maxlen))
		maxlen = (long)json_number_value(j);
	t->max_length = maxlen;

	snprintf(path, sizeof(path), "%s/vocab.txt", dir);
	rc = load_vocab_txt(t, path, err, &enoent);
	if (rc < 0 && enoent) {
		if (!tj) {
			rc = mtl_err_set(err, MTL_ERR_IO,
					 "'%s' has neither vocab.txt nor tokenizer.json",
					 dir);
			goto out;
		}
		rc = load_vocab_json(t, tj, tjpath, err);
	}
	if (rc < 0)
		goto out;

	j = json_object_get(tj, "added_tokens");
	if (json_is_array(j)) {
		size_t i;
		json_t *a;
		json_array_foreach(j, i, a) {
			json_t *c = json_object_get(a, "content");
			json_t *id = json_object_get(a, "id");
			if (!json_is_string(c) || !json_is_integer(id) ||
			    add_special(t, json_string_value(c),
					(int32_t)json_integer_value(id)) < 0) {
				rc = mtl_err_set(err, MTL_ERR_FORMAT,
						 "%s: added_tokens[%zu]: not a vocabulary entry",
						 tjpath, i);
				goto out;
			}
		}
	}
	j = json_object_get(json_object_get(tj, "model"), "unk_token");
	rc = finish(t, json_is_string(j) ? json_string_value(j) : "[UNK]", err);
	if (rc < 0)
		mtl_err_prefix(err, rc, "%s", dir);
out:
	json_decref(tj);
	json_decref(tc);
	json_decref(cj);
	if (rc < 0) {
		mtl_tok_free(t);
		return rc;
	}
	*out = t;
	return 0;
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
