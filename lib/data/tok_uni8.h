/*
 * tok_uni8.h - internal to lib/data/tok.c: which code points Unicode 8.0 had
 * assigned (generated table, see tools/gen-tok-uni8.pl).  Not part of the
 * public API.
 */
#ifndef MTL_TOK_UNI8_H
#define MTL_TOK_UNI8_H

#include <stddef.h>
#include <stdint.h>

/* Sorted, disjoint, inclusive [first, last] ranges. */
extern const uint32_t mtl_tok_uni8_ranges[][2];
extern const size_t mtl_tok_uni8_n;

#endif
