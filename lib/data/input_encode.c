/*
 * input_encode.c - an input item to a tokenized example: its labels looked
 * up, its text (and its other texts) tokenized; see input.h.
 */
#include "input_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mp.h"

/*
 * Multilabel task k's names into the indicators in->word_labels[k]
 * [n_labels].  An unknown name is an error (skipped with skip_unknown), a
 * name given twice is an error.
 */
static int look_up_multi(struct mtl_input *in, const struct mtl_input_item *it,
			 int k, struct mtl_census *c, struct mtl_err *err)
{
	const struct mtl_task *t = &in->ts->task[k];
	int32_t *v;

	if (input_reserve(&in->word_labels[k], &in->word_labels_cap[k],
			  (size_t)t->n_labels, sizeof(int32_t)))
		return input_nomem(err);
	v = in->word_labels[k];
	memset(v, 0, (size_t)t->n_labels * sizeof(int32_t));
	for (size_t i = 0; i < it->n_multi[k]; i++) {
		const char *l = it->multi[k][i];
		int y = mtl_task_label(t, l);

		if (y < 0 && !in->o.skip_unknown)
			return input_bad(err, it->line,
					 "task '%s': unknown label '%.100s'",
					 t->name, l);
		if (y < 0) {
			if (c)
				c->unknown_labels_skipped++;
			continue;
		}
		if (v[y])
			return input_bad(err, it->line,
					 "task '%s': label '%.100s' given twice",
					 t->name, l);
		v[y] = 1;
	}
	return 0;
}

/*
 * Looks up it's labels: seq[k] for sequence tasks, in->word_labels[k] for
 * token tasks (word labels) and multilabel tasks (indicators); has[k]
 * says which tasks the example carries.
 */
static int look_up_labels(struct mtl_input *in, const struct mtl_input_item *it,
			  int32_t *seq, int *has, struct mtl_census *c,
			  struct mtl_err *err)
{
	for (int k = 0; k < in->n_tasks; k++) {
		const struct mtl_task *t = &in->ts->task[k];
		int32_t *wl;

		if ((t->kind == MTL_TASK_SEQUENCE || t->kind == MTL_TASK_PAIR) && it->seq[k]) {
			seq[k] = mtl_task_label(t, it->seq[k]);
			if (seq[k] < 0 && !in->o.skip_unknown)
				return input_bad(err, it->line, "task '%s': unknown label '%.100s'",
					   t->name, it->seq[k]);
			if (seq[k] < 0 && c)
				c->unknown_labels_skipped++;
			has[k] = seq[k] >= 0;
			continue;
		}
		if (t->kind == MTL_TASK_REGRESSION && it->value &&
		    !isnan(it->value[k])) {
			seq[k] = mtl_label_of_value((float)it->value[k]);
			has[k] = 1;
			continue;
		}
		if (t->kind == MTL_TASK_MULTILABEL && it->multi && it->multi[k]) {
			int rc = look_up_multi(in, it, k, c, err);

			if (rc)
				return rc;
			has[k] = 1;
			continue;
		}
		if (t->kind != MTL_TASK_TOKEN || !it->tags[k])
			continue;
		if (!it->words)
			return input_bad(err, it->line, "task '%s': token labels need 'words'",
				   t->name);
		if (input_reserve(&in->word_labels[k], &in->word_labels_cap[k],
			    it->n_words, sizeof(int32_t)))
			return input_nomem(err);
		wl = in->word_labels[k];
		for (size_t i = 0; i < it->n_words; i++) {
			const char *tag = it->tags[k][i];
			wl[i] = tag ? mtl_task_label(t, tag) : MTL_IGNORE;
			if (tag && wl[i] < 0) {
				if (!in->o.skip_unknown)
					return input_bad(err, it->line,
						   "task '%s': word %zu: unknown label '%.100s'",
						   t->name, i + 1, tag);
				if (c)
					c->unknown_labels_skipped++;
				wl[i] = MTL_IGNORE;
			}
		}
		has[k] = 1;
	}
	return 0;
}

/* The msgpack encoding of it's id into ex.  0 or -1. */
static int pack_id(struct mtl_example *ex, const struct mtl_input_item *it,
		   const char *prefix)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (it->id) {
		mtl_mp_pack_str(&pk, it->id);
	} else if (prefix && !it->id_given) {
		char s[4096];
		snprintf(s, sizeof(s), "%s:%lld", prefix, it->id_int);
		mtl_mp_pack_str(&pk, s);
	} else {
		msgpack_pack_int64(&pk, it->id_int);
	}
	ex->id_len = sb.size;
	ex->id = msgpack_sbuffer_release(&sb);
	return ex->id ? 0 : -1;
}

/*
 * Text input: each word's bytes in the text, from its tokens' offsets (the
 * first start to the last end; a word's tokens are adjacent).  0 or -1.
 */
static int word_spans(struct mtl_example *ex, const struct mtl_tok_enc *e)
{
	int32_t n = 0;

	for (size_t i = 0; i < e->n; i++)
		if (e->word_ids[i] + 1 > n)
			n = e->word_ids[i] + 1;
	if (!n)
		return 0;
	ex->word_starts = malloc((size_t)n * sizeof(int32_t));
	ex->word_ends = malloc((size_t)n * sizeof(int32_t));
	if (!ex->word_starts || !ex->word_ends)
		return -1;
	ex->n_spans = n;
	for (int32_t w = 0; w < n; w++)
		ex->word_starts[w] = ex->word_ends[w] = -1;
	for (size_t i = 0; i < e->n; i++) {
		int32_t w = e->word_ids[i];
		if (w < 0)
			continue;
		if (ex->word_starts[w] < 0 || e->starts[i] < ex->word_starts[w])
			ex->word_starts[w] = e->starts[i];
		if (e->ends[i] > ex->word_ends[w])
			ex->word_ends[w] = e->ends[i];
	}
	return 0;
}

/* Copies the encoding, text and words into ex.  0 or -1. */
static int fill_example(struct mtl_example *ex, const struct mtl_input_item *it,
			const struct mtl_tok_enc *e, int n_tasks,
			const char *id_prefix)
{
	size_t n = e->n, nt = n_tasks ? (size_t)n_tasks : 1;

	ex->n_tasks = n_tasks;
	ex->len = (int32_t)n;
	ex->ids = malloc(n * sizeof(int32_t));
	ex->word_ids = malloc(n * sizeof(int32_t));
	ex->seq = malloc(nt * sizeof(int32_t));
	ex->tok = calloc(nt, sizeof(int32_t *));
	ex->lost = calloc(nt, sizeof(int32_t *));
	ex->multi = calloc(nt, sizeof(int32_t *));
	ex->text = malloc(it->text_len + 1);
	if (!ex->ids || !ex->word_ids || !ex->seq || !ex->tok || !ex->lost ||
	    !ex->multi || !ex->text ||
	    pack_id(ex, it, id_prefix))
		return -1;
	memcpy(ex->ids, e->ids, n * sizeof(int32_t));
	memcpy(ex->word_ids, e->word_ids, n * sizeof(int32_t));
	if (it->text_len)
		memcpy(ex->text, it->text, it->text_len);
	ex->text[it->text_len] = 0;
	ex->text_len = it->text_len;
	ex->truncated = e->truncated;
	ex->words_lost = e->words_lost;
	if (it->words) {
		if (!(ex->words = calloc(it->n_words ? it->n_words : 1, sizeof(char *))))
			return -1;
		for (; ex->n_words < it->n_words; ex->n_words++)
			if (!(ex->words[ex->n_words] = strdup(it->words[ex->n_words])))
				return -1;
		return 0;
	}
	return word_spans(ex, e);
}

/* Tokenizes one embedding text into a new buffer: 0 or <0. */
static int encode_text(struct mtl_input *in, const struct mtl_input_item *it,
		       const struct mtl_tok *tok, size_t max_len, const char *s,
		       size_t len, const char *what, int32_t **ids, int32_t *n,
		       struct mtl_census *c, struct mtl_err *err)
{
	struct mtl_tok_enc *e = &in->enc;
	struct mtl_err terr;

	if (mtl_tok_encode(tok, s, len, 0, max_len, e, &terr) < 0)
		return input_bad(err, it->line, "'%s': %s", what, terr.msg);
	if (e->n <= 2 && c)
		c->no_tokens++;
	if (c)
		c->unk += (long)e->unk;
	if (!(*ids = malloc(e->n * sizeof(int32_t))))
		return input_nomem(err);
	memcpy(*ids, e->ids, e->n * sizeof(int32_t));
	*n = (int32_t)e->n;
	return 0;
}

/* The embedding tasks' texts of it into ex->emb (after ex's own text). */
static int encode_emb(struct mtl_input *in, const struct mtl_input_item *it,
		      const struct mtl_tok *tok, size_t max_len,
		      struct mtl_example *ex, struct mtl_census *c,
		      struct mtl_err *err)
{
	int rc;

	for (int k = 0; k < in->n_tasks; k++) {
		const struct mtl_input_emb *ie = &it->emb[k];
		struct mtl_example_emb *e;

		if (!ie->other)
			continue;
		if (!ex->emb && !(ex->emb = calloc((size_t)in->n_tasks, sizeof(*ex->emb))))
			return input_nomem(err);
		e = &ex->emb[k];
		e->score = (float)ie->score;
		if ((rc = encode_text(in, it, tok, max_len, ie->other, ie->other_len,
				      in->ts->task[k].emb.loss == MTL_EMB_MNRL ?
				      "positive" : "pair", &e->other,
				      &e->other_len, c, err)) ||
		    (ie->negative &&
		     (rc = encode_text(in, it, tok, max_len, ie->negative,
				       ie->negative_len, "negative", &e->neg,
				       &e->neg_len, c, err))))
			return rc;
		ex->labelled |= 1ull << k;
	}
	return 0;
}

/*
 * A pair's texts: the first with its specials into in->enc, [CLS] a [SEP],
 * and the second without into in->enc_b, both cut longest first to
 * max_len (mtl_tok_pair_lengths); *nb is how many of in->enc_b's tokens
 * are kept.  0 or <0.
 */
static int encode_pair(struct mtl_input *in, const struct mtl_input_item *it,
		       const struct mtl_tok *tok, size_t max_len, size_t *nb,
		       struct mtl_census *c, struct mtl_err *err)
{
	struct mtl_tok_enc *e = &in->enc, *eb = &in->enc_b;
	size_t na, nb0;
	struct mtl_err terr;
	int32_t last = -2;

	if (max_len > 0 && max_len < 3)
		return mtl_err_set(err, MTL_ERR_ARG,
				   "max length %zu leaves no room for [CLS] and two [SEP]",
				   max_len);
	if (mtl_tok_encode(tok, it->text_b, it->text_b_len, MTL_TOK_NO_SPECIALS, 0,
			   eb, &terr) < 0)
		return input_bad(err, it->line, "'text_b': %s", terr.msg);
	if (mtl_tok_encode(tok, it->text, it->text_len, 0, 0, e, &terr) < 0)
		return input_bad(err, it->line, "%s", terr.msg);
	na = e->n - 2;
	*nb = nb0 = eb->n;
	if (mtl_tok_pair_lengths(&na, nb, max_len) &&
	    na < e->n - 2 &&
	    mtl_tok_encode(tok, it->text, it->text_len, 0, na + 2, e, &terr) < 0)
		return input_bad(err, it->line, "%s", terr.msg);
	/* the second text's words that lost a token, as the tokenizer counts
	 * them for the first */
	for (size_t i = *nb; i < nb0; i++)
		if (eb->word_ids[i] != last) {
			last = eb->word_ids[i];
			e->words_lost++;
		}
	e->truncated |= *nb < nb0;
	if (c) {
		c->no_tokens += (e->n <= 2) + (nb0 == 0);
		for (size_t i = 0; i < *nb; i++)
			c->unk += eb->ids[i] == mtl_tok_unk_id(tok);
	}
	return 0;
}

/*
 * Appends the nb kept tokens of a pair's second text and a [SEP] to ex
 * (which holds [CLS] a [SEP]), with token type ids 0 then 1, word id -1
 * (they are no word of the text), and the text_b.  0 or -1.
 */
static int append_pair(struct mtl_example *ex, const struct mtl_input_item *it,
		       const struct mtl_tok_enc *eb, size_t nb)
{
	size_t na = (size_t)ex->len, n = na + nb + 1;
	int32_t *ids = realloc(ex->ids, n * sizeof(int32_t));

	if (!ids)
		return -1;
	ex->ids = ids;
	if (!(ids = realloc(ex->word_ids, n * sizeof(int32_t))))
		return -1;
	ex->word_ids = ids;
	if (!(ex->type_ids = malloc(n * sizeof(int32_t))) ||
	    !(ex->text_b = malloc(it->text_b_len + 1)))
		return -1;
	for (size_t i = 0; i < n; i++) {
		ex->type_ids[i] = i >= na;
		if (i >= na)
			ex->word_ids[i] = -1;
	}
	if (nb) /* a second text of no tokens may have no buffer yet */
		memcpy(ex->ids + na, eb->ids, nb * sizeof(int32_t));
	ex->ids[n - 1] = ex->ids[na - 1]; /* [SEP] */
	ex->len = (int32_t)n;
	memcpy(ex->text_b, it->text_b, it->text_b_len);
	ex->text_b[it->text_b_len] = 0;
	ex->text_b_len = it->text_b_len;
	return 0;
}

int mtl_input_encode(struct mtl_input *in, const struct mtl_input_item *it,
		     const struct mtl_tok *tok, size_t max_len,
		     struct mtl_example *ex, struct mtl_census *c,
		     struct mtl_err *err)
{
	struct mtl_tok_enc *e = &in->enc;
	int32_t seq[MAX_TASKS];
	int has[MAX_TASKS] = { 0 }, rc;
	struct mtl_err terr;
	size_t nb = 0;

	memset(ex, 0, sizeof(*ex));
	/* labels first: a bad label must not cost a tokenization */
	if ((rc = look_up_labels(in, it, seq, has, c, err)))
		return rc;
	if (it->text_b) {
		if ((rc = encode_pair(in, it, tok, max_len, &nb, c, err)))
			return rc;
	} else {
		if (it->words)
			rc = mtl_tok_encode_words(tok, it->words, it->n_words, 0, max_len, e, &terr);
		else
			rc = mtl_tok_encode(tok, it->text, it->text_len, 0, max_len, e, &terr);
		if (rc < 0)
			return input_bad(err, it->line, "%s", terr.msg);
		if (e->n <= 2 && c)
			c->no_tokens++; /* [CLS] [SEP], as Hugging Face gives it */
	}
	if (fill_example(ex, it, e, in->n_tasks, in->o.id_prefix) ||
	    (it->text_b && append_pair(ex, it, &in->enc_b, nb)))
		goto oom;
	if (it->words && e->truncated) {
		int32_t seen = 0;
		for (size_t i = 0; i < e->n; i++)
			if (e->word_ids[i] + 1 > seen)
				seen = e->word_ids[i] + 1;
		ex->lost_words = (int32_t)it->n_words - seen;
	}
	for (int k = 0; k < in->n_tasks; k++) {
		ex->seq[k] = MTL_IGNORE;
		if (!has[k])
			continue;
		if (in->ts->task[k].kind == MTL_TASK_SEQUENCE ||
		    in->ts->task[k].kind == MTL_TASK_PAIR ||
		    in->ts->task[k].kind == MTL_TASK_REGRESSION) {
			ex->seq[k] = seq[k];
			ex->labelled |= 1ull << k;
			continue;
		}
		if (in->ts->task[k].kind == MTL_TASK_MULTILABEL) {
			size_t L = (size_t)in->ts->task[k].n_labels;

			if (!(ex->multi[k] = malloc(L * sizeof(int32_t))))
				goto oom;
			memcpy(ex->multi[k], in->word_labels[k], L * sizeof(int32_t));
			ex->labelled |= 1ull << k;
			continue;
		}
		if (!(ex->tok[k] = malloc(e->n * sizeof(int32_t))))
			goto oom;
		rc = (int)mtl_tok_align(e, in->word_labels[k], it->n_words, MTL_IGNORE,
					ex->tok[k]);
		if (c)
			c->labels_lost += rc;
		/* the gold labels of the words left without a token, so that
		 * scoring on the original words can count them */
		if (ex->lost_words > 0) {
			size_t seen = it->n_words - (size_t)ex->lost_words;
			if (!(ex->lost[k] = malloc((size_t)ex->lost_words * sizeof(int32_t))))
				goto oom;
			memcpy(ex->lost[k], in->word_labels[k] + seen,
			       (size_t)ex->lost_words * sizeof(int32_t));
		}
		for (size_t i = 0; i < e->n; i++)
			if (ex->tok[k][i] != MTL_IGNORE)
				ex->labelled |= 1ull << k;
	}
	if (c)
		c->unk += (long)e->unk;
	/* the pair text last: e is free again */
	if (it->pair) {
		rc = mtl_tok_encode(tok, it->pair, it->pair_len, 0, max_len, e, &terr);
		if (rc < 0) {
			mtl_example_release(ex);
			return input_bad(err, it->line, "'pair': %s", terr.msg);
		}
		if (e->n <= 2 && c)
			c->no_tokens++;
		if (!(ex->pair_ids = malloc(e->n * sizeof(int32_t))))
			goto oom;
		memcpy(ex->pair_ids, e->ids, e->n * sizeof(int32_t));
		ex->pair_len = (int32_t)e->n;
		if (c)
			c->unk += (long)e->unk;
	}
	if ((rc = encode_emb(in, it, tok, max_len, ex, c, err))) {
		mtl_example_release(ex);
		return rc;
	}
	return 0;
oom:
	mtl_example_release(ex);
	return input_nomem(err);
}
