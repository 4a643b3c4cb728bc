"""Writes mtl's test fixtures: a tiny BERT model directory in three storage
dtypes and golden tensors from the reference (tools/ref_bert.py).

Usage: /usr/bin/python3 tools/make_fixtures.py [OUTDIR]   (default: fixtures)

Deterministic: weights come from numpy RandomState with fixed seeds, torch
runs single-threaded, files are written with sorted keys and no timestamps,
so a rerun on the same numpy/torch gives byte-identical files.  Every golden
is computed in float32 (as the C code computes) and the script also reruns
each computation in float64 and prints how far float32 is from it.

docs/reference.md describes every file and tensor.
"""

import json
import os
import string
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_bert as rb  # noqa: E402
import safetensors_io as sio  # noqa: E402

FIXTURE_VERSION = "1"
SEED_MODEL = 1234
SEED_HEADS = 5678

TINY_CONFIG = {
    "architectures": ["BertModel"],
    "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 32,
    "initializer_range": 0.02,
    "intermediate_size": 64,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 64,
    "model_type": "bert",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "type_vocab_size": 2,
    "vocab_size": None,  # filled in from the vocabulary
}

TASKS = {"tasks": [
    {"name": "topic", "kind": "sequence", "labels": ["business", "sports", "tech"],
     "weight": 1.0, "head": {"hidden": 16, "activation": "tanh", "dropout": 0.1}},
    {"name": "ner", "kind": "token", "labels": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],
     "weight": 0.5, "head": {"dropout": 0.1}},
]}

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

WORDS = """
the of and to in is it that was for on are with as his they be at one have
this from or had by but not what all were we when your can said there use an
each which she do how their if will up other about out many then them these
so some her would make like him into time has look two more write go see
number no way could people my than first water been call who now find long
down day did get come made may part new market stock stocks team game play
win won score player company bank price prices share profit chip phone
software computer data cloud model city london paris berlin john mary smith
alice bob york match goal season league tech business sports report year week
today fell rose sat cat dog house school world life hand place work
country government night home money question story fact month lot right
study book eye job word business issue side kind head service friend power
hour game line end member law car minister news
""".split()

SUFFIXES = """s es ed ing ly er ers est tion ment ness able ful less ity ize al
ous ive ist ism an en y""".split()


def make_vocab():
    """[PAD] [UNK] [CLS] [SEP] [MASK], single characters, their ## forms,
    words, ##suffixes; no duplicates, fixed order."""
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    entries = SPECIALS + chars
    entries += ["##" + c for c in string.ascii_lowercase + string.digits]
    entries += [w for w in WORDS if w not in chars]
    entries += ["##" + s for s in SUFFIXES if "##" + s not in entries]
    seen = set()
    out = []
    for e in entries:
        if e not in seen:
            seen.add(e)
            out.append(e)
    return out


def wordpiece(text, vocab):
    """Just enough of BERT's uncased tokenizer to build the fixture batches
    from readable text: lowercase, split on spaces and punctuation, greedy
    longest-match WordPiece with "##" continuations, [UNK] for a word that
    does not split.  Only used on the plain ASCII sentences below."""
    index = {t: i for i, t in enumerate(vocab)}
    words = []
    for w in text.lower().split():
        cur = ""
        for ch in w:
            if ch in string.punctuation:
                if cur:
                    words.append(cur)
                words.append(ch)
                cur = ""
            else:
                cur += ch
        if cur:
            words.append(cur)
    pieces = []  # (token id, is first piece of a word)
    for w in words:
        start, sub = 0, []
        while start < len(w):
            end = len(w)
            while end > start:
                cand = w[start:end] if start == 0 else "##" + w[start:end]
                if cand in index:
                    break
                end -= 1
            if end == start:
                sub = [index["[UNK]"]]
                break
            sub.append(index[cand])
            start = end
        pieces += [(t, j == 0) for j, t in enumerate(sub)]
    return pieces


def build_batch(rows, vocab, T):
    """rows: list of (segments, word labels or None).  segments: one or two
    texts; labels: one label per word (first-piece) or None.  Returns
    input_ids, attention_mask, token_type_ids and token labels [B, T] with
    -100 on specials, continuation pieces, padding and unlabelled rows."""
    idx = {t: i for i, t in enumerate(vocab)}
    B = len(rows)
    ids = np.zeros((B, T), np.int32)
    mask = np.zeros((B, T), np.int32)
    types = np.zeros((B, T), np.int32)
    labels = np.full((B, T), rb.IGNORE_INDEX, np.int32)
    for b, (segments, word_labels) in enumerate(rows):
        toks = [(idx["[CLS]"], 0, False)]
        for s, text in enumerate(segments):
            toks += [(t, s, first) for t, first in wordpiece(text, vocab)]
            toks.append((idx["[SEP]"], s, False))
        if len(toks) > T:
            raise ValueError("row %d: %d tokens > %d" % (b, len(toks), T))
        w = 0
        for t, (tid, typ, first) in enumerate(toks):
            ids[b, t], mask[b, t], types[b, t] = tid, 1, typ
            if first:
                if word_labels is not None:
                    labels[b, t] = word_labels[w]
                w += 1
        if word_labels is not None and w != len(word_labels):
            raise ValueError("row %d: %d words but %d labels" % (b, w, len(word_labels)))
    return ids, mask, types, labels


# Encode batch: B=3, T=10; a full row, a short row, a sentence pair.
ENCODE_ROWS = [
    (["the company said stock prices rose today"], None),
    (["alice won"], None),
    (["who won ?", "the team won ."], None),
]

# Training batch: B=4, T=10; topic only, NER only, both, neither.
NER = {"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3, "I-LOC": 4}
TRAIN_ROWS = [
    (["bank profits fell"], None, 0),
    (["john played in london"], ["B-PER", "O", "O", "B-LOC"], None),
    (["alice smith won in paris"], ["B-PER", "I-PER", "O", "O", "B-LOC"], 1),
    (["the new phones"], None, None),
]

# Edge case: no token in the batch has an NER label, so loss.ner must be 0
# (not NaN) and the NER head's gradients exactly 0.
NOLABEL_ROWS = [
    (["stock prices rose"], None, 2),
    (["who won ?"], None, None),
]

# Multilabel golden (train-multilabel.safetensors): the training batch with
# a third task, "tags", a multilabel head (sigmoid + binary cross-entropy)
# of its own initial weights; the last row is not labelled for it.
SEED_MULTILABEL = 9101
MULTILABEL_TASK = {"name": "tags", "kind": "multilabel", "labels": ["money", "person", "place"],
                   "weight": 0.7, "threshold": 0.5, "head": {"hidden": 0, "dropout": 0.1}}
MULTILABEL_ROWS = [[1, 0, 0], [0, 1, 1], [0, 1, 1], None]

# Regression golden (train-regression.safetensors): the training batch with
# a regression task "score" (a hidden layer, mean pooling, weight 1.5);
# row 2 has no target (NaN in the reference, -100 in mtl's label slot).
SEED_REGRESSION = 9102
REGRESSION_TASK = {"name": "score", "kind": "regression", "weight": 1.5,
                   "head": {"hidden": 8, "activation": "relu", "dropout": 0.1,
                            "pooling": "mean"}}
REGRESSION_ROWS = [0.25, -1.5, None, 3.0]

# Pair golden (train-pair.safetensors): a batch of text pairs, [CLS] a
# [SEP] b [SEP] with token type ids 0 then 1, for a pair task "nli" beside
# topic and ner (which label none of these rows); row 2 has no nli label.
# The type ids reach token_type_embeddings, whose row 1 gets a gradient.
SEED_PAIR = 9103
PAIR_TASK = {"name": "nli", "kind": "pair", "labels": ["entail", "neutral", "contradict"],
             "weight": 0.8, "head": {"hidden": 0, "dropout": 0.1}}
PAIR_ROWS = [
    (["bank profits fell", "stock prices fell"], 0),
    (["john played in london", "alice won"], 2),
    (["who won ?", "the team won ."], None),
    (["alice smith won in paris", "the new phones"], 1),
]

TRAIN_SETTINGS = {
    "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01,
}


def np32(t):
    return t.detach().cpu().numpy().astype(np.float32)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


def write_model_dir(d, vocab, state, dtype, prefix=""):
    os.makedirs(d, exist_ok=True)
    cfg = dict(TINY_CONFIG, vocab_size=len(vocab))
    write_json(os.path.join(d, "config.json"), dict(sorted(cfg.items())))
    with open(os.path.join(d, "vocab.txt"), "w") as f:
        f.write("".join(t + "\n" for t in vocab))
    sio.write(os.path.join(d, "model.safetensors"),
              {prefix + n: (a, dtype) for n, a in state.items()},
              {"format": "pt"})


def write_sentence_transformers_files(d):
    write_json(os.path.join(d, "tokenizer_config.json"), {
        "cls_token": "[CLS]", "do_basic_tokenize": True, "do_lower_case": True,
        "mask_token": "[MASK]", "model_max_length": 64, "never_split": None,
        "pad_token": "[PAD]", "sep_token": "[SEP]", "strip_accents": None,
        "tokenize_chinese_chars": True, "tokenizer_class": "BertTokenizer",
        "unk_token": "[UNK]"})
    write_json(os.path.join(d, "special_tokens_map.json"), {
        "cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]",
        "sep_token": "[SEP]", "unk_token": "[UNK]"})
    write_json(os.path.join(d, "modules.json"), [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    os.makedirs(os.path.join(d, "1_Pooling"), exist_ok=True)
    write_json(os.path.join(d, "1_Pooling", "config.json"), {
        "word_embedding_dimension": TINY_CONFIG["hidden_size"],
        "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False,
        "include_prompt": True})
    write_json(os.path.join(d, "sentence_bert_config.json"),
               {"max_seq_length": 64, "do_lower_case": True})
    write_json(os.path.join(d, "tasks.json"), TASKS)


# --------------------------------------------------------------------------
# Accuracy bookkeeping: float32 goldens against a float64 rerun.


class Accuracy:
    def __init__(self):
        self.rows = []

    def add(self, file, name, a32, a64):
        a32 = np.asarray(a32, np.float64)
        a64 = np.asarray(a64, np.float64)
        diff = np.abs(a32 - a64)
        scale = np.abs(a64).max()
        if scale < 1e-12:
            # Analytically zero (the key bias gradient: softmax ignores a
            # per-query constant) or unused (pooler gradient); float32 holds
            # rounding noise only.
            self.rows.append((file, name, diff.max(), None, None))
            return
        # Element-wise relative error, ignoring elements far below the
        # tensor's scale (cancellation there is not a float32 defect).
        big = np.abs(a64) >= 1e-3 * scale
        rel_elem = (diff[big] / np.abs(a64[big])).max()
        self.rows.append((file, name, diff.max(), diff.max() / scale, rel_elem))

    def report(self, out):
        out.write("float32 goldens vs float64 rerun: worst per file of\n"
                  "  tensor-rel = max|f32-f64| / max|f64| over the tensor,\n"
                  "  elem-rel = max |f32-f64|/|f64| over elements with |f64| >= 1e-3 max|f64|\n")
        files = []
        for r in self.rows:
            if r[0] not in files:
                files.append(r[0])
        def group(name):
            g = name.split(".")[0]
            return g if g in ("grad", "after", "loss", "logits") else "forward"

        for f in files:
            for g in ("forward", "logits", "loss", "grad", "after"):
                rows = [r for r in self.rows
                        if r[0] == f and r[3] is not None and group(r[1]) == g]
                if not rows:
                    continue
                rt = max(rows, key=lambda r: r[3])
                re = max(rows, key=lambda r: r[4])
                ab = max(rows, key=lambda r: r[2])
                out.write("  %-25s %-7s abs %.1e  tensor-rel %.1e (%s)  elem-rel %.1e (%s)\n"
                          % (f, g, ab[2], rt[3], rt[1], re[4], re[1]))
            zero = [r for r in self.rows if r[0] == f and r[3] is None]
            if zero:
                z = max(zero, key=lambda r: r[2])
                out.write("  %-25s %d analytically zero tensors: float32 max abs %.2e (%s)\n"
                          % ("", len(zero), z[2], z[1]))


# --------------------------------------------------------------------------
# Goldens


def encode_goldens(model, ids, mask, types):
    """Every tensor of encode*.safetensors for model (any float dtype)."""
    ids_t = torch.from_numpy(ids.astype(np.int64))
    mask_t = torch.from_numpy(mask.astype(np.int64))
    types_t = torch.from_numpy(types.astype(np.int64))
    rec = {}
    with torch.no_grad():
        last, pooler = model(ids_t, mask_t, types_t, record=rec)
        out = dict(rec)
        out["last_hidden_state"] = last
        out["pooler_output"] = pooler
        out["pooled_cls"] = rb.pool(last, mask_t, "cls")
        for mode in ("cls", "mean", "max"):
            out["embedding_" + mode] = rb.l2_normalize(rb.pool(last, mask_t, mode))
    return out


def write_encode(path, model32, ids, mask, types, meta, acc):
    g32 = encode_goldens(model32, ids, mask, types)
    g64 = encode_goldens(model32.to(torch.float64), ids, mask, types)
    model32.to(torch.float32)
    tensors = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    for n in g32:
        tensors[n] = np32(g32[n])
        acc.add(os.path.basename(path), n, g32[n].numpy(), g64[n].numpy())
    sio.write(path, tensors, meta)


def train_step(bert, specs, pooling, head_init, ids, mask, types, labels, smoothing,
               dtype, do_step):
    """One forward/backward (and optionally one AdamW step) of the
    multi-task model in dtype.  Returns a dict of golden tensors (torch)."""
    # A fresh copy with every dropout p = 0: the step must not touch the
    # caller's model, and the golden must be deterministic.
    cfg = rb.BertConfig(**dict(bert.config.to_dict(), hidden_dropout_prob=0.0,
                               attention_probs_dropout_prob=0.0))
    copy = rb.BertModel(cfg)
    copy.load_state_dict(bert.state_dict())
    mt = rb.MultiTaskModel(copy, specs, pooling)
    with torch.no_grad():
        for n, p in mt.head_state().items():
            p.copy_(torch.from_numpy(head_init[n]))
    mt = mt.to(dtype)
    mt.train()  # dropout modules are active but p = 0
    assert all(m.p == 0.0 for m in mt.modules() if isinstance(m, torch.nn.Dropout))
    ids_t = torch.from_numpy(ids.astype(np.int64))
    mask_t = torch.from_numpy(mask.astype(np.int64))
    types_t = torch.from_numpy(types.astype(np.int64))
    lab = {k: torch.from_numpy(v if v.dtype == np.float32 else v.astype(np.int64))
           for k, v in labels.items()}
    logits = mt(ids_t, mask_t, types_t)
    total, losses = rb.multitask_loss(logits, lab, specs, smoothing)

    # Cross-check the explicit losses against torch's CrossEntropyLoss and
    # BCEWithLogitsLoss.
    for s in specs:
        if s.kind == "regression":
            keep = ~torch.isnan(lab[s.name])
            want = torch.nn.functional.mse_loss(logits[s.name][keep, 0],
                                                lab[s.name][keep].to(dtype))
            assert torch.allclose(want, losses[s.name], rtol=1e-6, atol=0), s.name
            continue
        if s.kind == "multilabel":
            keep = (lab[s.name] != rb.IGNORE_INDEX).all(dim=1)
            want = torch.nn.functional.binary_cross_entropy_with_logits(
                logits[s.name][keep], lab[s.name][keep].to(dtype))
            assert torch.allclose(want, losses[s.name], rtol=1e-6, atol=0), s.name
            continue
        lg = logits[s.name].reshape(-1, len(s.labels))
        lb = lab[s.name].reshape(-1)
        if (lb != rb.IGNORE_INDEX).any():
            want = torch.nn.functional.cross_entropy(
                lg, lb, ignore_index=rb.IGNORE_INDEX, label_smoothing=smoothing)
            assert torch.allclose(want, losses[s.name], rtol=1e-6, atol=0), s.name

    params = [("enc." + n, p) for n, p in mt.bert.named_parameters()]
    params += [("head." + n, p) for n, p in mt.head_state().items()]
    for _, p in params:
        p.grad = None
    total.backward()
    out = {"logits." + s.name: logits[s.name] for s in specs}
    for s in specs:
        out["loss." + s.name] = losses[s.name].reshape(1)
    out["loss.total"] = total.reshape(1)
    for n, p in params:
        # Parameters the loss does not reach (the pooler, the head of a task
        # without labels) keep .grad None, and AdamW skips them (no weight
        # decay either); their golden gradient is zero.
        g = torch.zeros_like(p) if p.grad is None else p.grad
        out["grad." + n.split(".", 1)[1]] = g.detach().clone()
    if do_step:
        s = TRAIN_SETTINGS
        opt = rb.make_adamw([(n.split(".", 1)[1], p) for n, p in params],
                            lr=s["lr"], betas=(s["beta1"], s["beta2"]),
                            eps=s["eps"], weight_decay=s["weight_decay"])
        before = {n: p.detach().clone() for n, p in params}
        opt.step()
        for n, p in params:
            out["after." + n.split(".", 1)[1]] = p.detach().clone()
        check_adamw(params, before, out)
    return {k: v.detach() for k, v in out.items()}


def check_adamw(params, before, out):
    """Recomputes the first AdamW step by formula (float64) and compares."""
    s = TRAIN_SETTINGS
    for n, p in params:
        name = n.split(".", 1)[1]
        g = out["grad." + name].double()
        w = before[n].double()
        if p.grad is None:  # skipped by AdamW: unchanged
            assert torch.equal(out["after." + name], before[n]), name
            continue
        wd = 0.0 if rb.no_decay(name) else s["weight_decay"]
        w = w * (1 - s["lr"] * wd)
        m = (1 - s["beta1"]) * g
        v = (1 - s["beta2"]) * g * g
        mhat = m / (1 - s["beta1"])
        denom = (v / (1 - s["beta2"])).sqrt() + s["eps"]
        want = w - s["lr"] * mhat / denom
        got = out["after." + name].double()
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-7), name


def train_goldens(path, bert32, head_init, batch, smoothing, do_step, meta, acc,
                  tasks=TASKS, extra=None):
    """extra: more tensors for the file (a new head's initial weights)."""
    ids, mask, types, labels = batch
    specs = [rb.TaskSpec(dict(t, head=dict(t["head"], dropout=0.0))) for t in tasks["tasks"]]
    g32 = train_step(bert32, specs, "cls", head_init, ids, mask, types, labels,
                     smoothing, torch.float32, do_step)
    g64 = train_step(bert32, specs, "cls", head_init, ids, mask, types, labels,
                     smoothing, torch.float64, do_step)
    tensors = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    tensors.update({"labels." + k: v for k, v in labels.items()})
    tensors.update(extra or {})
    for n in g32:
        tensors[n] = np32(g32[n])
        acc.add(os.path.basename(path), n, g32[n].numpy(), g64[n].numpy())
    sio.write(path, tensors, meta)


def write_embed_jsonl(path, model, ids, mask, types):
    """The single-segment rows of the encode batch as JSON lines, each with
    its token ids and reference sentence embeddings, for the command-line
    tests (mtl-score), which read JSON rather than safetensors."""
    g = encode_goldens(model, ids, mask, types)
    with open(path, "w") as f:
        for b, (segments, _) in enumerate(ENCODE_ROWS):
            if len(segments) != 1:
                continue
            n = int(mask[b].sum())
            rec = {"text": segments[0], "ids": [int(x) for x in ids[b, :n]]}
            for mode in ("cls", "mean", "max"):
                rec["embedding_" + mode] = [float(repr_f32(x)) for x in g["embedding_" + mode][b].numpy()]
            f.write(json.dumps(rec) + "\n")


def row_word_ids(text, vocab):
    """The word of each token of a one-sentence row, -1 on [CLS] and [SEP]."""
    word_ids, w = [-1], -1
    for tid, first in wordpiece(text, vocab):
        w += first
        word_ids.append(w)
    return word_ids + [-1]


def first_pieces(word_ids):
    """The positions of each word's first piece (where its label is)."""
    return [i for i in range(len(word_ids))
            if word_ids[i] >= 0 and word_ids[i] != word_ids[i - 1]]


def write_predict_jsonl(out, bert, head_init, vocab):
    """The training rows as an examples stream in JSON lines (for
    mtl-dump --pack) and, beside it, the reference's predictions for them
    with fixtures/tiny's heads (eval mode): the argmax label per sequence
    and per word (its first piece), gold labels, and label probabilities.
    The command-line tests compare mtl-score with these."""
    specs = rb.read_tasks(os.path.join(out, "tiny", "tasks.json"))
    mt = rb.MultiTaskModel(bert, specs).eval()
    with torch.no_grad():
        for n, p in mt.head_state().items():
            p.copy_(torch.from_numpy(head_init[n]))
    rows = [(r[0], None if r[1] is None else [NER[x] for x in r[1]]) for r in TRAIN_ROWS]
    ids, mask, types, ner = build_batch(rows, vocab, 10)
    with torch.no_grad():
        logits = mt(torch.from_numpy(ids.astype(np.int64)),
                    torch.from_numpy(mask.astype(np.int64)))
    topic_labels = TASKS["tasks"][0]["labels"]
    ner_labels = TASKS["tasks"][1]["labels"]
    gold = os.path.join(out, "golden")
    with open(os.path.join(gold, "predict-examples.jsonl"), "w") as fe, \
            open(os.path.join(gold, "predict-expect.jsonl"), "w") as fx:
        hdr = {"type": "header", "stream": "examples", "version": [1, 0],
               "tasks": [{"name": t["name"], "kind": t["kind"], "labels": t["labels"]}
                         for t in TASKS["tasks"]]}
        fe.write(json.dumps(hdr) + "\n")
        for b, r in enumerate(TRAIN_ROWS):
            n = int(mask[b].sum())
            word_ids = row_word_ids(r[0][0], vocab)
            assert len(word_ids) == n
            labels = {}
            if r[2] is not None:
                labels["topic"] = r[2]
            if r[1] is not None:
                labels["ner"] = [int(x) for x in ner[b, :n]]
            ex = {"type": "example", "id": "r%d" % b, "text": r[0][0],
                  "ids": [int(x) for x in ids[b, :n]], "word_ids": word_ids, "labels": labels}
            fe.write(json.dumps(ex) + "\n")
            tp = torch.softmax(logits["topic"][b], -1).numpy()
            firsts = first_pieces(word_ids)
            npred = [ner_labels[int(torch.argmax(logits["ner"][b, i]))] for i in firsts]
            ngold = None if r[1] is None else list(r[1])
            exp = {"id": "r%d" % b,
                   "topic_pred": topic_labels[int(np.argmax(tp))],
                   "topic_gold": None if r[2] is None else topic_labels[r[2]],
                   "topic_probs": [float(repr_f32(x)) for x in tp],
                   "ner_pred": npred, "ner_gold": ngold}
            fx.write(json.dumps(exp) + "\n")


# The export fixture (fixtures/export/: tasks.json and heads.safetensors over
# fixtures/tiny's encoder): one head of each kind mtl-export maps, and two
# it refuses.  topic and ner keep the predict stream's labels.
SEED_EXPORT = 4321
EXPORT_TASKS = {"tasks": [
    {"name": "topic", "kind": "sequence", "labels": ["business", "sports", "tech"],
     "weight": 1.0, "head": {"hidden": 0, "activation": "gelu", "dropout": 0.1}},
    {"name": "intent", "kind": "sequence", "labels": ["ask", "tell"],
     "weight": 1.0, "head": {"hidden": TINY_CONFIG["hidden_size"], "activation": "tanh",
                             "dropout": 0.1}},
    {"name": "ner", "kind": "token", "labels": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],
     "weight": 1.0, "head": {"hidden": 0, "activation": "gelu", "dropout": 0.1}},
    {"name": "mood", "kind": "sequence", "labels": ["bad", "good"],
     "weight": 1.0, "head": {"hidden": 0, "activation": "gelu", "dropout": 0.1,
                             "pooling": "mean"}},
    {"name": "chunk", "kind": "token", "labels": ["B-NP", "I-NP", "O"],
     "weight": 1.0, "head": {"hidden": 8, "activation": "gelu", "dropout": 0.1}},
]}
EXPORTED = ("topic", "intent", "ner")
POOL_SHIFT = 24  # the identity pooler of a linear sequence head: 2^-24 I


def export_dir(d, spec, bert_state, heads, vocab):
    """What mtl-export writes for one task (lib/model/export.h), written here
    from the mapping's definition: config.json and model.safetensors."""
    H = TINY_CONFIG["hidden_size"]
    st = {"bert." + n: a for n, a in bert_state.items()
          if spec.kind == "sequence" or not n.startswith("pooler.")}
    w, b = heads[spec.name + ".out.weight"], heads[spec.name + ".out.bias"]
    if spec.kind == "sequence" and spec.hidden:
        st["bert.pooler.dense.weight"] = heads[spec.name + ".dense.weight"]
        st["bert.pooler.dense.bias"] = heads[spec.name + ".dense.bias"]
    elif spec.kind == "sequence":
        st["bert.pooler.dense.weight"] = np.ldexp(np.eye(H, dtype=np.float32), -POOL_SHIFT)
        st["bert.pooler.dense.bias"] = np.zeros(H, np.float32)
        w = np.ldexp(w, POOL_SHIFT).astype(np.float32)
    st["classifier.weight"], st["classifier.bias"] = w, b
    cfg = dict(TINY_CONFIG, vocab_size=len(vocab), torch_dtype="float32",
               num_labels=len(spec.labels), classifier_dropout=spec.dropout,
               id2label={str(i): l for i, l in enumerate(spec.labels)},
               label2id={l: i for i, l in enumerate(spec.labels)})
    cfg["architectures"] = ["BertForSequenceClassification" if spec.kind == "sequence"
                            else "BertForTokenClassification"]
    if spec.kind == "sequence":
        cfg["problem_type"] = "single_label_classification"
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    sio.write(os.path.join(d, "model.safetensors"), st, {"format": "pt"})


def write_export(out, bert, vocab):
    """fixtures/export/ (an mtl model's tasks and heads), the directories
    mtl-export must write for its mappable tasks (golden/export-TASK/), and
    the probabilities the Hugging Face classifiers give when loaded from
    them (golden/export-expect.jsonl), checked here against mtl's heads."""
    d = os.path.join(out, "export")
    os.makedirs(d, exist_ok=True)
    write_json(os.path.join(d, "tasks.json"), EXPORT_TASKS)
    specs = rb.read_tasks(os.path.join(d, "tasks.json"))
    mt = rb.MultiTaskModel(bert, specs).eval()
    rb.init_heads(mt, np.random.RandomState(SEED_EXPORT), std=0.5, bias_noise=0.1)
    heads = {n: np32(p) for n, p in mt.head_state().items()}
    sio.write(os.path.join(d, "heads.safetensors"), heads, {"format": "pt"})
    state = {n: np32(p) for n, p in bert.state_dict().items()}
    rows = [(r[0], None) for r in TRAIN_ROWS]
    ids, mask, types, _ = build_batch(rows, vocab, 10)
    ids_t, mask_t = torch.from_numpy(ids.astype(np.int64)), torch.from_numpy(mask.astype(np.int64))
    with torch.no_grad():
        mtl_logits = mt(ids_t, mask_t)
    probs = {}
    for spec in specs:
        if spec.name not in EXPORTED:
            continue
        ed = os.path.join(out, "golden", "export-" + spec.name)
        export_dir(ed, spec, state, heads, vocab)
        hf, labels = rb.load_classifier(ed)
        assert labels == spec.labels
        with torch.no_grad():
            p = torch.softmax(hf(ids_t, mask_t), -1)
        ref = torch.softmax(mtl_logits[spec.name], -1)
        diff = float((p - ref).abs().max())
        print("export %s: |p(transformers layout) - p(mtl heads)| <= %.3g" % (spec.name, diff))
        assert diff <= 1e-6, spec.name
        probs[spec.name] = p.numpy()
    with open(os.path.join(out, "golden", "export-expect.jsonl"), "w") as f:
        for b, r in enumerate(TRAIN_ROWS):
            firsts = first_pieces(row_word_ids(r[0][0], vocab))
            rec = {"id": "r%d" % b}
            for name in EXPORTED:
                pr = probs[name][b]
                if name == "ner":
                    rec[name + "_probs"] = [[float(repr_f32(x)) for x in pr[i]] for i in firsts]
                else:
                    rec[name + "_probs"] = [float(repr_f32(x)) for x in pr]
            f.write(json.dumps(rec) + "\n")


def repr_f32(x):
    """Shortest decimal that reads back as the same float32."""
    x = np.float32(x)
    for p in range(1, 10):
        s = "%.*g" % (p, x)
        if np.float32(s) == x:
            return s
    return "%.9g" % x


def main(argv):
    out = argv[1] if len(argv) > 1 else "fixtures"
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    vocab = make_vocab()

    # The model: float32 master weights.
    cfg = rb.BertConfig(**dict(TINY_CONFIG, vocab_size=len(vocab)))
    bert = rb.init_bert(cfg, np.random.RandomState(SEED_MODEL)).eval()
    state = {n: np32(p) for n, p in bert.state_dict().items()}

    tiny = os.path.join(out, "tiny")
    write_model_dir(tiny, vocab, state, "F32")
    write_sentence_transformers_files(tiny)
    specs = rb.read_tasks(os.path.join(tiny, "tasks.json"))
    mt = rb.MultiTaskModel(bert, specs)
    rb.init_heads(mt, np.random.RandomState(SEED_HEADS))
    head_init = {n: np32(p) for n, p in mt.head_state().items()}
    sio.write(os.path.join(tiny, "heads.safetensors"), head_init, {"format": "pt"})
    write_model_dir(os.path.join(out, "tiny-f16"), vocab, state, "F16")
    write_model_dir(os.path.join(out, "tiny-bf16"), vocab, state, "BF16", prefix="bert.")

    gold = os.path.join(out, "golden")
    os.makedirs(gold, exist_ok=True)
    acc = Accuracy()
    common = {
        "fixture_version": FIXTURE_VERSION,
        "generator": "tools/make_fixtures.py",
        "torch": torch.__version__.split("+")[0],
        "numpy": np.__version__,
        "compute_dtype": "float32",
        "layer_norm_eps": repr(cfg.layer_norm_eps),
        "attention_mask_value": "(1 - mask) * finfo(float32).min",
        "gelu": "erf",
    }

    ids, mask, types, _ = build_batch(ENCODE_ROWS, vocab, 10)
    enc_meta = dict(common, dropout="off (eval)", pooling_modes="cls mean max",
                    texts=json.dumps([r[0] for r in ENCODE_ROWS]))
    for tag, d in (("", "tiny"), ("-f16", "tiny-f16"), ("-bf16", "tiny-bf16")):
        m = rb.load_bert(os.path.join(out, d))
        if tag == "":
            for n, p in m.state_dict().items():
                assert torch.equal(p, bert.state_dict()[n]), n
        write_encode(os.path.join(gold, "encode%s.safetensors" % tag), m, ids, mask, types,
                     dict(enc_meta, model="fixtures/" + d), acc)
    write_embed_jsonl(os.path.join(gold, "embed.jsonl"), bert, ids, mask, types)

    write_predict_jsonl(out, bert, head_init, vocab)
    write_export(out, bert, vocab)
    rows = [(r[0], None if r[1] is None else [NER[x] for x in r[1]]) for r in TRAIN_ROWS]
    ids, mask, types, ner = build_batch(rows, vocab, 10)
    topic = np.array([rb.IGNORE_INDEX if r[2] is None else r[2] for r in TRAIN_ROWS], np.int32)
    labels = {"topic": topic, "ner": ner}
    train_meta = dict(common, model="fixtures/tiny", heads="fixtures/tiny/heads.safetensors",
                      tasks=json.dumps(TASKS, sort_keys=True),
                      dropout="0 (hidden, attention and head dropout all disabled)",
                      head_layout="out(dropout(act(dense(dropout(x))))) if hidden>0 else out(dropout(x))",
                      loss="sum_t weight_t * mean CE over labels != -100; a task without labels is left out (reported as 0)",
                      texts=json.dumps([r[0] for r in TRAIN_ROWS]),
                      grad_of_unused="None (pooler; the head of a task without labels): AdamW skips it, no weight decay; stored as zero")
    batch = (ids, mask, types, labels)
    opt_meta = {k: repr(v) for k, v in TRAIN_SETTINGS.items()}
    opt_meta.update(optimizer="torch.optim.AdamW, one step from the fixture weights",
                    no_decay="parameters ending in 'bias' and LayerNorm weights",
                    grad_clipping="none")
    train_goldens(os.path.join(gold, "train.safetensors"), bert, head_init, batch, 0.0, True,
                  dict(train_meta, label_smoothing="0.0", **opt_meta), acc)
    train_goldens(os.path.join(gold, "train-ls.safetensors"), bert, head_init, batch, 0.1,
                  False, dict(train_meta, label_smoothing="0.1"), acc)
    rows = [(r[0], None) for r in NOLABEL_ROWS]
    ids, mask, types, ner = build_batch(rows, vocab, 10)
    topic = np.array([rb.IGNORE_INDEX if r[2] is None else r[2] for r in NOLABEL_ROWS], np.int32)
    train_goldens(os.path.join(gold, "train-nolabel.safetensors"), bert, head_init,
                  (ids, mask, types, {"topic": topic, "ner": ner}), 0.0, False,
                  dict(train_meta, label_smoothing="0.0",
                       texts=json.dumps([r[0] for r in NOLABEL_ROWS])), acc)
    multilabel_goldens(gold, bert, head_init, vocab, train_meta, acc)
    regression_goldens(gold, bert, head_init, vocab, train_meta, acc)
    pair_goldens(gold, bert, head_init, vocab, train_meta, acc)
    acc.report(sys.stdout)


def multilabel_goldens(gold, bert, head_init, vocab, train_meta, acc):
    """train-multilabel.safetensors: the training batch with a multilabel
    task beside topic and ner; its head starts from init.tags.* (its own
    seed, so the other files stay as they are)."""
    tasks = {"tasks": TASKS["tasks"] + [MULTILABEL_TASK]}
    rows = [(r[0], None if r[1] is None else [NER[x] for x in r[1]]) for r in TRAIN_ROWS]
    ids, mask, types, ner = build_batch(rows, vocab, 10)
    topic = np.array([rb.IGNORE_INDEX if r[2] is None else r[2] for r in TRAIN_ROWS], np.int32)
    C = len(MULTILABEL_TASK["labels"])
    tags = np.array([[rb.IGNORE_INDEX] * C if r is None else r for r in MULTILABEL_ROWS],
                    np.int32)
    rng = np.random.RandomState(SEED_MULTILABEL)
    H = TINY_CONFIG["hidden_size"]
    init = {"tags.out.weight": (0.02 * rng.standard_normal((C, H))).astype(np.float32),
            "tags.out.bias": (0.02 * rng.standard_normal(C)).astype(np.float32)}
    train_goldens(os.path.join(gold, "train-multilabel.safetensors"), bert,
                  dict(head_init, **init),
                  (ids, mask, types, {"topic": topic, "ner": ner, "tags": tags}), 0.0, False,
                  dict(train_meta, label_smoothing="0.0", tasks=json.dumps(tasks, sort_keys=True),
                       loss=train_meta["loss"] + "; multilabel: mean BCE on sigmoid over "
                       "entries != -100"),
                  acc, tasks, {"init." + n: v for n, v in init.items()})


def regression_goldens(gold, bert, head_init, vocab, train_meta, acc):
    """train-regression.safetensors: the training batch with a regression
    task beside topic and ner; its head (dense, relu, out) starts from
    init.score.* (its own seed).  labels.score is F32 with NaN for none."""
    tasks = {"tasks": TASKS["tasks"] + [REGRESSION_TASK]}
    rows = [(r[0], None if r[1] is None else [NER[x] for x in r[1]]) for r in TRAIN_ROWS]
    ids, mask, types, ner = build_batch(rows, vocab, 10)
    topic = np.array([rb.IGNORE_INDEX if r[2] is None else r[2] for r in TRAIN_ROWS], np.int32)
    score = np.array([np.nan if v is None else v for v in REGRESSION_ROWS], np.float32)
    rng = np.random.RandomState(SEED_REGRESSION)
    H, K = TINY_CONFIG["hidden_size"], REGRESSION_TASK["head"]["hidden"]
    init = {"score.dense.weight": (0.2 * rng.standard_normal((K, H))).astype(np.float32),
            "score.dense.bias": (0.05 * rng.standard_normal(K)).astype(np.float32),
            "score.out.weight": (0.2 * rng.standard_normal((1, K))).astype(np.float32),
            "score.out.bias": (0.05 * rng.standard_normal(1)).astype(np.float32)}
    train_goldens(os.path.join(gold, "train-regression.safetensors"), bert,
                  dict(head_init, **init),
                  (ids, mask, types, {"topic": topic, "ner": ner, "score": score}), 0.0, False,
                  dict(train_meta, label_smoothing="0.0", tasks=json.dumps(tasks, sort_keys=True),
                       loss=train_meta["loss"] + "; regression: mean squared error over "
                       "rows with a target (labels NaN: none)"),
                  acc, tasks, {"init." + n: v for n, v in init.items()})



def pair_goldens(gold, bert, head_init, vocab, train_meta, acc):
    """train-pair.safetensors: a batch of text pairs with a pair task
    beside topic and ner (no labels for those here); its head starts from
    init.nli.* (its own seed)."""
    tasks = {"tasks": TASKS["tasks"] + [PAIR_TASK]}
    ids, mask, types, ner = build_batch([(r[0], None) for r in PAIR_ROWS], vocab, 14)
    topic = np.full(len(PAIR_ROWS), rb.IGNORE_INDEX, np.int32)
    nli = np.array([rb.IGNORE_INDEX if r[1] is None else r[1] for r in PAIR_ROWS], np.int32)
    rng = np.random.RandomState(SEED_PAIR)
    C, H = len(PAIR_TASK["labels"]), TINY_CONFIG["hidden_size"]
    init = {"nli.out.weight": (0.2 * rng.standard_normal((C, H))).astype(np.float32),
            "nli.out.bias": (0.05 * rng.standard_normal(C)).astype(np.float32)}
    train_goldens(os.path.join(gold, "train-pair.safetensors"), bert,
                  dict(head_init, **init),
                  (ids, mask, types, {"topic": topic, "ner": ner, "nli": nli}), 0.0, False,
                  dict(train_meta, label_smoothing="0.0", tasks=json.dumps(tasks, sort_keys=True),
                       texts=json.dumps([r[0] for r in PAIR_ROWS]),
                       loss=train_meta["loss"] + "; pair: as sequence, over [CLS] a [SEP] b "
                       "[SEP] with token type ids 0 up to the first [SEP], 1 after it"),
                  acc, tasks, {"init." + n: v for n, v in init.items()})


if __name__ == "__main__":
    main(sys.argv)
