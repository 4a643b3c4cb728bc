/*
 * t.h - a minimal TAP producer for the C unit tests.
 *
 * Each check prints one TAP line ("ok N - name" or "not ok N - name" with a
 * "# file:line" diagnostic); t_done() prints the plan and returns the exit
 * status (non-zero when any check failed), so main ends with
 * `return t_done();`.  tests/run.sh counts the lines of every test binary
 * and every Bats file into the final "N passed, N failed" line.
 *
 * Tests run from the repository root, so fixtures are "fixtures/...".
 */
#ifndef MTL_T_H
#define MTL_T_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

static int t_count, t_failed;

static inline int t_okv(int cond, const char *file, int line,
			const char *fmt, va_list ap)
{
	t_count++;
	printf("%sok %d - ", cond ? "" : "not ", t_count);
	vprintf(fmt, ap);
	printf("\n");
	if (!cond) {
		t_failed++;
		printf("# failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

static inline int t_ok_at(int cond, const char *file, int line,
			  const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static inline int t_ok_at(int cond, const char *file, int line,
			  const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = t_okv(cond, file, line, fmt, ap);
	va_end(ap);
	return r;
}

/* T_OK(cond, "name %d", i): one check. */
#define T_OK(cond, ...) t_ok_at(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* Prints a diagnostic line (TAP comment). */
#define T_NOTE(...) (printf("# "), printf(__VA_ARGS__), printf("\n"))

/* One skipped check, with the reason. */
static inline void t_skip(const char *why)
{
	t_count++;
	printf("ok %d # skip %s\n", t_count, why);
	fflush(stdout);
}

/* Max |a-b| over n floats. */
static inline double t_maxdiff(const float *a, const float *b, long n)
{
	double m = 0;

	for (long i = 0; i < n; i++) {
		double d = fabs((double)a[i] - (double)b[i]);
		if (d > m || d != d)
			m = d != d ? INFINITY : d;
	}
	return m;
}

static inline int t_done(void)
{
	printf("1..%d\n", t_count);
	return t_failed ? 1 : 0;
}

#endif
