"""Loads a Hugging Face BERT directory with the reference model and prints
sentence embeddings, to show that a checkpoint (one mtl wrote, say) loads
and runs in the reference.

Usage: /usr/bin/python3 tools/check_model.py DIR [IDS ...]

Each IDS is one example: comma-separated token ids, e.g. 2,57,301,3 (no
padding needed; the examples are padded to the longest with id 0 and masked).
Without IDS one example is made of [CLS], the next three vocabulary ids after
the special tokens, and [SEP].  Pooling comes from DIR/1_Pooling/config.json
(cls when absent); the embeddings are L2-normalised.  When DIR also holds
tasks.json and heads.safetensors, each task's logits are printed too.
Output: one line per example and quantity, tab-separated, %.8g values.
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_bert as rb  # noqa: E402


def default_example(model_dir):
    path = os.path.join(model_dir, "vocab.txt")
    if not os.path.exists(path):
        return [101, 2000, 2001, 2002, 102]
    with open(path, encoding="utf-8") as f:
        vocab = [line.rstrip("\n") for line in f]
    idx = {t: i for i, t in enumerate(vocab)}
    words = [i for i, t in enumerate(vocab) if not (t.startswith("[") and t.endswith("]"))]
    return [idx["[CLS]"]] + words[:3] + [idx["[SEP]"]]


def main(argv):
    if len(argv) >= 2 and argv[1] in ("-h", "--help"):
        sys.stdout.write(__doc__)
        return 0
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    model_dir = argv[1]
    examples = [[int(x) for x in a.split(",")] for a in argv[2:]] or [default_example(model_dir)]
    T = max(len(e) for e in examples)
    ids = torch.zeros(len(examples), T, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, e in enumerate(examples):
        ids[b, :len(e)] = torch.tensor(e)
        mask[b, :len(e)] = 1
    bert = rb.load_bert(model_dir)
    pooling = rb.read_pooling(model_dir)
    with torch.no_grad():
        emb = rb.sentence_embedding(bert, ids, mask, mode=pooling)
        logits = {}
        tasks = os.path.join(model_dir, "tasks.json")
        heads = os.path.join(model_dir, "heads.safetensors")
        if os.path.exists(tasks) and os.path.exists(heads):
            mt = rb.MultiTaskModel(bert, rb.read_tasks(tasks), pooling)
            rb.load_heads(mt, heads)
            logits = mt.eval()(ids, mask)
    fmt = lambda v: "\t".join("%.8g" % x for x in v.reshape(-1).tolist())  # noqa: E731
    print("# model\t%s\tpooling\t%s\thidden\t%d" % (model_dir, pooling, bert.config.hidden_size))
    for b, e in enumerate(examples):
        print("ids\t%d\t%s" % (b, ",".join(map(str, e))))
        print("embedding\t%d\t%s" % (b, fmt(emb[b])))
        for name, lg in logits.items():
            print("logits.%s\t%d\t%s" % (name, b, fmt(lg[b, :len(e)] if lg.dim() == 3 else lg[b])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
