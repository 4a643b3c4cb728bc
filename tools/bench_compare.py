"""mtl beside PyTorch and ONNX Runtime in one interleaved run (make
bench-compare).  Python and Node are needed for the comparison only, never
by make test or make demo.

Usage: /usr/bin/python3 tools/bench_compare.py [--rounds N] [--threads N]
           [--cpu-time] [--min-time S] [--max-steps N] [--work W,W...]
           [--int8] [--attn-unfused] [--mtl-env VAR=VALUE]... [--avx2-only]
           [--no-torch] [--recompute] [--low-memory] BUILD

Workloads (--work; default job:small,encode:small:32x32,encode:small:8x128,
encode:base:32x32,encode:base:8x128):

  encode:MODEL:BxT  sentences/s of one forward over a B x T batch of
                    random ids, every token attended, random weights of
                    the bge MODEL shape (small, base, large).  mtl:
                    bench_encode -s BxT (its default thread mode); PyTorch:
                    tools/bench_torch.py; ONNX Runtime: tools/bench_ort.js.
  job:small         embed 2,972 real sentences (TREC test, SST-2 dev, the
                    first 1,600 of TREC train; ../shared/data) with a
                    bge-small-shaped model of random weights and bge's
                    tokenizer.  mtl: the whole job, `mtl-tokenize | mtl-score
                    --embed` from process start to end (model loading and
                    tokenization included); PyTorch and ONNX Runtime: the
                    sentence-transformers way, ids tokenized beforehand (not
                    timed), sorted by length, batches of 32 padded to their
                    longest, the model loaded before the clock starts.
  train:MODEL:BxT   tokens/s, seconds per step and peak RSS of full
                    training steps on a B x T batch (dropout 0.1, a
                    sequence and a token head, both losses, backward,
                    AdamW; random ids and weights).  mtl: bench_train (each
                    shape in its own process, so its peak RSS is its own);
                    PyTorch: tools/bench_torch.py's train; ONNX Runtime
                    does not train.  One warm-up step, then steps for
                    --min-time seconds, at least 3 or --max-steps if fewer
                    (bge-large takes minutes a step on one core).
                    --work train runs small, base and large at 16x64 and
                    4x512.

--int8 adds mtl with int8 linear maps (bench_encode -8 auto, mtl-score
--int8) as a fourth runtime, with its ratios to ONNX Runtime and to mtl's
fp32.

--mtl-env VAR=VALUE adds mtl with that environment variable as another
runtime (MTL_GEMM=blis: mtl's products on BLIS instead of its own
kernels), with the ratio of mtl to it: a before-and-after in one
interleaved run; repeat it for more.  --attn-unfused is --mtl-env
MTL_ATTN=unfused (the attention forward through [T,T] score matrices, as
before the fused kernel of lib/nn/ops_attn.c).  --no-torch leaves
PyTorch out (its bge-large and T = 512 forwards take minutes each on
BLIS's generic kernels).

--avx2-only runs every runtime on the CPU an AVX2-only machine (AMD Zen
3) has: BUILD/bench/avx2only.so (bench/avx2only.c) hides AVX-512,
AVX-VNNI and GFNI from CPUID in every process (LD_PRELOAD; it needs
CPUID faulting, the cpuid_fault flag of /proc/cpuinfo), GLIBC_TUNABLES
hides them from glibc's string functions, node runs without its
WebAssembly trap handler (which would take the shim's SIGSEGV), and BLIS
is told to use its Zen 3 sub-configuration (BLIS_ARCH_TYPE), as it
would there.  The clock speed, caches and memory stay this machine's.

--low-memory runs mtl's training steps as mtl-step --low-memory does
(one layer's gradient at a time, two passes a step; bench_train -L);
PyTorch's side is unchanged.

--cpu-time counts CPU seconds (user + system, every thread and child
process) instead of wall seconds, with one thread each (--threads 1): on
a machine other jobs share, that is the work each runtime does, which wall
time under load is not.  mtl's job then counts both of its processes from
start to end (model loading and tokenization included).

Every round runs every workload on every runtime, rotating which runtime
goes first; the table gives the median over rounds of each runtime and the
median of the per-round ratios (both sides of a ratio ran within seconds of
each other).  The load average is printed with every measurement.

Setup, done once into BUILD/bench/compare/ (reused while present): model
directories with random weights (tools/ref_bert.py, seed 0), their ONNX
exports (torch.onnx.export of the reference model plus CLS pooling and L2
normalisation, opset 14), the sentences and their token ids; and
onnxruntime-node from the npm registry into BUILD/bench/node/
(ONNXRUNTIME_NODE_INSTALL=skip: the CPU binary is in the package).  A
runtime that cannot run (no torch, no node or npm) shows as "-".
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
SHAPES = {"small": (384, 12, 12, 1536), "base": (768, 12, 12, 3072),
          "large": (1024, 24, 16, 4096)}
DEFAULT_WORK = "job:small,encode:small:32x32,encode:small:8x128,encode:base:32x32,encode:base:8x128"
TRAIN_WORK = ",".join("train:%s:%s" % (m, s) for m in ("small", "base", "large") for s in ("16x64", "4x512"))
SENTENCES = [("trec/test.jsonl", None), ("sst2/dev.jsonl", None), ("trec/train.jsonl", 1600)]
GLIBC_NO_AVX512 = "glibc.cpu.hwcaps=-AVX512F,-AVX512CD,-AVX512BW,-AVX512DQ,-AVX512VL"
FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile")


def say(*a):
    print(*a, file=sys.stderr, flush=True)


def load():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def cpu_line():
    model, flags = "unknown CPU", []
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                have = set(line.split(":", 1)[1].split())
                flags = [x for x in FLAGS if x in have]
    return "%s, %d cpus, flags: %s" % (model, os.cpu_count(), " ".join(flags) or "none of " + " ".join(FLAGS))


# ---- setup ----------------------------------------------------------------

def make_model_dir(d, name):
    """A bge-shaped model directory mtl and the reference both load."""
    import numpy as np
    sys.path.insert(0, TOOLS)
    import ref_bert as rb
    import safetensors_io as sio
    H, L, nh, I = SHAPES[name]
    os.makedirs(os.path.join(d, "1_Pooling"), exist_ok=True)
    tok = os.path.join(SHARED, "models", "bge-small-en-v1.5")
    for f in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(os.path.join(tok, f), os.path.join(d, f))
    cfg = rb.BertConfig(hidden_size=H, num_hidden_layers=L, num_attention_heads=nh,
                        intermediate_size=I, vocab_size=30522, max_position_embeddings=512)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(dict(cfg.to_dict(), architectures=["BertModel"], model_type="bert"), f, indent=2)
    with open(os.path.join(d, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": H, "pooling_mode_cls_token": True,
                   "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": False}, f)
    with open(os.path.join(d, "modules.json"), "w") as f:
        json.dump([{"idx": 0, "name": "0", "path": "",
                    "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling",
                    "type": "sentence_transformers.models.Pooling"},
                   {"idx": 2, "name": "2", "path": "2_Normalize",
                    "type": "sentence_transformers.models.Normalize"}], f, indent=2)
    model = rb.init_bert(cfg, np.random.RandomState(0))
    sio.write(os.path.join(d, "model.safetensors"),
              {n: (p.detach().numpy(), "F32") for n, p in model.state_dict().items()},
              {"format": "pt"})
    return model


def export_onnx(model, path):
    import torch
    sys.path.insert(0, TOOLS)
    import ref_bert as rb

    class Embed(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return rb.sentence_embedding(self.bert, input_ids, attention_mask, token_type_ids, "cls")

    ids = torch.randint(1000, 2000, (2, 16))
    axes = {0: "batch", 1: "seq"}
    torch.onnx.export(Embed(model.eval()), (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                      path, input_names=["input_ids", "attention_mask", "token_type_ids"],
                      output_names=["embedding"], opset_version=14,
                      dynamic_axes={"input_ids": axes, "attention_mask": axes,
                                    "token_type_ids": axes, "embedding": {0: "batch"}})


def setup(build, out, models, threads):
    os.makedirs(out, exist_ok=True)
    have_torch = subprocess.run([sys.executable, "-c", "import torch"],
                                capture_output=True).returncode == 0
    for name in models:
        d = os.path.join(out, name)
        if not os.path.exists(os.path.join(d, "model.safetensors")):
            if not have_torch:
                sys.exit("bench-compare: the model needs the PyTorch reference: apt-get install python3-torch")
            say("bench-compare: writing %s (random weights)" % d)
            model = make_model_dir(d, name)
            say("bench-compare: exporting %s.onnx" % d)
            export_onnx(model, d + ".onnx")
    sent = os.path.join(out, "sentences.jsonl")
    if not os.path.exists(sent):
        with open(sent + ".tmp", "w") as f:
            for path, n in SENTENCES:
                with open(os.path.join(SHARED, "data", path)) as g:
                    for i, line in enumerate(g):
                        if n is not None and i >= n:
                            break
                        f.write(json.dumps({"text": json.loads(line)["text"]}) + "\n")
        os.rename(sent + ".tmp", sent)
    ids = os.path.join(out, "ids.json")
    if not os.path.exists(ids) and "small" in models:
        p = subprocess.run("%s/mtl-tokenize -q -m %s/small %s | %s/mtl-dump -t example"
                           % (build, out, sent, build), shell=True, check=True,
                           capture_output=True, text=True)
        rows = [json.loads(line)["ids"] for line in p.stdout.splitlines()]
        with open(ids, "w") as f:
            json.dump(rows, f)
    node = os.path.join(build, "bench", "node")
    if not os.path.exists(os.path.join(node, "node_modules", "onnxruntime-node")) and shutil.which("npm"):
        say("bench-compare: npm install onnxruntime-node into %s" % node)
        os.makedirs(node, exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", node,
                        "onnxruntime-node"], env=dict(os.environ, ONNXRUNTIME_NODE_INSTALL="skip"),
                       check=False, stdout=sys.stderr)
    have_ort = shutil.which("node") and os.path.exists(os.path.join(node, "node_modules", "onnxruntime-node"))
    return have_torch, have_ort, node


# ---- the runtimes ---------------------------------------------------------

def run(cmd, env=None, shell=False):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, shell=shell)
    if p.returncode != 0:
        say("bench-compare: failed: %s\n%s" % (cmd if shell else " ".join(cmd), p.stderr.strip()))
        return None
    return p


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def mtl(args, work, out, int8=False, env=None):
    env = dict(os.environ, **env) if env else None
    if work[0] == "train":
        p = run([os.path.join(args.build, "bench", "bench_train"), "-R", "-m", work[1],
                 "-b", work[2], "-t", str(args.threads), "-s", str(args.min_time),
                 "-n", str(args.max_steps)] + (["-c"] if args.cpu_time else [])
                + (["-r"] if args.recompute else []) + (["-L"] if args.low_memory else []), env=env)
        rows = [ln.split("\t") for ln in p.stdout.splitlines() if ln.startswith(work[1] + "\t")] if p else []
        if not rows:
            return None
        args.train[work, "mtl"].append((float(rows[-1][4]), float(rows[-1][9])))
        return float(rows[-1][5])
    if work[0] == "encode":
        p = run([os.path.join(args.build, "bench", "bench_encode"), "-d", "-m", work[1],
                 "-s", work[2], "-t", str(args.threads), "-r", str(args.runs)]
                + (["-c"] if args.cpu_time else []) + (["-8", "auto"] if int8 else []), env=env)
        if not p:
            return None
        rows = [ln.split() for ln in p.stdout.splitlines() if ln.startswith(work[1] + " ")]
        return float(rows[-1][4]) if rows else None
    d = os.path.join(out, work[1])
    t0, c0 = time.perf_counter(), children_cpu()
    p = run("%s/mtl-tokenize -q -m %s %s/sentences.jsonl | %s/mtl-score --embed -m %s -j %d%s >/dev/null"
            % (args.build, d, out, args.build, d, args.threads, " --int8" if int8 else ""),
            env=env, shell=True)
    el = children_cpu() - c0 if args.cpu_time else time.perf_counter() - t0
    if not p:
        return None
    line = p.stderr.strip().splitlines()[-1]
    # "mtl-score: example N, ..." (older: "mtl-score: N examples ...")
    n = int(re.search(r"\d+", line.split(": ", 1)[1]).group())
    if args.padding is None:
        args.padding = "; ".join(s for s in line.split("; ")[1:] if "token positions" in s or "batches" in s)
    return n / el


def torch_side(args, work, out):
    if work[0] in ("encode", "train"):
        p = run([sys.executable, os.path.join(TOOLS, "bench_torch.py"), "--threads", str(args.threads),
                 "--min-time", str(args.min_time), "--max-iters", str(args.max_steps), ":".join(work)]
                + (["--cpu-time"] if args.cpu_time else []) + (["--recompute"] if args.recompute else []))
        rows = [ln.split("\t") for ln in p.stdout.splitlines() if ln.startswith(work[0] + "\t")] if p else []
        if not rows:
            return None
        if work[0] == "train":
            args.train[work, "torch"].append((float(rows[-1][10]), float(rows[-1][14])))
            return float(rows[-1][12])
        return float(rows[-1][11])
    p = run([sys.executable, os.path.abspath(__file__), "--torch-job", os.path.join(out, work[1]),
             "--threads", str(args.threads), os.path.join(out, "ids.json")]
            + (["--cpu-time"] if args.cpu_time else []))
    return float(p.stdout.split()[-1]) if p else None


def torch_job(model_dir, ids_path, threads, clock):
    """Child: the sentence-transformers way with the reference model."""
    import torch
    sys.path.insert(0, TOOLS)
    import ref_bert as rb
    torch.set_num_threads(threads)
    model = rb.load_bert(model_dir).eval()
    with open(ids_path) as f:
        rows = json.load(f)
    order = sorted(range(len(rows)), key=lambda i: (len(rows[i]), i))
    batches = []
    for s in range(0, len(order), 32):
        b = [rows[i] for i in order[s:s + 32]]
        T = max(len(r) for r in b)
        ids = torch.zeros(len(b), T, dtype=torch.long)
        mask = torch.zeros(len(b), T, dtype=torch.long)
        for i, r in enumerate(b):
            ids[i, :len(r)] = torch.tensor(r)
            mask[i, :len(r)] = 1
        batches.append((ids, mask))
    with torch.no_grad():
        rb.sentence_embedding(model, *batches[-1])
        t0 = clock()
        for ids, mask in batches:
            rb.sentence_embedding(model, ids, mask)
        el = clock() - t0
    print("%.2f" % (len(rows) / el))


def ort(args, work, out, node):
    env = dict(os.environ, NODE_PATH=os.path.join(node, "node_modules"),
               BENCH_CPU_TIME="1" if args.cpu_time else "0")
    onnx = os.path.join(out, work[1] + ".onnx")
    node_cmd = ["node"] + (["--disable-wasm-trap-handler"] if args.avx2_only else [])
    if work[0] == "encode":
        cmd = node_cmd + [os.path.join(TOOLS, "bench_ort.js"), onnx, str(args.threads), "shape",
                          work[2], str(args.min_time)]
    else:
        cmd = node_cmd + [os.path.join(TOOLS, "bench_ort.js"), onnx, str(args.threads), "job",
                          os.path.join(out, "ids.json"), "32"]
    p = run(cmd, env=env)
    return float(p.stdout.split()[-1]) if p else None


def avx2_only(build):
    """Every child from here on sees an AVX2-only CPU (see --avx2-only)."""
    shim = os.path.abspath(os.path.join(build, "bench", "avx2only.so"))
    if not os.path.exists(shim):
        sys.exit("bench-compare: no %s (make %s)" % (shim, os.path.relpath(shim, ROOT)))
    os.environ["LD_PRELOAD"] = shim
    os.environ["GLIBC_TUNABLES"] = GLIBC_NO_AVX512
    probe = os.path.join(build, "bench", "bench_encode")
    for i in range(64):  # BLIS's id of its Zen 3 sub-configuration
        p = subprocess.run([probe, "-a"], capture_output=True, text=True,
                           env=dict(os.environ, BLIS_ARCH_TYPE=str(i)))
        if p.returncode == 0 and p.stdout.strip() == "zen3":
            os.environ["BLIS_ARCH_TYPE"] = str(i)
            break
        if p.returncode != 0 and "avx2only" in p.stderr:
            sys.exit("bench-compare: " + p.stderr.strip())
    else:
        sys.exit("bench-compare: this BLIS has no zen3 sub-configuration (BLIS_ARCH_TYPE)")
    p = run([probe, "-g"])
    if not p or p.stdout.strip() == "avx512":
        sys.exit("bench-compare: --avx2-only: mtl still sees AVX-512")


def fmt(v, spec="%.1f"):
    return "-" if v is None else spec % v


def main(argv):
    ap = argparse.ArgumentParser(description="mtl beside PyTorch and ONNX Runtime")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cpu-time", action="store_true", help="CPU seconds, one thread each")
    ap.add_argument("--min-time", type=float, default=3.0, help="seconds per encode measurement")
    ap.add_argument("--runs", type=int, default=5, help="mtl encode: forwards per measurement")
    ap.add_argument("--max-steps", type=int, default=1000, help="train: at most N timed steps")
    ap.add_argument("--recompute", action="store_true",
                    help="train: both sides recompute each layer's activations in backward "
                         "(mtl's --recompute, PyTorch's torch.utils.checkpoint)")
    ap.add_argument("--low-memory", action="store_true",
                    help="train: mtl holds one layer's gradient at a time (mtl-step "
                         "--low-memory: two passes a step); PyTorch has no such mode")
    ap.add_argument("--work", default=DEFAULT_WORK)
    ap.add_argument("--int8", action="store_true", help="also mtl with int8 linear maps")
    ap.add_argument("--attn-unfused", action="store_true", help="also mtl with MTL_ATTN=unfused")
    ap.add_argument("--mtl-env", action="append", default=[], metavar="VAR=VALUE",
                    help="also mtl with this environment variable (repeatable)")
    ap.add_argument("--avx2-only", action="store_true",
                    help="every runtime on the CPU an AVX2-only machine has (bench/avx2only.c)")
    ap.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    ap.add_argument("--torch-job", help=argparse.SUPPRESS)
    ap.add_argument("build")
    args = ap.parse_args(argv[1:])
    if args.torch_job:
        torch_job(args.torch_job, args.build, args.threads,
                  time.process_time if args.cpu_time else time.perf_counter)
        return 0
    if args.cpu_time:
        args.threads = 1

    names = []
    for w in args.work.split(","):
        names += TRAIN_WORK.split(",") if w == "train" else [w]
    work = [tuple(w.split(":")) for w in names]
    for w in work:
        if not ((w[0] in ("encode", "train") and len(w) == 3 and w[1] in SHAPES
                 and re.fullmatch(r"[1-9][0-9]*x[1-9][0-9]*", w[2])) or w == ("job", "small")):
            ap.error("bad workload %r" % ":".join(w))
    args.max_steps = max(1, args.max_steps)
    args.train = {(w, side): [] for w in work for side in ("mtl", "torch")}
    out = os.path.join(args.build, "bench", "compare")
    if all(w[0] == "train" for w in work):  # no model files, sentences or ONNX Runtime
        have_torch = run([sys.executable, "-c", "import torch"]) is not None
        have_ort, node = False, None
    else:
        have_torch, have_ort, node = setup(args.build, out, sorted({w[1] for w in work if w[0] != "train"}),
                                           args.threads)
    args.padding = None
    print("# %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print("# %s" % cpu_line())
    if args.avx2_only:
        avx2_only(args.build)
        print("# --avx2-only: every runtime sees no AVX-512, AVX-VNNI or GFNI (bench/avx2only.c); "
              "BLIS_ARCH_TYPE=%s (%s)" % (os.environ["BLIS_ARCH_TYPE"], "zen3"))
    p = run([os.path.join(args.build, "bench", "bench_encode"), "-a"])
    print("# BLIS sub-configuration (mtl and PyTorch): %s%s" % (
        p.stdout.strip() if p else "unknown",
        " (reference kernels: this BLIS does not know the CPU)" if p and p.stdout.strip() == "generic" else ""))
    p = run([os.path.join(args.build, "bench", "bench_encode"), "-g"])
    print("# mtl's sgemm kernel (lib/nn/gemm.h, MTL_GEMM): %s" % (p.stdout.strip() if p else "unknown"))
    print("# %d threads each, %s time; %d rounds, interleaved; load average at start %s"
          % (args.threads, "CPU" if args.cpu_time else "wall", args.rounds, load()))
    if not have_torch:
        print("# PyTorch: not installed (apt-get install python3-torch)")
    if not have_ort and node:
        print("# ONNX Runtime: onnxruntime-node not installed (needs node and npm)")
    sys.stdout.flush()
    if args.attn_unfused:
        args.mtl_env.insert(0, "MTL_ATTN=unfused")
    for v in args.mtl_env:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", v):
            ap.error("bad --mtl-env %r: not VAR=VALUE" % v)
    variants = ["mtl " + v for v in args.mtl_env]
    res = {w: dict({"mtl": [], "mtl8": [], "torch": [], "ort": []}, **{v: [] for v in variants})
           for w in work}
    sides = [("mtl", lambda w: mtl(args, w, out))]
    if args.int8:
        sides.append(("mtl8", lambda w: mtl(args, w, out, int8=True)))
    for v in args.mtl_env:
        var, val = v.split("=", 1)
        sides.append(("mtl " + v, lambda w, e={var: val}: mtl(args, w, out, env=e)))
    if args.no_torch:
        print("# PyTorch: left out (--no-torch)")
        have_torch = False
    if have_torch:
        sides.append(("torch", lambda w: torch_side(args, w, out)))
    if have_ort:
        sides.append(("ort", lambda w: ort(args, w, out, node)))
    for r in range(args.rounds):
        for w in work:
            k = r % len(sides)
            for name, fn in sides[k:] + sides[:k]:
                if w[0] == "train" and name in ("mtl8", "ort"):
                    continue  # inference only
                la = load()
                v = fn(w)
                res[w][name].append(v)
                rss = ""
                if w[0] == "train" and v is not None:
                    rss = ", %.0f MB peak RSS" % args.train[w, name][-1][1]
                print("# round %d %-20s %-5s %8s %s/s%s  (load %s at start, %s at end)"
                      % (r + 1, ":".join(w), name, fmt(v), "tokens" if w[0] == "train" else "sentences",
                         rss, la, load()), flush=True)
    print("# load average at end %s" % load())
    if args.padding:
        print("# mtl job: %s (mtl-score's count, sorted windows)" % args.padding)

    def med(v):
        v = [x for x in v if x is not None]
        return statistics.median(v) if v else None

    def ratio(w, a, b):
        return med([x / y for x, y in zip(res[w][a], res[w][b]) if x and y])

    train = [w for w in work if w[0] == "train"]
    if train:
        def tmed(w, side, i):
            return med([x[i] for x in args.train[w, side]])

        def rss_ratio(w):
            return med([a[1] / b[1] for a, b in zip(args.train[w, "mtl"], args.train[w, "torch"])])
        print()
        print("| training | mtl tokens/s | PyTorch tokens/s | mtl / PyTorch | mtl s/step | PyTorch s/step "
              "| mtl peak RSS (MB) | PyTorch peak RSS (MB) | mtl / PyTorch RSS |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for w in train:
            print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                ":".join(w[1:]), fmt(med(res[w]["mtl"])), fmt(med(res[w]["torch"])),
                fmt(ratio(w, "mtl", "torch"), "%.2f"), fmt(tmed(w, "mtl", 0), "%.2f"),
                fmt(tmed(w, "torch", 0), "%.2f"), fmt(tmed(w, "mtl", 1), "%.0f"),
                fmt(tmed(w, "torch", 1), "%.0f"), fmt(rss_ratio(w), "%.2f")))
        print("\n(tokens per %s second and seconds per step: medians over rounds; peak RSS: the "
              "process's ru_maxrss; ratios: medians of the per-round ratios)" % ("CPU" if args.cpu_time else "wall"))
        work = [w for w in work if w[0] != "train"]
        if not work:
            return 0
    q8h = " mtl int8 | int8 / ORT | int8 / fp32 |" if args.int8 else ""
    uh = "".join(" %s | it / ORT | mtl / it |" % v for v in variants)
    print()
    print("| workload | mtl | PyTorch | ONNX Runtime | mtl / ORT | mtl / PyTorch |" + q8h + uh)
    print("|---|---:|---:|---:|---:|---:|" + ("---:|" * 3 if args.int8 else "")
          + "---:|" * 3 * len(variants))
    for w in work:
        q8 = " %s | %s | %s |" % (fmt(med(res[w]["mtl8"])), fmt(ratio(w, "mtl8", "ort"), "%.2f"),
                                  fmt(ratio(w, "mtl8", "mtl"), "%.2f")) if args.int8 else ""
        un = "".join(" %s | %s | %s |" % (fmt(med(res[w][v])), fmt(ratio(w, v, "ort"), "%.2f"),
                                          fmt(ratio(w, "mtl", v), "%.2f")) for v in variants)
        print("| %s | %s | %s | %s | %s | %s |%s%s" % (
            ":".join(w), fmt(med(res[w]["mtl"])), fmt(med(res[w]["torch"])), fmt(med(res[w]["ort"])),
            fmt(ratio(w, "mtl", "ort"), "%.2f"), fmt(ratio(w, "mtl", "torch"), "%.2f"), q8, un))
    print("\n(sentences per %s second, medians over rounds; ratios: medians of the per-round ratios)"
          % ("CPU" if args.cpu_time else "wall"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
