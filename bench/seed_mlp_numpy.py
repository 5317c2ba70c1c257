#!/usr/bin/env python3
"""NumPy reference of the seed MLP (shared/seeds/002_6db3db4d5b5e5273.txt).

Reproduces the from-scratch network that report describes, as written there:

* samples are columns: X is 784 x N, labels one-hot encoded as 10 x N;
* Dense(784 -> 10), ReLU, Dense(10 -> 10), Softmax;
* weights (out x in) and biases (out x 1) drawn uniformly in [-0.5, 0.5)
  (the report's ``np.random.rand(...) - 0.5``), in the order W1, b1, W2, b2;
* pixel values scaled to [0, 1];
* full-batch gradient descent, learning rate 0.5, 1000 iterations, on the
  first 80% (33,600) of the first 42,000 MNIST training images; evaluated on
  the remaining 8,400 of those 42,000 and on the official 10,000 test images.

Backward pass, per the report's Dense/Activation classes (Appendices C-H):

    dX = W^T . dY          (gradient handed to the previous layer)
    W -= lr * dY . X^T     (no 1/N here: the averaging happens in the loss)
    b -= lr * sum(dY)      (Appendix C: np.sum with no axis, i.e. ONE scalar,
                            the sum over all classes and samples, subtracted
                            from every bias of the layer)
    dX = dY * f'(X)        (activation layers, elementwise)

Output gradient: the report computes the loss "by taking the average of the
difference" between the network output and the one-hot targets and feeds that
into the Softmax layer, whose backward multiplies elementwise by a
"softmax prime".  Neither the ``error`` function nor ``deriv_SoftMax`` is
shown, so the pair is ambiguous.  We therefore use the cross-entropy gradient
for the softmax + loss pair, (y_hat - y) / N, as the gradient w.r.t. the
softmax *input* (i.e. the softmax prime is taken as 1 and the average is the
1/N over the batch).  ``--softmax-prime diag`` instead multiplies by the
diagonal of the softmax Jacobian, s * (1 - s), for comparison.

With the cross-entropy gradient every column of (y_hat - y) sums to zero, so
the report's whole-matrix bias sum leaves the output biases unchanged (up to
rounding); ``--bias-sum per-class`` uses the per-row sum instead.

Two harmless departures from the listing: the report's training loop runs
``range(epochs + 1)`` (1001 steps) while we run exactly ``--iterations``
steps, and we skip the unused input gradient W1^T . dZ1 of the first layer.
Softmax is computed in the max-subtracted form (mathematically identical).

``--torch`` runs the same loop on PyTorch tensors instead (float32, as
matnet; samples as columns, no autograd, the same initial values from the same
NumPy generator, the same update order), on ``--threads`` threads: the
baseline ``matnet train --model seed-mlp`` is timed against.

Usage: python3 bench/seed_mlp_numpy.py [--data DIR] [--seed 0] [--iterations 1000]
                                       [--torch [--threads 2]]
"""

import argparse
import gzip
import os
import struct
import time

import numpy as np


# ---------------------------------------------------------------------------
# MNIST IDX reader
# ---------------------------------------------------------------------------

def read_idx(path):
    """Read a (optionally gzip-compressed) IDX file into a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:  # 0x08 = unsigned byte
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {np.prod(dims)} values, got {data.size}")
    return data.reshape(dims)


def find_file(data_dir, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{stem}[.gz] not found in {data_dir}")


def load_split(data_dir, prefix):
    """Return (X as 784 x N float64 in [0, 1], labels as int64 N)."""
    images = read_idx(find_file(data_dir, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find_file(data_dir, f"{prefix}-labels-idx1-ubyte"))
    x = images.reshape(images.shape[0], -1).T.astype(np.float64) / 255.0
    return np.ascontiguousarray(x), labels.astype(np.int64)


# ---------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------

def relu(z):
    return np.maximum(z, 0.0)


def relu_prime(z):
    return (z > 0).astype(z.dtype)


def softmax(z):
    """Column-wise softmax (each column is one sample)."""
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def one_hot(labels, classes=10):
    """classes x N one-hot matrix (the report's Appendix L, already transposed)."""
    y = np.zeros((classes, labels.size))
    y[labels, np.arange(labels.size)] = 1.0
    return y


def init_params(rng):
    """Uniform [-0.5, 0.5) weights and biases, as np.random.rand(...) - 0.5."""
    w1 = rng.random((10, 784)) - 0.5
    b1 = rng.random((10, 1)) - 0.5
    w2 = rng.random((10, 10)) - 0.5
    b2 = rng.random((10, 1)) - 0.5
    return w1, b1, w2, b2


# The elementwise steps the training loop needs, per array library: the loop
# itself is written once and runs on NumPy arrays or PyTorch tensors.
NUMPY = {
    "array": lambda a: a,
    "relu": relu,
    "relu_prime": relu_prime,
    "softmax": softmax,
    "sum_all": np.sum,
    "sum_rows": lambda d: np.sum(d, axis=1, keepdims=True),
}


def torch_ops(threads):
    """NUMPY's steps for float32 PyTorch tensors (no autograd)."""
    import torch

    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)
    return {
        "array": lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)),
        "relu": torch.relu,
        "relu_prime": lambda z: (z > 0).to(z.dtype),
        "softmax": lambda z: torch.softmax(z, dim=0),
        "sum_all": lambda d: d.sum(),
        "sum_rows": lambda d: d.sum(dim=1, keepdim=True),
    }


def forward(params, x, ops=NUMPY):
    w1, b1, w2, b2 = params
    z1 = w1 @ x + b1          # Dense(784 -> 10)
    a1 = ops["relu"](z1)      # ReLU
    z2 = w2 @ a1 + b2         # Dense(10 -> 10)
    a2 = ops["softmax"](z2)   # Softmax
    return z1, a1, z2, a2


def accuracy(params, x, labels):
    return float(np.mean(np.argmax(forward(params, x)[3], axis=0) == labels))


def train(params, x, labels, lr, iterations, softmax_prime="identity", bias_sum="total",
          ops=NUMPY):
    """Returns the trained parameters (as NumPy arrays) and the wall time of
    the iterations (converting the inputs to `ops`' arrays is not timed)."""
    w1, b1, w2, b2 = (ops["array"](p) for p in params)
    x, y = ops["array"](x), ops["array"](one_hot(labels))
    n = x.shape[1]

    def bias_grad(dy):
        # Appendix C: np.sum(output_gradient) -> one scalar for the whole layer.
        if bias_sum == "total":
            return ops["sum_all"](dy)
        return ops["sum_rows"](dy)

    t0 = time.perf_counter()
    for _ in range(iterations):
        z1, a1, z2, a2 = forward((w1, b1, w2, b2), x, ops)

        # Loss gradient: averaged difference between output and one-hot targets.
        dz2 = (a2 - y) / n
        if softmax_prime == "diag":
            dz2 = dz2 * a2 * (1.0 - a2)

        # Second Dense layer (10 -> 10): gradient to previous layer, then update.
        da1 = w2.T @ dz2
        w2 -= lr * (dz2 @ a1.T)
        b2 -= lr * bias_grad(dz2)

        # ReLU.
        dz1 = da1 * ops["relu_prime"](z1)

        # First Dense layer (784 -> 10); its input gradient is never used.
        # dW1 = dZ1 . X^T is computed as (X . dZ1^T)^T: the same product, but
        # BLAS handles this orientation (long inner dimension N = 33,600, tiny
        # m = 10) far faster.
        w1 -= lr * (x @ dz1.T).T
        b1 -= lr * bias_grad(dz1)
    wall = time.perf_counter() - t0

    return tuple(np.asarray(p) for p in (w1, b1, w2, b2)), wall


def default_data_dir():
    """MATNET_DATA, else data/mnist in the repository this script lives in."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.environ.get("MATNET_DATA", os.path.join(repo, "data", "mnist"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=default_data_dir(),
                    help="directory with the MNIST IDX (.gz) files "
                         "(default: $MATNET_DATA, else data/mnist in the repository)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--softmax-prime", choices=["identity", "diag"], default="identity",
                    help="identity: cross-entropy gradient (y_hat - y)/N (default); "
                         "diag: additionally multiply by s*(1-s)")
    ap.add_argument("--bias-sum", choices=["total", "per-class"], default="total",
                    help="total: np.sum over the whole gradient as in the report's "
                         "listing (default); per-class: sum over samples per row")
    ap.add_argument("--torch", action="store_true",
                    help="train with float32 PyTorch tensors (no autograd) instead of NumPy")
    ap.add_argument("--threads", type=int, default=2, help="PyTorch threads (with --torch)")
    args = ap.parse_args()

    x_all, y_all = load_split(args.data, "train")
    x_all, y_all = x_all[:, :42000], y_all[:42000]
    n_train = int(0.8 * 42000)  # 33,600
    x_tr, y_tr = np.ascontiguousarray(x_all[:, :n_train]), y_all[:n_train]
    x_ho, y_ho = np.ascontiguousarray(x_all[:, n_train:]), y_all[n_train:]
    x_te, y_te = load_split(args.data, "t10k")

    rng = np.random.default_rng(args.seed)
    params = init_params(rng)

    if args.torch:
        ops = torch_ops(args.threads)
        engine = f"PyTorch {__import__('torch').__version__} float32, {args.threads} threads"
    else:
        ops, engine = NUMPY, "NumPy float64"
    params, wall = train(params, x_tr, y_tr, args.lr, args.iterations,
                         args.softmax_prime, args.bias_sum, ops)
    if args.torch:
        # Evaluated in float32, as trained.
        x_tr, x_ho, x_te = (a.astype(np.float32) for a in (x_tr, x_ho, x_te))

    print(f"{engine}: seed {args.seed}, {args.iterations} iterations, lr {args.lr}, "
          f"softmax-prime {args.softmax_prime}, bias-sum {args.bias_sum}")
    print(f"train accuracy    ({y_tr.size:5d}): {accuracy(params, x_tr, y_tr):.4f}")
    print(f"held-out accuracy ({y_ho.size:5d}): {accuracy(params, x_ho, y_ho):.4f}")
    print(f"test accuracy     ({y_te.size:5d}): {accuracy(params, x_te, y_te):.4f}")
    print(f"training wall time: {wall:.1f} s")


if __name__ == "__main__":
    main()
