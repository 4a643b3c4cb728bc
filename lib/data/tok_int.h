/*
 * tok_int.h - internal to the WordPiece tokenizer (tok.c: encoding and
 * the trie's lookups, tok_vocab.c: building the vocabulary and loading
 * it); not a module of its own: the contract is tok.h's.  It holds the
 * layout of the opaque struct mtl_tok that both halves work on.
 */
#ifndef MTL_TOK_INT_H
#define MTL_TOK_INT_H

#include "tok.h"

#define TOK_MAX_SPECIALS 64
/*
 * The vocabulary is a byte trie (node 0: root of plain entries, node 1:
 * root of "##" continuations, stored without the prefix), so WordPiece
 * finds the longest matching piece in one walk over the word rather than
 * by hashing every candidate prefix.  The children of a node are the
 * consecutive nodes [first, first + n), cb[c] is the byte on the edge into
 * node c, and blocks are laid out depth-first so that a walk stays in
 * nearby memory.  The roots have direct 256-entry tables.
 */
struct tok_node {
	uint32_t first; /* first child */
	uint32_t n;     /* number of children */
	int32_t id;     /* entry ending here, or -1 */
};

struct tok_special {
	const char *s; /* in t->pool */
	size_t len;
	int32_t id;
};

struct mtl_tok {
	struct mtl_tok_opts o;
	char *pool;          /* every entry, NUL-terminated */
	size_t pool_len;
	uint32_t *piece_off; /* id -> offset in pool, UINT32_MAX: no entry */
	int32_t n_ids;
	struct tok_node *nodes;
	uint8_t *cb;
	uint32_t n_nodes;
	uint32_t root_child[2][256]; /* 0: none */
	struct tok_special sp[TOK_MAX_SPECIALS];
	int n_sp;
	uint8_t sp_first[256];
	int32_t unk, cls, sep;
	uint64_t vocab_hash;
	long max_length;
};

#endif
