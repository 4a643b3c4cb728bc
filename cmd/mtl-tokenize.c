/*
 * mtl-tokenize - turns labelled text (JSON lines, CoNLL or TSV) into an
 * examples stream: WordPiece ids, word ids and per-task labels aligned to
 * tokens (docs/tokenize.md).
 *
 * Each input format is read into one struct item (borrowed strings), and
 * emit() does the rest: tokenization, label look-up and alignment,
 * statistics and the example record.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common.h"
#include "mp.h"
#include "task.h"
#include "tok.h"

static const char usage[] =
	"usage: mtl-tokenize --model DIR [options] [FILE]\n"
	"\n"
	"Tokenizes text (FILE or standard input) with the model's WordPiece\n"
	"vocabulary and writes an examples stream with labels for the tasks of\n"
	"DIR/tasks.json.\n"
	"\n"
	"  -m, --model DIR        vocab.txt/tokenizer.json, tokenizer_config.json,\n"
	"                         config.json and tasks.json (required)\n"
	"  -T, --tasks FILE       the task spec (default: DIR/tasks.json if present)\n"
	"  -f, --format F         jsonl (default), conll or tsv\n"
	"  -l, --max-length N     truncate to N tokens (default: the model's)\n"
	"  -t, --task NAME        the token task CoNLL tags belong to (default:\n"
	"                         the only token task)\n"
	"      --text-field F     the text field or column (default: text)\n"
	"      --unknown-label A  error (default) or skip: an unknown label is\n"
	"                         then treated as absent\n"
	"      --skip-bad         skip bad records (counted) instead of failing\n"
	"      --replace-invalid  replace invalid UTF-8 with U+FFFD\n"
	"  -q, --quiet            no summary on stderr\n"
	"  -h, --help             this text\n"
	"  -V, --version          the version\n"
	"\n"
	"Exit status: 0 success, 1 bad input, 2 usage error, 3 I/O error.\n";

#define IGNORE (-100)
#define MAX_TASKS 256

enum fmt { F_JSONL, F_CONLL, F_TSV };

struct opts {
	enum fmt fmt;
	long max_len;
	const char *text_field;
	int skip_unknown, skip_bad, replace_invalid;
	int conll_task; /* task index, or -1 */
};

/* One input record, strings borrowed from the reader's storage. */
struct item {
	long line;
	const char *id_str; /* or NULL: id_int */
	long long id_int;
	const char *text;   /* NULL when words are given */
	size_t text_len;
	const char **words;
	size_t n_words;
	const char *seq[MAX_TASKS];   /* sequence label, NULL: none */
	const char **tags[MAX_TASKS]; /* token tags per word (NULL entries: none) */
};

struct stats {
	long examples, tokens, truncated, words_lost, unk, bad, skipped_labels;
	long labelled[MAX_TASKS], none, one, several, lost_labels;
	long *hist[MAX_TASKS];
};

struct ctx {
	const struct mtl_tok *tok;
	const struct mtl_tasks *ts;
	struct opts o;
	struct mtl_tok_enc enc;
	struct mtl_mp_writer *w;
	struct stats st;
	const char *name;
	char *joined;
	size_t joined_cap;
	int32_t *wl, *tl[MAX_TASKS];
	size_t wl_cap, tl_cap[MAX_TASKS];
	char msg[512];
};

/* Records a data error for the current item; returns -1. */
static int bad(struct ctx *c, const struct item *it, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad(struct ctx *c, const struct item *it, const char *fmt, ...)
{
	char m[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	snprintf(c->msg, sizeof(c->msg), "%s: line %ld: %s", c->name, it->line, m);
	return -1;
}

static int grow32(int32_t **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap : 256;
	while (nc < need)
		nc *= 2;
	int32_t *np = realloc(*p, nc * sizeof(**p));
	if (!np)
		cmd_die(EXIT_DATA, "out of memory");
	*p = np;
	*cap = nc;
	return 0;
}

static void pack_key(msgpack_packer *pk, const char *k)
{
	mtl_mp_pack_str(pk, k);
}

static void pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

/* Tokenizes, aligns and writes one item.  0, or -1 with c->msg set. */
static int emit(struct ctx *c, const struct item *it)
{
	const struct mtl_tasks *ts = c->ts;
	struct mtl_tok_enc *e = &c->enc;
	struct mtl_err err;
	int32_t seq_label[MAX_TASKS];
	int has[MAX_TASKS] = { 0 }, n_has = 0, n_tasks = ts ? ts->n : 0;
	const char *text = it->text;
	size_t text_len = it->text_len;
	msgpack_packer *pk;
	int rc;

	if (it->words) {
		size_t len = 0;
		for (size_t i = 0; i < it->n_words; i++)
			len += strlen(it->words[i]) + 1;
		if (len + 1 > c->joined_cap) {
			char *nb = realloc(c->joined, len + 1);
			if (!nb)
				cmd_die(EXIT_DATA, "out of memory");
			c->joined = nb;
			c->joined_cap = len + 1;
		}
		text_len = 0;
		for (size_t i = 0; i < it->n_words; i++) {
			size_t l = strlen(it->words[i]);
			if (i)
				c->joined[text_len++] = ' ';
			memcpy(c->joined + text_len, it->words[i], l);
			text_len += l;
		}
		c->joined[text_len] = 0;
		text = c->joined;
		if (it->n_words == 0)
			return bad(c, it, "no words");
	}
	if (!text || text_len == 0)
		return bad(c, it, "empty text");

	/* labels first: a bad label must not cost a tokenization */
	for (int k = 0; k < n_tasks; k++) {
		const struct mtl_task *t = &ts->task[k];
		if (t->kind == MTL_TASK_SEQUENCE && it->seq[k]) {
			seq_label[k] = mtl_task_label(t, it->seq[k]);
			if (seq_label[k] < 0 && !c->o.skip_unknown)
				return bad(c, it, "task '%s': unknown label '%.100s'",
					   t->name, it->seq[k]);
			if (seq_label[k] < 0)
				c->st.skipped_labels++;
			else
				has[k] = 1;
		} else if (t->kind == MTL_TASK_TOKEN && it->tags[k]) {
			if (!it->words)
				return bad(c, it, "task '%s': token labels need 'words'",
					   t->name);
			grow32(&c->tl[k], &c->tl_cap[k], it->n_words);
			for (size_t i = 0; i < it->n_words; i++) {
				const char *tag = it->tags[k][i];
				int32_t v = tag ? mtl_task_label(t, tag) : IGNORE;
				if (tag && v < 0) {
					if (!c->o.skip_unknown)
						return bad(c, it,
							   "task '%s': word %zu: unknown label '%.100s'",
							   t->name, i + 1, tag);
					c->st.skipped_labels++;
					v = IGNORE;
				}
				c->tl[k][i] = v;
			}
			has[k] = 1;
		}
	}

	if (it->words)
		rc = mtl_tok_encode_words(c->tok, it->words, it->n_words, 0,
					  (size_t)c->o.max_len, e, &err);
	else
		rc = mtl_tok_encode(c->tok, text, text_len, 0,
				    (size_t)c->o.max_len, e, &err);
	if (rc < 0)
		return bad(c, it, "%s", err.msg);
	if (e->n <= 2)
		return bad(c, it, "the text gives no tokens");

	/* the record: type id text ids word_ids [words] labels truncated [words_lost] */
	for (int k = 0; k < n_tasks; k++)
		n_has += has[k];
	pk = mtl_mp_pk(c->w);
	msgpack_pack_map(pk, 7 + (it->words != NULL) + (e->truncated != 0));
	pack_key(pk, "type");
	pack_key(pk, "example");
	pack_key(pk, "id");
	if (it->id_str)
		mtl_mp_pack_str(pk, it->id_str);
	else
		msgpack_pack_int64(pk, it->id_int);
	pack_key(pk, "text");
	pack_strn(pk, text, text_len);
	pack_key(pk, "ids");
	mtl_mp_pack_i32s(pk, e->ids, e->n);
	pack_key(pk, "word_ids");
	mtl_mp_pack_i32s(pk, e->word_ids, e->n);
	if (it->words) {
		pack_key(pk, "words");
		msgpack_pack_array(pk, it->n_words);
		for (size_t i = 0; i < it->n_words; i++)
			mtl_mp_pack_str(pk, it->words[i]);
	}
	pack_key(pk, "labels");
	msgpack_pack_map(pk, (size_t)n_has);
	grow32(&c->wl, &c->wl_cap, e->n);
	for (int k = 0; k < n_tasks; k++) {
		const struct mtl_task *t = &ts->task[k];
		if (!has[k])
			continue;
		pack_key(pk, t->name);
		c->st.labelled[k]++;
		if (t->kind == MTL_TASK_SEQUENCE) {
			msgpack_pack_int32(pk, seq_label[k]);
			c->st.hist[k][seq_label[k]]++;
			continue;
		}
		c->st.lost_labels += (long)mtl_tok_align(e, c->tl[k], it->n_words,
							  IGNORE, c->wl);
		mtl_mp_pack_i32s(pk, c->wl, e->n);
		for (size_t i = 0; i < e->n; i++)
			if (c->wl[i] != IGNORE)
				c->st.hist[k][c->wl[i]]++;
	}
	pack_key(pk, "truncated");
	if (e->truncated)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	if (e->truncated) {
		pack_key(pk, "words_lost");
		msgpack_pack_int32(pk, e->words_lost);
	}
	if (mtl_mp_end(c->w, &err) < 0)
		cmd_die(EXIT_IO, "%s", err.msg);

	c->st.examples++;
	c->st.tokens += (long)e->n;
	c->st.unk += (long)e->unk;
	c->st.truncated += e->truncated;
	c->st.words_lost += e->words_lost;
	if (n_has == 0)
		c->st.none++;
	else if (n_has == 1)
		c->st.one++;
	else
		c->st.several++;
	return 0;
}

/*
 * Checks (or, with --replace-invalid, repairs into *fix) the UTF-8 of one
 * line, and refuses NUL bytes.  Returns the line to use or NULL with
 * c->msg set.
 */
static char *check_utf8(struct ctx *c, struct item *it, char *line,
			size_t *len, char **fix, size_t *fix_cap)
{
	size_t bl, at = mtl_tok_utf8_next_bad(line, *len, &bl), o = 0, i = 0;
	const char *nul = memchr(line, 0, *len);

	if (nul) {
		bad(c, it, "NUL byte at byte %zu", (size_t)(nul - line) + 1);
		return NULL;
	}
	if (at == *len)
		return line;
	if (!c->o.replace_invalid) {
		bad(c, it, "invalid UTF-8 at byte %zu", at + 1);
		return NULL;
	}
	if (*fix_cap < 3 * *len + 1) {
		char *nb = realloc(*fix, 3 * *len + 1);
		if (!nb)
			cmd_die(EXIT_DATA, "out of memory");
		*fix = nb;
		*fix_cap = 3 * *len + 1;
	}
	while (i < *len) {
		at = i + mtl_tok_utf8_next_bad(line + i, *len - i, &bl);
		memcpy(*fix + o, line + i, at - i);
		o += at - i;
		if (at == *len)
			break;
		memcpy(*fix + o, "\xef\xbf\xbd", 3);
		o += 3;
		i = at + bl;
	}
	(*fix)[o] = 0;
	*len = o;
	return *fix;
}

/* Runs emit, and handles a failure as --skip-bad says: 0 go on, -1 stop. */
static int handle(struct ctx *c, const struct item *it, int failed)
{
	if (!failed && emit(c, it) == 0)
		return 0;
	if (!c->o.skip_bad)
		return -1;
	if (c->st.bad < 10)
		cmd_warn("%s (skipped)", c->msg);
	c->st.bad++;
	return 0;
}

/* --- JSON lines --- */

static int jsonl_item(struct ctx *c, struct item *it, json_t *j,
		      const char ***words_buf, size_t *wcap,
		      const char ***tags_buf, size_t *tcap)
{
	const struct mtl_tasks *ts = c->ts;
	json_t *v, *words;
	int n_token = 0, tok_task = -1;

	if (!json_is_object(j))
		return bad(c, it, "not a JSON object");
	v = json_object_get(j, "id");
	if (json_is_string(v)) {
		if (strlen(json_string_value(v)) != json_string_length(v))
			return bad(c, it, "'id' contains U+0000");
		it->id_str = json_string_value(v);
	} else if (json_is_integer(v)) {
		it->id_int = json_integer_value(v);
	} else if (v && !json_is_null(v)) {
		return bad(c, it, "'id' must be a string or an integer");
	}
	words = json_object_get(j, "words");
	if (words && !json_is_null(words)) {
		size_t n = json_array_size(words);
		if (!json_is_array(words))
			return bad(c, it, "'words' must be an array of strings");
		if (n > *wcap) {
			const char **nb = realloc(*words_buf, n * sizeof(*nb));
			if (!nb)
				cmd_die(EXIT_DATA, "out of memory");
			*words_buf = nb;
			*wcap = n;
		}
		for (size_t i = 0; i < n; i++) {
			json_t *w = json_array_get(words, i);
			if (!json_is_string(w))
				return bad(c, it, "words[%zu] is not a string", i);
			if (strlen(json_string_value(w)) != json_string_length(w))
				return bad(c, it, "words[%zu] contains U+0000", i);
			(*words_buf)[i] = json_string_value(w);
		}
		it->words = *words_buf;
		it->n_words = n;
	} else {
		v = json_object_get(j, c->o.text_field);
		if (!v || json_is_null(v))
			return bad(c, it, "missing '%s' (or 'words')", c->o.text_field);
		if (!json_is_string(v))
			return bad(c, it, "'%s' is not a string", c->o.text_field);
		it->text = json_string_value(v);
		it->text_len = json_string_length(v);
	}
	for (int k = 0; ts && k < ts->n; k++)
		if (ts->task[k].kind == MTL_TASK_TOKEN) {
			n_token++;
			tok_task = k;
		}
	for (int k = 0; ts && k < ts->n; k++) {
		const struct mtl_task *t = &ts->task[k];
		v = json_object_get(j, t->name);
		if (t->kind == MTL_TASK_TOKEN && n_token == 1 && k == tok_task &&
		    json_object_get(j, "tags")) {
			if (v)
				return bad(c, it, "both '%s' and 'tags'", t->name);
			v = json_object_get(j, "tags");
		}
		if (!v || json_is_null(v))
			continue;
		if (t->kind == MTL_TASK_SEQUENCE) {
			if (!json_is_string(v))
				return bad(c, it, "task '%s': the label must be a string",
					   t->name);
			it->seq[k] = json_string_value(v);
			continue;
		}
		if (!json_is_array(v))
			return bad(c, it, "task '%s': the labels must be an array",
				   t->name);
		if (!it->words)
			return bad(c, it, "task '%s': token labels need 'words'",
				   t->name);
		if (json_array_size(v) != it->n_words)
			return bad(c, it, "task '%s': %zu labels for %zu words",
				   t->name, json_array_size(v), it->n_words);
		if (it->n_words > tcap[k]) {
			const char **nb = realloc(tags_buf[k],
						  it->n_words * sizeof(*nb));
			if (!nb)
				cmd_die(EXIT_DATA, "out of memory");
			tags_buf[k] = nb;
			tcap[k] = it->n_words;
		}
		for (size_t i = 0; i < it->n_words; i++) {
			json_t *l = json_array_get(v, i);
			if (json_is_null(l))
				tags_buf[k][i] = NULL;
			else if (json_is_string(l))
				tags_buf[k][i] = json_string_value(l);
			else
				return bad(c, it, "task '%s': label %zu is not a string or null",
					   t->name, i + 1);
		}
		it->tags[k] = tags_buf[k];
	}
	return 0;
}

static int read_jsonl(struct ctx *c, FILE *in)
{
	char *line = NULL, *fix = NULL;
	size_t cap = 0, fix_cap = 0, wcap = 0, tcap[MAX_TASKS] = { 0 };
	const char **words = NULL, **tags[MAX_TASKS] = { NULL };
	ssize_t n;
	long lineno = 0;
	int rc = 0;

	while (rc == 0 && (n = getline(&line, &cap, in)) >= 0) {
		struct item it = { .line = ++lineno };
		it.id_int = lineno;
		size_t len = (size_t)n;
		json_error_t je;
		json_t *j = NULL;
		char *l;
		int failed = 0;

		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (strspn(line, " \t") >= len)
			continue; /* blank line */
		l = check_utf8(c, &it, line, &len, &fix, &fix_cap);
		if (!l) {
			failed = 1;
		} else {
			j = json_loadb(l, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
			if (!j) {
				bad(c, &it, "column %d: %s", je.column, je.text);
				failed = 1;
			} else {
				failed = jsonl_item(c, &it, j, &words, &wcap, tags, tcap) < 0;
			}
		}
		rc = handle(c, &it, failed);
		json_decref(j);
	}
	free(line);
	free(fix);
	free(words);
	for (int k = 0; k < MAX_TASKS; k++)
		free(tags[k]);
	return rc;
}

/* --- CoNLL and TSV --- */

struct strs {
	char **v;
	size_t n, cap;
};

static void strs_push(struct strs *s, const char *p, size_t n)
{
	if (s->n == s->cap) {
		size_t nc = s->cap ? 2 * s->cap : 64;
		char **nv = realloc(s->v, nc * sizeof(*nv));
		if (!nv)
			cmd_die(EXIT_DATA, "out of memory");
		s->v = nv;
		s->cap = nc;
	}
	if (!(s->v[s->n] = strndup(p, n)))
		cmd_die(EXIT_DATA, "out of memory");
	s->n++;
}

static void strs_clear(struct strs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	s->n = 0;
}

/* Splits a line on tabs when it has one, else on runs of spaces. */
static void split_fields(struct strs *f, const char *l, size_t len, int tabs_only)
{
	size_t i = 0;

	strs_clear(f);
	if (tabs_only || memchr(l, '\t', len)) {
		for (;;) {
			const char *t = memchr(l + i, '\t', len - i);
			size_t e = t ? (size_t)(t - l) : len;
			strs_push(f, l + i, e - i);
			if (!t)
				break;
			i = e + 1;
		}
		return;
	}
	while (i < len) {
		while (i < len && l[i] == ' ')
			i++;
		size_t s = i;
		while (i < len && l[i] != ' ')
			i++;
		if (i > s)
			strs_push(f, l + s, i - s);
	}
}

static int conll_flush(struct ctx *c, struct strs *words, struct strs *tags,
		       long first_line)
{
	struct item it = { .line = first_line, .id_int = first_line };
	int rc;

	if (words->n == 0)
		return 0;
	it.words = (const char **)words->v;
	it.n_words = words->n;
	if (c->o.conll_task >= 0)
		it.tags[c->o.conll_task] = (const char **)tags->v;
	rc = handle(c, &it, 0);
	strs_clear(words);
	strs_clear(tags);
	return rc;
}

static int read_conll(struct ctx *c, FILE *in)
{
	char *line = NULL, *fix = NULL;
	size_t cap = 0, fix_cap = 0;
	struct strs f = { 0 }, words = { 0 }, tags = { 0 };
	ssize_t n;
	long lineno = 0, first = 0;
	int rc = 0, skipping = 0;

	while (rc == 0 && (n = getline(&line, &cap, in)) >= 0) {
		struct item it = { .line = ++lineno };
		it.id_int = lineno;
		size_t len = (size_t)n;
		char *l;

		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (strspn(line, " \t\r\v\f") >= len) {
			skipping = 0;
			rc = conll_flush(c, &words, &tags, first);
			continue;
		}
		if (skipping)
			continue; /* the rest of a sentence with a bad line */
		l = check_utf8(c, &it, line, &len, &fix, &fix_cap);
		if (l) {
			split_fields(&f, l, len, 0);
			if (f.n == 0 || strcmp(f.v[0], "-DOCSTART-") == 0) {
				rc = conll_flush(c, &words, &tags, first);
				continue;
			}
			if (f.n < 2 && c->o.conll_task >= 0) {
				bad(c, &it, "no tag column");
				l = NULL;
			}
		}
		if (!l) {
			/* the whole sentence goes with its bad line */
			strs_clear(&words);
			strs_clear(&tags);
			skipping = 1;
			rc = handle(c, &it, 1);
			continue;
		}
		if (words.n == 0)
			first = lineno;
		strs_push(&words, f.v[0], strlen(f.v[0]));
		strs_push(&tags, f.v[f.n - 1], strlen(f.v[f.n - 1]));
	}
	if (rc == 0)
		rc = conll_flush(c, &words, &tags, first);
	strs_clear(&f);
	strs_clear(&words);
	strs_clear(&tags);
	free(f.v);
	free(words.v);
	free(tags.v);
	free(line);
	free(fix);
	return rc;
}

static int read_tsv(struct ctx *c, FILE *in)
{
	char *line = NULL, *fix = NULL;
	size_t cap = 0, fix_cap = 0;
	struct strs hdr = { 0 }, f = { 0 }, words[1] = { { 0 } };
	struct strs tags[MAX_TASKS];
	int col_task[MAX_TASKS], col_id = -1, col_text = -1;
	ssize_t n;
	long lineno = 0;
	int rc = 0, have_hdr = 0, n_tasks = c->ts ? c->ts->n : 0;

	memset(tags, 0, sizeof(tags));
	for (int k = 0; k < MAX_TASKS; k++)
		col_task[k] = -1;
	while (rc == 0 && (n = getline(&line, &cap, in)) >= 0) {
		struct item it = { .line = ++lineno };
		it.id_int = lineno;
		size_t len = (size_t)n;
		char *l;

		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (len == 0)
			continue;
		c->msg[0] = 0;
		if (!(l = check_utf8(c, &it, line, &len, &fix, &fix_cap))) {
			rc = have_hdr ? handle(c, &it, 1) : -1;
			continue;
		}
		if (!have_hdr) {
			split_fields(&hdr, l, len, 1);
			for (size_t i = 0; i < hdr.n; i++) {
				if (strcmp(hdr.v[i], "id") == 0)
					col_id = (int)i;
				else if (strcmp(hdr.v[i], c->o.text_field) == 0)
					col_text = (int)i;
				int k = mtl_task_find(c->ts, hdr.v[i]);
				if (k >= 0)
					col_task[k] = (int)i;
			}
			if (col_text < 0) {
				bad(c, &it, "the header has no '%s' column",
				    c->o.text_field);
				rc = -1;
				break;
			}
			have_hdr = 1;
			continue;
		}
		split_fields(&f, l, len, 1);
		if (f.n != hdr.n) {
			bad(c, &it, "%zu fields, the header has %zu", f.n, hdr.n);
			rc = handle(c, &it, 1);
			continue;
		}
		if (col_id >= 0 && f.v[col_id][0])
			it.id_str = f.v[col_id];
		it.text = f.v[col_text];
		it.text_len = strlen(f.v[col_text]);
		strs_clear(words);
		for (int k = 0; k < n_tasks; k++) {
			const char *cell = col_task[k] >= 0 ? f.v[col_task[k]] : "";
			if (!cell[0])
				continue;
			if (c->ts->task[k].kind == MTL_TASK_SEQUENCE) {
				it.seq[k] = cell;
				continue;
			}
			/* token task: space-separated tags for space-separated words */
			if (!it.words) {
				split_fields(words, it.text, it.text_len, 0);
				it.words = (const char **)words->v;
				it.n_words = words->n;
			}
			split_fields(&tags[k], cell, strlen(cell), 0);
			if (tags[k].n != words->n) {
				bad(c, &it, "task '%s': %zu labels for %zu words",
				    c->ts->task[k].name, tags[k].n, words->n);
				break;
			}
			it.tags[k] = (const char **)tags[k].v;
		}
		rc = handle(c, &it, c->msg[0] != 0);
	}
	if (rc == 0 && !have_hdr) {
		struct item it = { .line = lineno };
		bad(c, &it, "no header row");
		rc = -1;
	}
	strs_clear(&hdr);
	strs_clear(&f);
	strs_clear(words);
	free(hdr.v);
	free(f.v);
	free(words->v);
	for (int k = 0; k < MAX_TASKS; k++) {
		strs_clear(&tags[k]);
		free(tags[k].v);
	}
	free(line);
	free(fix);
	return rc;
}

/* --- header and stats --- */

static void write_header(struct ctx *c, int argc, char **argv)
{
	msgpack_packer *pk = mtl_mp_pk(c->w);
	const struct mtl_tasks *ts = c->ts;
	struct mtl_err err;
	char hex[17];

	mtl_mp_pack_header(pk, "examples", "mtl-tokenize", argc, argv, 5);
	pack_key(pk, "tasks");
	msgpack_pack_array(pk, ts ? (size_t)ts->n : 0);
	for (int k = 0; ts && k < ts->n; k++) {
		const struct mtl_task *t = &ts->task[k];
		msgpack_pack_map(pk, 3);
		pack_key(pk, "name");
		mtl_mp_pack_str(pk, t->name);
		pack_key(pk, "kind");
		mtl_mp_pack_str(pk, mtl_task_kind_name(t->kind));
		pack_key(pk, "labels");
		msgpack_pack_array(pk, (size_t)t->n_labels);
		for (int i = 0; i < t->n_labels; i++)
			mtl_mp_pack_str(pk, t->labels[i]);
	}
	snprintf(hex, sizeof(hex), "%016" PRIx64, mtl_tok_vocab_hash(c->tok));
	pack_key(pk, "vocab_hash");
	mtl_mp_pack_str(pk, hex);
	pack_key(pk, "max_length");
	msgpack_pack_int64(pk, c->o.max_len);
	pack_key(pk, "vocab_size");
	msgpack_pack_int32(pk, mtl_tok_vocab_size(c->tok));
	pack_key(pk, "ignore_index");
	msgpack_pack_int32(pk, IGNORE);
	if (mtl_mp_end(c->w, &err) < 0)
		cmd_die(EXIT_IO, "%s", err.msg);
}

static double unk_rate(const struct stats *s)
{
	long content = s->tokens - 2 * s->examples;

	return content > 0 ? (double)s->unk / (double)content : 0.0;
}

static void write_stats(struct ctx *c)
{
	msgpack_packer *pk = mtl_mp_pk(c->w);
	const struct mtl_tasks *ts = c->ts;
	const struct stats *s = &c->st;
	int n = ts ? ts->n : 0;
	struct mtl_err err;

	msgpack_pack_map(pk, 13);
	pack_key(pk, "type");
	pack_key(pk, "stats");
	pack_key(pk, "examples");
	msgpack_pack_int64(pk, s->examples);
	pack_key(pk, "tokens");
	msgpack_pack_int64(pk, s->tokens);
	pack_key(pk, "labelled");
	msgpack_pack_map(pk, (size_t)n);
	for (int k = 0; k < n; k++) {
		pack_key(pk, ts->task[k].name);
		msgpack_pack_int64(pk, s->labelled[k]);
	}
	pack_key(pk, "tasks_per_example");
	msgpack_pack_map(pk, 3);
	pack_key(pk, "none");
	msgpack_pack_int64(pk, s->none);
	pack_key(pk, "one");
	msgpack_pack_int64(pk, s->one);
	pack_key(pk, "several");
	msgpack_pack_int64(pk, s->several);
	pack_key(pk, "label_counts");
	msgpack_pack_map(pk, (size_t)n);
	for (int k = 0; k < n; k++) {
		pack_key(pk, ts->task[k].name);
		msgpack_pack_map(pk, (size_t)ts->task[k].n_labels);
		for (int i = 0; i < ts->task[k].n_labels; i++) {
			pack_key(pk, ts->task[k].labels[i]);
			msgpack_pack_int64(pk, s->hist[k][i]);
		}
	}
	pack_key(pk, "truncated");
	msgpack_pack_int64(pk, s->truncated);
	pack_key(pk, "words_lost");
	msgpack_pack_int64(pk, s->words_lost);
	pack_key(pk, "labels_lost");
	msgpack_pack_int64(pk, s->lost_labels);
	pack_key(pk, "unknown_labels_skipped");
	msgpack_pack_int64(pk, s->skipped_labels);
	pack_key(pk, "unk");
	msgpack_pack_int64(pk, s->unk);
	pack_key(pk, "unk_rate");
	msgpack_pack_double(pk, unk_rate(s));
	pack_key(pk, "bad_records_skipped");
	msgpack_pack_int64(pk, s->bad);
	if (mtl_mp_end(c->w, &err) < 0)
		cmd_die(EXIT_IO, "%s", err.msg);
}

static void print_summary(const struct ctx *c)
{
	const struct stats *s = &c->st;
	const struct mtl_tasks *ts = c->ts;

	cmd_note("%ld examples, %ld tokens, %ld truncated (%ld words lost), "
		 "unk rate %.4f%%", s->examples, s->tokens, s->truncated,
		 s->words_lost, 100 * unk_rate(s));
	cmd_note("labelled for no task %ld, one %ld, several %ld; %ld bad records "
		 "skipped, %ld unknown labels skipped, %ld word labels lost",
		 s->none, s->one, s->several, s->bad, s->skipped_labels,
		 s->lost_labels);
	for (int k = 0; ts && k < ts->n; k++) {
		char buf[1024];
		size_t o = 0;
		for (int i = 0; i < ts->task[k].n_labels && o < sizeof(buf) - 1; i++)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, " %s=%ld",
					      ts->task[k].labels[i], s->hist[k][i]);
		cmd_note("task %s (%s): %ld labelled;%s", ts->task[k].name,
			 mtl_task_kind_name(ts->task[k].kind), s->labelled[k], buf);
	}
}

int main(int argc, char **argv)
{
	enum { O_TEXT = 256, O_UNK, O_SKIP, O_REPL };
	static const struct option lopts[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "tasks", required_argument, NULL, 'T' },
		{ "format", required_argument, NULL, 'f' },
		{ "max-length", required_argument, NULL, 'l' },
		{ "task", required_argument, NULL, 't' },
		{ "text-field", required_argument, NULL, O_TEXT },
		{ "unknown-label", required_argument, NULL, O_UNK },
		{ "skip-bad", no_argument, NULL, O_SKIP },
		{ "replace-invalid", no_argument, NULL, O_REPL },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	struct ctx c = { 0 };
	const char *model = NULL, *tasks_path = NULL, *task_name = NULL;
	struct mtl_tok *tok = NULL;
	struct mtl_tasks *ts = NULL;
	struct mtl_err err;
	char path[4096];
	FILE *in;
	int opt, rc = 0;

	cmd_name = "mtl-tokenize";
	c.o.text_field = "text";
	c.o.max_len = -1;
	c.o.conll_task = -1;
	while ((opt = getopt_long(argc, argv, "m:T:f:l:t:qhV", lopts, NULL)) != -1) {
		switch (opt) {
		case 'm': model = optarg; break;
		case 'T': tasks_path = optarg; break;
		case 'f':
			if (!strcmp(optarg, "jsonl"))
				c.o.fmt = F_JSONL;
			else if (!strcmp(optarg, "conll"))
				c.o.fmt = F_CONLL;
			else if (!strcmp(optarg, "tsv"))
				c.o.fmt = F_TSV;
			else
				cmd_usage_error(usage, "unknown format '%s'", optarg);
			break;
		case 'l':
			c.o.max_len = cmd_parse_long(usage, "--max-length", optarg, 2,
						     1L << 24);
			break;
		case 't': task_name = optarg; break;
		case O_TEXT: c.o.text_field = optarg; break;
		case O_UNK:
			if (!strcmp(optarg, "skip"))
				c.o.skip_unknown = 1;
			else if (strcmp(optarg, "error"))
				cmd_usage_error(usage, "--unknown-label is error or skip");
			break;
		case O_SKIP: c.o.skip_bad = 1; break;
		case O_REPL: c.o.replace_invalid = 1; break;
		case 'q': cmd_quiet = 1; break;
		case 'h': cmd_help(usage);
		case 'V': cmd_version();
		default: cmd_usage_error(usage, NULL);
		}
	}
	if (!model)
		cmd_usage_error(usage, "--model is required");
	if (argc - optind > 1)
		cmd_usage_error(usage, "one input at most");

	rc = mtl_tok_load(&tok, model, &err);
	if (rc < 0)
		cmd_die(rc == MTL_ERR_IO ? EXIT_IO : EXIT_DATA, "%s", err.msg);
	if (!tasks_path) {
		snprintf(path, sizeof(path), "%s/tasks.json", model);
		if (access(path, F_OK) == 0)
			tasks_path = path;
	}
	rc = tasks_path ? mtl_task_load(&ts, tasks_path, &err) : 0;
	if (rc < 0) {
		mtl_tok_free(tok);
		cmd_die(rc == MTL_ERR_IO ? EXIT_IO : EXIT_DATA, "%s", err.msg);
	}
	if (ts && ts->n > MAX_TASKS)
		cmd_die(EXIT_DATA, "%s: more than %d tasks", tasks_path, MAX_TASKS);
	if (task_name) {
		c.o.conll_task = mtl_task_find(ts, task_name);
		if (c.o.conll_task < 0)
			cmd_usage_error(usage, "no task '%s'%s", task_name,
					ts ? "" : " (no task spec)");
		if (ts->task[c.o.conll_task].kind != MTL_TASK_TOKEN)
			cmd_usage_error(usage, "task '%s' is not a token task",
					task_name);
	} else if (c.o.fmt == F_CONLL && ts) {
		for (int k = 0; k < ts->n; k++)
			if (ts->task[k].kind == MTL_TASK_TOKEN) {
				if (c.o.conll_task >= 0)
					cmd_usage_error(usage, "several token tasks: "
							"say which with --task");
				c.o.conll_task = k;
			}
		if (c.o.conll_task < 0)
			cmd_usage_error(usage, "CoNLL input needs a token task");
	}
	if (c.o.max_len < 0)
		c.o.max_len = mtl_tok_max_length(tok);
	for (int k = 0; ts && k < ts->n; k++)
		if (!(c.st.hist[k] = calloc((size_t)ts->task[k].n_labels, sizeof(long))))
			cmd_die(EXIT_DATA, "out of memory");

	in = cmd_open_in(optind < argc ? argv[optind] : NULL, &c.name);
	c.tok = tok;
	c.ts = ts;
	mtl_tok_enc_init(&c.enc);
	c.w = mtl_mp_writer_new(stdout, "standard output");
	if (!c.w)
		cmd_die(EXIT_DATA, "out of memory");
	write_header(&c, argc, argv);
	rc = c.o.fmt == F_JSONL ? read_jsonl(&c, in) :
	     c.o.fmt == F_CONLL ? read_conll(&c, in) : read_tsv(&c, in);
	if (rc < 0) {
		fprintf(stderr, "%s: %s\n", cmd_name, c.msg);
		rc = EXIT_DATA;
	} else if (ferror(in)) {
		fprintf(stderr, "%s: %s: read error\n", cmd_name, c.name);
		rc = EXIT_IO;
	} else {
		write_stats(&c);
		print_summary(&c);
	}
	if (in != stdin)
		fclose(in);
	mtl_mp_writer_free(c.w);
	mtl_tok_enc_release(&c.enc);
	for (int k = 0; ts && k < ts->n; k++) {
		free(c.st.hist[k]);
		free(c.tl[k]);
	}
	free(c.wl);
	free(c.joined);
	mtl_task_free(ts);
	mtl_tok_free(tok);
	return cmd_finish(rc);
}
