"""Reference BERT sentence transformer with multi-task heads, in plain PyTorch.

This is the model mtl's C code is checked against.  It is written from the
published semantics of Hugging Face's BertModel and sentence-transformers, not
from their code, and keeps their parameter names so that state dicts line up
with Hugging Face checkpoints:

  embeddings.{word,position,token_type}_embeddings.weight
  embeddings.LayerNorm.{weight,bias}
  encoder.layer.{i}.attention.self.{query,key,value}.{weight,bias}
  encoder.layer.{i}.attention.output.dense.{weight,bias}
  encoder.layer.{i}.attention.output.LayerNorm.{weight,bias}
  encoder.layer.{i}.intermediate.dense.{weight,bias}
  encoder.layer.{i}.output.dense.{weight,bias}
  encoder.layer.{i}.output.LayerNorm.{weight,bias}
  pooler.dense.{weight,bias}

Task heads (tasks.json, heads.safetensors) and the losses are mtl's own
format; docs/reference.md gives the exact formulas.  Everything runs in the
dtype of the parameters (float32 for goldens, float64 for accuracy checks).
"""

import json
import math
import os

import numpy as np
import torch
import torch.utils.checkpoint
import torch.nn.functional as F
from torch import nn

import safetensors_io

IGNORE_INDEX = -100


# --------------------------------------------------------------------------
# Configuration


class BertConfig:
    """The config.json fields BertModel uses, with Hugging Face's defaults."""

    FIELDS = {
        "vocab_size": 30522,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
    }

    def __init__(self, **kw):
        for k, v in self.FIELDS.items():
            setattr(self, k, kw.get(k, v))
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size %d not divisible by num_attention_heads %d"
                             % (self.hidden_size, self.num_attention_heads))
        if self.hidden_act != "gelu":
            raise ValueError("hidden_act %r not supported (only exact 'gelu')"
                             % self.hidden_act)
        if self.position_embedding_type != "absolute":
            raise ValueError("position_embedding_type %r not supported"
                             % self.position_embedding_type)

    @classmethod
    def from_json(cls, path):
        with open(path) as f:
            return cls(**json.load(f))

    def to_dict(self):
        return {k: getattr(self, k) for k in self.FIELDS}


# --------------------------------------------------------------------------
# Encoder


class BertEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        # Hugging Face's padding_idx: the [PAD] row never gets a gradient,
        # even from a real token with that id (a literal "[PAD]" in text)
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size,
                                            padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids):
        # Absolute positions 0..T-1 for every row, padding included.
        T = input_ids.shape[1]
        pos = torch.arange(T, device=input_ids.device)
        x = (self.word_embeddings(input_ids)
             + self.token_type_embeddings(token_type_ids)
             + self.position_embeddings(pos)[None])
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_heads = c.num_attention_heads
        self.head_dim = c.hidden_size // c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)
        self.dropout = nn.Dropout(c.attention_probs_dropout_prob)

    def _split(self, x):
        # [B, T, H] -> [B, heads, T, head_dim]; head h owns columns h*d..(h+1)*d-1.
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)

    def forward(self, x, mask_add, rec=None):
        q = self._split(self.query(x))
        k = self._split(self.key(x))
        v = self._split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
        scores = scores + mask_add
        probs = torch.softmax(scores, dim=-1)
        if rec is not None:
            rec["attn_probs"] = probs
        ctx = self.dropout(probs) @ v
        B, _, T, _ = ctx.shape
        return ctx.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim)


class BertSelfOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, h, residual):
        # Post-LN: LayerNorm(dropout(dense(h)) + residual).
        return self.LayerNorm(self.dropout(self.dense(h)) + residual)


class BertAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = BertSelfAttention(c)
        self.output = BertSelfOutput(c)

    def forward(self, x, mask_add, rec=None):
        return self.output(self.self(x, mask_add, rec), x)


class BertIntermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)

    def forward(self, x, rec=None):
        # Exact GELU: x * 0.5 * (1 + erf(x / sqrt(2))), not the tanh form.
        g = F.gelu(self.dense(x))
        if rec is not None:
            rec["ffn_gelu"] = g
        return g


class BertOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.intermediate_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, h, residual):
        return self.LayerNorm(self.dropout(self.dense(h)) + residual)


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = BertAttention(c)
        self.intermediate = BertIntermediate(c)
        self.output = BertOutput(c)

    def forward(self, x, mask_add, rec=None):
        a = self.attention(x, mask_add, rec)
        return self.output(self.intermediate(a, rec), a)


class BertEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(c) for _ in range(c.num_hidden_layers)])


class BertPooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)

    def forward(self, last):
        return torch.tanh(self.dense(last[:, 0]))


def additive_mask(attention_mask, dtype):
    """[B, T] 1/0 mask -> [B, 1, 1, T] additive mask: 0 on kept keys, the
    most negative finite value of dtype on padded keys (Hugging Face's
    (1 - mask) * finfo(dtype).min)."""
    m = attention_mask[:, None, None, :].to(dtype)
    return (1.0 - m) * torch.finfo(dtype).min


class BertModel(nn.Module):
    def __init__(self, config, add_pooling_layer=True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        # training forwards through torch.utils.checkpoint, a layer at a
        # time (benchmarks: mtl's --recompute beside PyTorch's own)
        self.checkpoint_layers = False

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, record=None):
        """Returns (last_hidden_state [B,T,H], pooler_output [B,H] or None
        without a pooler).

        record: optional dict; filled with "hidden.{i}" (0 = embeddings
        output, i+1 = layer i output), "layer.{i}.attn_probs" [B,heads,T,T]
        and "layer.{i}.ffn_gelu" [B,T,I].
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        dtype = self.embeddings.word_embeddings.weight.dtype
        mask_add = additive_mask(attention_mask, dtype)
        x = self.embeddings(input_ids, token_type_ids)
        if record is not None:
            record["hidden.0"] = x
        for i, layer in enumerate(self.encoder.layer):
            rec = {} if record is not None else None
            if self.checkpoint_layers and self.training and rec is None:
                x = torch.utils.checkpoint.checkpoint(layer, x, mask_add, use_reentrant=False)
                continue
            x = layer(x, mask_add, rec)
            if record is not None:
                record["layer.%d.attn_probs" % i] = rec["attn_probs"]
                record["layer.%d.ffn_gelu" % i] = rec["ffn_gelu"]
                record["hidden.%d" % (i + 1)] = x
        return x, self.pooler(x) if self.pooler is not None else None


# --------------------------------------------------------------------------
# Loading and initialisation


def _canonical_name(name):
    """Hugging Face checkpoint name -> BertModel name, or None to skip it."""
    if name.startswith("bert."):
        name = name[len("bert."):]
    # Old TF-converted checkpoints call LayerNorm's parameters gamma/beta.
    if name.endswith("LayerNorm.gamma"):
        name = name[: -len("gamma")] + "weight"
    elif name.endswith("LayerNorm.beta"):
        name = name[: -len("beta")] + "bias"
    if name.startswith(("embeddings.", "encoder.", "pooler.")):
        return name
    return None


def load_state(path):
    """Reads a model.safetensors into {BertModel name: float32 numpy array}.

    Accepts names with or without the "bert." prefix and F32/F16/BF16/F64
    storage (decoded to float32); ignores non-encoder tensors (heads of
    BertFor* checkpoints, the position_ids buffer)."""
    tensors, _ = safetensors_io.read(path)
    out = {}
    for name, arr in tensors.items():
        canon = _canonical_name(name)
        if canon is None or canon.endswith("position_ids"):
            continue
        if arr.dtype.kind != "f":
            raise ValueError("%s: tensor %r is not floating point" % (path, name))
        if canon in out:
            raise ValueError("%s: tensor %r given twice" % (path, canon))
        out[canon] = arr.astype(np.float32)
    return out


def load_bert(model_dir, dtype=torch.float32, allow_missing_pooler=True):
    """Builds a BertModel from a Hugging Face directory (config.json and
    model.safetensors).  A missing pooler (some sentence-transformers
    exports drop it) is allowed and left at zero."""
    config = BertConfig.from_json(os.path.join(model_dir, "config.json"))
    model = BertModel(config)
    state = load_state(os.path.join(model_dir, "model.safetensors"))
    own = model.state_dict()
    missing = [n for n in own if n not in state]
    if allow_missing_pooler:
        missing = [n for n in missing if not n.startswith("pooler.")]
    if missing:
        raise ValueError("%s: missing tensors: %s" % (model_dir, ", ".join(missing)))
    unexpected = [n for n in state if n not in own]
    if unexpected:
        raise ValueError("%s: unexpected tensors: %s" % (model_dir, ", ".join(unexpected)))
    with torch.no_grad():
        for n, p in own.items():
            if n in state:
                if tuple(state[n].shape) != tuple(p.shape):
                    raise ValueError("%s: tensor %r has shape %s, expected %s"
                                     % (model_dir, n, state[n].shape, tuple(p.shape)))
                p.copy_(torch.from_numpy(state[n]))
            else:
                p.zero_()
    return model.to(dtype).eval()


def init_bert(config, rng, std=None, ln_noise=0.1, bias_noise=0.02):
    """Random weights from a numpy RandomState (reproducible across numpy
    versions): every matrix and embedding N(0, std), LayerNorm weights
    1 + N(0, ln_noise), all biases N(0, bias_noise).  Returns the model."""
    std = config.initializer_range if std is None else std
    model = BertModel(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                a = 1.0 + ln_noise * rng.standard_normal(p.shape)
            elif name.endswith("bias"):
                a = bias_noise * rng.standard_normal(p.shape)
            else:
                a = std * rng.standard_normal(p.shape)
            p.copy_(torch.from_numpy(a.astype(np.float32)))
    return model


# --------------------------------------------------------------------------
# Sentence embeddings (sentence-transformers Pooling + Normalize)


def read_pooling(model_dir):
    """Pooling mode from 1_Pooling/config.json: "cls", "mean" or "max";
    "cls" when the file is absent (bge's choice)."""
    path = os.path.join(model_dir, "1_Pooling", "config.json")
    if not os.path.exists(path):
        return "cls"
    with open(path) as f:
        c = json.load(f)
    modes = [m for m, key in (("cls", "pooling_mode_cls_token"),
                              ("mean", "pooling_mode_mean_tokens"),
                              ("max", "pooling_mode_max_tokens")) if c.get(key)]
    others = [k for k, v in c.items() if k.startswith("pooling_mode_") and v
              and k not in ("pooling_mode_cls_token", "pooling_mode_mean_tokens",
                            "pooling_mode_max_tokens")]
    if len(modes) != 1 or others:
        raise ValueError("%s: exactly one of cls/mean/max pooling is supported" % path)
    return modes[0]


def pool(last, attention_mask, mode):
    """[B,T,H] -> [B,H] like sentence-transformers' Pooling.

    cls: row 0.  mean: sum over tokens with mask 1 divided by max(count, 1e-9).
    max: padded tokens are set to -1e9 before the max."""
    if mode == "cls":
        return last[:, 0]
    m = attention_mask[:, :, None].to(last.dtype)
    if mode == "mean":
        return (last * m).sum(1) / m.sum(1).clamp(min=1e-9)
    if mode == "max":
        return torch.where(m > 0, last, torch.full_like(last, -1e9)).max(1).values
    raise ValueError("unknown pooling %r" % mode)


def l2_normalize(x):
    """x / max(||x||_2, 1e-12) per row (torch.nn.functional.normalize)."""
    return x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def sentence_embedding(model, input_ids, attention_mask, token_type_ids=None, mode="cls"):
    last, _ = model(input_ids, attention_mask, token_type_ids)
    return l2_normalize(pool(last, attention_mask, mode))


# --------------------------------------------------------------------------
# Hugging Face classifiers (what mtl-export writes, docs/export.md)


class BertForSequenceClassification(nn.Module):
    """Hugging Face's BertForSequenceClassification: the classifier reads
    the pooler's output, tanh(dense(h_cls)), after dropout:
    logits = classifier(dropout(pooler(last)))."""

    def __init__(self, config, num_labels, dropout=0.1):
        super().__init__()
        self.bert = BertModel(config)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, num_labels)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        _, pooled = self.bert(input_ids, attention_mask, token_type_ids)
        return self.classifier(self.dropout(pooled))


class BertForTokenClassification(nn.Module):
    """Hugging Face's BertForTokenClassification: no pooler; every token's
    last hidden state through dropout and the classifier."""

    def __init__(self, config, num_labels, dropout=0.1):
        super().__init__()
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, num_labels)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        last, _ = self.bert(input_ids, attention_mask, token_type_ids)
        return self.classifier(self.dropout(last))


CLASSIFIERS = {"BertForSequenceClassification": BertForSequenceClassification,
               "BertForTokenClassification": BertForTokenClassification}


def load_classifier(model_dir):
    """Loads a Hugging Face classifier directory as transformers would,
    strictly: the class from config.json's architectures, the labels from
    id2label, and model.safetensors under exactly the class's names (a
    missing or unexpected tensor fails, where transformers would warn).
    Returns (model in eval mode, labels)."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cj = json.load(f)
    arch = cj["architectures"][0]
    labels = [cj["id2label"][str(i)] for i in range(len(cj["id2label"]))]
    if cj.get("num_labels", len(labels)) != len(labels):
        raise ValueError("%s: num_labels %d but %d id2label entries"
                         % (model_dir, cj["num_labels"], len(labels)))
    if any(cj["label2id"][l] != i for i, l in enumerate(labels)):
        raise ValueError("%s: label2id is not id2label inverted" % model_dir)
    drop = cj.get("classifier_dropout")
    model = CLASSIFIERS[arch](BertConfig(**cj), len(labels),
                              cj["hidden_dropout_prob"] if drop is None else drop)
    tensors, _ = safetensors_io.read(os.path.join(model_dir, "model.safetensors"))
    own = model.state_dict()
    if set(tensors) != set(own):
        raise ValueError("%s: missing %s, unexpected %s" % (
            model_dir, sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))))
    with torch.no_grad():
        for n, p in own.items():
            if tensors[n].shape != tuple(p.shape):
                raise ValueError("%s: %s has shape %s" % (model_dir, n, tensors[n].shape))
            p.copy_(torch.from_numpy(tensors[n].astype(np.float32)))
    return model.eval(), labels


# --------------------------------------------------------------------------
# Task heads


_ACTS = {"gelu": F.gelu, "tanh": torch.tanh, "relu": torch.relu}


class TaskSpec:
    """One entry of tasks.json."""

    def __init__(self, d):
        self.name = d["name"]
        self.kind = d["kind"]
        if self.kind not in ("sequence", "pair", "token", "multilabel", "regression"):
            raise ValueError("task %r: kind must be sequence, pair, token, multilabel or "
                             "regression" % self.name)
        self.threshold = float(d.get("threshold", 0.5))
        # a regression task has one output and no label names
        self.labels = ["value"] if self.kind == "regression" else list(d["labels"])
        self.weight = float(d.get("weight", 1.0))
        h = d.get("head") or {}
        self.hidden = int(h.get("hidden", 0) or 0)
        self.activation = h.get("activation", "gelu")
        if self.activation not in _ACTS:
            raise ValueError("task %r: unknown activation %r" % (self.name, self.activation))
        self.dropout = float(h.get("dropout", 0.1))
        self.pooling = h.get("pooling", d.get("pooling"))
        if self.pooling not in (None, "cls", "mean"):
            raise ValueError("task %r: pooling must be cls or mean" % self.name)


def read_tasks(path):
    with open(path) as f:
        return [TaskSpec(t) for t in json.load(f)["tasks"]]


class TaskHead(nn.Module):
    """out(dropout(act(dense(dropout(x))))) when hidden > 0, else
    out(dropout(x)); both dropouts use the task's p."""

    def __init__(self, spec, H):
        super().__init__()
        self.spec = spec
        self.drop = nn.Dropout(spec.dropout)
        n_in = H
        if spec.hidden > 0:
            self.dense = nn.Linear(H, spec.hidden)
            n_in = spec.hidden
        self.out = nn.Linear(n_in, len(spec.labels))

    def forward(self, x):
        x = self.drop(x)
        if self.spec.hidden > 0:
            x = self.drop(_ACTS[self.spec.activation](self.dense(x)))
        return self.out(x)


class MultiTaskModel(nn.Module):
    """Encoder plus one head per task.  Sequence heads read the pooled (not
    normalised) sentence vector; token heads read every last hidden state."""

    def __init__(self, bert, specs, pooling="cls"):
        super().__init__()
        self.bert = bert
        self.pooling = pooling
        self.specs = specs
        self.heads = nn.ModuleDict(
            {s.name: TaskHead(s, bert.config.hidden_size) for s in specs})

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        last, _ = self.bert(input_ids, attention_mask, token_type_ids)
        logits = {}
        for s in self.specs:
            # a pair task is a sequence task over [CLS] a [SEP] b [SEP]
            if s.kind in ("sequence", "pair", "multilabel", "regression"):
                x = pool(last, attention_mask, s.pooling or self.pooling)
            else:
                x = last
            logits[s.name] = self.heads[s.name](x)
        return logits

    def head_state(self):
        """Head parameters under heads.safetensors names ("<task>.dense.weight", ...)."""
        return {"%s.%s" % (t, n): p for t, h in self.heads.items()
                for n, p in h.named_parameters()}


def init_heads(mt, rng, std=0.02, bias_noise=0.02):
    with torch.no_grad():
        for name, p in mt.head_state().items():
            if name.endswith("bias"):
                a = bias_noise * rng.standard_normal(p.shape)
            else:
                a = std * rng.standard_normal(p.shape)
            p.copy_(torch.from_numpy(a.astype(np.float32)))


def load_heads(mt, path):
    tensors, _ = safetensors_io.read(path)
    own = mt.head_state()
    if set(tensors) != set(own):
        raise ValueError("%s: head tensors %s, expected %s"
                         % (path, sorted(tensors), sorted(own)))
    with torch.no_grad():
        for n, p in own.items():
            p.copy_(torch.from_numpy(tensors[n].astype(np.float32)))


# --------------------------------------------------------------------------
# Losses


def cross_entropy(logits, labels, label_smoothing=0.0):
    """Mean cross-entropy over items whose label is not -100.

    logits [N, C], labels [N].  With eps = label_smoothing the per-item loss
    is (1 - eps) * -log p[y] + eps/C * sum_c -log p[c] (PyTorch's
    CrossEntropyLoss(label_smoothing=eps)).  The mean is over labelled items;
    with none there is no loss: None (PyTorch would give NaN)."""
    keep = labels != IGNORE_INDEX
    n = int(keep.sum())
    if n == 0:
        return None
    logp = torch.log_softmax(logits[keep], dim=-1)
    y = labels[keep].long()
    nll = -logp.gather(1, y[:, None])[:, 0]
    C = logits.shape[-1]
    per_item = (1.0 - label_smoothing) * nll + (label_smoothing / C) * (-logp.sum(-1))
    return per_item.sum() / n


def binary_cross_entropy(logits, labels):
    """Mean binary cross-entropy on sigmoid(logits) over the entries whose
    indicator is not -100 (a multilabel task: a row of -100 is an example
    without the task's labels).  logits and labels [N, C]; the mean is over
    labelled entries, as BCEWithLogitsLoss over the labelled rows; None
    when there are none.  Written out (max(z, 0) - z y + log(1 + e^-|z|))
    and checked against torch's by the fixtures script."""
    keep = labels != IGNORE_INDEX
    if not keep.any():
        return None
    z = logits[keep]
    y = labels[keep].to(z.dtype)
    per = z.clamp(min=0) - z * y + torch.log1p(torch.exp(-z.abs()))
    return per.mean()


def squared_error(outputs, targets):
    """Mean squared error over the rows whose target is not NaN (a
    regression task: NaN is an example without a target).  outputs [N, 1],
    targets [N] float; None when no row has one (MSELoss over the labelled
    rows otherwise)."""
    keep = ~torch.isnan(targets)
    if not keep.any():
        return None
    d = outputs[:, 0][keep] - targets[keep].to(outputs.dtype)
    return (d * d).mean()


def multitask_loss(logits, labels, specs, label_smoothing=0.0):
    """Returns (total, {task: loss}); total = sum_t weight_t * loss_t.
    labels[task]: [B] for sequence tasks, [B, T] for token tasks, [B, C]
    0/1 indicators for multilabel tasks (binary cross-entropy).  A task
    without labels in the batch is left out of total (its loss is reported
    as 0): its head is not in the graph, its .grad stays None and AdamW
    skips it, as in a training loop that computes only the losses it has."""
    losses = {}
    total = None
    for s in specs:
        lg = logits[s.name]
        lb = labels[s.name]
        if s.kind == "multilabel":
            l = binary_cross_entropy(lg, lb)
        elif s.kind == "regression":
            l = squared_error(lg, lb)
        else:
            l = cross_entropy(lg.reshape(-1, lg.shape[-1]), lb.reshape(-1), label_smoothing)
        if l is None:
            losses[s.name] = lg.new_zeros(())
            continue
        losses[s.name] = l
        total = s.weight * l if total is None else total + s.weight * l
    return total, losses


# --------------------------------------------------------------------------
# Optimiser


def no_decay(name):
    """Biases and LayerNorm weights take no weight decay (the usual Hugging
    Face grouping); everything else, embeddings and head weights included,
    does."""
    return name.endswith("bias") or "LayerNorm.weight" in name


def make_adamw(named_params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    """torch.optim.AdamW over two groups: decayed and not decayed."""
    named_params = list(named_params)
    decay = [p for n, p in named_params if not no_decay(n)]
    plain = [p for n, p in named_params if no_decay(n)]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay},
         {"params": plain, "weight_decay": 0.0}],
        lr=lr, betas=betas, eps=eps)
