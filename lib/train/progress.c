/* progress.c - progress lines; see progress.h. */
#include "progress.h"

#include <math.h>
#include <stdio.h>

void mtl_progress_time(char *buf, size_t n, double seconds)
{
	long s;

	if (!isfinite(seconds) || seconds < 0 || seconds > 1e9) {
		snprintf(buf, n, "-");
		return;
	}
	s = (long)(seconds + 0.5);
	if (s >= 3600)
		snprintf(buf, n, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, n, "%ld:%02ld", s / 60, s % 60);
}

void mtl_progress_format(char *buf, size_t n, const char *unit, long done,
			 long total, double seconds)
{
	double rate = seconds > 0 ? (double)done / seconds : 0;
	char t[32], r[32];

	/* three significant digits, whole numbers from 100 on */
	snprintf(r, sizeof(r), rate < 100 ? "%.3g" : "%.0f", rate);
	if (total > 0) {
		mtl_progress_time(t, sizeof(t), done >= total ? 0
				  : rate > 0 ? (double)(total - done) / rate : NAN);
		snprintf(buf, n, "%s %ld/%ld, %s %s/s, ETA %s", unit, done,
			 total, r, unit, t);
	} else {
		mtl_progress_time(t, sizeof(t), seconds);
		snprintf(buf, n, "%s %ld, %s %s/s, %s", unit, done, r,
			 unit, t);
	}
}

long mtl_progress_estimate(long done, long pos, long size)
{
	double t;

	if (pos <= 0 || size <= 0)
		return 0;
	t = (double)done * (double)size / (double)pos + 0.5;
	return t > (double)done ? (long)t : done;
}

double mtl_progress_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}
