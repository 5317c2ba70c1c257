#!/usr/bin/env python3
"""PyTorch float32 matmul throughput, the reference for matnet's matmul bench.

Measures ``torch.mm`` in GFLOP/s (2*m*n*k / seconds per call) on CPU for

* square products ``square_N``: (N x N) @ (N x N), N = 64 ... 2048;
* the MNIST MLP training products, for mlp1 = (64 x 784) @ (784 x 256) and
  mlp2 = (256 x 784) @ (784 x 128) (batch x in) @ (in x out):
    - ``mlpK_fwd``: X @ W                     (batch x in) @ (in x out)
    - ``mlpK_gw``:  X^T @ G, A = x.t() view   (in x batch) @ (batch x out)
    - ``mlpK_gx``:  G @ W^T, B = w.t() view   (batch x out) @ (out x in)

for each requested thread count (``torch.set_num_threads``).  Each point is
warmed up, then timed in samples of enough calls to last >= 50 ms, until at
least 0.3 s and 5 samples have been spent; the reported time per call is the
median (default) or the best of the samples.

Output: a table by default; ``--json`` prints a JSON list of objects
{"name", "m", "k", "n", "ta", "tb", "threads", "gflops"}, where ta / tb tell
whether A / B is a transposed view.

``--matnet PATH`` also runs ``PATH bench matmul --json --threads T`` for each
thread count T (a matnet binary printing the same JSON list with the same
names) and prints a combined table with the ratio matnet / torch.

Usage: python3 bench/torch_matmul.py [--threads 1,2] [--json] [--matnet PATH]
"""

import argparse
import json
import shutil
import subprocess
import sys
import time

import torch

SQUARE_SIZES = [64, 128, 256, 512, 1024, 2048]
# (prefix, batch, in_features, out_features)
MLP_LAYERS = [("mlp1", 64, 784, 256), ("mlp2", 256, 784, 128)]

MIN_SAMPLE_S = 0.05   # each timed sample runs at least this long
MIN_TOTAL_S = 0.3     # each point is timed for at least this long in total
MIN_SAMPLES = 5


def shapes():
    """List of (name, m, k, n, ta, tb)."""
    out = [(f"square_{s}", s, s, s, False, False) for s in SQUARE_SIZES]
    for prefix, batch, fin, fout in MLP_LAYERS:
        out.append((f"{prefix}_fwd", batch, fin, fout, False, False))  # X @ W
        out.append((f"{prefix}_gw", fin, batch, fout, True, False))    # X^T @ G
        out.append((f"{prefix}_gx", batch, fout, fin, False, True))    # G @ W^T
    return out


def make_operands(m, k, n, ta, tb, gen):
    """A (m x k) and B (k x n); a transposed operand is a .t() view of a
    contiguous (k x m) resp. (n x k) tensor, as in the backward pass."""
    a = torch.randn(k, m, generator=gen).t() if ta else torch.randn(m, k, generator=gen)
    b = torch.randn(n, k, generator=gen).t() if tb else torch.randn(k, n, generator=gen)
    return a, b


def time_mm(a, b, stat):
    """Seconds per torch.mm call (median or best over timed samples)."""
    c = torch.empty(a.shape[0], b.shape[1], dtype=a.dtype)
    # Warm-up: at least 3 calls and ~50 ms, which also sizes the samples.
    calls, t0 = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - t0 < MIN_SAMPLE_S:
        torch.mm(a, b, out=c)
        calls += 1
    per_call = (time.perf_counter() - t0) / calls
    reps = max(1, int(MIN_SAMPLE_S / per_call))

    samples, spent = [], 0.0
    while len(samples) < MIN_SAMPLES or spent < MIN_TOTAL_S:
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b, out=c)
        dt = time.perf_counter() - t0
        spent += dt
        samples.append(dt / reps)
    samples.sort()
    return samples[0] if stat == "best" else samples[len(samples) // 2]


def run_torch(thread_counts, stat):
    gen = torch.Generator().manual_seed(0)
    results = []
    for threads in thread_counts:
        torch.set_num_threads(threads)
        for name, m, k, n, ta, tb in shapes():
            a, b = make_operands(m, k, n, ta, tb, gen)
            assert a.is_contiguous() != ta and b.is_contiguous() != tb
            sec = time_mm(a, b, stat)
            results.append({"name": name, "m": m, "k": k, "n": n, "ta": ta, "tb": tb,
                            "threads": threads, "gflops": 2.0 * m * n * k / sec / 1e9})
    return results


def run_matnet(path, thread_counts, only=None):
    """Run the matnet bench binary per thread count; returns {(name, threads): gflops}.

    Any failure (missing binary, non-zero exit, unparsable output) is reported
    on stderr and leaves the affected entries out.
    """
    found = {}
    exe = shutil.which(path)  # accepts a path or a program name on $PATH
    if exe is None:
        print(f"matnet: '{path}' is not an executable file; matnet column left empty "
              f"(build it first, e.g. cargo build --release)", file=sys.stderr)
        return found
    for threads in thread_counts:
        cmd = [exe, "bench", "matmul", "--json", "--threads", str(threads)]
        if only:
            cmd += ["--only", only, "--no-naive"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as e:
            print(f"matnet: failed to run {' '.join(cmd)}: {e}", file=sys.stderr)
            continue
        if proc.returncode != 0:
            print(f"matnet: {' '.join(cmd)} exited with {proc.returncode}:\n"
                  f"{proc.stderr.strip()}", file=sys.stderr)
            continue
        try:
            rows = json.loads(proc.stdout)
            # Since issue 12 the rows sit under "rows", beside the "cpu" facts.
            if isinstance(rows, dict):
                rows = rows["rows"]
            for row in rows:
                found[(row["name"], int(row.get("threads", threads)))] = float(row["gflops"])
        except (ValueError, KeyError, TypeError) as e:
            print(f"matnet: could not parse the JSON output of {' '.join(cmd)}: {e}",
                  file=sys.stderr)
    return found


def run_interleaved(path, thread_counts, stat, rounds):
    """Per product: torch, then matnet, back to back, `rounds` times over.

    On a shared VM whose speed drifts by 10-20% over minutes, timing all of
    one side and then all of the other skews the ratios; alternating per
    product and taking the median ratio over rounds does not.
    """
    import statistics
    gen = torch.Generator().manual_seed(0)
    cells = {}
    for _ in range(rounds):
        for threads in thread_counts:
            torch.set_num_threads(threads)
            for name, m, k, n, ta, tb in shapes():
                a, b = make_operands(m, k, n, ta, tb, gen)
                t = 2.0 * m * n * k / time_mm(a, b, stat) / 1e9
                g = run_matnet(path, [threads], only=name).get((name, threads))
                c = cells.setdefault((name, threads), {"name": name, "m": m, "k": k, "n": n,
                                                       "ta": ta, "tb": tb, "threads": threads,
                                                       "torch": [], "matnet": []})
                c["torch"].append(t)
                if g:
                    c["matnet"].append(g)
    print(f"torch {torch.__version__}, float32, {stat} time per call; torch and matnet "
          f"alternated per product, {rounds} rounds; ratio = median of per-round ratios")
    print(f"{'name':<12} {'shape':<26} {'threads':>7} {'torch GFLOP/s':>14} "
          f"{'matnet GFLOP/s':>15} {'matnet/torch':>13}  per-round ratios")
    for c in cells.values():
        ratios = [g / t for g, t in zip(c["matnet"], c["torch"])]
        med = lambda v: statistics.median(v) if v else float("nan")
        print(f"{c['name']:<12} {shape_str(c):<26} {c['threads']:>7} {med(c['torch']):>14.1f} "
              f"{med(c['matnet']):>15.1f} {med(ratios):>13.2f}  "
              + ", ".join(f"{r:.2f}" for r in ratios))


def shape_str(r):
    a = f"({r['k']}x{r['m']})^T" if r["ta"] else f"({r['m']}x{r['k']})"
    b = f"({r['n']}x{r['k']})^T" if r["tb"] else f"({r['k']}x{r['n']})"
    return f"{a}@{b}"


def print_table(results, matnet=None):
    head = f"{'name':<12} {'shape':<26} {'threads':>7} {'torch GFLOP/s':>14}"
    if matnet is not None:
        head += f" {'matnet GFLOP/s':>15} {'matnet/torch':>13}"
    print(head)
    print("-" * len(head))
    for r in results:
        line = f"{r['name']:<12} {shape_str(r):<26} {r['threads']:>7} {r['gflops']:>14.1f}"
        if matnet is not None:
            g = matnet.get((r["name"], r["threads"]))
            line += (f" {g:>15.1f} {g / r['gflops']:>13.2f}" if g is not None
                     else f" {'n/a':>15} {'n/a':>13}")
        print(line)


def main():
    ap = argparse.ArgumentParser(description="PyTorch float32 torch.mm GFLOP/s benchmark")
    ap.add_argument("--threads", default="1,2",
                    help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    ap.add_argument("--stat", choices=["median", "best"], default="median",
                    help="statistic over the timed samples (default median)")
    ap.add_argument("--matnet", metavar="PATH",
                    help="also run 'PATH bench matmul --json --threads T' and compare")
    ap.add_argument("--rounds", type=int, default=0,
                    help="with --matnet: alternate torch and matnet per product for this many "
                         "rounds and report median ratios (the fair comparison on a noisy host)")
    args = ap.parse_args()
    thread_counts = [int(t) for t in args.threads.split(",") if t.strip()]
    if args.matnet and args.rounds > 0:
        run_interleaved(args.matnet, thread_counts, args.stat, args.rounds)
        return

    results = run_torch(thread_counts, args.stat)
    matnet = run_matnet(args.matnet, thread_counts) if args.matnet else None

    if args.json:
        if matnet is not None:
            for r in results:
                r["matnet_gflops"] = matnet.get((r["name"], r["threads"]))
        print(json.dumps(results, indent=1))
    else:
        print(f"torch {torch.__version__}, float32 torch.mm, {args.stat} time per call")
        print_table(results, matnet)


if __name__ == "__main__":
    main()
