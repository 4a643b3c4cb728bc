/*
 * card.h - the model card: README.md in a model directory, for people
 * (and the Hugging Face hub) to read what the model is: the encoder, the
 * pooling, each task with its labels and head, and, for a trained model,
 * how it was trained: the command line, the labels seen per task, and the
 * last evaluation.
 *
 * A struct mtl_card collects the training facts while a run goes on (the
 * trainer notes each step and each evaluation); mtl_card_write() renders
 * it with the model.  The model owns its card (model.h: m->card, NULL for
 * a model that was never trained here); mtl_model_save() writes it.
 *
 * Ownership: mtl_card_new() returns a card freed by mtl_card_free()
 * (accepts NULL); it copies what it is given.
 */
#ifndef MTL_CARD_H
#define MTL_CARD_H

#include <stdint.h>

#include "err.h"

struct mtl_bert_config;  /* bert.h */
struct mtl_bert_pooling; /* bert.h */
struct mtl_tasks;        /* task.h */

struct mtl_card {
	char *command;       /* the command line (argv[0] without its
			      * directory), quoted as a shell would need */
	int n_tasks;
	long steps;          /* optimiser steps noted */
	int64_t *labelled;   /* [n_tasks] training labels seen */
	/* the last evaluation; eval_step < 0: none */
	long eval_step;
	int eval_examples;
	double *eval_acc, *eval_f1; /* [n_tasks] */
	int64_t *eval_labelled;     /* [n_tasks] */
};

/* A card for n_tasks tasks and the command line argv[0..argc). */
int mtl_card_new(struct mtl_card **out, int n_tasks, int argc,
		 char *const *argv, struct mtl_err *err);
void mtl_card_free(struct mtl_card *c);

/* Adds one step's labels per task (labelled[n_tasks]); c may be NULL. */
void mtl_card_step(struct mtl_card *c, const int64_t *labelled);
/* Keeps the evaluation after step over examples (per task t < n_tasks:
 * accuracy acc[t], macro F1 f1[t], labels labelled[t]; eval.h's result);
 * c may be NULL. */
void mtl_card_eval(struct mtl_card *c, long step, int examples, int n_tasks,
		   const double *acc, const double *f1, const int64_t *labelled);

/*
 * Writes dir/README.md (atomically) for the model of encoder cfg, pooling
 * and tasks ts (NULL: none), with c's training facts when c is not NULL
 * (model.h: mtl_model_save passes the model's).  0, or <0 (MTL_ERR_IO,
 * MTL_ERR_NOMEM).
 */
int mtl_card_write(const struct mtl_card *c, const struct mtl_bert_config *cfg,
		   const struct mtl_bert_pooling *pooling,
		   const struct mtl_tasks *ts, const char *dir,
		   struct mtl_err *err);

#endif
