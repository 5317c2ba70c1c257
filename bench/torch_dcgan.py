#!/usr/bin/env python3
"""The DCGAN of `matnet train --model dcgan`, in PyTorch: training speed in
D+G steps per second, and samples for `matnet gan-score`.

Same model and loop as matnet (crates/matnet/src/models/dcgan.rs, gan.rs):
  G: z(100) -> Linear -> 128x7x7 -> BatchNorm, ReLU -> ConvTranspose2d(4, 2, 1)
     -> 64x14x14 -> BatchNorm, ReLU -> ConvTranspose2d(4, 2, 1) -> 1x28x28 -> tanh
  D: Conv2d(4, 2, 1) -> 64x14x14 -> LeakyReLU(0.2) -> Conv2d(4, 2, 1) -> 128x7x7
     -> LeakyReLU(0.2) -> Linear -> logit
the DCGAN paper's initialisation (conv, transposed-conv and linear weights
N(0, 0.02), biases 0, batch-norm scales N(1, 0.02)), images scaled to [-1, 1],
binary cross-entropy on logits: D minimises BCE(D(x), 1) + BCE(D(G(z)), 0)
(minus eq. 8), G the non-saturating BCE(D(G(z)), 1); one D step then one G
step on the same fake batch; two Adams, lr 2e-4, betas (0.5, 0.999); batch 64.

Two modes:

  train: --data DIR (the MNIST IDX files) trains for --seconds or --steps,
    prints D+G steps/s, and with --out FILE-idx3-ubyte.gz writes --samples
    generated digits (G in evaluation mode) as an IDX ubyte file.

      python3 bench/torch_dcgan.py --data $MATNET_DATA --seconds 1200 \\
          --samples 10000 --out /tmp/torch-idx3-ubyte.gz --threads 2

  bench (no --data): D+G steps/s on synthetic images, --rounds rounds of
    --steps steps after a warm-up. With --matnet [LABEL=]PATH (repeatable),
    each round runs `PATH bench gan --json` right after the PyTorch figure,
    with MATNET_NUM_THREADS set to the same thread count (interleaved, as
    bench/torch_train.py), and prints the ratio matnet / torch.

      python3 bench/torch_dcgan.py --threads 2 --rounds 5 --matnet target/release/matnet
"""
import argparse
import gzip
import json
import os
import statistics
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_train import parse_binaries

Z_DIM = 100


def generator():
    return nn.Sequential(
        nn.Linear(Z_DIM, 128 * 7 * 7), nn.Unflatten(1, (128, 7, 7)),
        nn.BatchNorm2d(128), nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh(), nn.Flatten())


def discriminator():
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(128 * 7 * 7, 1))


def dcgan_init(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Trainer:
    def __init__(self):
        self.g, self.d = generator(), discriminator()
        self.g.apply(dcgan_init)
        self.d.apply(dcgan_init)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(self, real):
        """One D step and one G step; returns (D loss, G loss, D(x), D(G(z)))."""
        n = real.shape[0]
        fake = self.g(torch.randn(n, Z_DIM))
        s_real, s_fake = self.d(real).view(n), self.d(fake.detach()).view(n)
        d_loss = (F.binary_cross_entropy_with_logits(s_real, torch.ones(n))
                  + F.binary_cross_entropy_with_logits(s_fake, torch.zeros(n)))
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        g_loss = F.binary_cross_entropy_with_logits(self.d(fake).view(n), torch.ones(n))
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        return (d_loss.item(), g_loss.item(), torch.sigmoid(s_real).mean().item(),
                torch.sigmoid(s_fake).mean().item())


def read_idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(dir, base):
    for name in (base + ".gz", base):
        if os.path.exists(os.path.join(dir, name)):
            return os.path.join(dir, name)
    sys.exit(f"error: {base}(.gz) not found in {dir}")


def write_idx(path, images):
    """uint8 images [N, 28, 28] as an IDX ubyte file, gzipped for .gz."""
    header = bytes([0, 0, 8, 3]) + struct.pack(">III", *images.shape)
    with (gzip.open if path.endswith(".gz") else open)(path, "wb") as f:
        f.write(header + images.astype(np.uint8).tobytes())


def train(args):
    torch.manual_seed(args.seed)
    images = read_idx(find(args.data, "train-images-idx3-ubyte"))
    x_all = torch.from_numpy(images.reshape(len(images), 784).astype(np.float32) / 127.5 - 1.0)
    t = Trainer()
    steps, start, last = 0, time.perf_counter(), None
    done = False
    while not done:
        order = torch.randperm(len(x_all))
        for b in range(0, len(x_all), args.batch):
            last = t.step(x_all[order[b:b + args.batch]])
            steps += 1
            secs = time.perf_counter() - start
            if steps % 200 == 0:
                print(f"step {steps}: D loss {last[0]:.4f} G loss {last[1]:.4f} "
                      f"D(x) {last[2]:.3f} D(G(z)) {last[3]:.3f} | {secs:.0f}s", flush=True)
            if (args.steps and steps >= args.steps) or (args.seconds and secs >= args.seconds):
                done = True
                break
    secs = time.perf_counter() - start
    print(f"torch {torch.__version__}, {args.threads} threads: {steps} D+G steps in {secs:.1f}s, "
          f"{steps / secs:.2f} steps/s")
    if args.out:
        t.g.eval()
        with torch.no_grad():
            x = torch.cat([t.g(torch.randn(min(500, args.samples - i), Z_DIM))
                           for i in range(0, args.samples, 500)])
        pixels = ((x.clamp(-1, 1) + 1) * 127.5).round().numpy().reshape(-1, 28, 28)
        write_idx(args.out, pixels)
        print(f"wrote {len(pixels)} samples to {args.out}")


def torch_steps_per_sec(args):
    torch.manual_seed(0)
    t = Trainer()
    real = torch.rand(args.batch, 784) * 2 - 1

    def round_():
        start = time.perf_counter()
        for _ in range(args.steps):
            t.step(real)
        return args.steps / (time.perf_counter() - start)

    round_()  # warm-up
    return round_()


def matnet_steps_per_sec(path, args):
    env = dict(os.environ, MATNET_NUM_THREADS=str(args.threads))
    cmd = [path, "bench", "gan", "--model", "dcgan", "--json", "--batch-size", str(args.batch),
           "--steps", str(args.steps), "--rounds", "1"]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"matnet: could not run {' '.join(cmd)}: {e}", file=sys.stderr)
        return None
    return json.loads(out)["steps_per_sec"]


def bench(args):
    bins = parse_binaries(args.matnet)
    print(f"dcgan D+G steps/s, batch {args.batch}, {args.threads} threads, {args.steps} steps "
          f"per round (torch {torch.__version__})")
    print(f"{'round':>5} {'torch':>8}" + "".join(f" {l:>10} {l + '/torch':>13}" for l, _ in bins))
    ratios = {l: [] for l, _ in bins}
    for r in range(args.rounds):
        t = torch_steps_per_sec(args)
        cells = ""
        for label, path in bins:
            m = matnet_steps_per_sec(path, args)
            if m:
                ratios[label].append(m / t)
                cells += f" {m:>10.2f} {m / t:>12.2f}x"
            else:
                cells += f" {'-':>10} {'-':>13}"
        print(f"{r + 1:>5} {t:>8.2f}{cells}", flush=True)
    for label, rs in ratios.items():
        if rs:
            print(f"median {label}/torch over {len(rs)} rounds = {statistics.median(rs):.2f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--data", help="MNIST directory: train instead of benchmarking")
    ap.add_argument("--seconds", type=float, help="train: wall-time budget")
    ap.add_argument("--steps", type=int, help="train: D+G steps; bench: steps per round [20]")
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--out", help="train: FILE-idx3-ubyte.gz for the samples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--matnet", metavar="[LABEL=]PATH", action="append",
                    help="bench: matnet binary to run beside PyTorch (repeatable)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.data:
        if not (args.seconds or args.steps):
            sys.exit("error: train with --seconds S or --steps N")
        train(args)
    else:
        args.steps = args.steps or 20
        bench(args)


if __name__ == "__main__":
    main()
