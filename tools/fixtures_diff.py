"""Compares freshly generated fixtures with the committed ones.

    python3 tools/fixtures_diff.py NEW OLD [--ignore NAME ...]

Files that are byte-identical pass.  Others pass when they hold the same
values up to the last bits of float arithmetic: PyTorch's float32 kernels
differ from CPU to CPU (AVX-512 or AVX2, the order of a sum), so a golden
written on one machine is regenerated on another with a last bit changed
here and there.  What is compared:

- safetensors: the same tensor names, dtypes, shapes and metadata;
  integer tensors equal; float tensors within |new - old| <= ATOL +
  RTOL * |old| for F32 and F64, within one unit in the last place of the
  type (relative 2^-10 / 2^-7) for F16 / BF16; parameters after an
  AdamW step (tensors named after.*) within ATOL_STEP, since AdamW divides
  each gradient by its root mean square plus eps, so a last-bit change of
  a gradient near eps moves the step by far more than a last bit;
- any other file as text: the same text between numbers, integers
  equal, decimal numbers within the F32 tolerance.

Prints one line per file that is not byte-identical (and why it passes or
fails) and a summary; exits 1 when a file is missing, extra or differs
beyond the tolerance.  NAMEs given to --ignore (top-level entries of OLD,
e.g. tokref/ and demo/, which other tools write) are skipped.
"""

import argparse
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

RTOL = 1e-5
ATOL = 1e-7
ATOL_STEP = 1e-6
ULP = {"F16": 2.0 ** -10, "BF16": 2.0 ** -7}
NUMBER = re.compile(r"-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def files_under(root, ignore):
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel == ".":
            dirnames[:] = [d for d in dirnames if d not in ignore]
            filenames = [f for f in filenames if f not in ignore]
        for f in filenames:
            out.add(os.path.normpath(os.path.join(rel, f)))
    return out


def tensor_dtypes(path):
    """name -> dtype string, from the header (read() decodes BF16)."""
    import json
    import struct
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
    header.pop("__metadata__", None)
    return {k: v["dtype"] for k, v in header.items()}


def compare_safetensors(new, old):
    """Returns (ok, why)."""
    a, ma = safetensors_io.read(new)
    b, mb = safetensors_io.read(old)
    if ma != mb:
        return False, "metadata differs"
    if sorted(a) != sorted(b):
        return False, "tensor names differ: %s" % sorted(set(a) ^ set(b))
    da, db = tensor_dtypes(new), tensor_dtypes(old)
    worst, worst_name = 0.0, None
    for name in sorted(a):
        x, y = a[name], b[name]
        if da[name] != db[name] or x.shape != y.shape:
            return False, "tensor %s: dtype or shape differs" % name
        if not np.issubdtype(y.dtype, np.floating):
            if not np.array_equal(x, y):
                return False, "tensor %s: integers differ" % name
            continue
        x64, y64 = x.astype(np.float64), y.astype(np.float64)
        atol = ATOL_STEP if name.startswith("after.") else ATOL
        if da[name] in ULP:
            allowed = ULP[da[name]] * np.abs(y64) + atol
        else:
            allowed = atol + RTOL * np.abs(y64)
        diff = np.abs(x64 - y64)
        if np.any(~np.isfinite(x64) != ~np.isfinite(y64)):
            return False, "tensor %s: non-finite values differ" % name
        over = diff > allowed
        if np.any(over):
            i = int(np.argmax(diff - allowed))
            return False, "tensor %s: element %d is %.9g, was %.9g (allowed %.3g)" % (
                name, i, x64.flat[i], y64.flat[i], allowed.flat[i])
        rel = float(np.max(diff / np.maximum(allowed, 1e-300))) if diff.size else 0.0
        if rel > worst:
            worst, worst_name = rel, name
    return True, "within tolerance (worst: %s at %.2f of its allowance)" % (worst_name, worst)


def compare_text(new, old):
    with open(new, encoding="utf-8", errors="surrogateescape") as f:
        s = f.read()
    with open(old, encoding="utf-8", errors="surrogateescape") as f:
        t = f.read()
    if NUMBER.split(s) != NUMBER.split(t):
        return False, "text differs beyond numbers"
    worst = 0.0
    for p, q in zip(NUMBER.findall(s), NUMBER.findall(t)):
        if p == q:
            continue
        if not re.search(r"[.eE]", p + q):
            return False, "integer %s was %s" % (p, q)
        x, y = float(p), float(q)
        allowed = ATOL + RTOL * abs(y)
        if abs(x - y) > allowed:
            return False, "number %s was %s (allowed %.3g)" % (p, q, allowed)
        worst = max(worst, abs(x - y) / allowed)
    return True, "within tolerance (worst number at %.2f of its allowance)" % worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("new")
    ap.add_argument("old")
    ap.add_argument("--ignore", action="append", default=[])
    args = ap.parse_args()
    fa, fb = files_under(args.new, args.ignore), files_under(args.old, args.ignore)
    bad = 0
    for f in sorted(fa - fb):
        print("%s: generated but not committed" % f)
        bad += 1
    for f in sorted(fb - fa):
        print("%s: committed but no longer generated" % f)
        bad += 1
    same = near = 0
    for f in sorted(fa & fb):
        pa, pb = os.path.join(args.new, f), os.path.join(args.old, f)
        with open(pa, "rb") as x, open(pb, "rb") as y:
            if x.read() == y.read():
                same += 1
                continue
        if f.endswith(".safetensors"):
            ok, why = compare_safetensors(pa, pb)
        else:
            ok, why = compare_text(pa, pb)
        print("%s: %s" % (f, why))
        if ok:
            near += 1
        else:
            bad += 1
    print("fixtures: %d byte-identical, %d within float tolerance, %d different"
          % (same, near, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
