/* suggest.c - the closest name to a mistyped one; see suggest.h. */
#include "suggest.h"

#include <stdio.h>
#include <string.h>

#define MAXLEN 64

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int min3(int a, int b, int c)
{
	int m = a < b ? a : b;

	return m < c ? m : c;
}

int mtl_suggest_distance(const char *a, const char *b)
{
	/* three rows of the dynamic programme: i-2, i-1, i */
	int row[3][MAXLEN + 1];
	size_t la = strlen(a), lb = strlen(b);

	if (la > MAXLEN || lb > MAXLEN)
		return (int)(la > lb ? la : lb);
	for (size_t j = 0; j <= lb; j++)
		row[1][j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int *r = row[(i + 1) % 3], *p = row[i % 3], *pp = row[(i + 2) % 3];

		/* r is row i, p row i-1, pp row i-2 */
		r[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int ca = lower((unsigned char)a[i - 1]), cb = lower((unsigned char)b[j - 1]);
			int d = min3(p[j] + 1, r[j - 1] + 1, p[j - 1] + (ca != cb));

			if (i > 1 && j > 1 && ca == lower((unsigned char)b[j - 2]) &&
			    lower((unsigned char)a[i - 2]) == cb && pp[j - 2] + 1 < d)
				d = pp[j - 2] + 1;
			r[j] = d;
		}
	}
	return row[(la + 1) % 3][lb];
}

const char *mtl_suggest(const char *typed, const char *const *names, size_t n)
{
	const char *best = NULL;
	int best_d = 0;

	if (!typed || !*typed)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t len;
		int d, limit;

		if (!names[i] || !strcmp(names[i], typed))
			continue;
		len = strlen(names[i]);
		limit = len <= 5 ? 1 : len <= 11 ? 2 : 3;
		d = mtl_suggest_distance(typed, names[i]);
		if (d <= limit && (!best || d < best_d)) {
			best = names[i];
			best_d = d;
		}
	}
	return best;
}

char *mtl_suggest_hint(char *buf, size_t size, const char *typed,
		       const char *const *names, size_t n)
{
	const char *near = mtl_suggest(typed, names, n);

	if (near)
		snprintf(buf, size, " (did you mean '%.100s'?)", near);
	else if (size)
		buf[0] = 0;
	return buf;
}
