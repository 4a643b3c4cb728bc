"""Minimal safetensors reader and writer (numpy only) for mtl's reference tools.

File layout: an 8-byte little-endian header length N, N bytes of JSON, then the
data block.  The JSON maps each tensor name to {"dtype", "shape",
"data_offsets": [begin, end]} with offsets relative to the data block, plus an
optional "__metadata__" object of string values.

The writer lays tensors out the way the safetensors library does: sorted by
element size (largest first), then by name; the JSON is compact, lists
"__metadata__" first and then the tensors in data order, and is padded with
spaces so the data block starts on an 8-byte boundary.  Writing is a pure
function of its inputs, so regenerating a file gives identical bytes.

BF16 has no numpy dtype: it is stored as uint16 bit patterns.  write() takes
BF16 tensors as float32 arrays and rounds them to nearest-even; read() returns
them decoded to float32.
"""

import json
import struct

import numpy as np

_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}


def f32_to_bf16_bits(a):
    """Rounds float32 values to bfloat16 (nearest, ties to even); uint16 bits."""
    bits = np.ascontiguousarray(a, dtype="<f4").view("<u4").astype(np.uint64)
    nan = np.isnan(np.asarray(a, dtype=np.float32))
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    out = (rounded & 0xFFFF).astype("<u2")
    out[nan] = 0x7FC0
    return out


def bf16_bits_to_f32(bits):
    """Decodes uint16 bfloat16 bit patterns to float32 (exact)."""
    wide = np.asarray(bits, dtype="<u2").astype("<u4") << 16
    return wide.view("<f4")


def _encode(arr, dtype):
    if dtype == "BF16":
        return f32_to_bf16_bits(np.asarray(arr, dtype=np.float32))
    return np.ascontiguousarray(arr, dtype=_DTYPES[dtype])


def write(path, tensors, metadata=None):
    """Writes tensors to path.

    tensors: dict name -> numpy array, or name -> (array, dtype) with dtype a
    safetensors dtype string.  A bare array is stored with the dtype that
    matches it (float32 -> F32, int32 -> I32, ...).  metadata: dict of str->str.
    """
    enc = {}
    for name, val in tensors.items():
        if isinstance(val, tuple):
            arr, dtype = val
        else:
            arr = np.asarray(val)
            dtype = next((k for k, d in _DTYPES.items()
                          if k != "BF16" and d == arr.dtype.newbyteorder("<")), None)
            if dtype is None:
                raise ValueError("unsupported dtype %s for %r" % (arr.dtype, name))
        data = _encode(arr, dtype)
        enc[name] = (dtype, list(np.shape(arr)), data.tobytes())
    order = sorted(enc, key=lambda n: (-_DTYPES[enc[n][0]].itemsize, n))
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise ValueError("metadata must map str to str")
        header["__metadata__"] = dict(sorted(metadata.items()))
    off = 0
    for n in order:
        dtype, shape, raw = enc[n]
        header[n] = {"dtype": dtype, "shape": shape,
                     "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    hjson = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode()
    hjson += b" " * (-(len(hjson) + 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for n in order:
            f.write(enc[n][2])


def read(path):
    """Reads path; returns (dict name -> numpy array, metadata dict).

    F16 stays float16, BF16 is decoded to float32, everything else keeps its
    dtype.  Raises ValueError on a malformed file.
    """
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise ValueError("%s: too short" % path)
    (n,) = struct.unpack("<Q", buf[:8])
    if 8 + n > len(buf):
        raise ValueError("%s: header length past end of file" % path)
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    data = memoryview(buf)[8 + n:]
    meta = header.pop("__metadata__", None) or {}
    out = {}
    for name, info in header.items():
        dtype = info["dtype"]
        if dtype not in _DTYPES:
            raise ValueError("%s: tensor %r: unknown dtype %s" % (path, name, dtype))
        b, e = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        if not (0 <= b <= e <= len(data)) or e - b != count * _DTYPES[dtype].itemsize:
            raise ValueError("%s: tensor %r: bad data_offsets" % (path, name))
        arr = np.frombuffer(data[b:e], dtype=_DTYPES[dtype]).reshape(shape)
        if dtype == "BF16":
            arr = bf16_bits_to_f32(arr).reshape(shape)
        out[name] = arr.copy()
    return out, meta
