/*
 * t_jsonl.h - streams for tests written as JSON lines: t_pack_lines packs
 * one record a line (the header first) into msgpack bytes in memory, the
 * caller's to free.
 */
#ifndef MTL_T_JSONL_H
#define MTL_T_JSONL_H

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "mp.h"

static inline char *t_pack_lines(const char *jsonl, size_t *len)
{
	char *out = NULL;
	FILE *m = open_memstream(&out, len);
	struct mtl_mp_writer *w = mtl_mp_writer_new(m, "mem");
	const char *p = jsonl;

	while (*p) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		json_t *j = json_loadb(p, n, 0, NULL);

		if (j) {
			mtl_mp_from_json(mtl_mp_pk(w), j);
			mtl_mp_end(w, NULL);
			json_decref(j);
		}
		p += n + (e != NULL);
	}
	mtl_mp_finish(w, NULL);
	mtl_mp_writer_free(w);
	fclose(m);
	return out;
}

#endif
