#!/usr/bin/env python3
"""Golden values for matnet's binary cross-entropy losses.

Writes ``crates/matnet/tests/golden/loss.json``: for each case the loss
(``F.binary_cross_entropy`` or ``F.binary_cross_entropy_with_logits``, mean
reduction), its inputs, the float64 loss and the gradient of the loss with
respect to the first input (``null`` where PyTorch's gradient formula and a
clamped log legitimately differ: probabilities of exactly 0 or 1).

File format::

    {"generator": "loss.py", "torch_version": "...", "cases": [
      {"name": ..., "op": "bce" | "bce_with_logits",
       "inputs": [{"shape", "data"}, {"shape", "data"}],
       "output": {"shape": [], "data": [loss]},
       "grad": {"shape", "data"} | null}, ...]}

Usage: ``pip install numpy torch; python3 crates/matnet/tests/golden/gen/loss.py``
"""

import numpy as np
import torch
import torch.nn.functional as F

from golden import Random, encode, f32, write_cases

R = Random(20261129)
cases = []


def case(name, op, x, y, with_grad=True):
    x = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(y, dtype=torch.float64)
    fn = F.binary_cross_entropy if op == "bce" else F.binary_cross_entropy_with_logits
    out = fn(x, y)
    grad = None
    if with_grad:
        (g,) = torch.autograd.grad(out, x)
        grad = encode(g)
    cases.append({"name": name, "op": op, "inputs": [encode(x), encode(y)],
                  "output": encode(out), "grad": grad})


# Probabilities inside (0, 1), soft and hard targets.
case("bce_soft", "bce", R.uniform((4, 3), 0.02, 0.98), R.uniform((4, 3), 0.0, 1.0))
case("bce_hard", "bce", R.uniform((6,), 0.01, 0.99), f32(R.rng.integers(0, 2, size=6)))
case("bce_smoothed", "bce", R.uniform((2, 2, 2), 0.05, 0.95), np.full((2, 2, 2), 0.9))
# Probabilities of exactly 0 and 1: the log is floored at -100.
case("bce_saturated", "bce", f32([0.0, 1.0, 0.0, 1.0, 0.5]), f32([1.0, 0.0, 0.0, 1.0, 1.0]),
     with_grad=False)
# Logits: moderate, then large enough that a naive log(sigmoid) overflows.
case("bce_logits", "bce_with_logits", R.uniform((5, 2), -4.0, 4.0), R.uniform((5, 2), 0.0, 1.0))
case("bce_logits_hard", "bce_with_logits", R.uniform((8,), -3.0, 3.0),
     f32(R.rng.integers(0, 2, size=8)))
case("bce_logits_large", "bce_with_logits", f32([80.0, -80.0, 120.0, -120.0, 30.0, -30.0]),
     f32([1.0, 0.0, 0.0, 1.0, 0.5, 0.25]))

write_cases(__file__, cases)
