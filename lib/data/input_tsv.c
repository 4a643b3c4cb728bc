/*
 * input_tsv.c - the TSV and CSV readers of input.h: a header row names the
 * columns, each later row (a CSV record may span lines) is one item.
 */
#include "input_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Appends c to the CSV field being read (length *o).  0 or -1. */
static int cell_put(struct mtl_input *in, size_t *o, char c)
{
	if (input_reserve(&in->cell, &in->cell_cap, *o + 1, 1))
		return -1;
	in->cell[(*o)++] = c;
	return 0;
}

/*
 * Reads the next CSV record into in->fields, as RFC 4180 says: fields are
 * separated by commas, and a field that starts with '"' is quoted: it ends
 * at the next lone '"' and may hold commas, line breaks and "" for a
 * quote.  A '"' elsewhere in an unquoted field is kept as it is.  *first
 * gets the record's first line.  1, 0 at the end, or <0.
 */
static int csv_record(struct mtl_input *in, long *first, struct mtl_err *err)
{
	int quoted = 0, closed = 0, rc;
	size_t len, o = 0;
	char *l;

	input_strs_clear(&in->fields);
	do {
		if (!input_next_line(in, &len))
			return input_at_end(in, err);
	} while (len == 0);
	*first = in->lineno;
	for (;;) {
		if ((rc = input_check_utf8(in, &l, &len, err)))
			return rc;
		for (size_t i = 0; i < len; i++) {
			char c = l[i];

			if (quoted && c == '"' && i + 1 < len && l[i + 1] == '"') {
				i++; /* "" in a quoted field: one quote */
			} else if (quoted && c == '"') {
				quoted = 0;
				closed = 1;
				continue;
			} else if (!quoted && c == ',') {
				if (input_strs_push(&in->fields, in->cell ? in->cell : "", o))
					return input_nomem(err);
				o = 0;
				closed = 0;
				continue;
			} else if (closed) {
				return input_bad(err, *first, "field %zu: text after its closing quote",
					   in->fields.n + 1);
			} else if (!quoted && c == '"' && o == 0) {
				quoted = 1;
				continue;
			}
			if (cell_put(in, &o, c))
				return input_nomem(err);
		}
		if (!quoted)
			break;
		/* a line break inside a quoted field */
		if (cell_put(in, &o, '\n'))
			return input_nomem(err);
		if (!input_next_line(in, &len))
			return input_bad(err, *first, "field %zu: no closing quote",
				   in->fields.n + 1);
	}
	if (input_strs_push(&in->fields, in->cell ? in->cell : "", o))
		return input_nomem(err);
	return 1;
}

/*
 * Reads the next row of a TSV or CSV file into in->fields (blank lines
 * pass), *first its first line.  1, 0 at the end, or <0.
 */
static int read_row(struct mtl_input *in, long *first, struct mtl_err *err)
{
	size_t len;
	char *l;
	int rc;

	if (in->o.format == MTL_INPUT_CSV)
		return csv_record(in, first, err);
	do {
		if (!input_next_line(in, &len))
			return input_at_end(in, err);
	} while (len == 0);
	*first = in->lineno;
	if ((rc = input_check_utf8(in, &l, &len, err)))
		return rc;
	if (input_split_fields(&in->fields, l, len, 1))
		return input_nomem(err);
	return 1;
}

/*
 * Fails when two columns of header h share a name: one of them would go
 * unread.  Unnamed columns (spreadsheets add empty ones) are never read.
 */
static int tsv_unique(struct mtl_input *in, const struct strs *h,
		      struct mtl_err *err)
{
	const char **named = malloc((h->n ? h->n : 1) * sizeof(*named));
	size_t n = 0, at;
	int rc;

	if (!named)
		return input_nomem(err);
	for (size_t i = 0; i < h->n; i++)
		if (h->v[i][0])
			named[n++] = h->v[i];
	rc = mtl_task_first_dup(named, n, &at);
	if (rc > 0)
		rc = input_bad(err, in->lineno, "the header names column '%.100s' twice",
			 named[at]);
	else if (rc < 0)
		rc = input_nomem(err);
	free(named);
	return rc;
}

/* Reads the header row: the id, text and task columns. */
int input_tsv_header(struct mtl_input *in, struct mtl_err *err)
{
	struct strs *h = &in->hdr;
	long first;
	int rc;

	in->col_id = in->col_text = in->col_text_b = -1;
	for (int k = 0; k < MAX_TASKS; k++)
		in->col_task[k] = -1;
	if ((rc = read_row(in, &first, err)) < 0)
		return rc;
	if (rc == 0)
		return input_bad(err, in->lineno, "no header row");
	/* the header keeps the row; fields is reused for every record */
	input_strs_free(h);
	*h = in->fields;
	memset(&in->fields, 0, sizeof(in->fields));
	if ((rc = tsv_unique(in, h, err)))
		return rc;
	for (size_t i = 0; i < h->n; i++) {
		if (strcmp(h->v[i], "id") == 0)
			in->col_id = (int)i;
		else if (strcmp(h->v[i], in->o.text_field) == 0)
			in->col_text = (int)i;
		else if (strcmp(h->v[i], "text_b") == 0)
			in->col_text_b = (int)i;
		for (int k = 0; k < in->n_tasks; k++)
			if (strcmp(h->v[i], in->label[k]) == 0)
				in->col_task[k] = (int)i;
		if ((rc = input_check_name(in, first, "column", h->v[i], err)))
			return rc;
	}
	if (in->col_text < 0)
		return input_bad(err, first, "the header has no '%s' column",
			   in->o.text_field);
	return 0;
}

int input_read_tsv(struct mtl_input *in, struct mtl_input_item *it,
		    struct mtl_err *err)
{
	struct strs *f = &in->fields, *words = &in->sent_words;
	long first;
	int rc;

	if ((rc = read_row(in, &first, err)) <= 0)
		return rc;
	input_item_start(in, it, first);
	if (f->n != in->hdr.n)
		return input_bad(err, it->line, "%zu fields, the header has %zu", f->n,
			   in->hdr.n);
	if (in->col_id >= 0 && f->v[in->col_id][0])
		it->id = f->v[in->col_id];
	it->text = f->v[in->col_text];
	it->text_len = strlen(it->text);
	if (in->col_text_b >= 0 && f->v[in->col_text_b][0]) {
		it->text_b = f->v[in->col_text_b];
		it->text_b_len = strlen(it->text_b);
	}
	input_strs_clear(words);
	for (int k = 0; k < in->n_tasks; k++) {
		const struct mtl_task *t = &in->ts->task[k];
		const char *cell = in->col_task[k] >= 0 ? f->v[in->col_task[k]] : "";
		struct strs *tags = &in->cell_tags[k];

		if (!cell[0])
			continue;
		if (t->kind == MTL_TASK_EMBEDDING)
			return input_bad(err, it->line,
					 "task '%s': embedding tasks read JSON lines only",
					 t->name);
		if (t->kind == MTL_TASK_SEQUENCE || t->kind == MTL_TASK_PAIR) {
			in->seq[k] = cell;
			continue;
		}
		if (t->kind == MTL_TASK_REGRESSION) {
			char *end;

			in->value[k] = strtod(cell, &end);
			if (*end || end == cell || !isfinite((float)in->value[k]))
				return input_bad(err, it->line,
						 "task '%s': target '%.40s' is not a finite number",
						 t->name, cell);
			continue;
		}
		if (t->kind == MTL_TASK_MULTILABEL) {
			/* space-separated label names */
			if (input_split_fields(tags, cell, strlen(cell), 0))
				return input_nomem(err);
			in->multi[k] = (const char **)tags->v;
			in->n_multi[k] = tags->n;
			continue;
		}
		/* token task: space-separated tags for space-separated words */
		if (!it->words) {
			if (input_split_fields(words, it->text, it->text_len, 0))
				return input_nomem(err);
			it->words = (const char **)words->v;
			it->n_words = words->n;
		}
		if (input_split_fields(tags, cell, strlen(cell), 0))
			return input_nomem(err);
		if (tags->n != words->n)
			return input_bad(err, it->line, "task '%s': %zu labels for %zu words",
				   t->name, tags->n, words->n);
		in->tags[k] = (const char **)tags->v;
	}
	return input_finish(in, it, err);
}

