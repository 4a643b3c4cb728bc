/*
 * metrics.h - evaluation: accuracy, per-class precision/recall/F1, macro
 * and micro F1, confusion matrices, and entity-level scores for BIO tags
 * with the semantics of conlleval and seqeval.
 *
 * Entities: labels are names like "B-PER", "I-PER", "O" (also "E-", "S-"
 * of IOBES are understood).  In the default (conlleval) mode an I- tag
 * that does not continue an entity of its type starts a new one, as
 * conlleval and seqeval's default mode do; in strict IOB2 mode such an
 * I- tag (and everything up to the next B-) belongs to no entity, as
 * seqeval's strict mode does.  An entity counts as found only when its type
 * and its exact span agree with a gold entity.
 *
 * Ownership: _init allocates inside caller storage, _release frees it
 * (accepting zeroed storage).
 */
#ifndef MTL_METRICS_H
#define MTL_METRICS_H

#include <stddef.h>

#include "err.h"

struct mtl_prf {
	long tp, fp, fn, support; /* support = tp + fn (gold items) */
	double precision, recall, f1; /* 0 where undefined (0/0) */
};

/* Fills precision, recall, f1 and support from tp, fp, fn. */
void mtl_prf_finish(struct mtl_prf *s);

struct mtl_confusion {
	int n;
	long *m; /* [n*n], row = gold, column = predicted */
	long total;
};

int mtl_confusion_init(struct mtl_confusion *c, int n);
void mtl_confusion_add(struct mtl_confusion *c, int gold, int pred);
double mtl_confusion_accuracy(const struct mtl_confusion *c);
/* Precision/recall/F1 of class k (one-vs-rest). */
void mtl_confusion_class(const struct mtl_confusion *c, int k,
			 struct mtl_prf *out);
/* Unweighted mean F1 over classes with support or predictions. */
double mtl_confusion_macro_f1(const struct mtl_confusion *c);
/* Micro F1 over all classes (equals accuracy for one label per item). */
double mtl_confusion_micro_f1(const struct mtl_confusion *c);
void mtl_confusion_release(struct mtl_confusion *c);

/* BIO scheme of a label set: for each label its prefix and entity type. */
struct mtl_bio {
	int n_labels, n_types;
	char *prefix; /* [n_labels] 'B' 'I' 'E' 'S' or 'O' */
	int *type;    /* [n_labels] index into types, -1 for O */
	char **types; /* [n_types] entity type names */
	int strict;   /* IOB2 strict mode */
};

/*
 * Reads the scheme from label names; a label that is neither "O" nor
 * "X-TYPE" with X in BIES is MTL_ERR_FORMAT (not an entity tag set).
 */
int mtl_bio_init(struct mtl_bio *b, const char *const *labels, int n,
		 int strict, struct mtl_err *err);
void mtl_bio_release(struct mtl_bio *b);

struct mtl_span {
	int type, start, end; /* tokens [start, end) */
};

/*
 * Extracts the entities of tags[0..n) (label indices; negative values are
 * treated as O) into out (room for n spans).  Returns the count.
 */
int mtl_bio_spans(const struct mtl_bio *b, const int *tags, int n,
		  struct mtl_span *out);

/* Entity-level counts per type, accumulated over sentences. */
struct mtl_entity_score {
	int n_types;
	struct mtl_prf *per_type; /* [n_types] */
	struct mtl_prf micro;
};

int mtl_entity_init(struct mtl_entity_score *s, const struct mtl_bio *b);
/* Adds one sentence: gold and predicted tags of n tokens. */
int mtl_entity_add(struct mtl_entity_score *s, const struct mtl_bio *b,
		   const int *gold, const int *pred, int n);
/* Fills the precision/recall/F1 fields; macro F1 is returned. */
double mtl_entity_finish(struct mtl_entity_score *s);
void mtl_entity_release(struct mtl_entity_score *s);

#endif
