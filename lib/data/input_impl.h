/*
 * input_impl.h - private to the input module's parts (input.c, input_tsv.c,
 * input_encode.c): the reader's state and the helpers every format shares.  Not part of the
 * library's interface; see input.h for that.
 */
#ifndef MTL_INPUT_IMPL_H
#define MTL_INPUT_IMPL_H

#include <stddef.h>

#include <jansson.h>

#include "input.h"

#define MAX_TASKS 64 /* struct mtl_example holds a 64-bit task mask */

/* A growing list of owned strings. */
struct strs {
	char **v;
	size_t n, cap;
};

struct mtl_input {
	FILE *f;
	const struct mtl_tasks *ts;
	struct mtl_input_opts o;
	int n_tasks;
	char *line, *fix, *joined;
	size_t cap, fix_cap, joined_cap;
	long lineno;
	int eof;
	/* the item's per-task arrays */
	const char *seq[MAX_TASKS];
	const char **tags[MAX_TASKS];
	struct mtl_input_emb emb[MAX_TASKS]; /* embedding tasks' texts */
	const char **multi[MAX_TASKS]; /* borrow tag_buf (JSONL), cell_tags */
	size_t n_multi[MAX_TASKS];
	double value[MAX_TASKS];       /* regression targets, NaN: none */
	/* JSONL: the document the item borrows from, and its arrays */
	json_t *j;
	const char **words;
	size_t words_cap;
	const char **tag_buf[MAX_TASKS];
	size_t tag_cap[MAX_TASKS];
	/* CoNLL and TSV: split fields */
	struct strs fields, hdr, sent_words, sent_tags, cell_tags[MAX_TASKS];
	long first;           /* CoNLL: first line of the pending sentence */
	int skipping;         /* CoNLL: the rest of a sentence with a bad line */
	int sent_done;        /* CoNLL: the sentence went out; clear it */
	int col_id, col_text, col_text_b; /* TSV and CSV columns, or -1 */
	int col_task[MAX_TASKS];
	char *cell;           /* CSV: the field being read */
	size_t cell_cap;
	const char *label[MAX_TASKS]; /* the key or column of each task's labels */
	char warning[256];    /* for mtl_input_warning; "" when none */
	struct strs warned;   /* unknown names already warned about */
	/* mtl_input_encode */
	struct mtl_tok_enc enc;
	struct mtl_tok_enc enc_b;     /* a pair's second text */
	int32_t *word_labels[MAX_TASKS];
	size_t word_labels_cap[MAX_TASKS];
};

/* Sets "line N: message" in err; returns MTL_ERR_FORMAT. */
int input_bad(struct mtl_err *err, long line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Sets "out of memory"; returns MTL_ERR_NOMEM. */
int input_nomem(struct mtl_err *err);
/* Room for n elements of size sz in the array at pp (capacity *cap): 0 or -1. */
int input_reserve(void *pp, size_t *cap, size_t n, size_t sz);
/* Appends a copy of p[0..n): 0 or -1. */
int input_strs_push(struct strs *s, const char *p, size_t n);
void input_strs_clear(struct strs *s);
void input_strs_free(struct strs *s);
/* Splits l[0..len) on tabs when it has one (or tabs_only), else on runs
 * of spaces.  0 or -1 (memory). */
int input_split_fields(struct strs *f, const char *l, size_t len, int tabs_only);
/* The next line into in->line, *len without its line end: 1, or 0 at the end. */
int input_next_line(struct mtl_input *in, size_t *len);
/* The end of input: 0, or MTL_ERR_IO after a read error. */
int input_at_end(struct mtl_input *in, struct mtl_err *err);
/* Checks (or repairs) the current line's UTF-8: 0 and *out, or <0. */
int input_check_utf8(struct mtl_input *in, char **out, size_t *len,
		     struct mtl_err *err);
/* Starts an item at line, with no labels. */
void input_item_start(struct mtl_input *in, struct mtl_input_item *it, long line);
/* Joins words into the text; the checks all formats share.  1 or <0. */
int input_finish(struct mtl_input *in, struct mtl_input_item *it,
		 struct mtl_err *err);
/* Checks a key or column name (unknown: error when strict, else a
 * warning when close to a known one).  0 or MTL_ERR_FORMAT. */
int input_check_name(struct mtl_input *in, long line, const char *what,
		     const char *name, struct mtl_err *err);

/* input_tsv.c: the TSV/CSV header row (at open), and one record. */
int input_tsv_header(struct mtl_input *in, struct mtl_err *err);
int input_read_tsv(struct mtl_input *in, struct mtl_input_item *it,
		   struct mtl_err *err);

#endif
