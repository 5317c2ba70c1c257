#!/usr/bin/env python3
"""Write a PyTorch checkpoint for matnet's checkpoint interop test.

Writes, next to this script's parent directory:

``torch_linear.safetensors``
    The ``state_dict`` of a seeded ``nn.Sequential(nn.Linear(4, 3), nn.ReLU(),
    nn.Linear(3, 2))`` (names ``0.weight`` ``[3, 4]``, ``0.bias`` ``[3]``,
    ``2.weight`` ``[2, 3]``, ``2.bias`` ``[2]``), saved with
    ``safetensors.torch.save_file`` and the metadata in ``METADATA``.

``torch_linear.json``
    ``{"generator": "checkpoint.py", "torch_version": "...",
    "metadata": {...}, "tensors": {name: {"shape": [...], "data": [...]}},
    "input": {"shape": [5, 4], "data": [...]},
    "output": {"shape": [5, 2], "data": [...]}}``: the tensors as written,
    a fixed input batch ``x`` and the model's output
    ``y = relu(x·W1ᵀ + b1)·W2ᵀ + b2`` for it, computed in float64 from the
    float32 weights and inputs.

The JSON is identical from run to run; the ``.safetensors`` header may list
the metadata keys in another order (the library keeps them in a hash map).

Usage: ``pip install numpy torch safetensors;
python3 crates/matnet/tests/golden/gen/checkpoint.py``
"""

import json
import os

import numpy as np
import torch
from safetensors.torch import save_file

SEED = 20240607
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
METADATA = {
    "matnet.config": json.dumps({"layers": [4, 3, 2], "activation": "relu"}),
    "source": "torch.nn.Sequential",
}


def as_json(t):
    t = t.detach().to(torch.float64)
    return {"shape": list(t.shape), "data": t.flatten().tolist()}


def main():
    torch.manual_seed(SEED)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)
    )
    # Copies: .double() below converts the parameters in place.
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    rng = np.random.default_rng(SEED)
    x = torch.from_numpy(rng.uniform(-2.0, 2.0, size=(5, 4)).astype(np.float32))
    with torch.no_grad():
        hidden = model[0].double()(x.double())
        y = model.double()(x.double())
    # The check means little unless the ReLU both passes and clips values.
    assert (hidden > 0).any() and (hidden < 0).any(), "pick another seed"

    save_file(state, os.path.join(OUT_DIR, "torch_linear.safetensors"), metadata=METADATA)
    golden = {
        "generator": "checkpoint.py",
        "torch_version": torch.__version__,
        "metadata": METADATA,
        "tensors": {k: as_json(v) for k, v in sorted(state.items())},
        "input": as_json(x),
        "output": as_json(y),
    }
    with open(os.path.join(OUT_DIR, "torch_linear.json"), "w") as f:
        json.dump(golden, f, indent=1, allow_nan=False)
        f.write("\n")


if __name__ == "__main__":
    main()
