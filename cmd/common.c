/* common.c - shared helpers of the mtl programs; see common.h. */
#include "common.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

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
