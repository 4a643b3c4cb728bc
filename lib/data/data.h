/*
 * data.h - examples and batches in memory, and their stream records.
 *
 * An examples stream (mtl-tokenize) carries one tokenized text per record;
 * a batches stream (mtl-batch) carries padded groups of them.  Both
 * headers list the tasks ("tasks": [{"name","kind","labels"}...], and
 * "threshold" for a multilabel task) and the
 * tokenizer's "vocab_hash", "max_length" and "pad_id".
 *
 * Example record (mtl_example_pack writes the keys in this order):
 *   {"type":"example", "id":ID, "text":STR, "text_b":STR (a pair's second
 *    text), "ids":[int], "type_ids":[int] (pairs only: 0 or 1 per token,
 *    docs/tasks.md), "word_ids":[int] (-1 on a pair's second text),
 *    "words":[STR] (word input only),
 *    "word_starts":[int], "word_ends":[int] (text input only: each word's
 *    byte offsets [start, end) in "text", indexed by word id),
 *    "labels":{TASK: int (sequence task) | float (regression task) |
 *    [int] (token task, one per
 *    token, -100 where not scored) | [int] (multilabel task, one 0/1 per
 *    label: whether the text has it)}, "truncated":BOOL,
 *    "words_lost":int (only when truncated)}
 * Only the tasks an example carries labels for appear in "labels".
 * An embedding task's label is a map (data_emb.c): {"other_ids":[int]
 * (the positive, or the scored pair's second text), "negative_ids":[int]
 * (a hard negative; optional), "score":float (optional)}.
 * A "type_ids" array of another length or with a value other than 0 and 1
 * is an error (not left out: it would change what the encoder reads).
 *
 * Stats record (mtl_census_pack; the last record of an examples stream):
 *   {"type":"stats", "examples", "tokens", "labelled":{TASK:n},
 *    "tasks_per_example":{"none","one","several"},
 *    "label_counts":{TASK:{LABEL:n}}, "truncated", "words_lost",
 *    "labels_lost", "unknown_labels_skipped", "unk", "unk_rate",
 *    "bad_records_skipped", "no_tokens"}
 *
 * Batch record:
 *   {"type":"batch", "epoch":E, "index":I, "size":B, "seq_len":T,
 *    "ids":[B*T int, row-major, padded with pad_id],
 *    "type_ids":[B*T int] (only when a row holds a pair; 0 on padding),
 *    "lengths":[B int] (real tokens of each row; attention mask = t < len),
 *    "example_ids":[B ids],
 *    "labels":{TASK: [B int] | [B*T int] | [B*L int] | [B float or nil]
 *    (regression)} (tasks with at least
 *    one label in the batch: sequence, token, multilabel with L labels, as
 *    mtl_task_width says; -100 = not labelled / not scored, a multilabel
 *    row of -100 an example not labelled for the task)}
 * and, when an embedding task labels the batch (data_emb.c): "extra_rows":E
 * (its texts other than the examples', rows B..B+E-1 of "ids" and
 * "lengths", which then hold B+E rows, all padded to seq_len), "labels":
 * {TASK: [B int]} the row of each example's positive or pair text (-100:
 * not labelled), "negatives":{TASK: [B int]} the row of its hard negative
 * (-1: none), "scores":{TASK: [B float]} its gold score (NaN: none); the
 * last two only for tasks that have any.
 *
 * Ownership: _parse functions fill caller storage that the matching
 * _release frees (release accepts zeroed storage); nothing borrows from
 * the msgpack record after parsing returns.
 */
#ifndef MTL_DATA_H
#define MTL_DATA_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "err.h"
#include "task.h"

#define MTL_IGNORE (-100)

/*
 * A regression task's target sits in its label slot (an example's seq[t],
 * a batch's labels[t]) as the bits of a float32, so that every path that
 * moves labels moves targets too; MTL_IGNORE, whose bits are a NaN, means
 * none (targets are finite).  In records targets are msgpack floats.
 */
static inline int32_t mtl_label_of_value(float v)
{
	int32_t l;

	memcpy(&l, &v, sizeof(l));
	return l;
}

static inline float mtl_label_value(int32_t l)
{
	float v;

	memcpy(&v, &l, sizeof(v));
	return v;
}

/*
 * Builds a task list (name, kind, labels, a multilabel threshold; head
 * options at their defaults) from a stream header's "tasks".  A header without "tasks" gives an empty
 * list.  0, or MTL_ERR_FORMAT with the reason in err.
 */
int mtl_data_header_tasks(struct mtl_tasks **out, const msgpack_object *hdr,
			  struct mtl_err *err);
/* Packs ts as the header's "tasks" value (name, kind, labels, threshold
 * of a multilabel task); NULL: []. */
void mtl_data_pack_tasks(msgpack_packer *pk, const struct mtl_tasks *ts);

/* Writes n pre-packed msgpack bytes (an id kept from a record) into pk. */
void mtl_data_pack_raw(msgpack_packer *pk, const char *b, size_t n);

/* An embedding task's texts of one example, besides the example's own. */
struct mtl_example_emb {
	int32_t *other;    /* [other_len] the positive, or the scored pair's
			    * second text; NULL: not labelled for the task */
	int32_t other_len;
	int32_t *neg;      /* [neg_len] a hard negative, or NULL */
	int32_t neg_len;
	float score;       /* the gold score, NaN: none */
};

struct mtl_example {
	char *id;          /* msgpack encoding of the "id" value, or NULL */
	size_t id_len;
	char *text;        /* the "text" (NUL-terminated), or NULL */
	size_t text_len;
	int32_t *ids;      /* [len] */
	int32_t *word_ids; /* [len], or NULL */
	int32_t len;
	char **words;      /* [n_words] input words, or NULL */
	size_t n_words;
	int32_t *word_starts, *word_ends; /* [n_spans] byte offsets [start,
			    * end) in text of each word id's characters (text
			    * input), or NULL */
	int32_t n_spans;
	uint64_t labelled; /* bit t: a label other than MTL_IGNORE for task t
			    * (at most 64 tasks) */
	int32_t *seq;      /* [n_tasks] sequence labels, MTL_IGNORE if none */
	int32_t **tok;     /* [n_tasks] token labels [len] or NULL */
	int32_t **multi;   /* [n_tasks] multilabel indicators [n_labels] (1:
			    * the text has label k, else 0) or NULL */
	int n_tasks;
	int truncated;     /* tokens were cut off at the maximum length */
	int32_t words_lost; /* words that lost a token to truncation */
	int32_t **lost;    /* [n_tasks] gold labels of the lost_words words
			    * truncation left without any token, per token
			    * task labelled, or NULL (record key
			    * "lost_labels": {TASK: [int]}): scoring on the
			    * original words counts them */
	int32_t lost_words;
	int32_t *type_ids; /* [len] token type ids of two texts encoded
			    * together ([CLS] a [SEP] b [SEP]: 0 up to the
			    * first [SEP], 1 after it), or NULL: one text,
			    * all 0 */
	char *text_b;      /* the second text of a pair (NUL-terminated),
			    * or NULL */
	size_t text_b_len;
	int32_t *pair_ids; /* [pair_len] the tokenized "pair" text (contrastive
			    * positive; record key "pair_ids"), or NULL */
	int32_t pair_len;
	struct mtl_example_emb *emb; /* [n_tasks] the embedding tasks' texts,
			    * or NULL when none labels the example */
};

/*
 * Parses an example record against ts: labels must name known tasks, have
 * the task's shape, and lie in [0, n_labels) or be MTL_IGNORE.  The
 * optional "word_ids", "words", "word_starts"/"word_ends" (kept when both
 * have one entry per word id, each a span of "text" that starts and ends
 * on a character boundary), "truncated", "words_lost" and
 * "lost_labels" are taken
 * when they have their type (else left out), so what mtl_example_pack
 * wrote reads back the same.  On error returns MTL_ERR_FORMAT (message
 * without the record prefix) and leaves ex released.
 */
int mtl_example_parse(struct mtl_example *ex, const msgpack_object *rec,
		      const struct mtl_tasks *ts, struct mtl_err *err);
/*
 * Packs ex as an example record (keys above; "id" nil when ex has none,
 * "text" and "word_ids" only when ex has them).  A sequence task is in
 * "labels" when its label is not MTL_IGNORE, a token task when it has a
 * label array (even one of MTL_IGNORE only).
 */
void mtl_example_pack(msgpack_packer *pk, const struct mtl_example *ex,
		      const struct mtl_tasks *ts);
/* The tasks (bit t) whose labels ex carries, as mtl_example_pack says. */
uint64_t mtl_example_tasks(const struct mtl_example *ex);
void mtl_example_release(struct mtl_example *ex);

/* Packs the id kept from ex's record, or nil (an id key's value). */
void mtl_data_pack_id(msgpack_packer *pk, const struct mtl_example *ex);
/* Packs ex's "text" and a pair's "text_b" entries, those it has: as many
 * map entries as (ex->text != NULL) + (ex->text_b != NULL). */
void mtl_data_pack_texts(msgpack_packer *pk, const struct mtl_example *ex);
/*
 * Frees what batching does not read (the text, the words, their spans and
 * word ids, the lost labels), so that a program holding many examples
 * (mtl-batch) keeps only ids, labels, pair texts and the example id.
 * mtl_example_pack writes a stripped example without those keys.
 */
void mtl_example_strip(struct mtl_example *ex);

struct mtl_batch {
	int B, T;
	int64_t epoch, index;
	int32_t *ids;     /* [B*T] */
	int32_t *lengths; /* [B] */
	int32_t *type_ids; /* [(B+E)*T] token type ids (0 on padding and on
			    * the extra rows), or NULL: all 0 */
	int32_t **labels; /* [n_tasks]: [B * mtl_task_width] (sequence [B],
			   * token [B*T], multilabel [B*L]), or NULL */
	int n_tasks;
	int32_t *pair_ids;     /* [B*Tp] the pair texts (contrastive), or NULL */
	int32_t *pair_lengths; /* [B] */
	int Tp;
	char **example_ids; /* [B] msgpack encodings (NULL: none), for reports */
	size_t *example_id_len;
	/* embedding tasks (data_emb.c): labels[t] is [B], the row of each
	 * example's positive or pair text among the E extra rows that follow
	 * the B examples in ids [(B+E)*T] and lengths [B+E] */
	int E;
	int32_t **neg;     /* [n_tasks] [B] rows of hard negatives (-1: none),
			    * or NULL entries */
	float **score;     /* [n_tasks] [B] gold scores (NaN: none), or NULL
			    * entries */
};

/*
 * The one batch builder: pads the n >= 1 examples ex[0..n) into b, right
 * padded to the longest (T, at least 1) with pad_id: ids, lengths, the
 * example ids, and the pair texts (to the longest pair, Tp) when every
 * example has one.  b gets the tasks of ts (NULL: none, for a forward
 * without labels); task t takes the labels of the examples' task map[t]
 * (map NULL: t itself; -1: the examples lack it; see mtl_task_map) when
 * bit t of task_mask is set and some example is labelled for it, else
 * labels[t] stays NULL (task-homogeneous batches and curricula leave
 * tasks out).  Token labels are padded with MTL_IGNORE, as are the
 * multilabel rows of examples without the task.  epoch and index
 * are 0.  0, or MTL_ERR_NOMEM (b released).  The caller frees b with
 * mtl_batch_release().
 */
int mtl_batch_make(struct mtl_batch *b, const struct mtl_example *const *ex,
		   int n, const struct mtl_tasks *ts, const int *map,
		   uint64_t task_mask, int32_t pad_id, struct mtl_err *err);
/* ---- embedding tasks (data_emb.c): what data.c calls ---- */

/* Parses an embedding task's label map v into ex->emb[t] (allocating
 * ex->emb); 1 when it labels the example, 0 for an empty map, or <0
 * (MTL_ERR_FORMAT naming the task, MTL_ERR_NOMEM). */
int mtl_example_emb_parse(struct mtl_example *ex, int t, const msgpack_object *v,
			  const struct mtl_tasks *ts, struct mtl_err *err);
/* Packs ex->emb[t] as the task's label map. */
void mtl_example_emb_pack(msgpack_packer *pk, const struct mtl_example *ex, int t);
void mtl_example_emb_release(struct mtl_example *ex);
/* The longest text of the embedding tasks in task_mask that ex[0..n)
 * carry (0: none), for the batch width. */
int mtl_batch_emb_width(const struct mtl_example *const *ex, int n,
			const struct mtl_tasks *ts, const int *map,
			uint64_t task_mask);
/* Appends the extra rows and sets labels/neg/score of the embedding tasks
 * (called by mtl_batch_make after the examples' rows; b->T already wide
 * enough).  0 or MTL_ERR_NOMEM. */
int mtl_batch_emb_make(struct mtl_batch *b, const struct mtl_example *const *ex,
		       int n, const struct mtl_tasks *ts, const int *map,
		       uint64_t task_mask, int32_t pad_id);
/* The keys mtl_batch_emb_pack adds to a batch record's map. */
int mtl_batch_emb_keys(const struct mtl_batch *b);
void mtl_batch_emb_pack(msgpack_packer *pk, const struct mtl_batch *b,
			const struct mtl_tasks *ts);
/* Reads "extra_rows" (before "ids" is read: *E), then after the labels
 * "negatives" and "scores", checking every row index.  <0 on error. */
int mtl_batch_emb_rows(const msgpack_object *rec, int64_t *E,
		       struct mtl_err *err);
int mtl_batch_emb_parse(struct mtl_batch *b, const msgpack_object *rec,
			const struct mtl_tasks *ts, struct mtl_err *err);
void mtl_batch_emb_release(struct mtl_batch *b);
/* mtl_batch_remap's part: neg and score into the model's task order (b->n_tasks
 * still the stream's).  0 or MTL_ERR_NOMEM (b unchanged). */
int mtl_batch_emb_remap(struct mtl_batch *b, const int *map, int n);

/* mask[B,T] = 1 where t < lengths[b] (a real token), else 0. */
void mtl_batch_mask(int32_t *mask, const int32_t *lengths, int B, int T);
/* Packs b as a batch record (keys above); ts: b's tasks, for their names. */
void mtl_batch_pack(msgpack_packer *pk, const struct mtl_batch *b,
		    const struct mtl_tasks *ts);

/* Parses a batch record against ts; errors as mtl_example_parse. */
int mtl_batch_parse(struct mtl_batch *b, const msgpack_object *rec,
		    const struct mtl_tasks *ts, struct mtl_err *err);
void mtl_batch_release(struct mtl_batch *b);
/*
 * Brings b's labels from the stream's task order into the model's: task
 * t of the model (t < n) takes the stream's labels map[t]
 * (mtl_task_map), none where map[t] is -1; labels of stream tasks
 * no map entry names are freed.  0, or MTL_ERR_NOMEM with b unchanged.
 */
int mtl_batch_remap(struct mtl_batch *b, const int *map, int n,
		    struct mtl_err *err);

/*
 * Adds to *into the tasks of add that it lacks (streams labelled for
 * different tasks can be combined); a task in both must have the same kind
 * and labels.  0, MTL_ERR_FORMAT naming the task, or MTL_ERR_NOMEM.
 */
int mtl_data_merge_tasks(struct mtl_tasks *into, const struct mtl_tasks *add,
			 struct mtl_err *err);

/*
 * A data set census: label coverage, class and length histograms, and
 * what tokenizing cost (mtl-tokenize fills those; the examples it counts
 * carry truncated and words_lost, mtl_input_encode adds the rest).
 */
#define MTL_CENSUS_LEN_BINS 8
struct mtl_census {
	long examples, tokens, none, one, several;
	long labelled[64];        /* examples labelled for each task */
	long *label_count[64];    /* [n_labels] per task: labelled items */
	int n_labels[64];         /* each task's labels */
	long len_hist[MTL_CENSUS_LEN_BINS]; /* <=16, 32, 64, 128, 256, 512, 1024, more */
	int n_tasks;
	long truncated;           /* examples cut at the maximum length */
	long words_lost;          /* words that lost tokens to truncation */
	long labels_lost;         /* word labels that got no token */
	long unknown_labels_skipped;
	long unk;                 /* [UNK] tokens */
	long bad;                 /* bad records skipped */
	long no_tokens;           /* texts (or pairs) without a token: [CLS] [SEP] */
};

/* Zeroes c for ts (NULL: no tasks).  0 or MTL_ERR_NOMEM. */
int mtl_census_init(struct mtl_census *c, const struct mtl_tasks *ts);
/*
 * Counts ex, as labelled for the tasks of the mask: ex->labelled (a label
 * that is scored) or mtl_example_tasks(ex) (labels given at all).
 */
void mtl_census_add(struct mtl_census *c, const struct mtl_example *ex,
		    uint64_t tasks);
/* [UNK] tokens per token between [CLS] and [SEP]; 0 without any. */
double mtl_census_unk_rate(const struct mtl_census *c);
/* Writes the census as readable text to f. */
void mtl_census_print(const struct mtl_census *c, const struct mtl_tasks *ts,
		      FILE *f);
/* Packs the census as a stats record (above); ts NULL: no tasks. */
void mtl_census_pack(msgpack_packer *pk, const struct mtl_census *c,
		     const struct mtl_tasks *ts);
void mtl_census_release(struct mtl_census *c);

#endif
