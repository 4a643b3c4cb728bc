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

/*
 * Multilabel scores: every label a yes/no decision per item.  Per label
 * tp/fp/fn; micro F1 pools the counts of all labels; macro F1 is the
 * unweighted mean of the labels' F1 over the labels with support or
 * predictions (as mtl_confusion_macro_f1); exact counts the items whose
 * whole predicted set is the gold set.
 */
struct mtl_multilabel_score {
	int n;
	struct mtl_prf *per_label; /* [n] */
	struct mtl_prf micro;
	double macro_f1;
	long items, exact;
};

/* 0, or MTL_ERR_NOMEM. */
int mtl_multilabel_init(struct mtl_multilabel_score *s, int n);
/* Adds one item: gold[n] and pred[n], each 0 or 1. */
void mtl_multilabel_add(struct mtl_multilabel_score *s, const int *gold,
			const int *pred);
/* Fills precision/recall/F1 of each label, micro and macro_f1. */
void mtl_multilabel_finish(struct mtl_multilabel_score *s);
void mtl_multilabel_release(struct mtl_multilabel_score *s);

/*
 * Correlations of n pairs (x[i], y[i]), for regression tasks: Pearson's r,
 * and Spearman's rho, the Pearson r of the ranks with tied values given
 * the mean of their ranks (as scipy.stats.spearmanr).  NaN when n < 2 or
 * either side is constant; Spearman returns MTL_ERR_NOMEM (as a NaN and
 * *nomem set) only when its rank arrays cannot be allocated.
 */
double mtl_pearson(const double *x, const double *y, long n);
double mtl_spearman(const double *x, const double *y, long n, int *nomem);
/* The mean of (x[i] - y[i])^2; NaN when n = 0. */
double mtl_mse(const double *x, const double *y, long n);

/* A regression task's scores: the (prediction, gold) pairs, then their
 * MSE and correlations (NaN where undefined). */
struct mtl_regression_score {
	double *pred, *gold; /* [n] */
	long n, cap;
	double mse, pearson, spearman;
};

/* Adds a pair (zeroed storage is an empty score).  0 or MTL_ERR_NOMEM. */
int mtl_regression_add(struct mtl_regression_score *s, double pred,
		       double gold);
/* Fills mse, pearson and spearman.  0 or MTL_ERR_NOMEM. */
int mtl_regression_finish(struct mtl_regression_score *s);
void mtl_regression_release(struct mtl_regression_score *s);

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
