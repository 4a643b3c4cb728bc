/* ckpt.c - atomic training checkpoints and resuming; see ckpt.h. */
#define _XOPEN_SOURCE 700
#include "ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "head.h"
#include "manifest.h"
#include "st.h"

#define MARKER "COMPLETE"
#define LOCK ".lock"

void mtl_ckpt_state_release(struct mtl_ckpt_state *st)
{
	json_decref(st->strategy);
	st->strategy = NULL;
	free(st->ranks);
	st->ranks = NULL;
	st->n_ranks = 0;
}

int mtl_ckpt_state_set_ranks(struct mtl_ckpt_state *st,
			     const struct mtl_rng *r, int n, struct mtl_err *err)
{
	struct mtl_rng *t = realloc(st->ranks, sizeof(*t) * (size_t)n);

	if (!t)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	memcpy(t, r, sizeof(*t) * (size_t)n);
	st->ranks = t;
	st->n_ranks = n;
	return 0;
}

static json_t *rng_json(const struct mtl_rng *r);

int mtl_ckpt_better(const char *metric, double a, double b)
{
	return strcmp(metric, "loss") ? a > b : a < b;
}

static int unlink_cb(const char *path, const struct stat *sb, int flag,
		     struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* rm -r path; a missing path is fine. */
static int rm_rf(const char *path, struct mtl_err *err)
{
	struct stat sb;

	if (lstat(path, &sb) < 0 && errno == ENOENT)
		return 0;
	if (nftw(path, unlink_cb, 16, FTW_DEPTH | FTW_PHYS) < 0)
		return mtl_err_set(err, MTL_ERR_IO, "cannot remove '%s': %s",
				   path, strerror(errno));
	return 0;
}

/* The step of a checkpoint directory name, or -1. */
static long name_step(const char *name)
{
	char *end;
	long s;

	if (strncmp(name, "checkpoint-", 11) || name[11] < '0' || name[11] > '9')
		return -1;
	errno = 0;
	s = strtol(name + 11, &end, 10);
	return *end || errno ? -1 : s;
}

/* Complete checkpoints of out: steps[] ascending, their count (or <0). */
static int list(const char *out, long **steps, struct mtl_err *err)
{
	DIR *d = opendir(out);
	struct dirent *e;
	char p[PATH_MAX];
	int n = 0, cap = 0;

	*steps = NULL;
	if (!d)
		return errno == ENOENT ? 0
		       : mtl_err_set(err, MTL_ERR_IO, "cannot open directory '%s': %s",
				     out, strerror(errno));
	while ((e = readdir(d))) {
		long s = name_step(e->d_name), *t;

		struct stat sb;

		/* a symlink is not one of ours: never read, never removed */
		if (s < 0 || mtl_fs_join(p, out, e->d_name, NULL) ||
		    lstat(p, &sb) < 0 || !S_ISDIR(sb.st_mode) ||
		    !mtl_fs_exists(p, MARKER))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			if (!(t = realloc(*steps, sizeof(long) * (size_t)cap))) {
				closedir(d);
				return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
			}
			*steps = t;
		}
		(*steps)[n++] = s;
	}
	closedir(d);
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && (*steps)[j - 1] > (*steps)[j]; j--) {
			long t = (*steps)[j];
			(*steps)[j] = (*steps)[j - 1];
			(*steps)[j - 1] = t;
		}
	return n;
}

/* opendir(dir), or NULL with the reason in err. */
static DIR *open_dir(const char *dir, struct mtl_err *err)
{
	DIR *d = opendir(dir);

	if (!d)
		mtl_err_set(err, MTL_ERR_IO, "cannot open directory '%s': %s",
			    dir, strerror(errno));
	return d;
}

/* Whether name is a temporary file of fs.h (NAME.tmp.XXXXXX). */
static int is_tmp_file(const char *name)
{
	size_t n = strlen(name);

	return n > 11 && !strncmp(name + n - 11, ".tmp.", 5);
}

/*
 * Removes what kills left in out: the temporary directories of saves,
 * checkpoint directories without their marker (a rotation cut short) and
 * temporary files of fs.h (latest.tmp.*, model.safetensors.tmp.*, ...);
 * with all (--overwrite), also latest, best and every checkpoint.
 * Symlinks are removed, never followed; only a run holding the lock may
 * call this.
 */
static int clean(const char *out, int all, struct mtl_err *err)
{
	static const char *const files[] = { "latest", "best" };
	DIR *d = open_dir(out, err);
	struct dirent *e;
	char p[PATH_MAX];
	int rc = 0;

	if (!d)
		return MTL_ERR_IO;
	/* latest first: a kill halfway leaves nothing that says "resume me" */
	for (int i = 0; all && i < 2 && !rc; i++)
		if (!(rc = mtl_fs_join(p, out, files[i], err)))
			rc = mtl_fs_remove(p, err);
	while (!rc && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		struct stat sb;
		int dir;

		if (mtl_fs_join(p, out, e->d_name, NULL) || lstat(p, &sb) < 0)
			continue;
		dir = S_ISDIR(sb.st_mode);
		if ((dir && !strncmp(e->d_name, ".checkpoint-", 12) && n > 16 &&
		     !strcmp(e->d_name + n - 4, ".tmp")) ||
		    (name_step(e->d_name) >= 0 &&
		     (all || (dir && !mtl_fs_exists(p, MARKER)))))
			rc = rm_rf(p, err);
		else if (S_ISREG(sb.st_mode) && is_tmp_file(e->d_name))
			rc = mtl_fs_remove(p, err);
	}
	closedir(d);
	return rc ? rc : mtl_fs_sync_dir(out, err);
}

/*
 * Takes the lock of out (out/.lock, flock, held until *fd is closed) and
 * writes our pid into it; when another process holds it, says which.
 */
static int lock(const char *out, int *fd, struct mtl_err *err)
{
	char p[PATH_MAX], pid[32];
	int rc;
	ssize_t n;

	if ((rc = mtl_fs_join(p, out, LOCK, err)))
		return rc;
	*fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
	if (*fd < 0)
		return mtl_err_set(err, MTL_ERR_IO, "cannot open '%s': %s", p,
				   strerror(errno));
	if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		n = e == EWOULDBLOCK ? pread(*fd, pid, sizeof(pid) - 1, 0) : -1;
		close(*fd);
		*fd = -1;
		if (e != EWOULDBLOCK)
			return mtl_err_set(err, MTL_ERR_IO, "cannot lock '%s': %s",
					   p, strerror(e));
		pid[n > 0 ? n : 0] = 0;
		pid[strcspn(pid, "\n")] = 0;
		return mtl_err_set(err, MTL_ERR_ARG,
				   "'%s' is in use by another run (pid %s): one run at a time per output directory",
				   out, pid[0] ? pid : "unknown");
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(*fd, 0) < 0 || pwrite(*fd, pid, (size_t)n, 0) != n) {
		rc = mtl_err_set(err, MTL_ERR_IO, "cannot write '%s': %s", p,
				 strerror(errno));
		close(*fd);
		*fd = -1;
	}
	return rc;
}

int mtl_ckpt_open(const char *out, enum mtl_ckpt_mode mode, int *fd,
		  struct mtl_err *err)
{
	long *steps = NULL;
	int n, rc;

	*fd = -1;
	if ((rc = mtl_fs_mkdirs(out, err)) || (rc = lock(out, fd, err)))
		return rc;
	if ((rc = clean(out, mode == MTL_CKPT_OVERWRITE, err)))
		goto fail;
	if ((n = rc = list(out, &steps, err)) < 0)
		goto fail;
	rc = 0;
	if (mode == MTL_CKPT_FRESH && (n > 0 || mtl_fs_exists(out, "latest")))
		rc = mtl_err_set(err, MTL_ERR_ARG,
				 "'%s' holds the checkpoints of another run (newest: checkpoint-%06ld): give --resume to continue it, or --overwrite to remove them and start afresh",
				 out, n > 0 ? steps[n - 1] : 0L);
	free(steps);
	if (!rc)
		return 0;
fail:
	close(*fd);
	*fd = -1;
	return rc;
}

int mtl_ckpt_verify(const char *dir, struct mtl_err *err)
{
	int rc = mtl_manifest_check(dir, MARKER, NULL, 0, err);

	return rc > 0 && !mtl_fs_exists(dir, MARKER)
	       ? mtl_err_set(err, MTL_ERR_FORMAT,
			     "'%s' is not a complete checkpoint (no " MARKER ")",
			     dir)
	       : rc < 0 ? rc : 0;
}

/* Appends line and a newline to the malloc'ed text *s. */
static int append(char **s, const char *line, struct mtl_err *err)
{
	size_t n = *s ? strlen(*s) : 0;
	char *t = realloc(*s, n + strlen(line) + 2);

	if (!t)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	sprintf(t + n, "%s\n", line);
	*s = t;
	return 0;
}

int mtl_ckpt_find(const char *out, char **path, char **skipped,
		  struct mtl_err *err)
{
	long *steps;
	int n = list(out, &steps, err), rc = 0;
	struct mtl_err why;

	*skipped = NULL;
	if (n <= 0)
		return n;
	*path = malloc(strlen(out) + 32);
	for (int i = n - 1; *path && i >= 0; i--) {
		sprintf(*path, "%s/checkpoint-%06ld", out, steps[i]);
		if (!mtl_ckpt_verify(*path, &why)) {
			free(steps);
			return 1;
		}
		if ((rc = append(skipped, why.msg, err)))
			break;
	}
	free(steps);
	free(*path);
	*path = NULL;
	if (rc)
		return rc;
	if (!*skipped)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	return mtl_err_set(err, MTL_ERR_FORMAT,
			   "no checkpoint of '%s' passes verification", out);
}

static char *hex64(char buf[17], uint64_t v)
{
	snprintf(buf, 17, "%016" PRIx64, v);
	return buf;
}

/* A generator's state: four 16-digit hex strings. */
static json_t *rng_json(const struct mtl_rng *r)
{
	json_t *a = json_array();
	char h[17];

	for (int i = 0; i < 4; i++)
		json_array_append_new(a, json_string(hex64(h, r->s[i])));
	return a;
}

/* The inverse of rng_json: 0, or -1 when j is not one. */
static int rng_parse(const json_t *j, struct mtl_rng *r)
{
	if (json_array_size(j) != 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		const char *h = json_string_value(json_array_get(j, (size_t)i));
		char *end;

		r->s[i] = h ? strtoull(h, &end, 16) : 0;
		if (!h || strlen(h) != 16 || *end)
			return -1;
	}
	return 0;
}

static json_t *state_json(const struct mtl_ckpt_state *st,
			  const struct mtl_model *mdl,
			  const struct mtl_train *tr)
{
	const struct mtl_train_opts *o = &tr->o;
	static const char *sched[] = { "linear", "cosine", "constant" };
	json_t *j = json_object(), *rng = rng_json(&st->rng), *s, *hs;
	char h[17];

	if (st->n_ranks > 1) {
		json_t *all = json_array();

		for (int r = 0; r < st->n_ranks; r++)
			json_array_append_new(all, rng_json(&st->ranks[r]));
		json_object_set_new(j, "rank_rngs", all);
	}
	json_object_set_new(j, "format", json_integer(1));
	json_object_set_new(j, "step", json_integer(st->step));
	json_object_set_new(j, "batches", json_integer(st->batches));
	json_object_set_new(j, "bad_steps", json_integer(st->bad));
	json_object_set_new(j, "rng", rng);
	hs = json_array();
	for (int t = 0; t < tr->hd->ts->n; t++)
		json_array_append_new(hs, json_integer(tr->head_steps[t]));
	json_object_set_new(j, "head_steps", hs);
	s = json_pack("{s:f, s:f, s:I, s:I, s:f, s:s, s:I}", "lr", (double)o->lr,
		      "head_lr", (double)o->head_lr, "warmup", (json_int_t)o->warmup,
		      "total", (json_int_t)o->total, "warmup_ratio",
		      o->warmup_ratio, "schedule", sched[o->sched],
		      "unfreeze_at", (json_int_t)tr->unfreeze_at);
	json_object_set_new(j, "schedule", s);
	json_object_set_new(j, "metric", st->metric ? json_string(st->metric)
						    : json_null());
	json_object_set_new(j, "value", isfinite(st->value) ? json_real(st->value)
							    : json_null());
	json_object_set_new(j, "best", st->best[0]
		? json_pack("{s:s, s:f}", "checkpoint", st->best, "value",
			    st->best_value)
		: json_null());
	json_object_set_new(j, "vocab_hash", mdl->has_vocab
		? json_string(hex64(h, mdl->vocab_hash)) : json_null());
	json_object_set(j, "strategy", st->strategy ? st->strategy
						    : json_object());
	/* json_object_set took a reference: release the fresh empty object */
	if (!st->strategy)
		json_decref(json_object_get(j, "strategy"));
	return j;
}

/* Every file of the checkpoint into dir, the marker last. */
static int write_all(const char *dir, const struct mtl_model *mdl,
		     const struct mtl_train *tr, const struct mtl_ckpt_state *st,
		     struct mtl_err *err)
{
	const struct mtl_bert *m = tr->m;
	const struct mtl_heads *hd = tr->hd;
	struct mtl_st_out t[4] = {
		{ "encoder.exp_avg", 1, { (int64_t)m->n_params }, tr->mom1 },
		{ "encoder.exp_avg_sq", 1, { (int64_t)m->n_params }, tr->mom2 },
		{ "heads.exp_avg", 1, { (int64_t)hd->n_params }, tr->hmom1 },
		{ "heads.exp_avg_sq", 1, { (int64_t)hd->n_params }, tr->hmom2 },
	};
	static const char *meta[] = { "format", "mtl-adamw-1" };
	static const char *const own[] = { "optimizer.safetensors",
					   "trainer.json" };
	char p[PATH_MAX];
	json_t *j;
	int rc;

	MTL_ASSERT(mdl->heads == hd && mdl->bert == m);
	if ((rc = mtl_model_save(mdl, dir, err)) ||
	    (rc = mtl_fs_join(p, dir, "optimizer.safetensors", err)) ||
	    (rc = mtl_st_write(p, t, 4, meta, 1, err)) ||
	    (rc = mtl_fs_join(p, dir, "trainer.json", err)))
		return rc;
	if (!(j = state_json(st, mdl, tr)))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	rc = mtl_fs_write_json(p, j, JSON_REAL_PRECISION(17), err);
	json_decref(j);
	/* the marker: every file of the checkpoint with its checksum */
	return rc ? rc : mtl_model_publish(dir, MARKER, own, 2, err);
}

/* Removes the oldest complete checkpoints beyond keep, never best. */
static int rotate(const char *out, int keep, const char *best,
		  struct mtl_err *err)
{
	long *steps;
	int n = list(out, &steps, err), rc = 0;
	char p[PATH_MAX];

	if (n < 0)
		return n;
	for (int i = 0; i < n - keep && !rc; i++) {
		int fd = -1;

		snprintf(p, sizeof(p), "checkpoint-%06ld", steps[i]);
		if (!strcmp(p, best))
			continue;
		/* the marker first: a half-removed checkpoint is never trusted;
		 * through the directory itself, never a symlink in its place */
		if (snprintf(p, sizeof(p), "%s/checkpoint-%06ld", out,
			     steps[i]) >= (int)sizeof(p))
			rc = mtl_err_set(err, MTL_ERR_ARG, "path too long: '%s'", out);
		else if ((fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					O_CLOEXEC)) < 0 ||
			 unlinkat(fd, MARKER, 0) < 0)
			rc = mtl_err_set(err, MTL_ERR_IO, "cannot remove '%s/" MARKER "': %s",
					 p, strerror(errno));
		if (fd >= 0)
			close(fd);
		if (!rc)
			rc = rm_rf(p, err);
	}
	free(steps);
	return rc ? rc : mtl_fs_sync_dir(out, err);
}

int mtl_ckpt_save(const char *out, const struct mtl_model *mdl,
		  const struct mtl_train *tr, struct mtl_ckpt_state *st,
		  int keep, struct mtl_err *err)
{
	char name[40], fin[PATH_MAX], tmp[PATH_MAX], line[128];
	struct mtl_ckpt_state s = *st;
	int rc;

	snprintf(name, sizeof(name), "checkpoint-%06ld", st->step);
	if (snprintf(fin, sizeof(fin), "%s/%s", out, name) >= (int)sizeof(fin) ||
	    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", out, name) >= (int)sizeof(tmp))
		return mtl_err_set(err, MTL_ERR_ARG, "path too long: '%s'", out);
	if (s.metric && isfinite(s.value) &&
	    (!s.best[0] || mtl_ckpt_better(s.metric, s.value, s.best_value))) {
		snprintf(s.best, sizeof(s.best), "%s", name);
		s.best_value = s.value;
	}
	if (!mtl_fs_exists(fin, MARKER)) {
		if ((rc = mtl_fs_mkdirs(out, err)) || (rc = rm_rf(tmp, err)) ||
		    (rc = rm_rf(fin, err)) || (rc = mtl_fs_mkdirs(tmp, err)))
			return rc;
		if ((rc = write_all(tmp, mdl, tr, &s, err))) {
			rm_rf(tmp, NULL);
			return rc;
		}
		if (rename(tmp, fin) < 0) {
			rc = mtl_err_set(err, MTL_ERR_IO, "cannot rename '%s': %s",
					 tmp, strerror(errno));
			rm_rf(tmp, NULL);
			return rc;
		}
		if ((rc = mtl_fs_sync_dir(out, err)))
			return rc;
	}
	snprintf(line, sizeof(line), "%s\n", name);
	if ((rc = mtl_fs_join(tmp, out, "latest", err)) ||
	    (rc = mtl_fs_write(tmp, line, strlen(line), err)))
		return rc;
	if (s.best[0] && strcmp(s.best, st->best)) {
		if ((rc = mtl_fs_join(tmp, out, "best", err)))
			return rc;
		snprintf(line, sizeof(line), "%s %s %.17g\n", s.best, s.metric,
			 s.best_value);
		if ((rc = mtl_fs_write(tmp, line, strlen(line), err)))
			return rc;
	}
	*st = s;
	return rotate(out, keep < 1 ? 1 : keep, st->best, err);
}

/* ---- loading ---- */

static int same_tasks(const struct mtl_tasks *a, const struct mtl_tasks *b,
		      const char *dir, struct mtl_err *err)
{
	if (!a || !b || a->n != b->n)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "checkpoint '%s' has %d tasks, the run %d",
				   dir, a ? a->n : 0, b ? b->n : 0);
	for (int t = 0; t < a->n; t++) {
		const struct mtl_task *x = &a->task[t], *y = &b->task[t];
		int same = !strcmp(x->name, y->name) && x->kind == y->kind &&
			   x->n_labels == y->n_labels && x->weight == y->weight &&
			   x->hidden == y->hidden &&
			   x->activation == y->activation &&
			   x->dropout == y->dropout && x->pooling == y->pooling &&
			   x->threshold == y->threshold;

		for (int k = 0; same && k < x->n_labels; k++)
			same = !strcmp(x->labels[k], y->labels[k]);
		if (!same)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "checkpoint '%s': task %d ('%s') differs from the run's ('%s')",
					   dir, t, x->name, y->name);
	}
	return 0;
}

static int check_fit(const struct mtl_model *c, const struct mtl_model *mdl,
		     const char *dir, struct mtl_err *err)
{
	const struct mtl_bert_config *x = &c->bert->cfg, *y = &mdl->bert->cfg;

	if (x->vocab != y->vocab || x->hidden != y->hidden ||
	    x->layers != y->layers || x->heads != y->heads ||
	    x->intermediate != y->intermediate || x->max_pos != y->max_pos ||
	    x->type_vocab != y->type_vocab)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "checkpoint '%s' has another model shape (vocab %d, hidden %d, %d layers, %d heads, intermediate %d) than the run (vocab %d, hidden %d, %d layers, %d heads, intermediate %d)",
				   dir, x->vocab, x->hidden, x->layers, x->heads,
				   x->intermediate, y->vocab, y->hidden, y->layers,
				   y->heads, y->intermediate);
	if (c->has_vocab != mdl->has_vocab ||
	    (c->has_vocab && c->vocab_hash != mdl->vocab_hash))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "checkpoint '%s' has another tokenizer vocabulary than the model '%s'",
				   dir, mdl->dir);
	return same_tasks(c->tasks, mdl->tasks, dir, err);
}

static int read_moments(const char *dir, struct mtl_train *tr,
			struct mtl_err *err)
{
	struct {
		const char *name;
		float *dst;
		size_t n;
	} want[4] = {
		{ "encoder.exp_avg", tr->mom1, tr->m->n_params },
		{ "encoder.exp_avg_sq", tr->mom2, tr->m->n_params },
		{ "heads.exp_avg", tr->hmom1, tr->hd->n_params },
		{ "heads.exp_avg_sq", tr->hmom2, tr->hd->n_params },
	};
	char p[PATH_MAX];
	struct mtl_st *st;
	int rc = 0;

	if ((rc = mtl_fs_join(p, dir, "optimizer.safetensors", err)) ||
	    (rc = mtl_st_open(&st, p, err)))
		return rc;
	for (int i = 0; i < 4 && !rc; i++) {
		const struct mtl_st_tensor *t = mtl_st_find(st, want[i].name);

		if (!t)
			rc = mtl_err_set(err, MTL_ERR_FORMAT, "'%s': no tensor '%s'",
					 p, want[i].name);
		else
			rc = mtl_st_read_f32(t, want[i].dst, (int64_t)want[i].n, err);
	}
	mtl_st_close(st);
	if (!rc)
		mtl_train_moments_set(tr);
	return rc;
}

static int read_state(const char *dir, struct mtl_ckpt_state *st,
		      struct mtl_train *tr, struct mtl_err *err)
{
	char p[PATH_MAX];
	json_error_t je;
	json_t *j, *rng, *best, *hs, *ranks;
	json_int_t step, batches, bad;
	int rc = 0;

	if ((rc = mtl_fs_join(p, dir, "trainer.json", err)))
		return rc;
	if (!(j = json_load_file(p, 0, &je)))
		return mtl_err_set(err, MTL_ERR_FORMAT, "cannot read '%s': %s",
				   p, je.text);
	rng = json_object_get(j, "rng");
	best = json_object_get(j, "best");
	hs = json_object_get(j, "head_steps");
	ranks = json_object_get(j, "rank_rngs");
	if (json_unpack(j, "{s:I, s:I, s:I}", "step", &step, "batches",
			&batches, "bad_steps", &bad) ||
	    json_array_size(rng) != 4 || step < 0 || batches < step)
		rc = mtl_err_set(err, MTL_ERR_FORMAT,
				 "'%s': bad step, batches, bad_steps or rng", p);
	if (!rc && rng_parse(rng, &st->rng))
		rc = mtl_err_set(err, MTL_ERR_FORMAT, "'%s': bad rng", p);
	free(st->ranks);
	st->ranks = NULL;
	st->n_ranks = (int)json_array_size(ranks);
	if (!rc && st->n_ranks &&
	    !(st->ranks = calloc((size_t)st->n_ranks, sizeof(*st->ranks))))
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	for (int r = 0; !rc && r < st->n_ranks; r++)
		if (rng_parse(json_array_get(ranks, (size_t)r), &st->ranks[r]))
			rc = mtl_err_set(err, MTL_ERR_FORMAT, "'%s': bad rank_rngs", p);
	/* a checkpoint from before per-head steps: every head took them all */
	if (!rc && hs && json_array_size(hs) != (size_t)tr->hd->ts->n)
		rc = mtl_err_set(err, MTL_ERR_FORMAT, "'%s': bad head_steps", p);
	for (int t = 0; !rc && t < tr->hd->ts->n; t++) {
		json_t *v = json_array_get(hs, (size_t)t);

		tr->head_steps[t] = hs ? (long)json_integer_value(v) : (long)step;
		if (hs && (!json_is_integer(v) || tr->head_steps[t] < 0 ||
			   tr->head_steps[t] > step))
			rc = mtl_err_set(err, MTL_ERR_FORMAT, "'%s': bad head_steps", p);
	}
	if (!rc) {
		st->step = (long)step;
		st->batches = (long)batches;
		st->bad = (int)bad;
		st->best[0] = 0;
		if (json_is_object(best)) {
			snprintf(st->best, sizeof(st->best), "%s",
				 json_string_value(json_object_get(best, "checkpoint"))
				 ? json_string_value(json_object_get(best, "checkpoint")) : "");
			st->best_value = json_number_value(json_object_get(best, "value"));
		}
		json_decref(st->strategy);
		st->strategy = json_incref(json_object_get(j, "strategy"));
	}
	json_decref(j);
	return rc;
}

int mtl_ckpt_load(const char *dir, struct mtl_model *mdl,
		  struct mtl_train *tr, struct mtl_ckpt_state *st,
		  struct mtl_err *err)
{
	struct mtl_model *c;
	char p[PATH_MAX];
	int rc;

	if (!mtl_fs_exists(dir, MARKER))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "'%s' is not a complete checkpoint (no " MARKER ")",
				   dir);
	if ((rc = mtl_model_load(&c, dir, err)))
		return rc;
	if ((rc = check_fit(c, mdl, dir, err))) {
		mtl_model_free(c);
		return rc;
	}
	memcpy(mdl->bert->params, c->bert->params,
	       sizeof(float) * mdl->bert->n_params);
	mtl_model_free(c);
	if ((rc = mtl_fs_join(p, dir, "heads.safetensors", err)) ||
	    (rc = mtl_heads_load(tr->hd, p, err)) ||
	    (rc = read_moments(dir, tr, err)) ||
	    (rc = read_state(dir, st, tr, err)))
		return rc;
	tr->step = st->step;
	tr->rng = st->rng;
	return 0;
}
