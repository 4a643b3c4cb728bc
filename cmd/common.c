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

#include "mp.h"

const char *cmd_name = "mtl";
int cmd_quiet;
void (*cmd_exit_hook)(int code);

static void vsay(const char *what, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: %s", cmd_name, what);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
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
	int n = 0, n_all, c, k = 0;
	struct option *lo;
	char *so, opt[64];

	while (opts[n].name)
		n++;
	n_all = n + 3;
	lo = calloc((size_t)n_all + 1, sizeof(*lo));
	so = calloc(2 * (size_t)n_all + 1, 1);
	if (!lo || !so)
		cmd_die(EXIT_DATA, "out of memory");
	for (int i = 0; i < n_all; i++) {
		const struct cmd_opt *o = i < n ? &opts[i] : &common[i - n];
		int arg = o->kind == CMD_OPT_KIND_FLAG ? no_argument : required_argument;

		lo[i] = (struct option){ o->name, arg, NULL, 256 + i };
		if (o->short_name) {
			so[k++] = (char)o->short_name;
			if (arg == required_argument)
				so[k++] = ':';
		}
	}
	while ((c = getopt_long(argc, argv, so, lo, NULL)) != -1) {
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
		}
	}
	free(lo);
	free(so);
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
