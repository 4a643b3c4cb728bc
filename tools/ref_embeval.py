"""Reference implementation of mtl's embedding evaluators (lib/heads/embeval.h)
on random data: exact top-k ranking, the retrieval metrics (MRR@10,
NDCG@10, Recall@1/10/100, MAP@100), Spearman with ties and V-measure.
It writes fixtures/embeval/ref.txt, which tests/test_embeval.c reads and
compares with the C code (figures within 1e-6, rankings exactly).

Usage: /usr/bin/python3 tools/ref_embeval.py [OUT]   (make fixtures-embeval)

Needs numpy only.  Deterministic: numpy RandomState with a fixed seed, and
numbers written with repr, so a rerun gives the same bytes.

The vectors hold multiples of 1/16 in [-1/2, 1/2] and D = 16, so every dot
product is a multiple of 1/256 below 2^8 and exact in float32 however it is
summed: the C side's BLIS scores equal these, and the equal scores that
small integers give test the tie rule (the lower corpus row first).

Metric definitions (as trec_eval/pytrec_eval and MTEB): relevance grades
are integers, > 0 relevant; a query with no relevant document is left out
of the means.  NDCG uses linear gain rel / log2(rank + 1); MAP@100 sums
precision@r over the relevant results at ranks r <= 100 and divides by the
number of relevant documents.
"""

import os
import sys

import numpy as np

SEED = 20261206
NQ, NC, D, K = 24, 300, 16, 100


def ranking(q, c):
    """Corpus rows by score descending, equal scores by row ascending."""
    s = c @ q
    return np.lexsort((np.arange(len(c)), -s)), s


def ir_metrics(order, rels):
    """rels: {doc: grade}; order: the full ranking.  None when no relevant."""
    n_rel = sum(1 for g in rels.values() if g > 0)
    if n_rel == 0:
        return None
    g = np.array([max(rels.get(int(d), 0), 0) for d in order[:100]], float)
    hit = g > 0
    ranks = np.arange(1, len(g) + 1)
    first = np.flatnonzero(hit[:10])
    mrr = 1.0 / (first[0] + 1) if len(first) else 0.0
    disc = 1.0 / np.log2(ranks[:10] + 1)
    dcg = float(np.sum(g[:10] * disc))
    ideal = np.sort(np.array([v for v in rels.values() if v > 0], float))[::-1][:10]
    idcg = float(np.sum(ideal * disc[: len(ideal)]))
    prec = np.cumsum(hit) / ranks
    return {
        "mrr10": mrr,
        "ndcg10": dcg / idcg,
        "recall1": hit[:1].sum() / n_rel,
        "recall10": hit[:10].sum() / n_rel,
        "recall100": hit[:100].sum() / n_rel,
        "map100": float(np.sum(prec[hit])) / n_rel,
    }


def avg_ranks(v):
    order = np.lexsort((np.arange(len(v)), v))
    r = np.empty(len(v))
    a = 0
    while a < len(v):
        b = a + 1
        while b < len(v) and v[order[b]] == v[order[a]]:
            b += 1
        r[order[a:b]] = (a + 1 + b) / 2.0
        a = b
    return r


def pearson(x, y):
    x = x - x.mean()
    y = y - y.mean()
    return float(np.sum(x * y) / np.sqrt(np.sum(x * x) * np.sum(y * y)))


def entropy(counts):
    p = counts[counts > 0] / counts.sum()
    return float(-np.sum(p * np.log(p)))


def vmeasure(gold, clust):
    tab = np.zeros((gold.max() + 1, clust.max() + 1))
    np.add.at(tab, (gold, clust), 1)
    n = len(gold)
    hc, hk = entropy(tab.sum(1)), entropy(tab.sum(0))
    nz = tab > 0
    cs = np.broadcast_to(tab.sum(0), tab.shape)
    rs = np.broadcast_to(tab.sum(1)[:, None], tab.shape)
    hck = float(-np.sum(tab[nz] / n * np.log(tab[nz] / cs[nz])))
    hkc = float(-np.sum(tab[nz] / n * np.log(tab[nz] / rs[nz])))
    h = 1 - hck / hc if hc > 0 else 1.0
    c = 1 - hkc / hk if hk > 0 else 1.0
    return (2 * h * c / (h + c) if h + c > 0 else 0.0), h, c


def rows(f, name, m):
    f.write("%s %d %d\n" % (name, m.shape[0], m.shape[1]))
    for r in m:
        f.write(" ".join(repr(float(x)) for x in r) + "\n")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "fixtures/embeval/ref.txt"
    rng = np.random.RandomState(SEED)
    q = rng.randint(-8, 9, size=(NQ, D)) / 16.0
    c = rng.randint(-8, 9, size=(NC, D)) / 16.0
    c[7] = c[3]  # equal rows: equal scores for every query
    qrels = []
    for i in range(NQ):
        n = 0 if i == 5 else rng.randint(1, 9)  # query 5: nothing relevant
        # about half from the query's own top 30, so the figures are not 0
        near = ranking(q[i], c)[0][:30]
        docs = np.unique(np.concatenate([rng.choice(near, size=n // 2 + n % 2, replace=False),
                                         rng.choice(NC, size=n // 2, replace=False)]))
        if i == 0:
            docs = np.append(docs[docs != 3], 3)  # one row of the tie
        for d in docs:
            qrels.append((i, int(d), int(rng.randint(1, 4))))
    qrels.append((6, 11, 0))  # a judged, non-relevant document

    rels = [dict() for _ in range(NQ)]
    for i, d, g in qrels:
        rels[i][d] = g
    sums, n_q = {}, 0
    tops = []
    for i in range(NQ):
        order, _ = ranking(q[i], c)
        tops.append(order[:K])
        m = ir_metrics(order, rels[i])
        if m is None:
            continue
        n_q += 1
        for k, v in m.items():
            sums[k] = sums.get(k, 0.0) + v
    means = {k: v / n_q for k, v in sums.items()}

    x = np.round(rng.randn(200) * 4) / 4  # ties
    y = np.round((x + rng.randn(200)) * 2) / 2
    rho = pearson(avg_ranks(x), avg_ranks(y))
    r = pearson(x, y)

    gold = rng.randint(0, 5, size=500)
    clust = np.where(rng.rand(500) < 0.6, gold, rng.randint(0, 7, size=500))
    v, h, cc = vmeasure(gold, clust)

    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        f.write("# written by tools/ref_embeval.py (seed %d); do not edit\n" % SEED)
        rows(f, "queries", q)
        rows(f, "corpus", c)
        f.write("qrels %d\n" % len(qrels))
        for i, d, g in qrels:
            f.write("%d %d %d\n" % (i, d, g))
        rows(f, "topk", np.array(tops))
        f.write("retrieval %d %d\n" % (n_q, NQ - n_q))
        for k in ("mrr10", "ndcg10", "recall1", "recall10", "recall100", "map100"):
            f.write("%s %r\n" % (k, means[k]))
        rows(f, "corr", np.stack([x, y]))
        f.write("spearman %r\npearson %r\n" % (rho, r))
        rows(f, "clusters", np.stack([gold, clust]))
        f.write("vmeasure %r %r %r\n" % (v, h, cc))
    print("%s: %d queries scored, spearman %.6f, v-measure %.6f" % (out, n_q, rho, v))


if __name__ == "__main__":
    main()
