/*
 * mtl-score - runs a model over an examples stream: each task's
 * predictions (and scores), or sentence embeddings (--embed).
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "data.h"
#include "feat.h"
#include "fs.h"
#include "gemm.h"
#include "model.h"
#include "mp.h"
#include "predict.h"
#include "progress.h"
#include "window.h"

static const char usage[] =
	"usage: mtl-score --model DIR [options] [EXAMPLES]\n"
	"       mtl-score --model DIR --embed [options] [EXAMPLES]\n"
	"       mtl-score --model DIR --features [options] [EXAMPLES]\n"
	"\n"
	"Runs the model over examples (from mtl-tokenize) and writes each task's\n"
	"predictions with the gold labels and, at the end, a metrics record per\n"
	"task (a predictions stream for mtl-report); or, with --embed, sentence\n"
	"embeddings (an embeddings stream); or, with --features, each example's\n"
	"last hidden states (a features stream for mtl-step --features).\n"
	"\n"
	"  -m, --model DIR       model directory (Hugging Face BERT layout, with\n"
	"                        tasks.json and heads.safetensors for predictions)\n"
	"      --tasks A,B       predict only these tasks (default: all)\n"
	"      --probs           add each prediction's label probabilities\n"
	"      --with-embedding  add the sentence embedding to each prediction\n"
	"      --embed           write an embeddings stream instead\n"
	"      --features        write a features stream instead\n"
	"      --pooling P       cls, mean or max (default: the model's)\n"
	"      --no-normalize    keep embeddings unnormalised (default: the model's)\n"
	"  -b, --batch-size N    examples per forward pass (default 32), more\n"
	"                        while they fit in --batch-tokens\n"
	"      --batch-tokens N  token positions a forward pass may hold when\n"
	"                        its examples are short: batch size times the\n"
	"                        longest (default 1024; 0: -b examples exactly)\n"
	"      --sort-window N   batch each N examples by length, to pad less;\n"
	"                        the output keeps the input order (default 2048;\n"
	"                        with --features 0; 0 or 1: input order)\n"
	"  -j, --threads N       threads (default: all cores)\n"
	"      --int8            run the encoder's linear maps in int8: faster,\n"
	"                        slightly less exact (docs/performance.md)\n"
	"      --force           write the stream even to a terminal\n"
	"  -q, --quiet           no progress on stderr\n"
	"  -h, --help            this text\n"
	"  -V, --version         the version\n"
	"\n"
	"Exit status: 0 success, 1 bad input, 2 usage error, 3 I/O error.\n";

struct run;

/* What runs a batch: the run's model and predictor, or (a window's
 * batches on several threads) a view of the model and a predictor of
 * its own. */
struct worker {
	struct run *R;
	struct mtl_model view;  /* the run's model, bert a view of its */
	struct mtl_predictor *pred; /* NULL: --features */
};

struct run {
	struct mtl_model *model;
	struct mtl_tasks *ts; /* from the stream header */
	struct mtl_mp_reader *r;
	struct mtl_mp_writer *w;
	struct mtl_mp_writer *bw; /* the current batch's records go here */
	int batch, features;
	_Atomic long done;
	long size; /* of the input in bytes (0: unknown) */
	struct mtl_predictor *pred; /* NULL: --features */
	struct worker main;         /* the model and pred, all threads */
	struct worker *work;        /* [n_work] one thread each, on views */
	void **wctx;                /* [n_work] &work[i] */
	int n_work;
	struct mtl_window *win;
	struct timespec t0;
	int32_t *mask; /* --features: a padded chunk's attention mask */
	size_t cap_tokens;
};

static void write_or_die(struct run *R)
{
	struct mtl_err err;

	if (mtl_mp_end(R->w, &err))
		cmd_die(EXIT_IO, "%s", err.msg);
}

/* Sets err for a failed batch, naming the span of its input records;
 * returns rc. */
static int batch_error(const struct run *R, const long *recs, int n, int rc,
		       const char *msg, struct mtl_err *err)
{
	long lo = recs[0], hi = recs[0];

	for (int i = 1; i < n; i++) {
		lo = recs[i] < lo ? recs[i] : lo;
		hi = recs[i] > hi ? recs[i] : hi;
	}
	return mtl_err_set(err, rc, "%s: records %ld-%ld: %s",
			   mtl_mp_reader_name(R->r), lo, hi, msg);
}

/* Dies for a failed batch (batch_error). */
static void die_batch(const struct run *R, const long *recs, int n, int rc,
		      const char *msg)
{
	struct mtl_err err;

	batch_error(R, recs, n, rc, msg, &err);
	cmd_die(rc == MTL_ERR_IO ? EXIT_IO : EXIT_DATA, "%s", err.msg);
}

static void progress(const struct run *R, int final)
{
	struct timespec t;
	char line[256];
	double s;

	if (cmd_quiet || (!final && !isatty(2)))
		return;
	clock_gettime(CLOCK_MONOTONIC, &t);
	s = (double)(t.tv_sec - R->t0.tv_sec) + 1e-9 * (double)(t.tv_nsec - R->t0.tv_nsec);
	/* a file's size gives a total and an ETA (the end: the time taken);
	 * the records read (the header the first) against their bytes */
	mtl_progress_format(line, sizeof(line), "example", R->done, final ? 0 :
			    mtl_progress_estimate(mtl_mp_reader_record(R->r) - 1,
						  mtl_mp_reader_offset(R->r), R->size), s);
	fprintf(stderr, "\r%s: %s%s", cmd_name, line, final ? "" : "   ");
	if (final) {
		long long positions, tokens, batches, side;

		mtl_window_tokens(R->win, &positions, &tokens);
		batches = mtl_window_batches(R->win, &side);
		fprintf(stderr, "; %lld token positions for %lld tokens", positions, tokens);
		if (side)
			fprintf(stderr, "; %lld of %lld batches side by side on %d threads",
				side, batches, R->n_work);
		fputc('\n', stderr);
	}
}

/* --features: the inference forward of ex[0..n) over their real tokens
 * (mtl_bert_forward_real), then a record per example with the last
 * hidden states of its tokens. */
static void features_chunk(struct run *R, const struct mtl_example *const *ex,
			   const long *recs, int n)
{
	size_t H = (size_t)R->model->bert->cfg.hidden;
	const float *last;
	struct mtl_batch b;
	struct mtl_err err;
	int T;

	if (mtl_batch_make(&b, ex, n, NULL, NULL, 0, R->model->bert->cfg.pad_id, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	T = b.T;
	if ((size_t)n * (size_t)T > R->cap_tokens) {
		R->cap_tokens = (size_t)n * (size_t)T;
		R->mask = realloc(R->mask, R->cap_tokens * sizeof(int32_t));
		if (!R->mask)
			cmd_die(EXIT_DATA, "out of memory");
	}
	mtl_batch_mask(R->mask, b.lengths, n, T);
	if (mtl_bert_forward_real(R->model->bert, b.ids, b.type_ids, R->mask, n, T, &err))
		die_batch(R, recs, n, MTL_ERR_ARG, err.msg);
	last = mtl_bert_last_hidden(R->model->bert);
	for (int i = 0; i < n; i++)
		if (mtl_feat_write(R->bw, ex[i], last + (size_t)i * (size_t)T * H,
				   (int)H, &err))
			cmd_die(EXIT_IO, "%s", err.msg);
	mtl_batch_release(&b);
}

/* mtl_window_fn: runs one batch (predictions, embeddings or features)
 * on the worker ctx, writing its records to w. */
static int chunk(void *ctx, const struct mtl_example *const *ex,
		 const long *recs, int n, struct mtl_mp_writer *w,
		 struct mtl_err *err)
{
	struct worker *k = ctx;
	struct run *R = k->R;
	struct mtl_err e;
	int rc;

	if (!k->pred) {
		R->bw = w;
		features_chunk(R, ex, recs, n);
	} else if ((rc = mtl_predict(k->pred, ex, n, w, &e))) {
		return batch_error(R, recs, n, rc, e.msg, err);
	}
	R->done += n;
	/* the calling thread's (slot 0) */
	if (k == &R->main || k == R->work)
		progress(R, 0);
	return 0;
}

/* Runs the examples in the window and writes their records in order. */
static void run_window(struct run *R)
{
	struct mtl_err err;
	int rc;

	if ((rc = mtl_window_run_on(R->win, chunk, &R->main, R->wctx, R->n_work,
				    R->w, &err)))
		cmd_die(rc == MTL_ERR_IO ? EXIT_IO : EXIT_DATA, "%s", err.msg);
}

/*
 * --embed on several threads: a worker a thread, each on one of the
 * model's one-thread views (those its batches in parts run on, so that
 * both share their activations), so that a window's batches run side by
 * side (mtl_window_run_on) instead of each batch's work being shared out
 * between threads, which meet several times a layer
 * (docs/performance.md, "Batches side by side").  Not with the products
 * on BLIS, which threads them itself, nor for predictions, whose scores
 * add up batch by batch in one predictor.
 */
static void make_workers(struct run *R, int embed_only)
{
	int nt = R->model->bert->threads;
	struct mtl_err err;

	if (!embed_only || nt <= 1 || mtl_gemm_default() == MTL_GEMM_BLIS)
		return;
	R->work = calloc((size_t)nt, sizeof(*R->work));
	R->wctx = calloc((size_t)nt, sizeof(*R->wctx));
	if (!R->work || !R->wctx || mtl_bert_views(R->model->bert, nt, &err))
		cmd_die(EXIT_DATA, "out of memory");
	for (; R->n_work < nt; R->n_work++) {
		struct worker *k = &R->work[R->n_work];

		k->R = R;
		k->view = *R->model;
		k->view.bert = R->model->bert->views[R->n_work];
		if (mtl_predictor_new(&k->pred, &k->view, R->ts, 0,
				      MTL_PREDICT_EMBED_ONLY, &err))
			cmd_die(EXIT_DATA, "%s", err.msg);
		R->wctx[R->n_work] = k;
	}
}

static void free_workers(struct run *R)
{
	for (int i = 0; i < R->n_work; i++)
		mtl_predictor_free(R->work[i].pred);
	free(R->work);
	free(R->wctx);
}

static const char *pool_name(enum mtl_pool p)
{
	return p == MTL_POOL_CLS ? "cls" : p == MTL_POOL_MEAN ? "mean" : "max";
}

/* What the command line asks for. */
struct args {
	const char *model_dir, *pooling;
	char *tasks;
	int embed, features, no_norm, probs, with_emb, threads, window, force;
	int int8, batch_tokens;
};

/* Parses the options into A (and R->batch); returns the input's index. */
static int parse_args(struct args *A, struct run *R, int argc, char **argv)
{
	const struct cmd_opt opts[] = {
		CMD_OPT_STRING('m', "model", &A->model_dir),
		CMD_OPT_STRING(0, "tasks", &A->tasks),
		CMD_OPT_FLAG(0, "probs", &A->probs),
		CMD_OPT_FLAG(0, "with-embedding", &A->with_emb),
		CMD_OPT_FLAG(0, "embed", &A->embed),
		CMD_OPT_FLAG(0, "features", &A->features),
		CMD_OPT_STRING(0, "pooling", &A->pooling),
		CMD_OPT_FLAG(0, "no-normalize", &A->no_norm),
		CMD_OPT_INT('b', "batch-size", &R->batch, 1, 4096),
		CMD_OPT_INT(0, "batch-tokens", &A->batch_tokens, 0, 1 << 20),
		CMD_OPT_INT(0, "sort-window", &A->window, 0, 1 << 20),
		CMD_OPT_INT('j', "threads", &A->threads, 1, 1024),
		CMD_OPT_MOVED('t', "-j (--threads)"),
		CMD_OPT_FLAG(0, "int8", &A->int8),
		CMD_OPT_FLAG(0, "force", &A->force),
		CMD_OPT_END
	};
	int first = cmd_parse_options(usage, opts, argc, argv);

	R->features = A->features;
	A->embed |= A->features;
	if (!A->model_dir)
		cmd_usage_error(usage, "--model is required");
	if (A->features && A->pooling)
		cmd_usage_error(usage, "--features writes hidden states: no --pooling");
	if (A->embed && (A->tasks || A->probs || A->with_emb))
		cmd_usage_error(usage, "--embed writes embeddings only: no --tasks, --probs or --with-embedding");
	if (argc - first > 1)
		cmd_usage_error(usage, "one input at most");
	cmd_refuse_tty(A->force);
	return first;
}

/* The model, its pooling as asked, and for predictions its heads; the
 * tasks of --tasks as a mask (bit t for task t). */
static uint64_t load_model(struct run *R, struct args *A)
{
	const char *dir = A->model_dir;
	struct mtl_err err;
	uint64_t mask = 0;
	int rc;

	if ((rc = mtl_model_load(&R->model, dir, &err)))
		cmd_die(cmd_status(rc), "%s", err.msg);
	if (A->pooling) {
		if (!strcmp(A->pooling, "cls"))
			R->model->pool.mode = MTL_POOL_CLS;
		else if (!strcmp(A->pooling, "mean"))
			R->model->pool.mode = MTL_POOL_MEAN;
		else if (!strcmp(A->pooling, "max"))
			R->model->pool.mode = MTL_POOL_MAX;
		else
			cmd_usage_error(usage, "--pooling takes cls, mean or max, not '%s'", A->pooling);
	}
	if (A->no_norm)
		R->model->pool.normalize = 0;
	mtl_bert_set_threads(R->model->bert, A->threads);
	/* a batch alone (few in a window, predictions, features) in parts
	 * side by side, one thread each */
	mtl_bert_set_parts(R->model->bert, 1);
	if (A->int8 &&
	    (rc = mtl_bert_set_int8(R->model->bert, 1, MTL_Q8_AUTO, &err)))
		cmd_die(cmd_status(rc), "%s", err.msg);
	if (A->embed)
		return 0;
	if (!R->model->tasks)
		cmd_die(EXIT_DATA, "'%s' has no tasks.json: nothing to predict (use --embed for embeddings)",
			dir);
	if (!mtl_fs_exists(dir, "heads.safetensors"))
		cmd_die(EXIT_DATA, "'%s' has no heads.safetensors: train the model with mtl-step first",
			dir);
	if ((rc = mtl_model_heads(R->model, 0, &err)))
		cmd_die(cmd_status(rc), "%s", err.msg);
	for (char *t = A->tasks ? strtok(A->tasks, ",") : NULL; t; t = strtok(NULL, ",")) {
		int k = mtl_task_find(R->model->tasks, t);
		if (k < 0)
			cmd_usage_error(usage, "--tasks: the model has no task '%s'%s", t,
					cmd_task_hint(R->model->tasks, t));
		mask |= 1ull << k;
	}
	return mask;
}

/* The output's header: a predictions, features or embeddings stream. */
static void write_header(struct run *R, const struct args *A, int argc,
			 char **argv)
{
	struct mtl_mp_map h;
	struct mtl_err err;

	if (A->features) {
		if (mtl_feat_write_header(R->w, argc, argv, R->model, A->model_dir, &err))
			cmd_die(EXIT_IO, "%s", err.msg);
		return;
	}
	mtl_mp_map_begin(&h);
	mtl_mp_pack_str(mtl_mp_map_key(&h, "model"), A->model_dir);
	if (!A->embed) {
		mtl_data_pack_tasks(mtl_mp_map_key(&h, "tasks"), R->model->tasks);
	} else {
		msgpack_pack_int(mtl_mp_map_key(&h, "dim"), R->model->bert->cfg.hidden);
		mtl_mp_pack_str(mtl_mp_map_key(&h, "pooling"), pool_name(R->model->pool.mode));
		if (R->model->pool.normalize)
			msgpack_pack_true(mtl_mp_map_key(&h, "normalized"));
		else
			msgpack_pack_false(mtl_mp_map_key(&h, "normalized"));
	}
	mtl_mp_map_end_header(&h, mtl_mp_pk(R->w), A->embed ? "embeddings" : "predictions",
			      "mtl-score", argc, argv);
	write_or_die(R);
}

/* Reads the examples and runs them a sort window at a time. */
static void score(struct run *R)
{
	const char *name = mtl_mp_reader_name(R->r);
	struct mtl_example *ex;
	msgpack_object rec;
	struct mtl_err err;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &R->t0);
	while ((rc = mtl_mp_read(R->r, &rec, &err)) > 0) {
		if (!mtl_mp_is_str(mtl_mp_get(&rec, "type"), "example"))
			continue;
		ex = mtl_window_add(R->win, mtl_mp_reader_record(R->r));
		if (mtl_example_parse(ex, &rec, R->ts, &err))
			cmd_die(EXIT_DATA, "%s: record %ld: %s", name, mtl_mp_reader_record(R->r), err.msg);
		if (ex->len > R->model->bert->cfg.max_pos)
			cmd_die(EXIT_DATA, "%s: record %ld: %d tokens, more than the model's %d positions (tokenize with --max-length)",
				name, mtl_mp_reader_record(R->r), (int)ex->len, R->model->bert->cfg.max_pos);
		if (mtl_window_full(R->win))
			run_window(R);
	}
	if (rc < 0)
		cmd_die(EXIT_DATA, "%s", err.msg);
	run_window(R);
	if (R->pred && mtl_predict_metrics(R->pred, R->w, &err))
		cmd_die(EXIT_IO, "%s", err.msg);
	cmd_end_stream(R->w);
	progress(R, 1);
}

int main(int argc, char **argv)
{
	struct run R = { .batch = 32 };
	struct args A = { .window = -1, .batch_tokens = 1024 };
	const char *name;
	struct mtl_err err;
	msgpack_object hdr;
	uint64_t task_mask;
	int first, rc;
	FILE *in;

	cmd_name = "mtl-score";
	first = parse_args(&A, &R, argc, argv);
	task_mask = load_model(&R, &A);
	in = cmd_open_in(first < argc ? argv[first] : NULL, &name);
	{ /* a regular file: its size (the reader reads the descriptor) */
		struct stat st;

		if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode))
			R.size = (long)st.st_size;
	}
	/* mtl-tokenize can then run a window ahead while this one encodes */
	cmd_pipe_ahead(in, 1 << 20);
	R.r = mtl_mp_reader_new(in, name);
	R.w = mtl_mp_writer_new(stdout, "standard output");
	if (!R.r || !R.w)
		cmd_die(EXIT_DATA, "out of memory");
	if (mtl_mp_read_header(R.r, "examples", &hdr, &err) ||
	    mtl_data_header_tasks(&R.ts, &hdr, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	if (mtl_model_check_header(R.model, &hdr, &err))
		cmd_die(EXIT_DATA, "%s: %s", name, err.msg);
	if (!R.features &&
	    mtl_predictor_new(&R.pred, R.model, R.ts, task_mask,
			      A.embed ? MTL_PREDICT_EMBED_ONLY
				      : (A.probs ? MTL_PREDICT_PROBS : 0) |
					(A.with_emb ? MTL_PREDICT_EMBEDDING : 0),
			      &err))
		cmd_die(EXIT_DATA, "%s: %s", name, err.msg);
	write_header(&R, &A, argc, argv);
	/* the weights never change here: pack them once, not every batch
	 * (after the header, whose features hash reads them unpacked) */
	if (!A.int8 && (rc = mtl_bert_set_packed(R.model->bert, 1, &err)))
		cmd_die(cmd_status(rc), "%s", err.msg);
	R.main = (struct worker){ .R = &R, .pred = R.pred };
	make_workers(&R, A.embed && !A.features);
	/* features records are large: held for a window only when asked */
	if (mtl_window_new(&R.win, A.window >= 0 ? A.window : R.features ? 0 : 2048,
			   R.batch, A.batch_tokens, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	score(&R);
	mtl_window_free(R.win);
	free_workers(&R);
	mtl_predictor_free(R.pred);
	free(R.mask);
	mtl_mp_reader_free(R.r);
	mtl_mp_writer_free(R.w);
	mtl_task_free(R.ts);
	mtl_model_free(R.model);
	if (in != stdin)
		fclose(in);
	return cmd_finish(0);
}
