"""PyTorch baseline for mtl's benchmarks: the same encode and training
workloads on bge-small/base/large shapes with random weights, using the
reference model (tools/ref_bert.py).

Usage: /usr/bin/python3 tools/bench_torch.py [--threads N] [--min-time S] [--cpu-time]
           [--max-iters N] [--models small,base,large] [--modes encode,train]
           [WORKLOAD ...]

WORKLOAD is MODE:MODEL:BxT (e.g. encode:small:32x32); without any, every
combination of --modes and --models is run at the standard sizes:
encode 32x32 and 8x128, train 16x64 and 8x128.

Setup (the best we found for a 2-core CPU): torch.set_num_threads(N) with
N = 2 by default, and OMP_WAIT_POLICY=PASSIVE in the environment (set by
this script before torch loads unless already set) so idle OpenMP threads
sleep instead of spinning on cores other jobs share.  Encode runs under
torch.no_grad() with the model in eval mode; it includes pooling and L2
normalisation.  Train runs one full step: forward in train mode (dropout
0.1 as in the config), a sequence head (3 labels, hidden 0, on CLS) and a
token head (5 labels), both losses, backward, torch.optim.AdamW step.
Inputs are random ids, every token attended (no padding).

Each workload runs in its own child process, so peak RSS (ru_maxrss) is
that workload's alone.  One warm-up iteration, then iterations until
--min-time seconds have passed (at least 3, or --max-iters if fewer: a
bge-large step takes minutes on one core).  With --cpu-time, time is the
process's CPU time instead of wall time (with --threads 1, the work itself,
whatever else runs on the machine).

FLOPs: forward = B*T*L*(8*H*H + 4*H*I + 4*T*H) (Q, K, V and attention
output projections, the two FFN matrices, QK^T and PV; embeddings,
LayerNorm, softmax and heads ignored); a training step counts 3x forward.

Output: '#' lines describing the machine and BLAS, then a TSV header and
one line per workload.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_bert as rb  # noqa: E402

SHAPES = {  # hidden, layers, heads, intermediate
    "small": (384, 12, 12, 1536),
    "base": (768, 12, 12, 3072),
    "large": (1024, 24, 16, 4096),
}
SIZES = {"encode": [(32, 32), (8, 128)], "train": [(16, 64), (8, 128)]}
COLUMNS = ["workload", "model", "hidden", "layers", "heads", "intermediate", "batch", "seq",
           "threads", "iters", "sec_per_iter", "sent_per_s", "tokens_per_s", "gflops",
           "peak_rss_mb"]


def blas_info():
    lines = []
    for line in torch.__config__.show().splitlines():
        line = line.strip().lstrip("- ")
        if line.startswith("Build settings:"):
            keep = [kv.strip() for kv in line.split(":", 1)[1].split(",")
                    if kv.strip().startswith(("BLAS_INFO=", "LAPACK_INFO=", "USE_MKLDNN=",
                                              "USE_OPENMP="))]
            lines.append("torch build: " + " ".join(keep))
        elif any(k in line for k in ("MKL", "OpenMP", "CPU capability")):
            lines.append("torch: " + line)
    try:
        q = subprocess.run(["update-alternatives", "--query", "libblas.so.3-x86_64-linux-gnu"],
                           capture_output=True, text=True, check=False).stdout
        val = [ln.split(":", 1)[1].strip() for ln in q.splitlines() if ln.startswith("Value:")]
        lines.append("libblas.so.3 -> " + (val[0] if val else "unknown"))
    except OSError:
        lines.append("libblas.so.3 -> unknown (no update-alternatives)")
    try:
        lines.append("libblas.so.3 resolves to " + os.path.realpath(
            "/usr/lib/x86_64-linux-gnu/libblas.so.3"))
    except OSError:
        pass
    return lines


def forward_flops(H, L, I, B, T):
    return B * T * L * (8 * H * H + 4 * H * I + 4 * T * H)


def make_model(name, dropout):
    H, L, nh, I = SHAPES[name]
    cfg = rb.BertConfig(hidden_size=H, num_hidden_layers=L, num_attention_heads=nh,
                        intermediate_size=I, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout)
    model = rb.BertModel(cfg)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "LayerNorm.weight" in n:
                p.fill_(1.0)
            elif n.endswith("bias"):
                p.zero_()
            else:
                p.normal_(0.0, 0.02, generator=g)
    return model, cfg


CLOCK = time.perf_counter


def timed(fn, min_time, max_iters):
    fn()  # warm-up: allocations, AdamW state, thread pool start
    n, t0 = 0, CLOCK()
    while True:
        fn()
        n += 1
        el = CLOCK() - t0
        if (n >= 3 and el >= min_time) or n >= max_iters:
            return n, el / n


def run_one(mode, name, B, T, threads, min_time, max_iters, recompute=False):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, cfg = make_model(name, 0.1)
    ids = torch.randint(1000, cfg.vocab_size, (B, T))
    mask = torch.ones(B, T, dtype=torch.long)
    if mode == "encode":
        model.eval()

        def step():
            with torch.no_grad():
                rb.sentence_embedding(model, ids, mask, mode="cls")
        flops = forward_flops(cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size, B, T)
    else:
        specs = [rb.TaskSpec({"name": "seq", "kind": "sequence", "labels": ["a", "b", "c"]}),
                 rb.TaskSpec({"name": "tok", "kind": "token",
                              "labels": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]})]
        mt = rb.MultiTaskModel(model, specs, "cls").train()
        model.checkpoint_layers = recompute
        labels = {"seq": torch.randint(0, 3, (B,)), "tok": torch.randint(0, 5, (B, T))}
        named = [(n, p) for n, p in mt.bert.named_parameters()]
        named += list(mt.head_state().items())
        opt = rb.make_adamw(named, lr=1e-5, weight_decay=0.01)

        def step():
            opt.zero_grad(set_to_none=True)
            total, _ = rb.multitask_loss(mt(ids, mask), labels, specs)
            total.backward()
            opt.step()
        flops = 3 * forward_flops(cfg.hidden_size, cfg.num_hidden_layers,
                                  cfg.intermediate_size, B, T)
    n, sec = timed(step, min_time, max_iters)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    H, L, nh, I = SHAPES[name]
    return [mode, name, H, L, nh, I, B, T, threads, n, "%.4f" % sec, "%.2f" % (B / sec),
            "%.1f" % (B * T / sec), "%.2f" % (flops / sec / 1e9), "%.0f" % rss_mb]


def main(argv):
    ap = argparse.ArgumentParser(description="PyTorch baseline benchmarks for mtl")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=3.0)
    ap.add_argument("--cpu-time", action="store_true")
    ap.add_argument("--max-iters", type=int, default=1000, help="at most N timed iterations (>= 1)")
    ap.add_argument("--models", default="small,base,large")
    ap.add_argument("--modes", default="encode,train")
    ap.add_argument("--recompute", action="store_true",
                    help="train: each layer through torch.utils.checkpoint")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("workloads", nargs="*")
    args = ap.parse_args(argv[1:])

    if args.cpu_time:
        global CLOCK
        CLOCK = time.process_time
    if args.child:
        mode, name, B, T = json.loads(args.child)
        print("\t".join(map(str, run_one(mode, name, B, T, args.threads, args.min_time,
                                               max(1, args.max_iters), args.recompute))))
        return 0

    work = []
    for w in args.workloads:
        try:
            mode, name, bt = w.split(":")
            B, T = (int(x) for x in bt.split("x"))
        except ValueError:
            ap.error("bad workload %r (want MODE:MODEL:BxT)" % w)
        if mode not in SIZES or name not in SHAPES:
            ap.error("bad workload %r" % w)
        work.append((mode, name, B, T))
    if not work:
        for mode in args.modes.split(","):
            for name in args.models.split(","):
                for B, T in SIZES[mode]:
                    work.append((mode, name, B, T))

    print("# torch %s, threads %d, OMP_WAIT_POLICY=%s, cpus %d"
          % (torch.__version__, args.threads, os.environ.get("OMP_WAIT_POLICY"), os.cpu_count()))
    for line in blas_info():
        print("# " + line)
    print("\t".join(COLUMNS))
    sys.stdout.flush()
    rc = 0
    for w in work:
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--threads",
                            str(args.threads), "--min-time", str(args.min_time),
                            "--max-iters", str(args.max_iters)]
                           + (["--cpu-time"] if args.cpu_time else [])
                           + (["--recompute"] if args.recompute else []) + [
                            "--child", json.dumps(list(w))],
                           capture_output=True, text=True, check=False)
        if r.returncode != 0:
            sys.stderr.write("bench_torch: workload %s failed:\n%s" % (w, r.stderr))
            rc = 1
            continue
        sys.stdout.write(r.stdout)
        sys.stdout.flush()
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
