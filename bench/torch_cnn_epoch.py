#!/usr/bin/env python3
"""One real training epoch of the `cnn` (or LeNet-5) model on MNIST in PyTorch,
for comparing peak memory and epoch time with `matnet train --epochs 1`.

It mirrors matnet's run: the four IDX files are read from DIR (gzip), the
last 5,000 training images are held out for validation, images are scaled
to [0, 1] and standardised with MNIST's mean/std, batch 64, Adam lr 1e-3,
shuffled every epoch; afterwards validation and test accuracy are computed
in batches of 250. Run both under `/usr/bin/time -v` and compare
"Maximum resident set size".

Usage: /usr/bin/time -v python3 bench/torch_cnn_epoch.py --data DIR [--model cnn] [--threads 2]
"""
import argparse
import gzip
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from torch_train import MODELS


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data_dir, prefix):
    x = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz")).reshape(-1, 784)
    y = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    x = (torch.from_numpy(x.astype(np.float32)) / 255.0 - 0.1307) / 0.3081
    return x, torch.from_numpy(y.astype(np.int64))


def accuracy(model, x, y):
    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, len(x), 250):
            correct += (model(x[s:s + 250]).argmax(1) == y[s:s + 250]).sum().item()
    model.train()
    return correct / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default="cnn", choices=sorted(MODELS))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, y = load(args.data, "train")
    xt, yt = load(args.data, "t10k")
    xv, yv = x[-5000:], y[-5000:]
    x, y = x[:-5000], y[:-5000]
    model = MODELS[args.model]()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t = time.perf_counter()
    perm = torch.randperm(len(x))
    for s in range(0, len(x), 64):
        idx = perm[s:s + 64]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    secs = time.perf_counter() - t
    print(f"{args.model}: 1 epoch {secs:.1f} s ({len(x) / secs:.0f} images/s), "
          f"val {accuracy(model, xv, yv):.4f}, test {accuracy(model, xt, yt):.4f}")


if __name__ == "__main__":
    main()
