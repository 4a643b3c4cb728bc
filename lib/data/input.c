/*
 * input.c - JSONL, CoNLL and plain-text readers and the helpers every reader
 * shares (input_impl.h; TSV and CSV are in input_tsv.c, the encoding of
 * items into examples in input_encode.c); see input.h.
 *
 * Each read takes lines until it has one record, fills the item from the
 * reader's storage (a JSON document, or split fields) and ends in
 * input_finish(), which joins words into the text and makes the checks
 * every format shares.
 */
#include "input_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <jansson.h>

#include "suggest.h"

/* Sets "line N: message" in err; returns MTL_ERR_FORMAT. */
int input_bad(struct mtl_err *err, long line, const char *fmt, ...)
{
	char m[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	return mtl_err_set(err, MTL_ERR_FORMAT, "line %ld: %s", line, m);
}

int input_nomem(struct mtl_err *err)
{
	return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
}

/*
 * Makes room for n elements of size sz in the array whose pointer is at pp
 * (capacity *cap).  0 or -1.  The pointer is copied with memcpy, as pp may
 * point at any object pointer type.
 */
int input_reserve(void *pp, size_t *cap, size_t n, size_t sz)
{
	void *p, *np;
	size_t nc = *cap ? *cap : 16;

	if (n <= *cap)
		return 0;
	while (nc < n)
		nc *= 2;
	memcpy(&p, pp, sizeof(p));
	if (!(np = realloc(p, nc * sz)))
		return -1;
	memcpy(pp, &np, sizeof(np));
	*cap = nc;
	return 0;
}

int input_strs_push(struct strs *s, const char *p, size_t n)
{
	if (input_reserve(&s->v, &s->cap, s->n + 1, sizeof(*s->v)) ||
	    !(s->v[s->n] = strndup(p, n)))
		return -1;
	s->n++;
	return 0;
}

void input_strs_clear(struct strs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	s->n = 0;
}

void input_strs_free(struct strs *s)
{
	input_strs_clear(s);
	free(s->v);
}

/*
 * Splits l[0..len) on tabs when it has one (or tabs_only), else on runs of
 * spaces.  0 or -1 (memory).
 */
int input_split_fields(struct strs *f, const char *l, size_t len, int tabs_only)
{
	size_t i = 0;

	input_strs_clear(f);
	if (tabs_only || memchr(l, '\t', len)) {
		for (;;) {
			const char *t = memchr(l + i, '\t', len - i);
			size_t e = t ? (size_t)(t - l) : len;
			if (input_strs_push(f, l + i, e - i))
				return -1;
			if (!t)
				return 0;
			i = e + 1;
		}
	}
	while (i < len) {
		size_t s;
		while (i < len && l[i] == ' ')
			i++;
		s = i;
		while (i < len && l[i] != ' ')
			i++;
		if (i > s && input_strs_push(f, l + s, i - s))
			return -1;
	}
	return 0;
}

/*
 * Reads the next line into in->line, its length without line ends in
 * *len.  1, or 0 at the end of input (in->eof set).
 */
int input_next_line(struct mtl_input *in, size_t *len)
{
	ssize_t n;

	if (in->eof || (n = getline(&in->line, &in->cap, in->f)) < 0) {
		in->eof = 1;
		return 0;
	}
	in->lineno++;
	*len = (size_t)n;
	while (*len && (in->line[*len - 1] == '\n' || in->line[*len - 1] == '\r'))
		(*len)--;
	return 1;
}

/* The end of input: 0, or MTL_ERR_IO after a read error. */
int input_at_end(struct mtl_input *in, struct mtl_err *err)
{
	return ferror(in->f) ? mtl_err_set(err, MTL_ERR_IO, "read error") : 0;
}

/*
 * Checks (or, with replace_invalid, repairs into in->fix) the UTF-8 of the
 * current line, and refuses NUL bytes.  0 with *out the line to use, or
 * <0 with err set.
 */
int input_check_utf8(struct mtl_input *in, char **out, size_t *len,
		      struct mtl_err *err)
{
	char *line = in->line;
	size_t bl, at = mtl_tok_utf8_next_bad(line, *len, &bl), o = 0, i = 0;
	const char *nul = memchr(line, 0, *len);

	if (nul)
		return input_bad(err, in->lineno, "NUL byte at byte %zu",
			   (size_t)(nul - line) + 1);
	*out = line;
	if (at == *len)
		return 0;
	if (!in->o.replace_invalid)
		return input_bad(err, in->lineno, "invalid UTF-8 at byte %zu", at + 1);
	if (input_reserve(&in->fix, &in->fix_cap, 3 * *len + 1, 1))
		return input_nomem(err);
	while (i < *len) {
		at = i + mtl_tok_utf8_next_bad(line + i, *len - i, &bl);
		memcpy(in->fix + o, line + i, at - i);
		o += at - i;
		if (at == *len)
			break;
		memcpy(in->fix + o, "\xef\xbf\xbd", 3);
		o += 3;
		i = at + bl;
	}
	in->fix[o] = 0;
	*len = o;
	*out = in->fix;
	return 0;
}

/* Starts an item at the current line, with no labels. */
void input_item_start(struct mtl_input *in, struct mtl_input_item *it, long line)
{
	memset(it, 0, sizeof(*it));
	it->line = line;
	it->id_int = line;
	memset(in->seq, 0, sizeof(in->seq));
	memset(in->tags, 0, sizeof(in->tags));
	memset(in->emb, 0, sizeof(in->emb));
	memset(in->multi, 0, sizeof(in->multi));
	it->seq = in->seq;
	it->tags = in->tags;
	it->emb = in->emb;
	it->multi = in->multi;
	it->n_multi = in->n_multi;
	for (int k = 0; k < MAX_TASKS; k++)
		in->value[k] = NAN;
	it->value = in->value;
}

/*
 * A pair (it->text_b) is labelled for pair and regression tasks only, and
 * a pair task's label needs one.  0 or MTL_ERR_FORMAT.
 */
static int check_pair(const struct mtl_input *in, const struct mtl_input_item *it,
		      struct mtl_err *err)
{
	if (it->text_b && it->words)
		return input_bad(err, it->line, "'text_b' goes with a text, not 'words'");
	for (int k = 0; k < in->n_tasks; k++) {
		const struct mtl_task *t = &in->ts->task[k];

		if (!it->seq[k] && !it->tags[k] && !it->emb[k].other &&
		    !it->multi[k] && isnan(it->value[k]))
			continue;
		if (t->kind == MTL_TASK_PAIR && !it->text_b)
			return input_bad(err, it->line,
					 "task '%s': a pair task needs a second text 'text_b'",
					 t->name);
		if (it->text_b && t->kind != MTL_TASK_PAIR &&
		    t->kind != MTL_TASK_REGRESSION)
			return input_bad(err, it->line,
					 "task '%s': a %s task reads one text, not a pair "
					 "('text_b'): pairs are for pair and regression tasks",
					 t->name, mtl_task_kind_name(t->kind));
	}
	return 0;
}

/* Joins words into the text; the checks all formats share.  1 or <0. */
int input_finish(struct mtl_input *in, struct mtl_input_item *it,
		  struct mtl_err *err)
{
	int rc;

	if ((rc = check_pair(in, it, err)))
		return rc;
	if (it->words) {
		size_t len = 0;
		for (size_t i = 0; i < it->n_words; i++)
			len += strlen(it->words[i]) + 1;
		if (input_reserve(&in->joined, &in->joined_cap, len + 1, 1))
			return input_nomem(err);
		it->text_len = 0;
		for (size_t i = 0; i < it->n_words; i++) {
			size_t l = strlen(it->words[i]);
			if (i)
				in->joined[it->text_len++] = ' ';
			memcpy(in->joined + it->text_len, it->words[i], l);
			it->text_len += l;
		}
		in->joined[it->text_len] = 0;
		it->text = in->joined;
	}
	return 1;
}

/* Whether name is a key or column the reader uses. */
static int known_name(const struct mtl_input *in, const char *name)
{
	static const char *const fixed[] = { "id", "words", "pair", "tags", "text_b" };

	if (!strcmp(name, in->o.text_field))
		return 1;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (!strcmp(name, fixed[i]))
			return 1;
	for (int k = 0; k < in->n_tasks; k++)
		if (!strcmp(name, in->label[k]))
			return 1;
	return 0;
}

/*
 * Checks the key or column (what) called name of the record at line: an
 * unknown one is an error with opts.strict, and one close to a known name
 * is a warning, the first time it is seen.  0 or MTL_ERR_FORMAT.
 */
int input_check_name(struct mtl_input *in, long line, const char *what,
		      const char *name, struct mtl_err *err)
{
	const char *names[MAX_TASKS + 5] = { in->o.text_field, "id", "words", "pair",
					     "text_b" };
	const char *near;
	size_t n = 5;

	if (known_name(in, name))
		return 0;
	for (int k = 0; k < in->n_tasks; k++)
		names[n++] = in->label[k];
	near = mtl_suggest(name, names, n);
	if (in->o.strict)
		return near ? input_bad(err, line, "unknown %s '%.60s' (did you mean '%s'?)",
				  what, name, near)
			    : input_bad(err, line, "unknown %s '%.60s'", what, name);
	if (!near)
		return 0;
	for (size_t i = 0; i < in->warned.n; i++)
		if (!strcmp(in->warned.v[i], name))
			return 0;
	if (in->warned.n < 100)
		input_strs_push(&in->warned, name, strlen(name)); /* no memory: warn again */
	snprintf(in->warning, sizeof(in->warning),
		 "line %ld: unknown %s '%.60s' (did you mean '%s'?)", line, what,
		 name, near);
	return 0;
}

/* --- JSON lines --- */

/* A JSON string without U+0000 inside, or NULL. */
static const char *plain_string(json_t *v)
{
	const char *s = json_string_value(v);

	return s && strlen(s) == json_string_length(v) ? s : NULL;
}

/* The token task "tags" stands for: the only one, or -1. */
static int tags_task(const struct mtl_input *in)
{
	int n = 0, k_tok = -1;

	for (int k = 0; k < in->n_tasks; k++)
		if (in->ts->task[k].kind == MTL_TASK_TOKEN) {
			n++;
			k_tok = k;
		}
	return n == 1 ? k_tok : -1;
}

/* Task k's word labels from the array v into the item. */
static int jsonl_tags(struct mtl_input *in, struct mtl_input_item *it, int k,
		      json_t *v, struct mtl_err *err)
{
	const char *name = in->ts->task[k].name;

	if (!json_is_array(v))
		return input_bad(err, it->line, "task '%s': the labels must be an array", name);
	if (!it->words)
		return input_bad(err, it->line, "task '%s': token labels need 'words'", name);
	if (json_array_size(v) != it->n_words)
		return input_bad(err, it->line, "task '%s': %zu labels for %zu words",
			   name, json_array_size(v), it->n_words);
	if (input_reserve(&in->tag_buf[k], &in->tag_cap[k], it->n_words, sizeof(char *)))
		return input_nomem(err);
	for (size_t i = 0; i < it->n_words; i++) {
		json_t *l = json_array_get(v, i);
		if (json_is_null(l))
			in->tag_buf[k][i] = NULL;
		else if (json_is_string(l))
			in->tag_buf[k][i] = json_string_value(l);
		else
			return input_bad(err, it->line,
				   "task '%s': label %zu is not a string or null",
				   name, i + 1);
	}
	in->tags[k] = in->tag_buf[k];
	return 0;
}

/*
 * An embedding task's label object (input.h: struct mtl_input_emb) into
 * in->emb[k]: the keys its loss needs, nothing else.
 */
static int jsonl_emb(struct mtl_input *in, struct mtl_input_item *it, int k,
		     json_t *v, struct mtl_err *err)
{
	const struct mtl_task *t = &in->ts->task[k];
	int scored = t->emb.loss != MTL_EMB_MNRL;
	const char *okey = scored ? "pair" : "positive";
	struct mtl_input_emb *e = &in->emb[k];
	const char *key;
	json_t *x;

	if (!json_is_object(v))
		return input_bad(err, it->line,
			   "task '%s': the label must be an object {\"%s\": ...%s}",
			   t->name, okey, scored ? ", \"score\": ..." : "");
	e->score = NAN;
	json_object_foreach(v, key, x) {
		if (!strcmp(key, okey) || (!scored && !strcmp(key, "negative"))) {
			const char **dst = !strcmp(key, okey) ? &e->other : &e->negative;

			if (!json_is_string(x) || !(*dst = plain_string(x)))
				return input_bad(err, it->line, "task '%s': '%s' must be a string",
					   t->name, key);
			*(dst == &e->other ? &e->other_len : &e->negative_len) =
				json_string_length(x);
		} else if (scored && !strcmp(key, "score")) {
			if (!json_is_number(x) || !isfinite(json_number_value(x)))
				return input_bad(err, it->line, "task '%s': 'score' must be a number",
					   t->name);
			e->score = json_number_value(x);
		} else {
			return input_bad(err, it->line, "task '%s': unknown key '%s' (%s)",
				   t->name, key, scored ? "a scored pair has 'pair' and 'score'"
				   : "an embedding example has 'positive' and 'negative'");
		}
	}
	if (!e->other)
		return input_bad(err, it->line, scored ? "task '%s': a scored pair needs a 'pair'"
			   : "task '%s': an embedding example needs a 'positive'", t->name);
	if (scored && isnan(e->score))
		return input_bad(err, it->line, "task '%s': a scored pair needs a 'score'",
			   t->name);
	return 0;
}

/* Multilabel task k's label names from the array v into the item. */
static int jsonl_multi(struct mtl_input *in, struct mtl_input_item *it, int k,
		       json_t *v, struct mtl_err *err)
{
	const char *name = in->ts->task[k].name;
	size_t n = json_array_size(v);

	if (!json_is_array(v))
		return input_bad(err, it->line,
				 "task '%s': the labels must be an array of label names",
				 name);
	if (input_reserve(&in->tag_buf[k], &in->tag_cap[k], n + 1, sizeof(char *)))
		return input_nomem(err);
	for (size_t i = 0; i < n; i++)
		if (!(in->tag_buf[k][i] = plain_string(json_array_get(v, i))))
			return input_bad(err, it->line,
					 "task '%s': label %zu is not a string",
					 name, i + 1);
	in->multi[k] = in->tag_buf[k];
	in->n_multi[k] = n;
	return 0;
}

/* The optional text at key of the object j into *s and *len (absent or
 * null: *s stays NULL).  0 or MTL_ERR_FORMAT naming the key. */
static int jsonl_text(json_t *j, const char *key, long line, const char **s,
		      size_t *len, struct mtl_err *err)
{
	json_t *v = json_object_get(j, key);

	if (json_is_string(v)) {
		if (!(*s = plain_string(v)))
			return input_bad(err, line, "'%s' contains U+0000", key);
		*len = json_string_length(v);
	} else if (v && !json_is_null(v)) {
		return input_bad(err, line, "'%s' must be a string", key);
	}
	return 0;
}

/* Fills it from the object in->j. */
static int jsonl_item(struct mtl_input *in, struct mtl_input_item *it,
		      struct mtl_err *err)
{
	const char *field = in->o.text_field;
	json_t *j = in->j, *v, *words;
	int k_tags = tags_task(in);

	const char *key;
	int rc;

	if (!json_is_object(j))
		return input_bad(err, it->line, "not a JSON object");
	json_object_foreach(j, key, v)
		if ((rc = input_check_name(in, it->line, "key", key, err)))
			return rc;
	v = json_object_get(j, "id");
	if (json_is_string(v)) {
		if (!(it->id = plain_string(v)))
			return input_bad(err, it->line, "'id' contains U+0000");
	} else if (json_is_integer(v)) {
		it->id_int = json_integer_value(v);
		it->id_given = 1;
	} else if (v && !json_is_null(v)) {
		return input_bad(err, it->line, "'id' must be a string or an integer");
	}
	if ((rc = jsonl_text(j, "text_b", it->line, &it->text_b, &it->text_b_len, err)) ||
	    (rc = jsonl_text(j, "pair", it->line, &it->pair, &it->pair_len, err)))
		return rc;
	words = json_object_get(j, "words");
	if (words && !json_is_null(words)) {
		size_t n = json_array_size(words);
		if (!json_is_array(words))
			return input_bad(err, it->line, "'words' must be an array of strings");
		if (input_reserve(&in->words, &in->words_cap, n, sizeof(char *)))
			return input_nomem(err);
		for (size_t i = 0; i < n; i++) {
			json_t *w = json_array_get(words, i);
			if (!json_is_string(w))
				return input_bad(err, it->line, "words[%zu] is not a string", i);
			if (!(in->words[i] = plain_string(w)))
				return input_bad(err, it->line, "words[%zu] contains U+0000", i);
		}
		it->words = in->words;
		it->n_words = n;
	} else {
		v = json_object_get(j, field);
		if (!v || json_is_null(v))
			return input_bad(err, it->line, "missing '%s' (or 'words')", field);
		if (!json_is_string(v))
			return input_bad(err, it->line, "'%s' is not a string", field);
		it->text = json_string_value(v);
		it->text_len = json_string_length(v);
	}
	for (int k = 0; k < in->n_tasks; k++) {
		const struct mtl_task *t = &in->ts->task[k];

		v = json_object_get(j, in->label[k]);
		if (k == k_tags && json_object_get(j, "tags")) {
			if (v)
				return input_bad(err, it->line, "both '%s' and 'tags'", in->label[k]);
			v = json_object_get(j, "tags");
		}
		if (!v || json_is_null(v))
			continue;
		if (t->kind == MTL_TASK_EMBEDDING) {
			if ((rc = jsonl_emb(in, it, k, v, err)))
				return rc;
		} else if (t->kind == MTL_TASK_TOKEN) {
			if ((rc = jsonl_tags(in, it, k, v, err)))
				return rc;
		} else if (t->kind == MTL_TASK_MULTILABEL) {
			if ((rc = jsonl_multi(in, it, k, v, err)))
				return rc;
		} else if (t->kind == MTL_TASK_REGRESSION) {
			if (!json_is_number(v) || !isfinite((float)json_number_value(v)))
				return input_bad(err, it->line,
						 "task '%s': the target must be a finite number",
						 t->name);
			in->value[k] = json_number_value(v);
		} else if (!json_is_string(v)) {
			return input_bad(err, it->line, "task '%s': the label must be a string",
				   t->name);
		} else {
			in->seq[k] = json_string_value(v);
		}
	}
	return 0;
}

static int read_jsonl(struct mtl_input *in, struct mtl_input_item *it,
		      struct mtl_err *err)
{
	json_error_t je;
	size_t len;
	char *l;
	int rc;

	json_decref(in->j);
	in->j = NULL;
	do {
		if (!input_next_line(in, &len))
			return input_at_end(in, err);
	} while (strspn(in->line, " \t") >= len); /* blank lines pass */
	input_item_start(in, it, in->lineno);
	if ((rc = input_check_utf8(in, &l, &len, err)))
		return rc;
	in->j = json_loadb(l, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
	if (!in->j)
		return input_bad(err, it->line, "column %d: %s", je.column, je.text);
	if ((rc = jsonl_item(in, it, err)))
		return rc;
	return input_finish(in, it, err);
}

/* --- CoNLL --- */

/* The pending sentence as an item: 1, 0 when there is none, or <0. */
static int conll_sentence(struct mtl_input *in, struct mtl_input_item *it,
			  struct mtl_err *err)
{
	if (in->sent_words.n == 0)
		return 0;
	input_item_start(in, it, in->first);
	it->words = (const char **)in->sent_words.v;
	it->n_words = in->sent_words.n;
	if (in->o.conll_task >= 0)
		in->tags[in->o.conll_task] = (const char **)in->sent_tags.v;
	in->sent_done = 1;
	return input_finish(in, it, err);
}

static int read_conll(struct mtl_input *in, struct mtl_input_item *it,
		      struct mtl_err *err)
{
	size_t len;
	char *l;
	int rc;

	if (in->sent_done) {
		input_strs_clear(&in->sent_words);
		input_strs_clear(&in->sent_tags);
		in->sent_done = 0;
	}
	for (;;) {
		if (!input_next_line(in, &len))
			return (rc = conll_sentence(in, it, err)) ? rc : input_at_end(in, err);
		if (strspn(in->line, " \t\r\v\f") >= len) {
			in->skipping = 0;
			if ((rc = conll_sentence(in, it, err)))
				return rc;
			continue;
		}
		if (in->skipping)
			continue;
		input_item_start(in, it, in->lineno);
		rc = input_check_utf8(in, &l, &len, err);
		if (rc == 0 && input_split_fields(&in->fields, l, len, 0))
			return input_nomem(err);
		if (rc == 0 && (in->fields.n == 0 ||
				strcmp(in->fields.v[0], "-DOCSTART-") == 0)) {
			if ((rc = conll_sentence(in, it, err)))
				return rc;
			continue;
		}
		if (rc == 0 && in->fields.n < 2 && in->o.conll_task >= 0)
			rc = input_bad(err, in->lineno, "no tag column");
		if (rc < 0) {
			/* the whole sentence goes with its bad line */
			input_strs_clear(&in->sent_words);
			input_strs_clear(&in->sent_tags);
			in->skipping = 1;
			return rc;
		}
		if (in->sent_words.n == 0)
			in->first = in->lineno;
		if (input_strs_push(&in->sent_words, in->fields.v[0], strlen(in->fields.v[0])) ||
		    input_strs_push(&in->sent_tags, in->fields.v[in->fields.n - 1],
			      strlen(in->fields.v[in->fields.n - 1])))
			return input_nomem(err);
	}
}

/* --- plain text --- */

/* Every line is a text, a blank one too: ids stay line numbers. */
static int read_text(struct mtl_input *in, struct mtl_input_item *it,
		     struct mtl_err *err)
{
	size_t len;
	char *l;
	int rc;

	if (!input_next_line(in, &len))
		return input_at_end(in, err);
	input_item_start(in, it, in->lineno);
	if ((rc = input_check_utf8(in, &l, &len, err)))
		return rc;
	l[len] = 0; /* without its line end */
	it->text = l;
	it->text_len = len;
	return 1;
}

/* --- the reader --- */

int mtl_input_open(struct mtl_input **out, FILE *f, const struct mtl_tasks *ts,
		   const struct mtl_input_opts *opts, struct mtl_err *err)
{
	struct mtl_input *in;
	int rc;

	if (ts && ts->n > MAX_TASKS)
		return mtl_err_set(err, MTL_ERR_ARG, "more than %d tasks", MAX_TASKS);
	if (!(in = calloc(1, sizeof(*in))))
		return input_nomem(err);
	in->f = f;
	in->ts = ts;
	in->n_tasks = ts ? ts->n : 0;
	in->o = *opts;
	if (!in->o.text_field)
		in->o.text_field = "text";
	for (int k = 0; k < in->n_tasks; k++)
		in->label[k] = opts->label_field && opts->label_field[k]
				       ? opts->label_field[k] : ts->task[k].name;
	mtl_tok_enc_init(&in->enc);
	mtl_tok_enc_init(&in->enc_b);
	if ((in->o.format == MTL_INPUT_TSV || in->o.format == MTL_INPUT_CSV) &&
	    (rc = input_tsv_header(in, err)) < 0) {
		mtl_input_free(in);
		return rc;
	}
	*out = in;
	return 0;
}

int mtl_input_read(struct mtl_input *in, struct mtl_input_item *it,
		   struct mtl_err *err)
{
	in->warning[0] = 0;
	switch (in->o.format) {
	case MTL_INPUT_CONLL: return read_conll(in, it, err);
	case MTL_INPUT_TSV:
	case MTL_INPUT_CSV: return input_read_tsv(in, it, err);
	case MTL_INPUT_TEXT: return read_text(in, it, err);
	default: return read_jsonl(in, it, err);
	}
}

const char *mtl_input_warning(const struct mtl_input *in)
{
	return in->warning[0] ? in->warning : NULL;
}

void mtl_input_free(struct mtl_input *in)
{
	if (!in)
		return;
	json_decref(in->j);
	for (int k = 0; k < MAX_TASKS; k++) {
		free(in->tag_buf[k]);
		free(in->word_labels[k]);
		input_strs_free(&in->cell_tags[k]);
	}
	input_strs_free(&in->fields);
	input_strs_free(&in->hdr);
	input_strs_free(&in->sent_words);
	input_strs_free(&in->sent_tags);
	input_strs_free(&in->warned);
	mtl_tok_enc_release(&in->enc);
	mtl_tok_enc_release(&in->enc_b);
	free(in->words);
	free(in->line);
	free(in->fix);
	free(in->joined);
	free(in->cell);
	free(in);
}

int mtl_input_tag_task(int *out, const struct mtl_tasks *ts, const char *name,
		       enum mtl_input_format format, struct mtl_err *err)
{
	int k = -1;

	if (name) {
		k = mtl_task_find(ts, name);
		if (k < 0)
			return mtl_err_set(err, MTL_ERR_ARG, "no task '%s'%s", name,
					   ts ? "" : " (no task spec)");
		if (ts->task[k].kind != MTL_TASK_TOKEN)
			return mtl_err_set(err, MTL_ERR_ARG,
					   "task '%s' is not a token task", name);
	} else if (format == MTL_INPUT_CONLL && ts) {
		for (int t = 0; t < ts->n; t++) {
			if (ts->task[t].kind != MTL_TASK_TOKEN)
				continue;
			if (k >= 0)
				return mtl_err_set(err, MTL_ERR_ARG, "several token tasks: "
						   "say which with --task");
			k = t;
		}
		if (k < 0)
			return mtl_err_set(err, MTL_ERR_ARG,
					   "CoNLL input needs a token task");
	}
	*out = k;
	return 0;
}

int mtl_input_format_parse(enum mtl_input_format *f, const char *name, int ext)
{
	/* the first five are the format names; all are extensions */
	static const struct { const char *name; enum mtl_input_format f; } names[] = {
		{ "jsonl", MTL_INPUT_JSONL }, { "conll", MTL_INPUT_CONLL },
		{ "tsv", MTL_INPUT_TSV }, { "csv", MTL_INPUT_CSV },
		{ "text", MTL_INPUT_TEXT }, { "json", MTL_INPUT_JSONL },
		{ "bio", MTL_INPUT_CONLL }, { "iob", MTL_INPUT_CONLL },
		{ "txt", MTL_INPUT_TEXT },
	};
	size_t n = ext ? sizeof(names) / sizeof(names[0]) : 5;
	const char *dot;

	if (ext) {
		dot = strrchr(name, '.');
		if (!dot || strchr(dot, '/'))
			return -1;
		name = dot + 1;
	}
	for (size_t i = 0; i < n; i++)
		if (!strcmp(name, names[i].name)) {
			*f = names[i].f;
			return 0;
		}
	return -1;
}
