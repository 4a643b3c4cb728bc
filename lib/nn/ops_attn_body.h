/*
 * ops_attn_body.h - the SIMD body of the fused attention forward, compiled
 * once per vector width by ops_attn.c (not a header to include elsewhere).
 *
 * The includer defines the vector type VF of W floats and its operations
 * (VLD VST VSET1 VZERO VFMA VMUL VDIV VADD VSUB VMAX VMIN VPOW2 VZERO_BELOW),
 * QV (vectors of queries in a tile: QW = QV * W query rows), KB (keys
 * per block: the scores of a tile by a block are QV * KB registers), DC
 * (output columns accumulated at once in P V: QV * DC registers), for
 * the short-sentence body SKV (most registers of keys a row), SR and
 * SACC (query rows of the scores at a time, and the accumulators they may
 * take), SRV and SDC (rows and registers of output columns in P V) and
 * VHMAX VHSUM (a vector's largest lane and its sum, by a fixed tree), and
 * NAME(x), the suffix of the functions; it undefines them all at its end.
 *
 * Queries run along the vector lanes: a tile is QW query rows, and every
 * per-row quantity (max, sum) is a lane of QV registers, so the softmax
 * needs no horizontal reduction.  Lanes
 * are never mixed: each query row's arithmetic is the same whichever tile
 * and lane it lands in.  (Short sentences turn this around: see there.)
 */

/* exp(x) lane by lane: vmath.h's vexp (Cody-Waite, degree-7 Taylor, the
 * same tree of operations), 0 below -87.3. */
static inline VF NAME(vexp)(VF x)
{
	VF xc = VMIN(VMAX(x, VSET1(-87.3f)), VSET1(88.3f));
	VF n = VSUB(VADD(VMUL(xc, VSET1(1.44269504f)), VSET1(12582912.0f)),
		    VSET1(12582912.0f));
	VF r = VFMA(n, VSET1(-0.693145752f), xc), r2, r4, hi, lo;

	r = VFMA(n, VSET1(-1.42860677e-6f), r);
	r2 = VMUL(r, r);
	r4 = VMUL(r2, r2);
	hi = VFMA(VSET1(1.0f / 5040), r2,
		  VFMA(VSET1(1.0f / 720), r, VSET1(1.0f / 120)));
	lo = VFMA(VFMA(VSET1(1.0f / 24), r, VSET1(1.0f / 6)), r2,
		  VFMA(VSET1(0.5f), r, VSET1(1.0f)));
	return VZERO_BELOW(x, -87.3f,
			   VMUL(VFMA(VFMA(hi, r4, lo), r, VSET1(1.0f)), VPOW2(n)));
}

/*
 * kt[b][d][jj] = k[(b KB + jj) ld + d], zero for keys from T on: every
 * block's k^T, 8 keys by 8 columns at a time (transpose8).
 */
static inline void NAME(pack_k)(float *kt, const float *k, int64_t ld, int T,
				int D, int nb)
{
	for (int b = 0; b < nb; b++)
		for (int j8 = 0; j8 < KB; j8 += 8) {
			int w = KB - j8 < 8 ? KB - j8 : 8, j0 = b * KB + j8;
			int n = T - j0 < 0 ? 0 : T - j0 < w ? T - j0 : w;
			const float *src = k + (int64_t)(n ? j0 : 0) * ld;
			float *o = kt + (int64_t)b * KB * D + j8;
			int d = 0;

			for (; d + 8 <= D; d += 8) {
				__m256 col[8];

				transpose8(col, src + d, ld, n);
				for (int e = 0; e < 8; e++)
					store8(o + (d + e) * KB, col[e], w);
			}
			for (; d < D; d++)
				for (int jj = 0; jj < w; jj++)
					o[d * KB + jj] = jj < n ? src[jj * ld + d] : 0.0f;
		}
}

/* qt[d][r] = q[r ld + d] for the tile's mr rows, zero past them up to
 * row rows (a whole number of vectors, at most QW). */
static inline void NAME(pack_q)(float *qt, const float *q, int64_t ld, int mr,
				int D, int rows)
{
	for (int r0 = 0; r0 < rows; r0 += 8) {
		int n = mr - r0 < 0 ? 0 : mr - r0 < 8 ? mr - r0 : 8;
		const float *src = q + (int64_t)(n ? r0 : 0) * ld;
		int d = 0;

		for (; d + 8 <= D; d += 8) {
			__m256 col[8];

			transpose8(col, src + d, ld, n);
			for (int e = 0; e < 8; e++)
				_mm256_storeu_ps(qt + (d + e) * QW + r0, col[e]);
		}
		for (; d < D; d++)
			for (int r = 0; r < 8; r++)
				qt[d * QW + r0 + r] = r < n ? src[r * ld + d] : 0.0f;
	}
}

/* c[r ldc + d] = ot[d][r] for the tile's mr rows. */
static inline void NAME(unpack_o)(float *c, int64_t ldc, const float *ot,
				  int mr, int D)
{
	for (int r0 = 0; r0 < mr; r0 += 8) {
		int n = mr - r0 < 8 ? mr - r0 : 8, d = 0;
		float *dst = c + (int64_t)r0 * ldc;

		for (; d + 8 <= D; d += 8) {
			__m256 col[8];

			transpose8(col, ot + d * QW + r0, QW, 8);
			for (int r = 0; r < n; r++)
				_mm256_storeu_ps(dst + r * ldc + d, col[r]);
		}
		for (; d < D; d++)
			for (int r = 0; r < n; r++)
				dst[r * ldc + d] = ot[d * QW + r0 + r];
	}
}

/*
 * ot[d0..d0+dc) = sum over the live blocks' keys j of v[j][d] pt[j]
 * (live[b]: block b has a key not masked)
 * (ot [D][QW], pt [T][QW], v rows ld apart) in qv * dc registers; keys
 * in order, so a key of probability 0 adds exactly 0.  dc and qv are
 * constants of each call, so the accumulators stay in registers.
 */
static inline __attribute__((always_inline)) void
NAME(pv_cols)(float *ot, const float *pt, const float *v, int64_t ld,
	      const unsigned char *live, int T, int d0, int dc, int qv)
{
	VF acc[DC][QV];

#pragma GCC unroll 16
	for (int u = 0; u < dc; u++)
#pragma GCC unroll 2
		for (int e = 0; e < qv; e++)
			acc[u][e] = VZERO();
	for (int j0 = 0; j0 < T; j0 += KB) {
		int n = T - j0 < KB ? T - j0 : KB;

		if (!live[j0 / KB])
			continue;
		for (int j = j0; j < j0 + n; j++) {
			const float *vj = v + (int64_t)j * ld + d0;
			VF p[QV];

#pragma GCC unroll 2
			for (int e = 0; e < qv; e++)
				p[e] = VLD(pt + j * QW + e * W);
#pragma GCC unroll 16
			for (int u = 0; u < dc; u++) {
				VF x = VSET1(vj[u]);

#pragma GCC unroll 2
				for (int e = 0; e < qv; e++)
					acc[u][e] = VFMA(x, p[e], acc[u][e]);
			}
		}
	}
#pragma GCC unroll 16
	for (int u = 0; u < dc; u++)
#pragma GCC unroll 2
		for (int e = 0; e < qv; e++)
			VST(ot + (d0 + u) * QW + e * W, acc[u][e]);
}

/*
 * Rows i0..i0+mr-1 of one (b, h) (see NAME(head)) in the first qv vectors
 * of a tile: qv = QV for a whole tile, 1 when mr fits in one vector, so
 * that a short sentence's last tile computes W rows, not QW.  A row's
 * lane does the same arithmetic whichever qv, so the bits are the same.
 * Three passes over the live key blocks: the scores (scaled and masked)
 * to pt [T][QW] with the rows' max, then their exps in place with the
 * rows' sums, then P V with the output columns in registers.
 */
static inline __attribute__((always_inline)) void
NAME(tile)(float *c, int64_t ldc, const float *q, const float *v, int64_t ld,
	   const float *madd, const unsigned char *live, int T, int D,
	   VF vscale, const float *kt, float *qt, float *pt, float *ot,
	   int i0, int mr, int qv)
{
	int nb = (T + KB - 1) / KB;
	VF m[QV], l[QV];

	/* lanes past T hold zeros (computed, not written); lanes of vectors
	 * from qv on are not read */
	NAME(pack_q)(qt, q + (int64_t)i0 * ld, ld, mr, D, qv * W);
	for (int e = 0; e < qv; e++) {
		m[e] = VSET1(-FLT_MAX);
		l[e] = VZERO();
	}
	for (int b = 0; b < nb; b++) {
		int j0 = b * KB, n = T - j0 < KB ? T - j0 : KB;
		const float *kb = kt + (int64_t)b * KB * D;
		VF acc[KB][QV];

		if (!live[b])
			continue;
#pragma GCC unroll 32
		for (int jj = 0; jj < KB; jj++)
#pragma GCC unroll 2
			for (int e = 0; e < qv; e++)
				acc[jj][e] = VZERO();
		for (int d = 0; d < D; d++) {
			VF qd[QV];

#pragma GCC unroll 2
			for (int e = 0; e < qv; e++)
				qd[e] = VLD(qt + d * QW + e * W);
#pragma GCC unroll 32
			for (int jj = 0; jj < KB; jj++) {
				VF x = VSET1(kb[d * KB + jj]);

#pragma GCC unroll 2
				for (int e = 0; e < qv; e++)
					acc[jj][e] = VFMA(x, qd[e], acc[jj][e]);
			}
		}
#pragma GCC unroll 32
		for (int jj = 0; jj < KB; jj++) {
			VF mk = VSET1(jj < n ? madd[j0 + jj] : -INFINITY);

#pragma GCC unroll 2
			for (int e = 0; e < qv; e++) {
				VF sc = VFMA(acc[jj][e], vscale, mk);

				m[e] = VMAX(m[e], sc);
				VST(pt + (j0 + jj) * QW + e * W, sc);
			}
		}
	}
	for (int b = 0; b < nb; b++) {
		int j0 = b * KB, n = T - j0 < KB ? T - j0 : KB;

		if (!live[b])
			continue;
		for (int jj = 0; jj < n; jj++)
#pragma GCC unroll 2
			for (int e = 0; e < qv; e++) {
				float *pj = pt + (j0 + jj) * QW + e * W;
				VF p = NAME(vexp)(VSUB(VLD(pj), m[e]));

				l[e] = VADD(l[e], p);
				VST(pj, p);
			}
	}
	{
		int d0 = 0;

		for (; d0 + DC <= D; d0 += DC)
			NAME(pv_cols)(ot, pt, v, ld, live, T, d0, DC, qv);
		for (; d0 < D; d0++)
			NAME(pv_cols)(ot, pt, v, ld, live, T, d0, 1, qv);
	}
	/* c = ot / l, through 1 / l (as the unfused softmax scales by it) */
	for (int e = 0; e < qv; e++)
		l[e] = VDIV(VSET1(1.0f), l[e]);
	for (int d = 0; d < D; d++)
		for (int e = 0; e < qv; e++)
			VST(ot + d * QW + e * W, VMUL(VLD(ot + d * QW + e * W), l[e]));
	NAME(unpack_o)(c + (int64_t)i0 * ldc, ldc, ot, mr, D);
}

/*
 * Short sentences (NAME(head_short)): the keys along the lanes.  A query
 * row's scores against n <= kv W keys are kv registers, so its q is read
 * where it lies (one broadcast per column) and its output row is written
 * where it goes: only k^T is packed, where the tiles above pack q and k
 * and unpack the output, and a short head's work was mostly those
 * transposes.  The softmax is then across the lanes: the row's max and
 * sum by a fixed tree (VHMAX, VHSUM) over the kv registers added in order,
 * and a lane past n scores -inf, so it weighs exactly 0 and adds exactly
 * 0 to the sum; kv depends on n alone, so a sentence gets the same bits
 * alone and in any padded batch (NAME(head) passes its real key count).
 */

/* kt[d][j] = k[j ld + d] for j < n, 0 for j from n to L (kv W). */
static inline void NAME(pack_kt)(float *kt, const float *k, int64_t ld, int n,
				 int D, int L)
{
	for (int j0 = 0; j0 < L; j0 += 8) {
		int nr = n - j0 < 0 ? 0 : n - j0 < 8 ? n - j0 : 8;
		const float *src = k + (int64_t)(nr ? j0 : 0) * ld;

		for (int d = 0; d < D; d += 8) {
			__m256 col[8];

			transpose8(col, src + d, ld, nr);
			for (int e = 0; e < 8; e++)
				_mm256_storeu_ps(kt + (d + e) * L + j0, col[e]);
		}
	}
}

/*
 * Rows i0..i0+R-1 (R a constant of the call) of the scores: p[i][0..kv W)
 * the row's probabilities, unnormalised, and li[i] = 1 / their sum.
 */
static inline __attribute__((always_inline)) void
NAME(short_scores)(float *p, float *li, const float *q, int64_t ld,
		   const float *kt, const float *mk, int D, VF vscale, int i0,
		   int R, int kv)
{
	VF acc[SR][SKV];

#pragma GCC unroll 8
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int v = 0; v < kv; v++)
			acc[r][v] = VZERO();
	for (int d = 0; d < D; d++) {
#pragma GCC unroll 4
		for (int v = 0; v < kv; v++) {
			VF kd = VLD(kt + d * kv * W + v * W);

#pragma GCC unroll 8
			for (int r = 0; r < R; r++)
				acc[r][v] = VFMA(VSET1(q[(int64_t)(i0 + r) * ld + d]),
						 kd, acc[r][v]);
		}
	}
#pragma GCC unroll 8
	for (int r = 0; r < R; r++) {
		float *pr = p + (int64_t)(i0 + r) * kv * W;
		VF mx, sum;
		float m;

#pragma GCC unroll 4
		for (int v = 0; v < kv; v++)
			acc[r][v] = VFMA(acc[r][v], vscale, VLD(mk + v * W));
		mx = acc[r][0];
#pragma GCC unroll 4
		for (int v = 1; v < kv; v++)
			mx = VMAX(mx, acc[r][v]);
		m = VHMAX(mx);
		sum = VZERO();
#pragma GCC unroll 4
		for (int v = 0; v < kv; v++) {
			VF e = NAME(vexp)(VSUB(acc[r][v], VSET1(m)));

			sum = VADD(sum, e);
			VST(pr + v * W, e);
		}
		li[i0 + r] = 1.0f / VHSUM(sum);
	}
}

/*
 * Rows i0..i0+R-1 of c = (p v) li, columns d0..d0+SDC W at a time: the
 * keys in order, so a key of probability 0 adds exactly 0.
 */
static inline __attribute__((always_inline)) void
NAME(short_pv)(float *c, int64_t ldc, const float *p, const float *li,
	       const float *v, int64_t ld, int n, int L, int D, int i0, int R)
{
	for (int d0 = 0; d0 < D; d0 += SDC * W) {
		VF acc[SRV][SDC];

#pragma GCC unroll 8
		for (int r = 0; r < R; r++)
#pragma GCC unroll 4
			for (int e = 0; e < SDC; e++)
				acc[r][e] = VZERO();
		for (int j = 0; j < n; j++) {
			VF vj[SDC];

#pragma GCC unroll 4
			for (int e = 0; e < SDC; e++)
				vj[e] = VLD(v + j * ld + d0 + e * W);
#pragma GCC unroll 8
			for (int r = 0; r < R; r++) {
				VF x = VSET1(p[(int64_t)(i0 + r) * L + j]);

#pragma GCC unroll 4
				for (int e = 0; e < SDC; e++)
					acc[r][e] = VFMA(x, vj[e], acc[r][e]);
			}
		}
#pragma GCC unroll 8
		for (int r = 0; r < R; r++)
#pragma GCC unroll 4
			for (int e = 0; e < SDC; e++)
				VST(c + (int64_t)(i0 + r) * ldc + d0 + e * W,
				    VMUL(acc[r][e], VSET1(li[i0 + r])));
	}
}

/* The scores of every row with kv (a constant of the call) key registers,
 * SR rows at a time while they last (SR * kv accumulators), then one. */
static inline __attribute__((always_inline)) void
NAME(short_all)(float *p, float *li, const float *q, int64_t ld,
		const float *kt, const float *mk, int nq, int D, VF vscale,
		int kv)
{
	int R = SACC / kv < SR ? SACC / kv : SR, i = 0;

	for (; i + R <= nq; i += R)
		NAME(short_scores)(p, li, q, ld, kt, mk, D, vscale, i, R, kv);
	for (; i < nq; i++)
		NAME(short_scores)(p, li, q, ld, kt, mk, D, vscale, i, 1, kv);
}

/*
 * One (b, h) of n keys, n <= SKV W, D a multiple of SDC W: c[nq,D] =
 * softmax(scale q k^T + madd) v, as NAME(head), scratch s of
 * D SKV W + SKV W (nq + 1) + nq floats.
 */
static void NAME(head_short)(float *c, int64_t ldc, const float *q,
			     const float *k, const float *v, int64_t ld,
			     const float *madd, int n, int nq, int D,
			     float scale, float *s)
{
	int kv = (n + W - 1) / W, L = kv * W, i = 0;
	float *kt = s, *mk = kt + (int64_t)D * L, *p = mk + L, *li = p + nq * L;
	VF vscale = VSET1(scale);

	for (int j = 0; j < L; j++)
		mk[j] = j < n ? madd[j] : -INFINITY;
	NAME(pack_kt)(kt, k, ld, n, D, L);
	switch (kv) {
	case 1:
		NAME(short_all)(p, li, q, ld, kt, mk, nq, D, vscale, 1);
		break;
	case 2:
		NAME(short_all)(p, li, q, ld, kt, mk, nq, D, vscale, 2);
		break;
#if SKV > 2
	case 3:
		NAME(short_all)(p, li, q, ld, kt, mk, nq, D, vscale, 3);
		break;
#endif
	}
	for (; i + SRV <= nq; i += SRV)
		NAME(short_pv)(c, ldc, p, li, v, ld, n, L, D, i, SRV);
	for (; i < nq; i++)
		NAME(short_pv)(c, ldc, p, li, v, ld, n, L, D, i, 1);
}

/*
 * One (b, h), as attn_head_c in ops_attn.c but QW query rows at a time:
 * c[T,D] (rows ldc apart) = softmax(scale q k^T + madd) v, q k v rows ld
 * apart.  Per tile of QW queries (NAME(tile)): the scores block by
 * block in registers, stored to pt [T][QW] with the rows' max, their
 * exps and sums, then P V into ot [D][QW].  The tile's q is packed to qt
 * [D][QW], every block's k^T to kt [blocks][D][KB] (zero past T) once
 * per head.  A block whose keys are
 * all masked is skipped (unless every key is: then the row is uniform,
 * as in the unfused softmax); keys past T in the last block score
 * -inf, so they weigh exactly 0 (even in such a row), as padding does.
 */
static void NAME(head)(float *c, int64_t ldc, const float *q, const float *k,
		       const float *v, int64_t ld, const float *madd, int T,
		       int nq, int D, float scale, float *s)
{
	int nb, all = 1, n = 0;
	float *kt, *qt, *pt, *ot;
	unsigned char *live;
	VF vscale = VSET1(scale);

	/* n: the keys up to the last one not masked, the sentence's own; a
	 * row gets the same bits with T = n as with its padding after */
	for (int j = 0; j < T; j++)
		if (madd[j] != -FLT_MAX)
			n = j + 1;
	all = n == 0;
	T = all ? T : n;
	/* the head's rows of q, k and v are 3H floats apart, so each row is
	 * its own cache lines, just written by the q|k|v product and often
	 * out of L2: ask for all of them at once, so that their misses
	 * overlap instead of the packing's loads waiting one by one (short
	 * sentences: longer heads would push their own first rows out of L1) */
	for (int j = 0; T <= 64 && j < T; j++)
		for (int d = 0; d < D; d += 16) {
			_mm_prefetch((const char *)(k + (int64_t)j * ld + d), _MM_HINT_T0);
			_mm_prefetch((const char *)(v + (int64_t)j * ld + d), _MM_HINT_T0);
			if (j < nq)
				_mm_prefetch((const char *)(q + (int64_t)j * ld + d), _MM_HINT_T0);
		}
	if (!all && n <= SKV * W && D % (SDC * W) == 0) {
		NAME(head_short)(c, ldc, q, k, v, ld, madd, n, nq, D, scale, s);
		return;
	}
	nb = (T + KB - 1) / KB;
	kt = s, qt = kt + (int64_t)nb * KB * D, pt = qt + D * QW;
	ot = pt + (int64_t)nb * KB * QW;
	live = (unsigned char *)(ot + D * QW);
	/* block b counts when it has a key not masked, or when none has (a
	 * row whose keys are all masked is uniform) */
	for (int b = 0; b < nb; b++) {
		live[b] = (unsigned char)all;
		for (int j = b * KB; !live[b] && j < T && j < (b + 1) * KB; j++)
			live[b] = madd[j] != -FLT_MAX;
	}
	NAME(pack_k)(kt, k, ld, T, D, nb);
	for (int i0 = 0; i0 < nq; i0 += QW) {
		int mr = nq - i0 < QW ? nq - i0 : QW;

		if (mr > W)
			NAME(tile)(c, ldc, q, v, ld, madd, live, T, D, vscale, kt,
				   qt, pt, ot, i0, mr, QV);
		else
			NAME(tile)(c, ldc, q, v, ld, madd, live, T, D, vscale, kt,
				   qt, pt, ot, i0, mr, 1);
	}
}

#undef VF
#undef W
#undef QV
#undef QW
#undef KB
#undef DC
#undef NAME
#undef VLD
#undef VST
#undef VSET1
#undef VZERO
#undef VFMA
#undef VMUL
#undef VDIV
#undef VADD
#undef VSUB
#undef VMAX
#undef VMIN
#undef VPOW2
#undef VZERO_BELOW
#undef VHMAX
#undef VHSUM
#undef SR
#undef SACC
#undef SKV
#undef SRV
#undef SDC
