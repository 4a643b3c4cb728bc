/*
 * t_golden.h - what the trainer tests share: fixtures/tiny's encoder, task
 * spec and heads, and a golden training batch (fixtures/golden/train*.
 * safetensors) as a struct mtl_batch.  Both bail out (TAP "Bail out!")
 * when the fixtures cannot be read.
 */
#ifndef MTL_T_GOLDEN_H
#define MTL_T_GOLDEN_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "data.h"
#include "head.h"
#include "st.h"
#include "task.h"

static inline void t_bail(const char *msg)
{
	printf("Bail out! %s\n", msg);
	exit(1);
}

/* fixtures/tiny: the encoder, its tasks and its heads (cls pooling). */
static inline void t_tiny_model(struct mtl_bert **m, struct mtl_tasks **ts,
				struct mtl_heads **hd)
{
	struct mtl_err err = { "" };

	if (mtl_bert_load(m, "fixtures/tiny", &err) ||
	    mtl_task_load(ts, "fixtures/tiny/tasks.json", &err) ||
	    mtl_heads_new(hd, *ts, (*m)->cfg.hidden, MTL_POOL_CLS, &err) ||
	    mtl_heads_load(*hd, "fixtures/tiny/heads.safetensors", &err))
		t_bail(err.msg);
}

/*
 * The batch of a golden file into b: ids, lengths from the attention mask,
 * labels "labels.topic" [B] and "labels.ner" [B,T] in lab[0], lab[1] (which
 * b->labels points at; the caller frees lab[] and b->ids, b->lengths).
 */
static inline void t_golden_batch(const struct mtl_st *gold, struct mtl_batch *b,
				  int32_t *lab[2])
{
	const struct mtl_st_tensor *t = mtl_st_find(gold, "input_ids");
	int32_t *mask;
	int B, T;

	if (!t)
		t_bail("golden file without input_ids");
	B = (int)t->shape[0];
	T = (int)t->shape[1];
	memset(b, 0, sizeof(*b));
	b->B = B;
	b->T = T;
	b->ids = malloc(sizeof(int32_t) * B * T);
	b->lengths = calloc(B, sizeof(int32_t));
	mask = malloc(sizeof(int32_t) * B * T);
	lab[0] = malloc(sizeof(int32_t) * B);
	lab[1] = malloc(sizeof(int32_t) * B * T);
	if (mtl_st_read_i32(t, b->ids, (int64_t)B * T, NULL) ||
	    mtl_st_read_i32(mtl_st_find(gold, "attention_mask"), mask, (int64_t)B * T, NULL) ||
	    mtl_st_read_i32(mtl_st_find(gold, "labels.topic"), lab[0], B, NULL) ||
	    mtl_st_read_i32(mtl_st_find(gold, "labels.ner"), lab[1], (int64_t)B * T, NULL))
		t_bail("golden batch unreadable");
	for (int i = 0; i < B * T; i++)
		b->lengths[i / T] += mask[i];
	free(mask);
	b->labels = lab;
	b->n_tasks = 2;
}

/* Frees what t_golden_batch() allocated. */
static inline void t_golden_release(struct mtl_batch *b, int32_t *lab[2])
{
	free(b->ids);
	free(b->lengths);
	free(lab[0]);
	free(lab[1]);
}

#endif
