#!/usr/bin/env python3
"""Training throughput of an MLP 784-256-128-10 with SGD, in PyTorch and matnet.

Both sides run the same loop on the same kind of data: one pre-generated
float32 tensor of uniform [0, 1) "images" (MNIST-shaped, 784 features) with
random labels in 0..9; each step takes the next contiguous batch (a view),
runs forward, cross-entropy, backward and an SGD step (lr 0.01). One warm-up
epoch, then the median images/s over --epochs timed epochs.

With --matnet PATH the script also runs `PATH bench mlp --json` with
MATNET_NUM_THREADS set to the same thread count, and prints both side by side
with the ratio matnet / torch. That is one run, same machine, same moment.

Usage: python3 bench/torch_mlp.py [--threads 2] [--batch-sizes 64,256]
                                  [--epochs 3] [--images 60000] [--rounds 1]
                                  [--matnet [LABEL=]PATH]...
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

import torch
import torch.nn as nn

from torch_train import parse_binaries, synthetic_mnist, timed_epochs


def torch_images_per_sec(batch, epochs, images, threads):
    torch.set_num_threads(threads)
    x, y = synthetic_mnist(images)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    return timed_epochs(model, opt, x, y, batch, epochs)


def matnet_images_per_sec(path, batches, epochs, images, threads):
    env = dict(os.environ, MATNET_NUM_THREADS=str(threads))
    cmd = [path, "bench", "mlp", "--json", "--batch-sizes", ",".join(map(str, batches)),
           "--epochs", str(epochs), "--images", str(images)]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"matnet: could not run {' '.join(cmd)}: {e}", file=sys.stderr)
        return {}
    rows = json.loads(out)
    # Since issue 12 the rows sit under "rows", beside the "cpu" facts.
    if isinstance(rows, dict):
        rows = rows["rows"]
    return {r["batch"]: r["images_per_sec"] for r in rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-sizes", default="64,256")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--images", type=int, default=60000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--matnet", metavar="[LABEL=]PATH", action="append",
                    help="matnet binary to run beside PyTorch (repeatable)")
    args = ap.parse_args()
    batches = [int(b) for b in args.batch_sizes.split(",")]
    bins = parse_binaries(args.matnet)
    print(f"MLP 784-256-128-10, SGD, {args.threads} threads, {args.images} images/epoch, "
          f"median of {args.epochs} epochs (torch {torch.__version__})")
    head = "".join(f" {l + ' img/s':>14} {l + '/torch':>13}" for l, _ in bins)
    print(f"{'round':>5} {'batch':>6} {'torch img/s':>12}{head}")
    ratios = {(b, l): [] for b in batches for l, _ in bins}
    for r in range(args.rounds):
        theirs = {label: matnet_images_per_sec(path, batches, args.epochs, args.images, args.threads)
                  for label, path in bins}
        for b in batches:
            t, _ = torch_images_per_sec(b, args.epochs, args.images, args.threads)
            cells = ""
            for label, _ in bins:
                m = theirs[label].get(b)
                if m:
                    ratios[(b, label)].append(m / t)
                    cells += f" {m:>14.0f} {m / t:>12.2f}x"
                else:
                    cells += f" {'n/a':>14} {'n/a':>13}"
            print(f"{r + 1:>5} {b:>6} {t:>12.0f}{cells}", flush=True)
    for (b, label), rs in ratios.items():
        if rs:
            print(f"batch {b}: median {label}/torch over {len(rs)} rounds = "
                  f"{statistics.median(rs):.2f}x")


if __name__ == "__main__":
    main()
