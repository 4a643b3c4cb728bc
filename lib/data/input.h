/*
 * input.h - labelled text in: JSON lines, CoNLL, TSV, CSV and plain-text
 * readers, and the step from one input item to a tokenized struct
 * mtl_example (docs/tokenize.md describes the formats).
 *
 *   JSONL  one object a line: "id", the text field (or "words"), and per
 *          task a label (sequence task), a list of word labels (token
 *          task; "tags" stands for the only token task) or a list of
 *          label names (multilabel task; [] is labelled with none), or a
 *          number (regression task); "text_b", a second text: the record
 *          is a pair (below).
 *          Blank lines pass.
 *   CoNLL  one word a line, its tag in the last column (tab-separated when
 *          the line has a tab, else space-separated); sentences end at
 *          whitespace-only lines and -DOCSTART- lines.  Tags belong to
 *          opts.conll_task.
 *   TSV    a header row names the tab-separated columns: "id", the text
 *          field and task names; an empty cell is no label; a token task's
 *          cell holds space-separated tags for the space-separated words,
 *          a multilabel task's its space-separated label names, a
 *          regression task's a number (as strtod reads it, finite); a
 *          "text_b" column holds a pair's second text (empty: none).
 *   CSV    as TSV, with comma-separated fields quoted as RFC 4180 says
 *          (a quoted field may hold commas, line breaks and "" for a quote).
 *   text   one text a line, every line (a blank one too), no labels; the
 *          id is the line number.
 *
 * A pair (a record with "text_b") is encoded as Hugging Face's
 * BertTokenizerFast encodes a text pair: [CLS] text [SEP] text_b [SEP], token
 * type ids 0 up to the first [SEP] and 1 after it, truncated to the
 * maximum length longest first (mtl_tok_pair_lengths).  It may be
 * labelled only for pair and regression tasks, and a pair task's label
 * needs a "text_b"; "text_b" goes with "text", not "words".
 *
 * A task's labels are read from the field or column named after it, or
 * the one opts.label_field[k] names.  A text that gives no tokens (empty,
 * blank, only characters the tokenizer drops) is encoded as Hugging Face
 * does, [CLS] [SEP], and counted in census.no_tokens.
 *
 * Example:
 *
 *	struct mtl_input *in;
 *	struct mtl_input_item it;
 *	struct mtl_example ex;
 *	if (mtl_input_open(&in, f, ts, &opts, &err) < 0) ...report err.msg...
 *	while ((rc = mtl_input_read(in, &it, &err)) != 0) {
 *		if (rc == 1)
 *			rc = mtl_input_encode(in, &it, tok, max_len, &ex, census, &err);
 *		if (rc < 0) ...report "line N: ..." in err.msg, go on or stop...
 *		else { use(&ex); mtl_example_release(&ex); }
 *	}
 *	mtl_input_free(in);
 *
 * Ownership: the reader borrows f, ts and opts (they must outlive it) and
 * never closes f.  An item's strings are borrowed from the reader, valid
 * until the next read on it or its free.  mtl_input_encode fills caller
 * storage that mtl_example_release frees.
 *
 * Failure: a bad record gives MTL_ERR_FORMAT with "line N: reason" in err,
 * N the record's line (a CoNLL sentence's first line, a CSV record's
 * first line); the next read goes on after it.  A JSONL key or TSV/CSV
 * column that is not a known field but is close to one (a task's field,
 * the text field, "words", "id", "pair") is a warning, once per name
 * (mtl_input_warning); with opts.strict every unknown key or column is a
 * bad record (a bad header for columns).  Invalid UTF-8 and NUL bytes are bad records unless
 * opts.replace_invalid (then invalid bytes become U+FFFD).  A read error
 * is MTL_ERR_IO, memory MTL_ERR_NOMEM.
 */
#ifndef MTL_INPUT_H
#define MTL_INPUT_H

#include <stdint.h>
#include <stdio.h>

#include "data.h"
#include "err.h"
#include "task.h"
#include "tok.h"

enum mtl_input_format {
	MTL_INPUT_JSONL, MTL_INPUT_CONLL, MTL_INPUT_TSV, MTL_INPUT_CSV, MTL_INPUT_TEXT
};

/*
 * The format called name ("jsonl", "conll", "tsv", "csv", "text"), or,
 * when ext is set, the format a file name's extension says (.jsonl/.json,
 * .conll/.bio/.iob, .tsv, .csv, .txt).  0 and *f, or -1 when unknown.
 */
int mtl_input_format_parse(enum mtl_input_format *f, const char *name, int ext);

struct mtl_input_opts {
	enum mtl_input_format format;
	const char *text_field; /* JSONL key or TSV column of the text; NULL: "text" */
	int conll_task;         /* task index CoNLL tags belong to, or -1: none */
	int replace_invalid;    /* invalid UTF-8 becomes U+FFFD, not an error */
	int skip_unknown;       /* mtl_input_encode: an unknown label is absent */
	const char *id_prefix;  /* records without an id of their own get the
				 * string id "PREFIX:LINE", not the line number
				 * (keeps ids unique across several files) */
	const char *const *label_field; /* [ts->n] or NULL: the JSONL key or
				 * TSV/CSV column of each task's labels
				 * (NULL entries: the task's name) */
	int strict;             /* unknown keys and columns are errors */
};

/*
 * An embedding task's label in JSON lines: {"positive": STR, "negative":
 * STR} (loss mnrl; the negative optional) or {"pair": STR, "score": NUM}
 * (cosent, cosine_mse).  The example's text is the anchor.
 */
struct mtl_input_emb {
	const char *other;    /* "positive" or "pair"; NULL: no label */
	size_t other_len;
	const char *negative; /* NULL: none */
	size_t negative_len;
	double score;         /* NaN: none */
};

/* One record; every pointer borrowed from the reader. */
struct mtl_input_item {
	long line;            /* the record's (first) line */
	const char *id;       /* the id string, or NULL: id_int */
	long long id_int;     /* the integer id, by default the line number */
	int id_given;         /* the id came from the data, not the line */
	const char *text;     /* the text, or for words the words joined by spaces */
	size_t text_len;
	const char *pair;     /* JSONL "pair": a second text (the contrastive
			       * positive), or NULL */
	size_t pair_len;
	const char *text_b;   /* JSONL "text_b" or TSV/CSV column "text_b":
			       * the second text of a pair, encoded with the
			       * first ([CLS] text [SEP] text_b [SEP]), or NULL */
	size_t text_b_len;
	const char **words;   /* [n_words], or NULL for plain text */
	size_t n_words;
	const char **seq;     /* [ts->n]: a sequence task's label, or NULL */
	const char ***tags;   /* [ts->n]: a token task's [n_words] tags (NULL
			       * entries: none), or NULL */
	const struct mtl_input_emb *emb; /* [ts->n]: an embedding task's texts */
	const char ***multi;  /* [ts->n]: a multilabel task's label names
			       * [n_multi[k]], or NULL: not labelled */
	const size_t *n_multi;
	const double *value;  /* [ts->n]: a regression task's target, NaN: none */
};

struct mtl_input;

/*
 * Opens a reader of f in opts->format for the tasks ts (NULL: none; at
 * most 64, else MTL_ERR_ARG).  TSV reads its header row here: a header
 * that is not valid UTF-8, lacks the text column or is missing gives
 * MTL_ERR_FORMAT ("line N: ...").  On error *out is untouched.
 */
int mtl_input_open(struct mtl_input **out, FILE *f, const struct mtl_tasks *ts,
		   const struct mtl_input_opts *opts, struct mtl_err *err);

/*
 * Reads the next record into *it: 1, 0 at the end, or <0 (above) with
 * *it undefined.  Every check that needs no tokenizer is made here: types,
 * a label count per word, both a token task and "tags", unknown keys.
 */
int mtl_input_read(struct mtl_input *in, struct mtl_input_item *it,
		   struct mtl_err *err);

/*
 * Tokenizes it (truncating to max_len tokens, 0: no limit), looks its
 * labels up and aligns word labels to first pieces, filling ex as
 * mtl_example_pack writes it.  Adds to c (may be NULL) what the example
 * record does not carry: [UNK] tokens, word labels lost and unknown labels
 * skipped (skipped ones are counted even when the record fails later).
 * An unknown label (unless opts.skip_unknown) or a tokenizer error gives
 * MTL_ERR_FORMAT ("line N: ..."), ex released.
 */
int mtl_input_encode(struct mtl_input *in, const struct mtl_input_item *it,
		     const struct mtl_tok *tok, size_t max_len,
		     struct mtl_example *ex, struct mtl_census *c,
		     struct mtl_err *err);

/*
 * The warning the last mtl_input_open or mtl_input_read left ("line 3:
 * unknown key 'topc' (did you mean 'topic'?)"), or NULL.  Borrowed, valid
 * until the next call on in.
 */
const char *mtl_input_warning(const struct mtl_input *in);

void mtl_input_free(struct mtl_input *in);

/*
 * The task CoNLL tags belong to, into *out: the token task called name,
 * or for CoNLL without a name the only token task; -1 for other formats
 * without a name, or without tasks.  0, or MTL_ERR_ARG with the reason
 * ("task 'topic' is not a token task"), *out untouched.
 */
int mtl_input_tag_task(int *out, const struct mtl_tasks *ts, const char *name,
		       enum mtl_input_format format, struct mtl_err *err);

#endif
