"""Shared helpers of the golden-value generators (ops.py, conv.py, rnn.py,
attention.py): float32-exact random inputs, tensor encoding, and writing
the case file. Each generator keeps its own seed and draw order."""
import json
import os

import numpy as np
import torch


def f32(a):
    """Round to float32, then return as float64 (exact upcast)."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


class Random:
    """A seeded numpy generator with the input kinds the generators draw."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def uniform(self, shape, lo=-1.0, hi=1.0):
        """Uniform random values in [lo, hi), float32-representable."""
        return f32(self.rng.uniform(lo, hi, size=shape))

    def distinct(self, shape, spacing=0.1, noise=0.02):
        """Values with no near-ties: a shuffled grid of step `spacing` plus
        small noise. Any two entries differ by at least spacing - 2*noise
        (0.06 by default), which keeps max/argmax well away from ties."""
        n = int(np.prod(shape)) if len(shape) else 1
        grid = (self.rng.permutation(n) - n / 2.0) * spacing
        return f32((grid + self.rng.uniform(-noise, noise, size=n)).reshape(shape))


def encode(t):
    """Tensor / array -> {"shape", "data"} with data as row-major python floats."""
    t = torch.as_tensor(t).detach()
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def write_cases(generator, cases):
    """Writes `../<name>.json` for generator `<name>.py`, one case per line
    (diff-friendly; json.dumps writes floats with repr(), i.e. full float64
    round-trip precision), and says how much it wrote."""
    name = os.path.splitext(os.path.basename(generator))[0]
    path = os.path.join(os.path.dirname(os.path.abspath(generator)), "..", f"{name}.json")
    with open(path, "w") as f:
        f.write('{"generator": "%s.py", "torch_version": %s, "cases": [\n'
                % (name, json.dumps(torch.__version__)))
        f.write(",\n".join(json.dumps(c, allow_nan=False) for c in cases))
        f.write("\n]}\n")
    size = os.path.getsize(path)
    print(f"wrote {len(cases)} cases to {os.path.normpath(path)} ({size} bytes)")
