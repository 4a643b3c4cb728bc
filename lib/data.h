/*
 * data.h - examples and batches in memory, and their stream records.
 *
 * An examples stream (mtl-tokenize) carries one tokenized text per record;
 * a batches stream (mtl-batch) carries padded groups of them.  Both
 * headers list the tasks ("tasks": [{"name","kind","labels"}...]) and the
 * tokenizer's "vocab_hash", "max_length" and "pad_id".
 *
 * Example record:
 *   {"type":"example", "id":ID, "ids":[int], "word_ids":[int],
 *    "labels":{TASK: int (sequence task) | [int] (token task, one per
 *    token, -100 where not scored)}, ...}
 * Only the tasks an example is labelled for appear in "labels".
 *
 * Batch record:
 *   {"type":"batch", "epoch":E, "index":I, "size":B, "seq_len":T,
 *    "ids":[B*T int, row-major, padded with pad_id],
 *    "lengths":[B int] (real tokens of each row; attention mask = t < len),
 *    "example_ids":[B ids],
 *    "labels":{TASK: [B int] | [B*T int]} (tasks with at least one label in
 *    the batch; -100 = not labelled / not scored)}
 *
 * Ownership: _parse functions fill caller storage that the matching
 * _release frees (release accepts zeroed storage); nothing borrows from
 * the msgpack record after parsing returns.
 */
#ifndef MTL_DATA_H
#define MTL_DATA_H

#include <stdint.h>
#include <stdio.h>

#include <msgpack.h>

#include "err.h"
#include "task.h"

#define MTL_IGNORE (-100)

/*
 * Builds a task list (name, kind, labels; head options at their defaults)
 * from a stream header's "tasks".  A header without "tasks" gives an empty
 * list.  0, or MTL_ERR_FORMAT with the reason in err.
 */
int mtl_data_header_tasks(struct mtl_tasks **out, const msgpack_object *hdr,
			  struct mtl_err *err);
/* Packs ts as the header's "tasks" value (name, kind, labels). */
void mtl_data_pack_tasks(msgpack_packer *pk, const struct mtl_tasks *ts);

/* Writes n pre-packed msgpack bytes (an id kept from a record) into pk. */
void mtl_data_pack_raw(msgpack_packer *pk, const char *b, size_t n);

struct mtl_example {
	char *id;          /* msgpack encoding of the "id" value */
	size_t id_len;
	char *text;        /* the "text", or NULL */
	int32_t *ids;      /* [len] */
	int32_t len;
	uint64_t labelled; /* bit t: labelled for task t (at most 64 tasks) */
	int32_t *seq;      /* [n_tasks] sequence labels, MTL_IGNORE if none */
	int32_t **tok;     /* [n_tasks] token labels [len] or NULL */
	int n_tasks;
};

/*
 * Parses an example record against ts: labels must name known tasks, have
 * the task's shape, and lie in [0, n_labels) or be MTL_IGNORE.  On error
 * returns MTL_ERR_FORMAT (message without the record prefix) and leaves ex
 * released.
 */
int mtl_example_parse(struct mtl_example *ex, const msgpack_object *rec,
		      const struct mtl_tasks *ts, struct mtl_err *err);
void mtl_example_release(struct mtl_example *ex);

struct mtl_batch {
	int B, T;
	int64_t epoch, index;
	int32_t *ids;     /* [B*T] */
	int32_t *lengths; /* [B] */
	int32_t **labels; /* [n_tasks]: [B] (sequence) or [B*T] (token), or NULL */
	int n_tasks;
	char **example_ids; /* [B] msgpack encodings, for reports */
	size_t *example_id_len;
};

/*
 * Packs a batch record of the n examples ex[0..n) padded to the longest
 * with pad_id, with the labels of the tasks in task_mask (bit t for task
 * t): task-homogeneous batches and curricula leave the others out.
 */
void mtl_batch_pack(msgpack_packer *pk, const struct mtl_example *const *ex,
		    int n, const struct mtl_tasks *ts, uint64_t task_mask,
		    int32_t pad_id, int64_t epoch, int64_t index);

/* Parses a batch record against ts; errors as mtl_example_parse. */
int mtl_batch_parse(struct mtl_batch *b, const msgpack_object *rec,
		    const struct mtl_tasks *ts, struct mtl_err *err);
void mtl_batch_release(struct mtl_batch *b);

/*
 * Adds to *into the tasks of add that it lacks (streams labelled for
 * different tasks can be combined); a task in both must have the same kind
 * and labels.  0, MTL_ERR_FORMAT naming the task, or MTL_ERR_NOMEM.
 */
int mtl_data_merge_tasks(struct mtl_tasks *into, const struct mtl_tasks *add,
			 struct mtl_err *err);

/* A data set census: label coverage, class and length histograms. */
#define MTL_CENSUS_LEN_BINS 8
struct mtl_census {
	long examples, tokens, none, one, several;
	long labelled[64];        /* examples labelled for each task */
	long *label_count[64];    /* [n_labels] per task: labelled items */
	long len_hist[MTL_CENSUS_LEN_BINS]; /* <=16, 32, 64, 128, 256, 512, 1024, more */
	int n_tasks;
};

int mtl_census_init(struct mtl_census *c, const struct mtl_tasks *ts);
void mtl_census_add(struct mtl_census *c, const struct mtl_example *ex);
/* Writes the census as readable text to f. */
void mtl_census_print(const struct mtl_census *c, const struct mtl_tasks *ts,
		      FILE *f);
void mtl_census_release(struct mtl_census *c);

#endif
