/* common.c - shared helpers of the mtl programs; see common.h. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "suggest.h"

#include "mp.h"

const char *cmd_name = "mtl";
int cmd_quiet;
void (*cmd_exit_hook)(int code);

/*
 * One message, written in one call: stderr is unbuffered, and a line
 * written in pieces can be split by another writer to the same place
 * (under mpirun, Open MPI's abort notice lands between the pieces).
 */
static void vsay(const char *what, const char *fmt, va_list ap)
{
	char small[1024], *line = small;
	size_t head = strlen(cmd_name) + strlen(what) + 2;
	va_list again;
	int n;

	va_copy(again, ap);
	n = vsnprintf(NULL, 0, fmt, again);
	va_end(again);
	if (n < 0)
		n = 0;
	if (head + (size_t)n + 2 > sizeof(small) &&
	    !(line = malloc(head + (size_t)n + 2))) {
		/* no room to put it together: the pieces still say it */
		fprintf(stderr, "%s: %s", cmd_name, what);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		return;
	}
	snprintf(line, head + 1, "%s: %s", cmd_name, what);
	vsnprintf(line + head, (size_t)n + 1, fmt, ap);
	line[head + (size_t)n] = '\n';
	fwrite(line, 1, head + (size_t)n + 1, stderr);
	if (line != small)
		free(line);
}

int cmd_status(int rc)
{
	return rc == MTL_ERR_IO ? EXIT_IO : EXIT_DATA;
}

void cmd_die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay("", fmt, ap);
	va_end(ap);
	if (cmd_exit_hook)
		cmd_exit_hook(code);
	exit(code);
}

void cmd_note(const char *fmt, ...)
{
	va_list ap;

	if (cmd_quiet)
		return;
	va_start(ap, fmt);
	vsay("", fmt, ap);
	va_end(ap);
}

void cmd_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay("warning: ", fmt, ap);
	va_end(ap);
}

void cmd_help(const char *usage)
{
	fputs(usage, stdout);
	exit(cmd_finish(0));
}

void cmd_usage_error(const char *usage, const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsay("", fmt, ap);
		va_end(ap);
	}
	fputs(usage, stderr);
	if (cmd_exit_hook)
		cmd_exit_hook(EXIT_USAGE);
	exit(EXIT_USAGE);
}

void cmd_version(void)
{
	printf("%s %s\n", cmd_name, MTL_VERSION);
	exit(cmd_finish(0));
}

FILE *cmd_open_in(const char *path, const char **name)
{
	FILE *f;

	if (!path || !strcmp(path, "-")) {
		if (name)
			*name = "<stdin>";
		return stdin;
	}
	f = fopen(path, "rb");
	if (!f)
		cmd_die(EXIT_IO, "cannot open '%s': %s", path, strerror(errno));
	if (name)
		*name = path;
	return f;
}

void cmd_pipe_ahead(FILE *f, int bytes)
{
#ifdef __linux__
#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031 /* F_LINUX_SPECIFIC_BASE + 7, hidden without _GNU_SOURCE */
#endif
	struct stat st;

	if (fstat(fileno(f), &st) == 0 && S_ISFIFO(st.st_mode))
		(void)fcntl(fileno(f), F_SETPIPE_SZ, bytes);
#else
	(void)f, (void)bytes;
#endif
}

FILE *cmd_open_out(const char *path)
{
	FILE *f;

	if (!path || !strcmp(path, "-"))
		return stdout;
	f = fopen(path, "wb");
	if (!f)
		cmd_die(EXIT_IO, "cannot create '%s': %s", path, strerror(errno));
	return f;
}

long cmd_parse_long(const char *usage, const char *opt, const char *s,
		    long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		cmd_usage_error(usage, "option '%s' needs an integer from %ld to %ld, not '%s'",
				opt, min, max, s);
	return v;
}

double cmd_parse_double(const char *usage, const char *opt, const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v))
		cmd_usage_error(usage, "option '%s' needs a number, not '%s'", opt, s);
	return v;
}

void cmd_end_stream(struct mtl_mp_writer *w)
{
	struct mtl_err err;

	if (mtl_mp_finish(w, &err))
		cmd_die(EXIT_IO, "%s", err.msg);
}

int cmd_parse_options(const char *usage, const struct cmd_opt *opts,
		      int argc, char **argv)
{
	static const struct cmd_opt common[] = {
		CMD_OPT_FLAG('q', "quiet", &cmd_quiet),
		CMD_OPT_FLAG('h', "help", NULL),
		CMD_OPT_FLAG('V', "version", NULL),
	};
	int n = 0, n_all, c, k = 0, n_lo = 0, n_moved = 0;
	struct cmd_moved *moved;
	struct option *lo;
	char *so, opt[64];

	while (opts[n].name)
		n++;
	n_all = n + 3;
	lo = calloc((size_t)n_all + 1, sizeof(*lo));
	so = calloc(2 * (size_t)n_all + 1, 1);
	moved = calloc((size_t)n_all + 1, sizeof(*moved));
	if (!lo || !so || !moved)
		cmd_die(EXIT_DATA, "out of memory");
	for (int i = 0; i < n_all; i++) {
		const struct cmd_opt *o = i < n ? &opts[i] : &common[i - n];
		int arg = o->kind == CMD_OPT_KIND_FLAG ? no_argument : required_argument;

		if (o->kind == CMD_OPT_KIND_MOVED) {
			moved[n_moved++] = (struct cmd_moved){ o->short_name, o->name };
			continue;
		}
		lo[n_lo++] = (struct option){ o->name, arg, NULL, 256 + i };
		if (o->short_name) {
			so[k++] = (char)o->short_name;
			if (arg == required_argument)
				so[k++] = ':';
		}
	}
	while ((c = cmd_getopt(argc, argv, so, lo, usage, moved)) != -1) {
		const struct cmd_opt *o = NULL;

		for (int i = 0; i < n_all && !o; i++) {
			const struct cmd_opt *x = i < n ? &opts[i] : &common[i - n];

			if (c == 256 + i || (x->short_name && c == x->short_name))
				o = x;
		}
		if (!o)
			cmd_usage_error(usage, NULL);
		if (o == &common[1])
			cmd_help(usage);
		if (o == &common[2])
			cmd_version();
		snprintf(opt, sizeof(opt), "--%s", o->name);
		switch (o->kind) {
		case CMD_OPT_KIND_STRING: *(const char **)o->value = optarg; break;
		case CMD_OPT_KIND_FLAG: *(int *)o->value = 1; break;
		case CMD_OPT_KIND_INT:
			*(int *)o->value = (int)cmd_parse_long(usage, opt, optarg, o->min, o->max);
			break;
		case CMD_OPT_KIND_LONG:
			*(long *)o->value = cmd_parse_long(usage, opt, optarg, o->min, o->max);
			break;
		case CMD_OPT_KIND_U64:
			*(uint64_t *)o->value = (uint64_t)cmd_parse_long(usage, opt, optarg, o->min, o->max);
			break;
		case CMD_OPT_KIND_FLOAT: *(float *)o->value = (float)cmd_parse_double(usage, opt, optarg); break;
		case CMD_OPT_KIND_DOUBLE: *(double *)o->value = cmd_parse_double(usage, opt, optarg); break;
		case CMD_OPT_KIND_CALL: o->call(o->value, optarg); break;
		case CMD_OPT_KIND_MOVED: break; /* never registered */
		}
	}
	free(lo);
	free(so);
	free(moved);
	return optind;
}

int cmd_finish(int code)
{
	if (fflush(stdout) || ferror(stdout) || fclose(stdout)) {
		if (code == EXIT_IO)
			return code; /* already reported */
		fprintf(stderr, "%s: write error on standard output: %s\n", cmd_name,
			strerror(errno));
		return EXIT_IO;
	}
	return code;
}

const char *cmd_hint(const char *typed, const char *const *names, size_t n)
{
	static char buf[128];

	return mtl_suggest_hint(buf, sizeof(buf), typed, names, n);
}

const char *cmd_task_hint(const struct mtl_tasks *ts, const char *typed)
{
	const char *names[64];
	int n = 0;

	if (!typed)
		return "";
	for (; ts && n < ts->n && n < 64; n++)
		names[n] = ts->task[n].name;
	return cmd_hint(typed, names, (size_t)n);
}

/* The usage error for the option arg, which getopt did not take. */
static void bad_option(const char *arg, const struct option *longs,
		       const char *usage, const struct cmd_moved *moved, int missing)
{
	const char *names[128], *near;
	char name[104];
	size_t n = 0, len, prefixed = 0;

	if (strncmp(arg, "--", 2) != 0) {
		/* a short option, maybe in a cluster: optopt says which */
		if (missing)
			cmd_usage_error(usage, "option '-%c' needs a value", optopt);
		for (; moved && moved->c; moved++)
			if (moved->c == optopt)
				cmd_usage_error(usage, "unknown option '-%c': use '%s'",
						optopt, moved->instead);
		cmd_usage_error(usage, "unknown option '-%c'", optopt);
	}
	len = strcspn(arg + 2, "=");
	snprintf(name, sizeof(name), "%.*s", (int)(len < 100 ? len : 100), arg + 2);
	if (missing)
		cmd_usage_error(usage, "option '--%s' needs a value", name);
	for (const struct option *o = longs; o->name && n < 128; o++) {
		names[n++] = o->name;
		if (!strcmp(o->name, name))
			cmd_usage_error(usage, "option '--%s' takes no value", name);
		prefixed += !strncmp(o->name, name, len);
	}
	if (prefixed > 1)
		cmd_usage_error(usage, "option '--%s' is ambiguous", name);
	if (prefixed == 1)
		cmd_usage_error(usage, "option '--%s' takes no value", name);
	near = mtl_suggest(name, names, n);
	if (near)
		cmd_usage_error(usage, "unknown option '--%s' (did you mean '--%s'?)", name, near);
	cmd_usage_error(usage, "unknown option '--%s'", name);
}

int cmd_getopt(int argc, char **argv, const char *shorts,
	       const struct option *longs, const char *usage,
	       const struct cmd_moved *moved)
{
	char opts[64];
	int c, before = optind;

	/* a leading ':' tells a missing value (':') from an unknown option */
	snprintf(opts, sizeof(opts), ":%s", shorts);
	opterr = 0;
	c = getopt_long(argc, argv, opts, longs, NULL);
	/* inside a cluster (-qx) optind stays on it; else it moved past */
	if (c == '?' || c == ':')
		bad_option(optind == before && optind < argc ? argv[optind]
			   : optind > 0 && optind <= argc ? argv[optind - 1] : "",
			   longs, usage, moved, c == ':');
	return c;
}

const char *cmd_optional_value(int argc, char **argv)
{
	const char *s;

	if (optarg)
		return optarg;
	if (optind >= argc)
		return NULL;
	s = argv[optind];
	if (!*s || strspn(s, "0123456789") != strlen(s))
		return NULL;
	optind++;
	return s;
}

void cmd_refuse_tty(int force)
{
	if (!force && isatty(STDOUT_FILENO))
		cmd_die(EXIT_USAGE, "not writing a binary stream to a terminal "
			"(redirect or pipe it, e.g. into mtl-dump; --force writes it anyway)");
}
