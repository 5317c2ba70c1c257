#!/usr/bin/env python3
"""Generate golden values for matnet's attention and transformer layers.

Writes ``crates/matnet/tests/golden/attention.json``.  Each case builds a
PyTorch module in float64, loads parameters drawn as float32 values from a
seeded numpy Generator (so they are exact in both precisions), runs it on
float32-representable inputs and records the outputs and the gradients of

    loss = sum_k sum(output_k * r_k)

with respect to every input and every parameter, where each ``r_k`` is a
random tensor shaped like output ``k``.

Cases (E = 8, 2 heads, T = 5, N = 2):
  * ``mha_self_causal``: nn.MultiheadAttention(batch_first=True) self-attention
    with the causal mask of nn.Transformer.generate_square_subsequent_mask;
    outputs: attention output and per-head weights (average_attn_weights=False).
  * ``mha_cross_padding``: query [2, 5, 8] over key/value [2, 4, 8] (separate
    projections) with a boolean key_padding_mask (True = ignored).
  * ``layer_norm_last`` / ``layer_norm_last2``: nn.LayerNorm over [8] and [5, 8].
  * ``encoder_post_relu_causal``: nn.TransformerEncoderLayer, post-norm, ReLU,
    dim_feedforward 16, dropout 0, causal src_mask.
  * ``encoder_pre_gelu``: the same with norm_first=True and GELU, no mask.
  * ``embedding``: nn.Embedding(10, 4) on ids [2, 3] with a repeated id.

File format::

    {"generator": "attention.py", "torch_version": "...", "cases": [
      {"name": ..., "kind": "mha" | "layer_norm" | "encoder_layer" | "embedding",
       "config": {...},
       "inputs": {name: tensor}, "masks": {name: tensor},
       "params": {state_dict name: tensor},
       "outputs": {name: tensor}, "r": {name: tensor},
       "grads": {input or parameter name: tensor}}, ...]}

where a tensor is ``{"shape": [...], "data": [row-major floats]}``; boolean
masks are stored as 0.0 / 1.0 (1.0 = masked out) and float masks with -inf
written as -1e30 (JSON has no infinity), which the test turns back into -inf.

Usage: ``pip install numpy torch; python3 crates/matnet/tests/golden/gen/attention.py``
"""


import torch
from torch import nn

import golden
from golden import Random, write_cases

SEED = 20250117
NEG_INF_STANDIN = -1e30

R = Random(SEED)
torch.manual_seed(0)


def uniform(shape, lo=-1.0, hi=1.0):
    """float32-representable uniform values as a float64 tensor."""
    return torch.tensor(R.uniform(shape, lo, hi), dtype=torch.float64)


def encode(t):
    t = torch.as_tensor(t).detach().to(torch.float64)
    return golden.encode(torch.where(torch.isneginf(t), torch.full_like(t, NEG_INF_STANDIN), t))


def load_params(module, scale=0.5, around_one=()):
    """Overwrites every parameter with seeded values; names in `around_one`
    (layer-norm weights) get 1 + noise."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name in around_one:
                p.copy_(1.0 + uniform(p.shape, -0.2, 0.2))
            else:
                p.copy_(uniform(p.shape, -scale, scale))


def finish(name, kind, config, module, inputs, masks, outputs):
    """Backpropagates sum(out * r) over the outputs and stores the case."""
    rs = {k: uniform(v.shape) for k, v in outputs.items()}
    loss = sum((outputs[k] * rs[k]).sum() for k in outputs)
    params = dict(module.named_parameters())
    leaves = {**{k: v for k, v in inputs.items() if v.requires_grad}, **params}
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return {
        "name": name,
        "kind": kind,
        "config": config,
        "inputs": {k: encode(v) for k, v in inputs.items()},
        "masks": {k: encode(v) for k, v in masks.items()},
        "params": {k: encode(v) for k, v in module.state_dict().items()},
        "outputs": {k: encode(v) for k, v in outputs.items()},
        "r": {k: encode(v) for k, v in rs.items()},
        "grads": {k: encode(g) for k, g in zip(leaves, grads)},
    }


def leaf(t):
    return t.clone().requires_grad_(True)


E, H, T, N = 8, 2, 5, 2
cases = []

# --- MultiheadAttention, self-attention with a causal mask -----------------
mha = nn.MultiheadAttention(E, H, batch_first=True).double()
load_params(mha)
x = leaf(uniform((N, T, E)))
causal = nn.Transformer.generate_square_subsequent_mask(T, dtype=torch.float64)
y, w = mha(x, x, x, attn_mask=causal, need_weights=True, average_attn_weights=False)
cases.append(finish("mha_self_causal", "mha", {"embed_dim": E, "num_heads": H}, mha,
                    {"x": x}, {"attn_mask": causal}, {"output": y, "weights": w}))

# --- MultiheadAttention, cross-attention with key padding ------------------
S = 4
mha = nn.MultiheadAttention(E, H, batch_first=True).double()
load_params(mha)
q, k, v = leaf(uniform((N, T, E))), leaf(uniform((N, S, E))), leaf(uniform((N, S, E)))
pad = torch.tensor([[False, False, False, False], [False, False, True, True]])
y, w = mha(q, k, v, key_padding_mask=pad, need_weights=True, average_attn_weights=False)
cases.append(finish("mha_cross_padding", "mha", {"embed_dim": E, "num_heads": H}, mha,
                    {"query": q, "key": k, "value": v}, {"key_padding_mask": pad.double()},
                    {"output": y, "weights": w}))

# --- LayerNorm ---------------------------------------------------------------
for name, shape in [("layer_norm_last", [E]), ("layer_norm_last2", [T, E])]:
    ln = nn.LayerNorm(shape).double()
    load_params(ln, around_one=("weight",))
    x = leaf(uniform((N, T, E), -2.0, 2.0))
    cases.append(finish(name, "layer_norm", {"normalized_shape": shape}, ln,
                        {"x": x}, {}, {"output": ln(x)}))

# --- TransformerEncoderLayer, post-norm and pre-norm -----------------------
F_DIM = 16
for name, norm_first, act, masked in [
    ("encoder_post_relu_causal", False, "relu", True),
    ("encoder_pre_gelu", True, "gelu", False),
]:
    layer = nn.TransformerEncoderLayer(E, H, dim_feedforward=F_DIM, dropout=0.0,
                                       activation=act, batch_first=True,
                                       norm_first=norm_first).double()
    load_params(layer, around_one=("norm1.weight", "norm2.weight"))
    x = leaf(uniform((N, T, E)))
    masks = {"src_mask": causal} if masked else {}
    y = layer(x, src_mask=causal if masked else None)
    cfg = {"d_model": E, "nhead": H, "dim_feedforward": F_DIM, "activation": act,
           "norm_first": norm_first}
    cases.append(finish(name, "encoder_layer", cfg, layer, {"x": x}, masks, {"output": y}))

# --- Embedding -----------------------------------------------------------------
emb = nn.Embedding(10, 4).double()
load_params(emb, scale=1.0)
ids = torch.tensor([[1, 7, 3], [7, 0, 9]])
cases.append(finish("embedding", "embedding", {"num_embeddings": 10, "dim": 4}, emb,
                    {"ids": ids.double()}, {}, {"output": emb(ids)}))

write_cases(__file__, cases)
