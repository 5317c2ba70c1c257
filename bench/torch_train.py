#!/usr/bin/env python3
"""Training throughput of the CLI's models (LeNet-5, `cnn`, `lstm`, `vit`), in
PyTorch and matnet.

Both sides build the same architectures as `matnet train --model NAME`
and run the same loop: one pre-generated float32 tensor of uniform [0, 1)
MNIST-shaped images with random labels, contiguous batches (views), forward
in training mode (dropout active), cross-entropy, backward, Adam (lr 1e-3).
One warm-up epoch, then the median images/s over --epochs timed epochs.

With --matnet PATH each round runs `PATH bench train --model M --json` right
after the PyTorch measurement of the same model, with MATNET_NUM_THREADS set
to the same thread count, so both sides see the same machine state; the
ratio printed is matnet / torch, per round and as the median over rounds.
--matnet may be given more than once as LABEL=PATH (for example
`--matnet before=/tmp/matnet-old --matnet after=target/release/matnet`):
every binary runs in every round, right after the same PyTorch figure, so a
change is compared against the old binary and PyTorch in one run.

Usage: python3 bench/torch_train.py [--threads 2] [--batch 64] [--images 6400]
                                  [--epochs 3] [--rounds 3] [--models lenet,cnn,lstm,vit]
                                  [--matnet [LABEL=]PATH]...
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def lenet():
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def cnn():
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(0.25), nn.Flatten(),
        nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))


class RowLstm(nn.Module):
    """The digit as 28 rows of 28 pixels, LSTM(28 -> 128), linear on h_T."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(28, 128, batch_first=True)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        _, (h, _) = self.rnn(x.view(-1, 28, 28))
        return self.fc(h[-1])


class Vit(nn.Module):
    """7×7 patches -> Linear(49, 64) + learned positions, 2 pre-norm GELU
    encoder layers (4 heads, feed-forward 128, dropout 0.1), final LayerNorm,
    mean over patches, Linear(64, 10)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(49, 64)
        self.pos = nn.Parameter(torch.randn(16, 64) * 0.02)
        layer = nn.TransformerEncoderLayer(64, 4, dim_feedforward=128, dropout=0.1,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(64),
                                             enable_nested_tensor=False)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        n = x.shape[0]
        p = x.view(n, 4, 7, 4, 7).permute(0, 1, 3, 2, 4).reshape(n, 16, 49)
        h = self.encoder(self.embed(p) + self.pos)
        return self.fc(h.mean(1))


MODELS = {"lenet": lenet, "cnn": cnn, "lstm": RowLstm, "vit": Vit}


def synthetic_mnist(images):
    """Uniform [0, 1) MNIST-shaped rows and random labels (seeded)."""
    g = torch.Generator().manual_seed(0)
    return torch.rand(images, 784, generator=g), torch.randint(0, 10, (images,), generator=g)


def timed_epochs(model, opt, x, y, batch, epochs):
    """One warm-up epoch, then `epochs` timed ones over contiguous batches;
    returns (median images/s, every epoch's figure)."""
    images = len(x)

    def epoch():
        t = time.perf_counter()
        for start in range(0, images, batch):
            xb, yb = x[start:start + batch], y[start:start + batch]
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return images / (time.perf_counter() - t)

    epoch()  # warm-up
    per = [epoch() for _ in range(epochs)]
    return statistics.median(per), per


def torch_images_per_sec(name, batch, epochs, images, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x, y = synthetic_mnist(images)
    model = MODELS[name]()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return timed_epochs(model, opt, x, y, batch, epochs)[0]


def matnet_images_per_sec(path, name, batch, epochs, images, threads):
    env = dict(os.environ, MATNET_NUM_THREADS=str(threads))
    cmd = [path, "bench", "train", "--model", name, "--json", "--batch-size", str(batch),
           "--epochs", str(epochs), "--images", str(images)]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"matnet: could not run {' '.join(cmd)}: {e}", file=sys.stderr)
        return None
    return json.loads(out)["images_per_sec"]


def parse_binaries(specs):
    """`[LABEL=]PATH` arguments as (label, path) pairs; the label defaults to "matnet"."""
    out = []
    for spec in specs or []:
        label, sep, path = spec.partition("=")
        out.append((label, path) if sep else ("matnet", spec))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--images", type=int, default=6400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="lenet,cnn")
    ap.add_argument("--matnet", metavar="[LABEL=]PATH", action="append",
                    help="matnet binary to run beside PyTorch (repeatable)")
    args = ap.parse_args()
    names = args.models.split(",")
    bins = parse_binaries(args.matnet)
    print(f"training throughput, batch {args.batch}, {args.threads} threads, Adam, "
          f"{args.images} images/epoch, median of {args.epochs} epochs per round "
          f"(torch {torch.__version__})")
    head = "".join(f" {l + ' img/s':>14} {l + '/torch':>13}" for l, _ in bins)
    print(f"{'model':>6} {'round':>5} {'torch img/s':>12}{head}")
    ratios = {(n, l): [] for n in names for l, _ in bins}
    for r in range(args.rounds):
        for name in names:
            t = torch_images_per_sec(name, args.batch, args.epochs, args.images, args.threads)
            cells = ""
            for label, path in bins:
                m = matnet_images_per_sec(path, name, args.batch, args.epochs, args.images,
                                          args.threads)
                if m:
                    ratios[(name, label)].append(m / t)
                    cells += f" {m:>14.0f} {m / t:>12.2f}x"
                else:
                    cells += f" {'-':>14} {'-':>13}"
            print(f"{name:>6} {r + 1:>5} {t:>12.0f}{cells}", flush=True)
    for (name, label), rs in ratios.items():
        if rs:
            print(f"{name}: median {label}/torch over {len(rs)} rounds = "
                  f"{statistics.median(rs):.2f}x")


if __name__ == "__main__":
    main()
