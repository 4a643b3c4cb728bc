"""Reference for the embedding task's losses (lib/heads/emb.h): writes
fixtures/golden/emb-loss.safetensors (each loss and its gradient with
respect to the pooled embeddings) and fixtures/golden/emb-train.safetensors
(one loss through fixtures/tiny's encoder: the gradient of every encoder
parameter).

Usage: /usr/bin/python3 tools/ref_emb.py [OUTDIR]   (default: fixtures;
OUTDIR/tiny must exist: tools/make_fixtures.py writes it first)

The losses follow sentence-transformers (v3) line by line:
MultipleNegativesRankingLoss, MultipleNegativesSymmetricRankingLoss,
CoSENTLoss, CosineSimilarityLoss and MatryoshkaLoss, over cosine
similarity (util.cos_sim: rows normalised with F.normalize).  Deterministic
(fixed seeds, one thread, float32 like the C code); every golden is also
computed in float64 and the largest float32 - float64 difference printed.
The losses alone are stored from the float64 run (lib/heads/emb.c sums in
double); the encoder's gradients from the float32 run.
"""

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402
import ref_bert as rb  # noqa: E402
import safetensors_io as sio  # noqa: E402

SEED = 2468
H = 16

# Rows of the pooled matrix: anchors 0-4, their positives (or pair
# texts) 5-9, hard negatives 10-12 for anchors 0, 2 and 3.
ANCHORS = [0, 1, 2, 3, 4]
POSITIVES = [5, 6, 7, 8, 9]
NEGATIVES = [10, -1, 11, 12, -1]
# Gold scores with a tie (rows 1 and 4), as STS data has.
SCORES = [0.9, 0.2, 0.55, 0.0, 0.2]

# name -> (loss, symmetric, negatives, matryoshka dims, weights)
CASES = {
    "mnrl": ("mnrl", False, False, None, None),
    "mnrl_sym": ("mnrl", True, False, None, None),
    "mnrl_neg": ("mnrl", False, True, None, None),
    "mnrl_sym_neg": ("mnrl", True, True, None, None),
    "cosent": ("cosent", False, False, None, None),
    "cosine_mse": ("cosine_mse", False, False, None, None),
    "mnrl_neg_matryoshka": ("mnrl", False, True, [16, 8, 4], [1.0, 0.5, 0.25]),
    "cosent_matryoshka": ("cosent", False, False, [16, 8, 4], [1.0, 1.0, 1.0]),
}
SCALE = 20.0


def cos_sim(a, b):
    return F.normalize(a, p=2, dim=1) @ F.normalize(b, p=2, dim=1).T


def mnrl(emb, a, p, g, symmetric):
    """MultipleNegatives(Symmetric)RankingLoss: candidates are the
    positives, then the hard negatives given."""
    anchor = emb[a]
    cand = torch.cat([emb[p]] + ([emb[[x for x in g if x >= 0]]] if g else []))
    scores = cos_sim(anchor, cand) * SCALE
    labels = torch.arange(len(a))
    fwd = F.cross_entropy(scores, labels)
    if not symmetric:
        return fwd
    bwd = F.cross_entropy(scores[:, :len(a)].T, labels)
    return (fwd + bwd) / 2


def cosent(emb, a, p, y):
    scores = F.cosine_similarity(emb[a], emb[p]) * SCALE
    scores = scores[:, None] - scores[None, :]
    labels = y[:, None] < y[None, :]
    labels = labels.to(scores.dtype)
    scores = scores - (1 - labels) * 1e12
    scores = torch.cat((torch.zeros(1, dtype=scores.dtype), scores.view(-1)), dim=0)
    return torch.logsumexp(scores, dim=0)


def cosine_mse(emb, a, p, y):
    return F.mse_loss(torch.cosine_similarity(emb[a], emb[p]), y)


def case_loss(name, emb, y):
    loss, sym, neg, dims, weights = CASES[name]

    def base(e):
        if loss == "mnrl":
            return mnrl(e, ANCHORS, POSITIVES, NEGATIVES if neg else None, sym)
        if loss == "cosent":
            return cosent(e, ANCHORS, POSITIVES, y)
        return cosine_mse(e, ANCHORS, POSITIVES, y)

    if dims is None:
        return base(emb)
    # MatryoshkaLoss: the base loss on each truncation, weighted
    return sum(w * base(emb[:, :d]) for d, w in zip(dims, weights))


def loss_goldens(P, dtype):
    out = {}
    y = torch.tensor(SCORES, dtype=dtype)
    for name in CASES:
        emb = torch.tensor(P, dtype=dtype, requires_grad=True)
        L = case_loss(name, emb, y)
        L.backward()
        out["loss." + name] = L.detach().reshape(1)
        out["grad." + name] = emb.grad.detach()
    return out


# Through the encoder: anchors, positives and two hard negatives of the
# tiny vocabulary, padded to one width as mtl-batch pads them.
TEXTS = ["bank profits fell", "john played in london", "the new phones",
         "alice smith won in paris",
         "bank prices fell", "john played in paris", "new phones", "alice won",
         "the cat sat", "stock prices rose today"]
TRAIN_A, TRAIN_P, TRAIN_G = [0, 1, 2, 3], [4, 5, 6, 7], [8, -1, -1, 9]
TRAIN_DIMS, TRAIN_WEIGHTS = [32, 16, 8], [1.0, 0.5, 0.5]


def train_goldens(bert, ids, mask, dtype):
    cfg = rb.BertConfig(**dict(bert.config.to_dict(), hidden_dropout_prob=0.0,
                               attention_probs_dropout_prob=0.0))
    m = rb.BertModel(cfg)
    m.load_state_dict(bert.state_dict())
    m = m.to(dtype)
    ids_t = torch.from_numpy(ids.astype(np.int64))
    mask_t = torch.from_numpy(mask.astype(np.int64))
    last, _ = m(ids_t, mask_t, torch.zeros_like(ids_t))
    pooled = rb.pool(last, mask_t, "cls")
    pooled.retain_grad()

    def base(e):
        return mnrl(e, TRAIN_A, TRAIN_P, TRAIN_G, True)

    L = sum(w * base(pooled[:, :d]) for d, w in zip(TRAIN_DIMS, TRAIN_WEIGHTS))
    L.backward()
    out = {"loss": L.detach().reshape(1), "pooled": pooled.detach(),
           "grad.pooled": pooled.grad.detach()}
    for n, p in m.named_parameters():
        out["grad." + n] = torch.zeros_like(p) if p.grad is None else p.grad.detach()
    return out


def add_goldens(tensors, g32, g64, keep):
    """Stores the goldens of the run keep (g32 or g64) as float32 into
    tensors; returns the largest float32 - float64 difference."""
    worst = 0.0
    for n in keep:
        tensors[n] = mf.np32(keep[n])
        worst = max(worst, float((g32[n].double() - g64[n]).abs().max()))
    return worst


def main(argv):
    out = argv[1] if len(argv) > 1 else "fixtures"
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    gold = os.path.join(out, "golden")
    meta = {"generator": "tools/ref_emb.py", "torch": torch.__version__.split("+")[0],
            "numpy": np.__version__, "compute_dtype": "float32",
            "scale": repr(SCALE), "similarity": "cosine (F.normalize, eps 1e-12)"}

    rng = np.random.RandomState(SEED)
    P = rng.standard_normal((13, H)).astype(np.float32)
    P[5:10] += 0.3 * P[0:5]  # positives lean towards their anchors
    g32 = loss_goldens(P, torch.float32)
    g64 = loss_goldens(P, torch.float64)
    tensors = {"pooled": P,
               "anchors": np.array(ANCHORS, np.int32),
               "positives": np.array(POSITIVES, np.int32),
               "negatives": np.array(NEGATIVES, np.int32),
               "scores": np.array(SCORES, np.float32)}
    # lib/heads/emb.c sums in double: its reference is the float64 run, rounded
    worst = add_goldens(tensors, g32, g64, g64)
    cases = " ".join("%s=%s/sym=%s/neg=%s/dims=%s/w=%s" % ((k,) + tuple(
        str(x).replace(" ", "") for x in v)) for k, v in CASES.items())
    sio.write(os.path.join(gold, "emb-loss.safetensors"), tensors,
              dict(meta, cases=cases, compute_dtype="float64, stored as float32"))
    print("emb-loss: max |f32 - f64| %.3g" % worst)

    vocab = [line.rstrip("\n") for line in
             open(os.path.join(out, "tiny", "vocab.txt"), encoding="utf-8")]
    ids, mask, _, _ = mf.build_batch([([t], None) for t in TEXTS], vocab, 8)
    bert = rb.load_bert(os.path.join(out, "tiny"))
    g32 = train_goldens(bert, ids, mask, torch.float32)
    g64 = train_goldens(bert, ids, mask, torch.float64)
    tensors = {"input_ids": ids, "attention_mask": mask,
               "anchors": np.array(TRAIN_A, np.int32),
               "positives": np.array(TRAIN_P, np.int32),
               "negatives": np.array(TRAIN_G, np.int32),
               "matryoshka_dims": np.array(TRAIN_DIMS, np.int32),
               "matryoshka_weights": np.array(TRAIN_WEIGHTS, np.float32)}
    worst = add_goldens(tensors, g32, g64, g32)
    sio.write(os.path.join(gold, "emb-train.safetensors"), tensors,
              dict(meta, model="fixtures/tiny", pooling="cls", dropout="0",
                   loss="symmetric MNRL with hard negatives, Matryoshka over dims",
                   texts=" | ".join(TEXTS)))
    print("emb-train: max |f32 - f64| %.3g" % worst)


if __name__ == "__main__":
    main(sys.argv)
