#!/usr/bin/env python3
"""Load a matnet checkpoint into PyTorch and check the model's output.

Reads the file that the Rust test ``matnet_checkpoint_for_torch`` (in
``crates/matnet/tests/checkpoint.rs``) writes to
``target/tmp/matnet_sequential.safetensors``: the parameters of
``nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))`` saved by
``matnet::io::save``, with an input batch and matnet's output for it as JSON
in the metadata keys ``test.input`` and ``test.output``.

The load itself is the two lines a user writes; ``load_state_dict`` is strict,
so it fails on any missing, unexpected or mis-shaped tensor.

Usage: ``pip install numpy torch safetensors;
cargo test -p matnet --test checkpoint matnet_checkpoint_for_torch;
python3 crates/matnet/tests/golden/gen/load_in_torch.py [PATH]``
"""

import json
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file

DEFAULT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "../../../../../target/tmp/matnet_sequential.safetensors",
)


def main():
    path = os.path.normpath(sys.argv[1] if len(sys.argv) > 1 else DEFAULT)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)
    )
    model.load_state_dict(load_file(path))

    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
    x, want = (json.loads(metadata[k]) for k in ("test.input", "test.output"))
    with torch.no_grad():
        y = model(torch.tensor(x["data"]).reshape(x["shape"]))
    diff = (y - torch.tensor(want["data"]).reshape(want["shape"])).abs().max().item()
    print(f"{path}: loaded {sorted(model.state_dict())}")
    print(f"config {metadata['matnet.config']}; output {list(y.shape)}, "
          f"max |torch - matnet| = {diff:.3e}")
    if diff > 1e-5:
        sys.exit("mismatch")


if __name__ == "__main__":
    main()
