/*
 * tok_vocab.c - the WordPiece tokenizer's vocabulary: building its byte
 * trie and special tokens (mtl_tok_new) and loading a model directory's
 * vocab.txt or tokenizer.json with their settings (mtl_tok_load); see
 * tok.h.  Encoding is in tok.c (tok_int.h).
 */
#include "tok_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "manifest.h"

/* --- building the vocabulary --- */
#define TOK_MAX_FILE ((size_t)1 << 30)

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
	static const char *const tok_files[] = { "tokenizer.json", "vocab.txt",
		"tokenizer_config.json", "special_tokens_map.json" };
	struct mtl_tok *t = calloc(1, sizeof(*t));
	json_t *tj = NULL, *tc = NULL, *cj = NULL, *j;
	char path[4096], tjpath[4096];
	int rc = 0, enoent;
	long maxlen = 0;

	if (!t)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	/* manifest.h: not the files of a half-written model directory */
	if ((rc = mtl_manifest_check(dir, MTL_MANIFEST, tok_files, 4, err)) < 0) {
		free(t);
		return rc;
	}
	rc = 0;
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
