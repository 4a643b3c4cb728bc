/*
 * export.c - one task of an mtl model as a transformers classifier
 * directory; the mapping and why it is exact are in export.h.
 */
#include "export.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fs.h"
#include "st.h"

/* The identity pooler's scale: 2^-24 (its classifier is scaled by 2^24). */
#define POOL_SHIFT 24

int mtl_export_check(const struct mtl_model *m, int t,
		     enum mtl_export_pooler *how, struct mtl_err *err)
{
	const struct mtl_task *task = &m->tasks->task[t];
	const struct mtl_head *h = &m->heads->h[t];
	int H = m->bert->cfg.hidden;

	if (task->kind == MTL_TASK_EMBEDDING)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "task '%s': an embedding task has no classifier to export; the model directory itself is its sentence-transformers model",
				   task->name);
	if (task->kind == MTL_TASK_TOKEN) {
		if (h->hid)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "task '%s': a hidden layer (%d units) has no place in BertForTokenClassification, a linear layer over each token; train the task with \"hidden\": 0",
					   task->name, h->hid);
		*how = MTL_EXPORT_POOLER_NONE;
		return 0;
	}
	if (h->pool != MTL_POOL_CLS)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "task '%s': pools by %s, but BertForSequenceClassification reads the [CLS] token; train the task with \"pooling\": \"cls\"",
				   task->name, mtl_task_pool_name(h->pool));
	if (!h->hid) {
		*how = MTL_EXPORT_POOLER_IDENTITY;
		return 0;
	}
	if (h->hid != H || task->activation != MTL_TASK_ACT_TANH)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "task '%s': a hidden layer of %d %s units has no place in BertForSequenceClassification, whose one hidden layer is the pooler (%d tanh units); train the task with \"hidden\": 0, or \"hidden\": %d and \"activation\": \"tanh\"",
				   task->name, h->hid, mtl_task_act_name(task->activation), H, H);
	*how = MTL_EXPORT_POOLER_HEAD;
	return 0;
}

/* config.json: the encoder's, plus the classifier's fields. */
static int write_config(const struct mtl_model *m, const struct mtl_task *task,
			const char *arch, const char *dir, struct mtl_err *err)
{
	char path[MTL_FS_PATH_LEN], key[16];
	json_t *j = mtl_bert_config_json(m->bert);
	json_t *id2label = json_object(), *label2id = json_object();
	int rc = 0;

	if (!j || !id2label || !label2id) {
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < task->n_labels; i++) {
		snprintf(key, sizeof(key), "%d", i);
		if (json_object_set_new(id2label, key, json_string(task->labels[i])) ||
		    json_object_set_new(label2id, task->labels[i], json_integer(i))) {
			rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	json_object_set_new(j, "architectures", json_pack("[s]", arch));
	json_object_set(j, "id2label", id2label);
	json_object_set(j, "label2id", label2id);
	json_object_set_new(j, "num_labels", json_integer(task->n_labels));
	json_object_set_new(j, "classifier_dropout", json_real(task->dropout));
	if (task->kind != MTL_TASK_TOKEN)
		json_object_set_new(j, "problem_type",
				    json_string(task->kind == MTL_TASK_MULTILABEL
						? "multi_label_classification"
						: task->kind == MTL_TASK_REGRESSION
						? "regression"
						: "single_label_classification"));
	if (!(rc = mtl_fs_join(path, dir, "config.json", err)))
		rc = mtl_fs_write_json(path, j, MTL_FS_JSON_HF, err);
out:
	json_decref(id2label);
	json_decref(label2id);
	json_decref(j);
	return rc;
}

int mtl_export_task(const struct mtl_model *m, int t, const char *dir,
		    const char **arch_out, struct mtl_err *err)
{
	static const char *const meta[] = { "format", "pt" };
	const struct mtl_task *task = &m->tasks->task[t];
	const struct mtl_head *h = &m->heads->h[t];
	const float *hp = m->heads->params;
	const struct mtl_bert *b = m->bert;
	int H = b->cfg.hidden, C = h->C, in = h->hid ? h->hid : H;
	enum mtl_export_pooler how;
	const char *arch;
	struct mtl_st_out *outs = NULL;
	char (*names)[96] = NULL;
	float *pool_w = NULL, *cls_w = NULL;
	char path[MTL_FS_PATH_LEN];
	size_t n = 0;
	int rc;

	if ((rc = mtl_export_check(m, t, &how, err)))
		return rc;
	arch = how == MTL_EXPORT_POOLER_NONE ? "BertForTokenClassification"
					     : "BertForSequenceClassification";
	outs = calloc(b->n_tensors + 2, sizeof(*outs));
	names = calloc(b->n_tensors, sizeof(*names));
	if (!outs || !names) {
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < b->n_tensors; i++) {
		const struct mtl_bert_tensor *bt = &b->tensors[i];
		int pooler = !strncmp(bt->name, "pooler.", 7);
		const float *data = b->params + bt->offset;

		if (pooler && how == MTL_EXPORT_POOLER_NONE)
			continue; /* BertForTokenClassification has no pooler */
		if (pooler && how == MTL_EXPORT_POOLER_HEAD)
			data = hp + (bt->ndim == 2 ? h->dw : h->db);
		if (pooler && how == MTL_EXPORT_POOLER_IDENTITY) {
			/* weight [H,H] = 2^-24 I, then bias [H] = 0 */
			if (!pool_w && !(pool_w = calloc((size_t)H * H + H, sizeof(*pool_w)))) {
				rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
				goto out;
			}
			for (int k = 0; k < H; k++)
				pool_w[(size_t)k * H + k] = ldexpf(1.0f, -POOL_SHIFT);
			data = bt->ndim == 2 ? pool_w : pool_w + (size_t)H * H;
		}
		snprintf(names[n], sizeof(names[n]), "bert.%s", bt->name);
		outs[n] = (struct mtl_st_out){ names[n], bt->ndim,
			{ bt->shape[0], bt->shape[1] }, data };
		n++;
	}
	/* classifier.weight [C,in]: out.weight, times 2^24 after the identity */
	if (!(cls_w = malloc((size_t)C * in * sizeof(*cls_w)))) {
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t k = 0; k < (size_t)C * in; k++)
		cls_w[k] = how == MTL_EXPORT_POOLER_IDENTITY ?
			   ldexpf(hp[h->ow + k], POOL_SHIFT) : hp[h->ow + k];
	outs[n++] = (struct mtl_st_out){ "classifier.weight", 2, { C, in }, cls_w };
	outs[n++] = (struct mtl_st_out){ "classifier.bias", 1, { C }, hp + h->ob };
	if ((rc = mtl_fs_mkdirs(dir, err)) ||
	    (rc = write_config(m, task, arch, dir, err)) ||
	    (rc = mtl_fs_join(path, dir, "model.safetensors", err)) ||
	    (rc = mtl_st_write(path, outs, n, meta, 1, err)) ||
	    (rc = mtl_model_copy_tokenizer(m->dir, dir, err)))
		goto out;
	if (arch_out)
		*arch_out = arch;
out:
	free(cls_w);
	free(pool_w);
	free(names);
	free(outs);
	return rc;
}
