/*
 * test_progress.c - progress lines: times in m:ss and h:mm:ss, the rate
 * and the ETA with a known total, the time so far without one, and the
 * edges (no time yet, done past the total, a short buffer), and a total
 * estimated from the bytes read, and the seconds since a start.
 */
#include <math.h>
#include <string.h>

#include "progress.h"
#include "t.h"

static void check(const char *got, const char *want, const char *what)
{
	T_OK(!strcmp(got, want), "%s: '%s' (want '%s')", what, got, want);
}

int main(void)
{
	char b[128];

	mtl_progress_time(b, sizeof(b), 0);
	check(b, "0:00", "zero");
	mtl_progress_time(b, sizeof(b), 61.4);
	check(b, "1:01", "a minute");
	mtl_progress_time(b, sizeof(b), 3600 * 2 + 60 * 5 + 9);
	check(b, "2:05:09", "hours");
	mtl_progress_time(b, sizeof(b), NAN);
	check(b, "-", "unknown");
	mtl_progress_format(b, sizeof(b), "step", 100, 400, 50);
	check(b, "step 100/400, 2 step/s, ETA 2:30", "with a total");
	mtl_progress_format(b, sizeof(b), "step", 500, 400, 50);
	check(b, "step 500/400, 10 step/s, ETA 0:00", "past the total");
	mtl_progress_format(b, sizeof(b), "example", 0, 10, 0);
	check(b, "example 0/10, 0 example/s, ETA -", "no time yet");
	mtl_progress_format(b, sizeof(b), "example", 300, 0, 120);
	check(b, "example 300, 2.5 example/s, 2:00", "without a total");
	mtl_progress_format(b, sizeof(b), "example", 2500, 0, 2);
	check(b, "example 2500, 1250 example/s, 0:02", "a rate above 100");
	mtl_progress_format(b, 8, "step", 100, 400, 50);
	check(b, "step 10", "cut to the buffer");
	T_OK(mtl_progress_estimate(30, 1000, 4000) == 120, "estimate: a quarter read");
	T_OK(mtl_progress_estimate(30, 5000, 4000) == 30, "estimate: never below done");
	T_OK(mtl_progress_estimate(30, 0, 4000) == 0 && mtl_progress_estimate(30, 10, -1) == 0,
	     "estimate: unknown without a position or a size");
	{
		struct timespec t0;

		/* a start 2 s back: at least 2 s since, whatever the load */
		clock_gettime(CLOCK_MONOTONIC, &t0);
		t0.tv_sec -= 2;
		T_OK(mtl_progress_since(&t0) >= 2, "since: a start 2 s back is at least 2 s ago");
	}
	return t_done();
}
