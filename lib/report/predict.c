/* predict.c - predictions records and their scores; see predict.h. */
#include "predict.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "metrics.h"

struct mtl_predictor {
	struct mtl_model *m;
	const struct mtl_tasks *st;
	int *map;               /* [model tasks] stream task index or -1 */
	uint64_t mask;
	int flags;
	struct mtl_confusion *conf;       /* [model tasks] */
	struct mtl_bio *bio;              /* [model tasks] n_labels 0: not BIO */
	struct mtl_entity_score *ent;     /* [model tasks] */
	struct mtl_multilabel_score *ml;  /* [model tasks] multilabel ones */
	struct mtl_regression_score *rg;  /* [model tasks] regression ones */
	long *lost;                       /* [model tasks] gold entities lost */
	int32_t *amask, *pred, *gold, *full;
	float *emb, *probs, *score;       /* score: [words] the predicted tag's */
	int32_t *bstart, *bend, *cstart, *cend; /* [words] the example's words
						 * in text: bytes, characters */
	int n_off;                        /* words with offsets (0: none) */
	struct mtl_span *spans;           /* [words] predicted entities */
	size_t cap_tok, cap_words, cap_off;
};

void mtl_predictor_free(struct mtl_predictor *p)
{
	if (!p)
		return;
	for (int t = 0; p->m && p->m->tasks && t < p->m->tasks->n; t++) {
		if (p->conf)
			mtl_confusion_release(&p->conf[t]);
		if (p->ent)
			mtl_entity_release(&p->ent[t]);
		if (p->bio)
			mtl_bio_release(&p->bio[t]);
		if (p->ml)
			mtl_multilabel_release(&p->ml[t]);
		if (p->rg)
			mtl_regression_release(&p->rg[t]);
	}
	free(p->ml);
	free(p->rg);
	free(p->conf);
	free(p->ent);
	free(p->bio);
	free(p->lost);
	free(p->map);
	free(p->amask);
	free(p->pred);
	free(p->gold);
	free(p->full);
	free(p->emb);
	free(p->probs);
	free(p->score);
	free(p->bstart);
	free(p->bend);
	free(p->cstart);
	free(p->cend);
	free(p->spans);
	free(p);
}

int mtl_predictor_new(struct mtl_predictor **out, struct mtl_model *m,
		      const struct mtl_tasks *st, uint64_t task_mask, int flags,
		      struct mtl_err *err)
{
	struct mtl_predictor *p = calloc(1, sizeof(*p));
	const struct mtl_tasks *ts = m->tasks;
	int n = ts ? ts->n : 0, rc;

	if (!p)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	p->m = m;
	p->st = st;
	p->flags = flags;
	p->mask = task_mask ? task_mask : ~0ull;
	if (flags & MTL_PREDICT_EMBED_ONLY) {
		*out = p;
		return 0;
	}
	if (!ts || !m->heads) {
		free(p);
		return mtl_err_set(err, MTL_ERR_FORMAT, "'%s' has no task heads", m->dir);
	}
	p->map = calloc((size_t)n, sizeof(int));
	p->conf = calloc((size_t)n, sizeof(*p->conf));
	p->bio = calloc((size_t)n, sizeof(*p->bio));
	p->ent = calloc((size_t)n, sizeof(*p->ent));
	p->lost = calloc((size_t)n, sizeof(long));
	p->ml = calloc((size_t)n, sizeof(*p->ml));
	p->rg = calloc((size_t)n, sizeof(*p->rg));
	p->emb = malloc(sizeof(float));
	if (!p->map || !p->conf || !p->bio || !p->ent || !p->lost || !p->ml ||
	    !p->rg) {
		mtl_predictor_free(p);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	if ((rc = mtl_task_map(p->map, ts, st, err))) {
		mtl_predictor_free(p);
		return rc;
	}
	for (int t = 0; t < n; t++) {
		const struct mtl_task *task = &ts->task[t];

		/* an embedding task has no head to predict with: its
		 * figures come from the embeddings (mtl-score --embed) */
		if (task->kind == MTL_TASK_EMBEDDING) {
			p->mask &= ~(1ull << t);
			continue;
		}
		if (mtl_confusion_init(&p->conf[t], task->n_labels) ||
		    (task->kind == MTL_TASK_MULTILABEL &&
		     mtl_multilabel_init(&p->ml[t], task->n_labels))) {
			mtl_predictor_free(p);
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		}
		if (task->kind != MTL_TASK_TOKEN ||
		    mtl_bio_init(&p->bio[t], (const char *const *)task->labels,
				 task->n_labels, 0, NULL))
			continue; /* not an entity tag set: no entity scores */
		if (mtl_entity_init(&p->ent[t], &p->bio[t])) {
			mtl_predictor_free(p);
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		}
	}
	*out = p;
	return 0;
}

static int grow(void **v, size_t *cap, size_t need, size_t size)
{
	void *q;

	if (need <= *cap)
		return 0;
	if (!(q = realloc(*v, need * size)))
		return -1;
	*v = q;
	*cap = need;
	return 0;
}

static int argmax(const float *v, int n)
{
	int k = 0;

	for (int i = 1; i < n; i++)
		if (v[i] > v[k])
			k = i;
	return k;
}

static void softmax(float *out, const float *v, int n)
{
	float mx = v[argmax(v, n)];
	double sum = 0;

	for (int i = 0; i < n; i++)
		sum += out[i] = expf(v[i] - mx);
	for (int i = 0; i < n; i++)
		out[i] = (float)(out[i] / sum);
}

static void pack_label(msgpack_packer *pk, const struct mtl_task *t, int32_t k)
{
	if (k < 0)
		msgpack_pack_nil(pk);
	else
		mtl_mp_pack_str(pk, t->labels[k]);
}

static void pack_sequence(struct mtl_predictor *p, msgpack_packer *pk, int t,
			  const struct mtl_example *ex, const float *logits)
{
	const struct mtl_task *task = &p->m->tasks->task[t];
	int s = p->map[t], C = task->n_labels;
	int32_t gold = s >= 0 ? ex->seq[s] : MTL_IGNORE;
	int pred = argmax(logits, C);

	softmax(p->probs, logits, C);
	msgpack_pack_map(pk, 3 + !!(p->flags & MTL_PREDICT_PROBS));
	mtl_mp_pack_str(pk, "pred");
	pack_label(pk, task, pred);
	mtl_mp_pack_str(pk, "score");
	msgpack_pack_float(pk, p->probs[pred]);
	mtl_mp_pack_str(pk, "gold");
	pack_label(pk, task, gold == MTL_IGNORE ? -1 : gold);
	if (p->flags & MTL_PREDICT_PROBS) {
		mtl_mp_pack_str(pk, "probs");
		mtl_mp_pack_f32s(pk, p->probs, (size_t)C);
	}
	if (gold != MTL_IGNORE)
		mtl_confusion_add(&p->conf[t], gold, pred);
}

/* Packs the names of the labels k with v[k] set, of n labels. */
static void pack_set(msgpack_packer *pk, const struct mtl_task *t,
		     const int32_t *v, int n)
{
	int k = 0;

	for (int i = 0; i < n; i++)
		k += v[i] == 1;
	msgpack_pack_array(pk, (size_t)k);
	for (int i = 0; i < n; i++)
		if (v[i] == 1)
			mtl_mp_pack_str(pk, t->labels[i]);
}

/* A multilabel task: "pred" the labels whose sigmoid reaches the
 * threshold, "gold" the example's set or nil, "probs" every label's
 * sigmoid.  p->pred holds the decisions. */
static int pack_multilabel(struct mtl_predictor *p, msgpack_packer *pk,
			   int t, const struct mtl_example *ex,
			   const float *logits)
{
	const struct mtl_task *task = &p->m->tasks->task[t];
	int s = p->map[t], C = task->n_labels;
	const int32_t *gold = s >= 0 && ex->multi ? ex->multi[s] : NULL;

	if (grow((void **)&p->pred, &p->cap_words, (size_t)C + 1, sizeof(int32_t)) ||
	    !(p->gold = realloc(p->gold, p->cap_words * sizeof(int32_t))) ||
	    !(p->full = realloc(p->full, p->cap_words * sizeof(int32_t))) ||
	    !(p->score = realloc(p->score, p->cap_words * sizeof(float))) ||
	    !(p->spans = realloc(p->spans, p->cap_words * sizeof(*p->spans))))
		return MTL_ERR_NOMEM;
	for (int c = 0; c < C; c++) {
		p->pred[c] = mtl_loss_bce_yes(logits[c], task->threshold);
		p->probs[c] = 1.0f / (1.0f + expf(-logits[c]));
	}
	msgpack_pack_map(pk, 2 + !!(p->flags & MTL_PREDICT_PROBS));
	mtl_mp_pack_str(pk, "pred");
	pack_set(pk, task, p->pred, C);
	mtl_mp_pack_str(pk, "gold");
	if (gold)
		pack_set(pk, task, gold, C);
	else
		msgpack_pack_nil(pk);
	if (p->flags & MTL_PREDICT_PROBS) {
		mtl_mp_pack_str(pk, "probs");
		mtl_mp_pack_f32s(pk, p->probs, (size_t)C);
	}
	if (gold) {
		for (int c = 0; c < C; c++)
			p->gold[c] = gold[c];
		mtl_multilabel_add(&p->ml[t], p->gold, p->pred);
	}
	return 0;
}

/* A regression task: "pred" the head's number, "gold" the target or nil. */
static int pack_regression(struct mtl_predictor *p, msgpack_packer *pk, int t,
			   const struct mtl_example *ex, float z)
{
	int s = p->map[t];
	int32_t gold = s >= 0 ? ex->seq[s] : MTL_IGNORE;

	msgpack_pack_map(pk, 2);
	mtl_mp_pack_str(pk, "pred");
	msgpack_pack_float(pk, z);
	mtl_mp_pack_str(pk, "gold");
	if (gold == MTL_IGNORE) {
		msgpack_pack_nil(pk);
		return 0;
	}
	msgpack_pack_float(pk, mtl_label_value(gold));
	return mtl_regression_add(&p->rg[t], z, mtl_label_value(gold));
}

/*
 * The example's words in its text, for n words: p->bstart/bend (bytes)
 * and p->cstart/cend (characters, that is Unicode code points), from the
 * word_starts/word_ends of text input, or, for word input, from the words
 * joined by single spaces (which is the text).  p->n_off = n, or 0 when
 * the example has neither.  0 or MTL_ERR_NOMEM.
 */
static int word_offsets(struct mtl_predictor *p, const struct mtl_example *ex, int n)
{
	int32_t at = 0, chars = 0, b = 0;

	p->n_off = 0;
	if (!ex->text || (!ex->word_starts && !ex->words) ||
	    (ex->word_starts && n > ex->n_spans) || (!ex->word_starts && (size_t)n > ex->n_words))
		return 0;
	if (grow((void **)&p->bstart, &p->cap_off, (size_t)n + 1, sizeof(int32_t)) ||
	    !(p->bend = realloc(p->bend, p->cap_off * sizeof(int32_t))) ||
	    !(p->cstart = realloc(p->cstart, p->cap_off * sizeof(int32_t))) ||
	    !(p->cend = realloc(p->cend, p->cap_off * sizeof(int32_t))))
		return MTL_ERR_NOMEM;
	for (int w = 0; w < n; w++) {
		if (ex->word_starts) {
			p->bstart[w] = ex->word_starts[w];
			p->bend[w] = ex->word_ends[w];
		} else {
			p->bstart[w] = at;
			p->bend[w] = at += (int32_t)strlen(ex->words[w]);
			at++;
		}
		if ((size_t)p->bend[w] > ex->text_len || p->bstart[w] < b)
			return 0; /* not the text's words, or not in order */
	}
	/* bytes to characters: one walk, counting the bytes that start one */
	for (int w = 0, k = 0; k < 2 * n; k++) {
		int32_t *bo = k & 1 ? &p->bend[w] : &p->bstart[w];
		for (; b < *bo; b++)
			chars += ((unsigned char)ex->text[b] & 0xC0) != 0x80;
		(k & 1 ? p->cend : p->cstart)[w] = chars;
		w += k & 1;
	}
	p->n_off = n;
	return 0;
}

/*
 * The "entities" of token task t: the predicted tags of words [0, seen)
 * grouped by mtl_bio_spans (conlleval's rules, as the entity scores), each
 * {"type", "start", "end", "text", "score", "words"}: characters
 * [start, end) of the text and the text itself when the words have
 * offsets, the mean of the words' scores, and the words [first, end).
 */
static void pack_entities(struct mtl_predictor *p, msgpack_packer *pk, int t,
			  const struct mtl_example *ex, int seen)
{
	const struct mtl_bio *bio = &p->bio[t];
	int n = mtl_bio_spans(bio, p->pred, seen, p->spans);
	int off = p->n_off >= seen;

	mtl_mp_pack_str(pk, "entities");
	msgpack_pack_array(pk, (size_t)n);
	for (int k = 0; k < n; k++) {
		const struct mtl_span *sp = &p->spans[k];
		double sum = 0;
		int scored = 0;

		for (int w = sp->start; w < sp->end; w++)
			if (!isnan(p->score[w])) {
				sum += p->score[w];
				scored++;
			}
		msgpack_pack_map(pk, 3 + 3 * off);
		mtl_mp_pack_str(pk, "type");
		mtl_mp_pack_str(pk, bio->types[sp->type]);
		if (off) {
			int32_t b0 = p->bstart[sp->start], b1 = p->bend[sp->end - 1];
			mtl_mp_pack_str(pk, "start");
			msgpack_pack_int32(pk, p->cstart[sp->start]);
			mtl_mp_pack_str(pk, "end");
			msgpack_pack_int32(pk, p->cend[sp->end - 1]);
			mtl_mp_pack_str(pk, "text");
			msgpack_pack_str(pk, (size_t)(b1 - b0));
			msgpack_pack_str_body(pk, ex->text + b0, (size_t)(b1 - b0));
		}
		mtl_mp_pack_str(pk, "score");
		if (scored)
			msgpack_pack_float(pk, (float)(sum / scored));
		else
			msgpack_pack_nil(pk);
		mtl_mp_pack_str(pk, "words");
		msgpack_pack_array(pk, 2);
		msgpack_pack_int(pk, sp->start);
		msgpack_pack_int(pk, sp->end);
	}
}

/*
 * A token task: words are the example's words (first token of each, by
 * word_ids), or its tokens when it has no word_ids.
 */
static int pack_token(struct mtl_predictor *p, msgpack_packer *pk, int t,
		      const struct mtl_example *ex, const float *logits, int T)
{
	const struct mtl_task *task = &p->m->tasks->task[t];
	int s = p->map[t], C = task->n_labels, seen = 0;
	const int32_t *tok = s >= 0 ? ex->tok[s] : NULL;
	const int32_t *lost = s >= 0 && ex->lost ? ex->lost[s] : NULL;
	int32_t n_lost = lost ? ex->lost_words : 0;
	int has_bio = p->bio[t].n_labels > 0;
	struct mtl_span *sp;
	int n_sp;
	long lost_by_type[256] = { 0 };
	int n_types = has_bio ? p->bio[t].n_types : 0;
	int none = mtl_task_label(task, "O") >= 0 ? mtl_task_label(task, "O") : 0;

	if (ex->word_ids)
		for (int i = 0; i < ex->len; i++)
			if (ex->word_ids[i] + 1 > seen)
				seen = ex->word_ids[i] + 1;
	if (!ex->word_ids)
		seen = ex->len;
	if (grow((void **)&p->pred, &p->cap_words, (size_t)(seen + n_lost + 1), sizeof(int32_t)) ||
	    !(p->gold = realloc(p->gold, p->cap_words * sizeof(int32_t))) ||
	    !(p->full = realloc(p->full, p->cap_words * sizeof(int32_t))) ||
	    !(p->score = realloc(p->score, p->cap_words * sizeof(float))) ||
	    !(p->spans = realloc(p->spans, p->cap_words * sizeof(*p->spans))) ||
	    !(p->probs = realloc(p->probs, ((size_t)seen + 1) * (size_t)C * sizeof(float))))
		return MTL_ERR_NOMEM;
	for (int w = 0; w < seen; w++) {
		/* a word that gives no token (a lone variation selector, say)
		 * has no prediction of its own: it is outside every entity */
		p->pred[w] = none;
		p->gold[w] = MTL_IGNORE;
		p->score[w] = NAN;
	}
	for (int i = ex->len - 1; i >= 0; i--) {
		int w = ex->word_ids ? ex->word_ids[i] : i;
		if (w < 0)
			continue;
		/* the first token of word w wins: we go backwards */
		p->pred[w] = argmax(logits + (size_t)i * (size_t)C, C);
		p->gold[w] = tok ? tok[i] : MTL_IGNORE;
		softmax(p->probs + (size_t)w * (size_t)C, logits + (size_t)i * (size_t)C, C);
		p->score[w] = p->probs[(size_t)w * (size_t)C + (size_t)p->pred[w]];
	}
	/* gold over all words, the lost ones included, for entity spans */
	for (int w = 0; w < seen; w++)
		p->full[w] = p->gold[w] == MTL_IGNORE ? -1 : p->gold[w];
	for (int w = 0; w < n_lost; w++)
		p->full[seen + w] = lost[w] == MTL_IGNORE ? -1 : lost[w];
	if (has_bio && n_lost && (sp = malloc((size_t)(seen + n_lost + 1) * sizeof(*sp)))) {
		n_sp = mtl_bio_spans(&p->bio[t], p->full, seen + n_lost, sp);
		for (int k = 0; k < n_sp; k++) {
			if (sp[k].end <= seen)
				continue;
			/* cut off, wholly or partly: lost, and its seen words
			 * carry no gold so it is not also scored as found */
			if (sp[k].type < 256)
				lost_by_type[sp[k].type]++;
			p->ent[t].per_type[sp[k].type].fn++;
			for (int w = sp[k].start; w < seen; w++)
				p->gold[w] = MTL_IGNORE;
		}
		free(sp);
	}
	msgpack_pack_map(pk, 2 + !!(p->flags & MTL_PREDICT_PROBS) + (n_types > 0 && n_lost > 0) +
			 has_bio);
	mtl_mp_pack_str(pk, "pred");
	msgpack_pack_array(pk, (size_t)seen);
	for (int w = 0; w < seen; w++)
		pack_label(pk, task, p->pred[w]);
	mtl_mp_pack_str(pk, "gold");
	if (!tok) {
		msgpack_pack_nil(pk);
	} else {
		msgpack_pack_array(pk, (size_t)seen);
		for (int w = 0; w < seen; w++)
			pack_label(pk, task, p->gold[w] == MTL_IGNORE ? -1 : p->gold[w]);
	}
	if (p->flags & MTL_PREDICT_PROBS) {
		mtl_mp_pack_str(pk, "probs");
		msgpack_pack_array(pk, (size_t)seen);
		for (int w = 0; w < seen; w++)
			mtl_mp_pack_f32s(pk, p->probs + (size_t)w * (size_t)C, (size_t)C);
	}
	if (n_types > 0 && n_lost > 0) {
		int k = 0;
		mtl_mp_pack_str(pk, "gold_lost");
		for (int y = 0; y < n_types && y < 256; y++)
			k += lost_by_type[y] > 0;
		msgpack_pack_map(pk, (size_t)k);
		for (int y = 0; y < n_types && y < 256; y++)
			if (lost_by_type[y]) {
				mtl_mp_pack_str(pk, p->bio[t].types[y]);
				msgpack_pack_long(pk, lost_by_type[y]);
			}
	}
	if (has_bio)
		pack_entities(p, pk, t, ex, seen);
	if (!tok)
		return 0;
	for (int w = 0; w < seen; w++) {
		if (p->gold[w] != MTL_IGNORE)
			mtl_confusion_add(&p->conf[t], p->gold[w], p->pred[w]);
		p->full[w] = p->gold[w] == MTL_IGNORE ? -1 : p->gold[w];
	}
	if (has_bio)
		return mtl_entity_add(&p->ent[t], &p->bio[t], p->full, p->pred, seen);
	return 0;
}

/* Starts a record map of n_more + 2 (+ text, text_b) entries: type, id,
 * text, a pair's text_b. */
static void pack_start(msgpack_packer *pk, const char *type,
		       const struct mtl_example *ex, int n_more)
{
	msgpack_pack_map(pk, (size_t)(2 + (ex->text != NULL) + (ex->text_b != NULL) +
				      n_more));
	mtl_mp_pack_str(pk, "type");
	mtl_mp_pack_str(pk, type);
	mtl_mp_pack_str(pk, "id");
	mtl_data_pack_id(pk, ex);
	mtl_data_pack_texts(pk, ex);
}

/* The tasks of ts (bit t) that read ex's input: a pair task a pair (two
 * texts), a regression task either, the others one text. */
static uint64_t tasks_of_input(const struct mtl_tasks *ts, const struct mtl_example *ex)
{
	uint64_t m = 0;

	for (int t = 0; t < ts->n; t++)
		if (ts->task[t].kind == MTL_TASK_REGRESSION ||
		    (ts->task[t].kind == MTL_TASK_PAIR) == (ex->type_ids != NULL))
			m |= 1ull << t;
	return m;
}

/* The sequence tasks of st that ex has a gold label for. */
static int seq_labelled(const struct mtl_tasks *st, const struct mtl_example *ex)
{
	int n = 0;

	for (int t = 0; st && t < st->n && t < ex->n_tasks; t++)
		n += st->task[t].kind == MTL_TASK_SEQUENCE && ex->seq[t] != MTL_IGNORE;
	return n;
}

/* Packs "labels": {TASK: LABEL} for the n sequence tasks ex has gold for
 * (an embeddings stream's labels, for the evaluators of lib/heads/embset.h). */
static void pack_seq_labels(msgpack_packer *pk, const struct mtl_tasks *st,
			    const struct mtl_example *ex, int n)
{
	mtl_mp_pack_str(pk, "labels");
	msgpack_pack_map(pk, (size_t)n);
	for (int t = 0; t < st->n && t < ex->n_tasks; t++)
		if (st->task[t].kind == MTL_TASK_SEQUENCE && ex->seq[t] != MTL_IGNORE) {
			mtl_mp_pack_str(pk, st->task[t].name);
			mtl_mp_pack_str(pk, st->task[t].labels[ex->seq[t]]);
		}
}

int mtl_predict(struct mtl_predictor *p, const struct mtl_example *const *ex,
		int n, struct mtl_mp_writer *w, struct mtl_err *err)
{
	struct mtl_model *m = p->m;
	const struct mtl_tasks *ts = m->tasks;
	int T, H = m->bert->cfg.hidden, rc;
	struct mtl_batch b;

	if ((rc = mtl_batch_make(&b, ex, n, NULL, NULL, 0, m->bert->cfg.pad_id, err)))
		return rc;
	T = b.T;
	if (grow((void **)&p->amask, &p->cap_tok, (size_t)n * (size_t)T, sizeof(int32_t)) ||
	    !(p->emb = realloc(p->emb, (size_t)n * (size_t)H * sizeof(float)))) {
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		goto out;
	}
	mtl_batch_mask(p->amask, b.lengths, n, T);
	if (p->flags & MTL_PREDICT_EMBED_ONLY) {
		/* with CLS pooling, the last layer runs for the CLS rows only */
		if ((rc = mtl_bert_embed(m->bert, &m->pool, p->emb, b.ids, b.type_ids,
					 p->amask, n, T, err)))
			goto out;
	} else if ((rc = mtl_bert_forward_real(m->bert, b.ids, b.type_ids, p->amask,
					       n, T, err)) ||
		   (rc = mtl_heads_forward(m->heads, mtl_bert_last_hidden(m->bert),
					   p->amask, n, T, 0, NULL, err))) {
		goto out;
	}
	if (p->flags & MTL_PREDICT_EMBEDDING) {
		mtl_pool_forward(p->emb, mtl_bert_last_hidden(m->bert), p->amask, n, T, H,
				 m->pool.mode);
		if (m->pool.normalize)
			mtl_l2norm_forward(p->emb, NULL, p->emb, n, H);
	}
	if (p->flags & MTL_PREDICT_EMBED_ONLY) {
		for (int i = 0; i < n; i++) {
			msgpack_packer *pk = mtl_mp_pk(w);
			int n_seq = seq_labelled(p->st, ex[i]);

			pack_start(pk, "embedding", ex[i], 1 + (n_seq > 0));
			if (n_seq > 0)
				pack_seq_labels(pk, p->st, ex[i], n_seq);
			mtl_mp_pack_str(pk, "embedding");
			mtl_mp_pack_f32s(pk, p->emb + (size_t)i * (size_t)H, (size_t)H);
			if ((rc = mtl_mp_end(w, err)))
				goto out;
		}
		goto out;
	}
	for (int i = 0; i < n; i++) {
		msgpack_packer *pk = mtl_mp_pk(w);
		int nw = ex[i]->word_starts ? ex[i]->n_spans : (int)ex[i]->n_words;
		uint64_t sel = p->mask & tasks_of_input(ts, ex[i]);
		int n_sel = 0;

		for (int t = 0; t < ts->n; t++)
			n_sel += (sel >> t) & 1;

		if (word_offsets(p, ex[i], nw)) {
			rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
			goto out;
		}
		pack_start(pk, "prediction", ex[i], 1 + (ex[i]->words || p->n_off) +
			   (p->n_off > 0) + !!(p->flags & MTL_PREDICT_EMBEDDING));
		if (ex[i]->words) {
			mtl_mp_pack_str(pk, "words");
			msgpack_pack_array(pk, ex[i]->n_words);
			for (size_t k2 = 0; k2 < ex[i]->n_words; k2++)
				mtl_mp_pack_str(pk, ex[i]->words[k2]);
		} else if (p->n_off) {
			mtl_mp_pack_str(pk, "words");
			msgpack_pack_array(pk, (size_t)p->n_off);
			for (int k2 = 0; k2 < p->n_off; k2++) {
				msgpack_pack_str(pk, (size_t)(p->bend[k2] - p->bstart[k2]));
				msgpack_pack_str_body(pk, ex[i]->text + p->bstart[k2],
						      (size_t)(p->bend[k2] - p->bstart[k2]));
			}
		}
		if (p->n_off) {
			mtl_mp_pack_str(pk, "offsets");
			msgpack_pack_array(pk, (size_t)p->n_off);
			for (int k2 = 0; k2 < p->n_off; k2++) {
				msgpack_pack_array(pk, 2);
				msgpack_pack_int32(pk, p->cstart[k2]);
				msgpack_pack_int32(pk, p->cend[k2]);
			}
		}
		if (p->flags & MTL_PREDICT_EMBEDDING) {
			mtl_mp_pack_str(pk, "embedding");
			mtl_mp_pack_f32s(pk, p->emb + (size_t)i * (size_t)H, (size_t)H);
		}
		mtl_mp_pack_str(pk, "tasks");
		msgpack_pack_map(pk, (size_t)n_sel);
		for (int t = 0; t < ts->n; t++) {
			const struct mtl_head *h = &m->heads->h[t];
			if (!((sel >> t) & 1))
				continue;
			mtl_mp_pack_str(pk, ts->task[t].name);
			if (ts->task[t].kind != MTL_TASK_TOKEN) {
				const float *z = h->logits + (size_t)i * (size_t)h->C;

				if (!(p->probs = realloc(p->probs, (size_t)h->C * sizeof(float))) ||
				    (ts->task[t].kind == MTL_TASK_MULTILABEL &&
				     pack_multilabel(p, pk, t, ex[i], z)) ||
				    (ts->task[t].kind == MTL_TASK_REGRESSION &&
				     pack_regression(p, pk, t, ex[i], z[0]))) {
					rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
					goto out;
				}
				if (ts->task[t].kind == MTL_TASK_SEQUENCE ||
				    ts->task[t].kind == MTL_TASK_PAIR)
					pack_sequence(p, pk, t, ex[i], z);
			} else if (pack_token(p, pk, t, ex[i],
					      h->logits + (size_t)i * (size_t)T * (size_t)h->C, T)) {
				rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
				goto out;
			}
		}
		if ((rc = mtl_mp_end(w, err)))
			goto out;
	}
out:
	mtl_batch_release(&b);
	return rc;
}

/* The keys every task kind's metrics record starts with, into m. */
static void metrics_begin(struct mtl_mp_map *m, const struct mtl_predictor *p,
			  int t, long scored)
{
	const struct mtl_task *task = &p->m->tasks->task[t];

	mtl_mp_map_begin(m);
	mtl_mp_pack_str(mtl_mp_map_key(m, "type"), "metrics");
	mtl_mp_pack_str(mtl_mp_map_key(m, "task"), task->name);
	mtl_mp_pack_str(mtl_mp_map_key(m, "kind"), mtl_task_kind_name(task->kind));
	msgpack_pack_long(mtl_mp_map_key(m, "scored"), scored);
}

/* A multilabel task's metrics record: items scored, per-label accuracy,
 * macro and micro F1, exact match. */
static int pack_multilabel_metrics(struct mtl_predictor *p, int t,
				   struct mtl_mp_writer *w, struct mtl_err *err)
{
	struct mtl_multilabel_score *ml = &p->ml[t];
	double cells = (double)ml->items * ml->n;
	struct mtl_mp_map m;

	mtl_multilabel_finish(ml);
	metrics_begin(&m, p, t, ml->items);
	msgpack_pack_double(mtl_mp_map_key(&m, "accuracy"),
			    cells > 0 ? (cells - (double)(ml->micro.fp + ml->micro.fn)) / cells : 0);
	msgpack_pack_double(mtl_mp_map_key(&m, "macro_f1"), ml->macro_f1);
	msgpack_pack_double(mtl_mp_map_key(&m, "micro_f1"), ml->micro.f1);
	msgpack_pack_double(mtl_mp_map_key(&m, "exact_match"),
			    ml->items ? (double)ml->exact / (double)ml->items : 0);
	mtl_mp_map_end(&m, mtl_mp_pk(w));
	return mtl_mp_end(w, err);
}

/* A regression task's metrics record: pairs scored, MSE, Pearson and
 * Spearman (nil where undefined). */
static int pack_regression_metrics(struct mtl_predictor *p, int t,
				   struct mtl_mp_writer *w, struct mtl_err *err)
{
	struct mtl_regression_score *rg = &p->rg[t];
	const char *const key[] = { "mse", "pearson", "spearman" };
	struct mtl_mp_map m;
	double v[3];

	if (mtl_regression_finish(rg))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	v[0] = rg->mse;
	v[1] = rg->pearson;
	v[2] = rg->spearman;
	metrics_begin(&m, p, t, rg->n);
	for (int k = 0; k < 3; k++) {
		msgpack_packer *vk = mtl_mp_map_key(&m, key[k]);

		if (isnan(v[k]))
			msgpack_pack_nil(vk);
		else
			msgpack_pack_double(vk, v[k]);
	}
	mtl_mp_map_end(&m, mtl_mp_pk(w));
	return mtl_mp_end(w, err);
}

int mtl_predict_metrics(struct mtl_predictor *p, struct mtl_mp_writer *w,
			struct mtl_err *err)
{
	const struct mtl_tasks *ts = p->m->tasks;
	int rc;

	for (int t = 0; !(p->flags & MTL_PREDICT_EMBED_ONLY) && t < ts->n; t++) {
		msgpack_packer *pk = mtl_mp_pk(w);
		int ent = p->bio[t].n_labels > 0;

		if (!((p->mask >> t) & 1))
			continue;
		if (ts->task[t].kind == MTL_TASK_MULTILABEL ||
		    ts->task[t].kind == MTL_TASK_REGRESSION) {
			if ((rc = ts->task[t].kind == MTL_TASK_MULTILABEL
				  ? pack_multilabel_metrics(p, t, w, err)
				  : pack_regression_metrics(p, t, w, err)))
				return rc;
			continue;
		}
		if (ent)
			mtl_entity_finish(&p->ent[t]);
		msgpack_pack_map(pk, 6 + 3 * ent);
		mtl_mp_pack_str(pk, "type");
		mtl_mp_pack_str(pk, "metrics");
		mtl_mp_pack_str(pk, "task");
		mtl_mp_pack_str(pk, ts->task[t].name);
		mtl_mp_pack_str(pk, "kind");
		mtl_mp_pack_str(pk, mtl_task_kind_name(ts->task[t].kind));
		mtl_mp_pack_str(pk, "scored");
		msgpack_pack_long(pk, p->conf[t].total);
		mtl_mp_pack_str(pk, "accuracy");
		msgpack_pack_double(pk, mtl_confusion_accuracy(&p->conf[t]));
		mtl_mp_pack_str(pk, "macro_f1");
		msgpack_pack_double(pk, mtl_confusion_macro_f1(&p->conf[t]));
		if (ent) {
			mtl_mp_pack_str(pk, "entity_precision");
			msgpack_pack_double(pk, p->ent[t].micro.precision);
			mtl_mp_pack_str(pk, "entity_recall");
			msgpack_pack_double(pk, p->ent[t].micro.recall);
			mtl_mp_pack_str(pk, "entity_f1");
			msgpack_pack_double(pk, p->ent[t].micro.f1);
		}
		if ((rc = mtl_mp_end(w, err)))
			return rc;
	}
	return 0;
}
