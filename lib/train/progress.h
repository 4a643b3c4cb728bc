/*
 * progress.h - progress lines for a terminal or a log: how far a job is,
 * its rate and the time it still needs, as plain text.  The programs
 * choose when to write them (a bar redrawn on a terminal, a line every
 * few seconds into a log); this module only formats.
 *
 * Nothing is allocated; buffers are the caller's and always terminated.
 */
#ifndef MTL_PROGRESS_H
#define MTL_PROGRESS_H

#include <stddef.h>
#include <time.h>

/* Seconds since t0 (from clock_gettime(CLOCK_MONOTONIC)). */
double mtl_progress_since(const struct timespec *t0);

/* seconds as "m:ss", or "h:mm:ss" from an hour on ("-" when negative or
 * not finite). */
void mtl_progress_time(char *buf, size_t n, double seconds);

/*
 * "UNIT done/total, R UNIT/s, ETA m:ss" when total > 0 (done past total
 * gives ETA 0:00), else "UNIT done, R UNIT/s, m:ss" (the time so far);
 * the rate is 0 before any time has passed.  unit names the items in the
 * singular ("step", "example").
 */
void mtl_progress_format(char *buf, size_t n, const char *unit, long done,
			 long total, double seconds);

/*
 * The items a file holds, estimated from the bytes read so far: done *
 * size / pos (at least done), or 0 (unknown) when pos or size is not
 * positive, for a total and an ETA where a stream does not say its length.
 */
long mtl_progress_estimate(long done, long pos, long size);

#endif
