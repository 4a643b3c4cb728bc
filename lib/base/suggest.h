/*
 * suggest.h - "did you mean": the closest of a set of names to a mistyped
 * one, for messages about unknown options, tasks, metrics, record types
 * and input keys.
 *
 * Example:
 *
 *	const char *names[] = { "step", "eval", "batch" };
 *	const char *s = mtl_suggest("stpe", names, 3);   // "step"
 *
 * Distances are optimal string alignment (Levenshtein with adjacent
 * transpositions) over bytes, compared case-insensitively for ASCII.
 * Nothing here allocates or fails; names are borrowed.
 */
#ifndef MTL_SUGGEST_H
#define MTL_SUGGEST_H

#include <stddef.h>

/*
 * The edit distance between a and b: insertions, deletions, substitutions
 * and swaps of two adjacent bytes each cost 1.  A string longer than 64
 * bytes is far from everything: the distance is then the longer length.
 */
int mtl_suggest_distance(const char *a, const char *b);

/*
 * The name of names[0..n) closest to typed, when it is close enough to be
 * a likely typo (distance 1 for names of up to 5 bytes, 2 up to 11, 3
 * beyond; never typed itself); the first of equally close ones.  NULL
 * when none is (or typed is NULL or empty).  NULL entries are skipped.
 */
const char *mtl_suggest(const char *typed, const char *const *names, size_t n);

/*
 * The same as the tail of a message: " (did you mean 'NAME'?)" in buf
 * (NAME cut at 100 bytes, the whole cut to size), or "" when no name is
 * close.  Returns buf.
 */
char *mtl_suggest_hint(char *buf, size_t size, const char *typed,
		       const char *const *names, size_t n);

#endif
