#!/usr/bin/env python3
"""Generate golden reference values for matnet's convolution family.

Writes ``crates/matnet/tests/golden/conv.json`` (next to this script's parent
directory) for ``conv2d``, ``conv_transpose2d``, ``max_pool2d_with_indices``,
``avg_pool2d``, ``adaptive_avg_pool2d`` and the ``BatchNorm2d`` layer.

As in ``ops.py``: reference values are computed with PyTorch in float64, all
random inputs are drawn as float32 from a seeded numpy Generator and upcast
(so they are exact in both precisions), gradients are those of
``sum(output * r)`` for a random ``r`` with the output's shape, and running
the script twice yields an identical file.

File format::

    {"generator": "conv.py", "torch_version": "...", "cases": [
      // conv2d, conv_transpose2d, max_pool2d_with_indices, avg_pool2d,
      // adaptive_avg_pool2d:
      {"name": ..., "op": ..., "args": {...},
       "inputs": [x, weight, bias | null],      // pools: [x]
       "output": T, "indices": T,              // indices: max pool only
       "r": T, "grads": [T | null, ...]},       // one per input
      // the BatchNorm2d layer, run for several steps on one module:
      {"name": ..., "op": "batch_norm2d", "args": {"momentum", "eps"},
       "weight": T, "bias": T,                  // gamma, beta (set before step 1)
       "steps": [{"training": bool, "x": T, "output": T, "r": T,
                  "grads": {"x": T, "weight": T, "bias": T},
                  "running_mean": T, "running_var": T}, ...]},  // after the step
      ...]}

``T`` is ``{"shape": [...], "data": [...]}`` with row-major data. ``args``
use PyTorch's keyword names; pairs are ``[vertical, horizontal]``. Max-pool
indices are PyTorch's flat ``h·W + w`` positions within each plane, stored as
floats. Pools run on inputs without near-ties, so every argmax is unambiguous.

Usage: ``pip install numpy torch; python3 crates/matnet/tests/golden/gen/conv.py``
"""


import torch
import torch.nn.functional as F

from golden import Random, encode, write_cases

SEED = 20240607

R = Random(SEED)
uniform, distinct = R.uniform, R.distinct


def leaf(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


cases = []
names = set()


def add(entry):
    assert entry["name"] not in names, f"duplicate case name {entry['name']}"
    names.add(entry["name"])
    cases.append(entry)


def weighted_grads(out, tensors):
    """r and the gradients of sum(out * r) with respect to `tensors` (None stays None)."""
    r = torch.tensor(uniform(tuple(out.shape)), dtype=torch.float64)
    live = [t for t in tensors if t is not None]
    gs = iter(torch.autograd.grad((out * r).sum(), live))
    return r, [None if t is None else next(gs) for t in tensors]


# ---------------------------------------------------------------------------
# Convolutions
# ---------------------------------------------------------------------------

def conv_case(name, op, x_shape, w_shape, bias, stride=(1, 1), padding=(0, 0),
              dilation=(1, 1), groups=1, output_padding=(0, 0)):
    """conv2d (weight [O, C/g, kh, kw]) or conv_transpose2d (weight [C, O/g, kh, kw])."""
    x = leaf(uniform(x_shape))
    w = leaf(uniform(w_shape))
    c_out = w_shape[0] if op == "conv2d" else w_shape[1] * groups
    b = leaf(uniform((c_out,))) if bias else None
    args = {"stride": list(stride), "padding": list(padding),
            "dilation": list(dilation), "groups": groups}
    if op == "conv2d":
        out = F.conv2d(x, w, b, stride, padding, dilation, groups)
    else:
        args["output_padding"] = list(output_padding)
        out = F.conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation)
    r, grads = weighted_grads(out, [x, w, b])
    add({
        "name": name, "op": op, "args": args,
        "inputs": [encode(x), encode(w), encode(b) if bias else None],
        "output": encode(out), "r": encode(r),
        "grads": [encode(g) if g is not None else None for g in grads],
    })


def conv2d_cases():
    c = conv_case
    c("conv2d_basic_3x3_bias", "conv2d", (2, 2, 4, 5), (3, 2, 3, 3), True)
    c("conv2d_stride2_pad1_bias", "conv2d", (1, 3, 7, 6), (2, 3, 3, 3), True,
      stride=(2, 2), padding=(1, 1))
    c("conv2d_stride2_pad0_drops_last_row", "conv2d", (1, 2, 6, 6), (3, 2, 3, 3), False,
      stride=(2, 2))
    c("conv2d_stride_2x1_pad_1x2_kernel_3x2", "conv2d", (1, 2, 6, 5), (3, 2, 3, 2), False,
      stride=(2, 1), padding=(1, 2))
    c("conv2d_pad2_3x3", "conv2d", (1, 2, 4, 5), (2, 2, 3, 3), True, padding=(2, 2))
    c("conv2d_pad_0x1_kernel_2x4", "conv2d", (1, 2, 4, 6), (3, 2, 2, 4), True, padding=(0, 1))
    c("conv2d_dilation2", "conv2d", (1, 2, 7, 7), (3, 2, 3, 3), True, dilation=(2, 2))
    c("conv2d_dilation2_pad2", "conv2d", (1, 2, 5, 6), (2, 2, 3, 3), False,
      padding=(2, 2), dilation=(2, 2))
    c("conv2d_dilation_2x1_stride_1x2", "conv2d", (1, 2, 7, 6), (2, 2, 3, 3), True,
      stride=(1, 2), dilation=(2, 1), padding=(1, 0))
    c("conv2d_groups2", "conv2d", (1, 4, 4, 4), (6, 2, 3, 3), True, groups=2)
    c("conv2d_groups2_stride2_pad1_dil2", "conv2d", (1, 4, 6, 7), (4, 2, 3, 3), False,
      stride=(2, 2), padding=(1, 1), dilation=(2, 2), groups=2)
    c("conv2d_depthwise", "conv2d", (1, 3, 5, 5), (3, 1, 3, 3), True, padding=(1, 1), groups=3)
    c("conv2d_depthwise_multiplier2", "conv2d", (1, 3, 5, 5), (6, 1, 2, 2), True,
      stride=(2, 1), groups=3)
    c("conv2d_1x1_stride2", "conv2d", (2, 3, 3, 5), (4, 3, 1, 1), True, stride=(2, 2))
    c("conv2d_kernel_covers_input", "conv2d", (2, 3, 3, 4), (2, 3, 3, 4), True)
    c("conv2d_stride3_larger_than_kernel", "conv2d", (1, 2, 8, 8), (2, 2, 2, 2), True,
      stride=(3, 3))


def conv_transpose2d_cases():
    c = conv_case
    op = "conv_transpose2d"
    c("conv_transpose2d_basic_3x3_bias", op, (2, 2, 3, 3), (2, 2, 3, 3), True)
    c("conv_transpose2d_stride2", op, (1, 2, 3, 3), (2, 2, 3, 3), False, stride=(2, 2))
    c("conv_transpose2d_stride2_pad1_outpad1", op, (1, 3, 3, 3), (3, 2, 3, 3), True,
      stride=(2, 2), padding=(1, 1), output_padding=(1, 1))
    c("conv_transpose2d_stride_2x3_pad_0x1_outpad_1x2_kernel_2x3", op, (1, 2, 3, 3),
      (2, 2, 2, 3), True, stride=(2, 3), padding=(0, 1), output_padding=(1, 2))
    c("conv_transpose2d_stride_1x2_pad2", op, (1, 2, 4, 3), (2, 2, 3, 3), False,
      stride=(1, 2), padding=(2, 2))
    c("conv_transpose2d_dilation2_pad1", op, (1, 2, 3, 3), (2, 3, 3, 3), True,
      padding=(1, 1), dilation=(2, 2))
    c("conv_transpose2d_stride2_dilation2_outpad1", op, (1, 2, 3, 3), (2, 2, 2, 2), False,
      stride=(2, 2), dilation=(2, 2), output_padding=(1, 1))
    # output_padding may exceed the stride when it is below the dilation (PyTorch
    # accepts either bound).
    c("conv_transpose2d_stride1_dilation2_outpad1", op, (1, 2, 3, 4), (2, 2, 3, 3), True,
      dilation=(2, 2), output_padding=(1, 1))
    c("conv_transpose2d_groups2_stride2", op, (1, 4, 2, 2), (4, 2, 3, 3), True,
      stride=(2, 2), groups=2)
    c("conv_transpose2d_groups2_pad1_outpad1_dil2", op, (1, 4, 3, 4), (4, 1, 2, 3), True,
      stride=(2, 2), padding=(1, 1), output_padding=(1, 1), dilation=(2, 2), groups=2)
    c("conv_transpose2d_depthwise", op, (1, 3, 3, 3), (3, 1, 2, 2), True, stride=(2, 2),
      groups=3)
    c("conv_transpose2d_1x1", op, (2, 3, 3, 2), (3, 4, 1, 1), True)


# ---------------------------------------------------------------------------
# Pools
# ---------------------------------------------------------------------------

def pool_case(name, op, x, args, fn):
    x = leaf(x)
    res = fn(x)
    out, idx = res if isinstance(res, tuple) else (res, None)
    r, grads = weighted_grads(out, [x])
    entry = {"name": name, "op": op, "args": args, "inputs": [encode(x)],
             "output": encode(out), "r": encode(r), "grads": [encode(grads[0])]}
    if idx is not None:
        entry["indices"] = encode(idx)
    add(entry)


def max_pool_cases():
    for name, shape, k, s in [
        ("max_pool2d_2_stride2", (2, 2, 4, 4), (2, 2), (2, 2)),
        ("max_pool2d_2_stride2_odd_5x5", (1, 2, 5, 5), (2, 2), (2, 2)),
        ("max_pool2d_3_stride2_overlap", (1, 2, 7, 7), (3, 3), (2, 2)),
        ("max_pool2d_3_stride1_overlap", (2, 2, 5, 5), (3, 3), (1, 1)),
        ("max_pool2d_2x3_stride_1x2", (2, 2, 5, 7), (2, 3), (1, 2)),
        ("max_pool2d_3x2_stride_2x3", (1, 3, 7, 8), (3, 2), (2, 3)),
    ]:
        pool_case(name, "max_pool2d_with_indices", distinct(shape),
                  {"kernel_size": list(k), "stride": list(s)},
                  lambda x, k=k, s=s: F.max_pool2d(x, k, s, return_indices=True))


def avg_pool_cases():
    for name, shape, k, s, p in [
        ("avg_pool2d_2_stride2", (2, 2, 4, 4), (2, 2), (2, 2), (0, 0)),
        ("avg_pool2d_3_stride2_pad1", (1, 2, 7, 6), (3, 3), (2, 2), (1, 1)),
        ("avg_pool2d_3_stride1_pad1", (2, 2, 4, 5), (3, 3), (1, 1), (1, 1)),
        ("avg_pool2d_3x2_stride_1x2_pad_1x1", (1, 2, 5, 6), (3, 2), (1, 2), (1, 1)),
        ("avg_pool2d_2x4_stride_2x1_pad_1x2", (2, 1, 5, 5), (2, 4), (2, 1), (1, 2)),
    ]:
        pool_case(name, "avg_pool2d", uniform(shape),
                  {"kernel_size": list(k), "stride": list(s), "padding": list(p)},
                  lambda x, k=k, s=s, p=p: F.avg_pool2d(x, k, s, p, count_include_pad=True))
    # Only evenly dividing sizes: matnet does not support uneven adaptive windows.
    for name, shape, o in [
        ("adaptive_avg_pool2d_6x6_to_3x3", (1, 2, 6, 6), (3, 3)),
        ("adaptive_avg_pool2d_4x6_to_2x3", (1, 2, 4, 6), (2, 3)),
        ("adaptive_avg_pool2d_6x8_to_3x2", (1, 2, 6, 8), (3, 2)),
        ("adaptive_avg_pool2d_global_5x4_to_1x1", (2, 3, 5, 4), (1, 1)),
        ("adaptive_avg_pool2d_identity_3x3", (1, 2, 3, 3), (3, 3)),
    ]:
        pool_case(name, "adaptive_avg_pool2d", uniform(shape), {"output_size": list(o)},
                  lambda x, o=o: F.adaptive_avg_pool2d(x, o))


# ---------------------------------------------------------------------------
# BatchNorm2d
# ---------------------------------------------------------------------------

def batch_norm_case(name, shape, modes, lo=-1.0, hi=1.0):
    """One BatchNorm2d module run on a fresh input per step; `modes` lists
    True (training) / False (eval) per step. gamma and beta are random."""
    c = shape[1]
    bn = torch.nn.BatchNorm2d(c, momentum=0.1, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(uniform((c,), 0.5, 1.5)))
        bn.bias.copy_(torch.tensor(uniform((c,))))
    entry = {"name": name, "op": "batch_norm2d",
             "args": {"momentum": bn.momentum, "eps": bn.eps},
             "weight": encode(bn.weight), "bias": encode(bn.bias), "steps": []}
    for training in modes:
        bn.train(training)
        x = leaf(uniform(shape, lo, hi))
        out = bn(x)
        r, (gx, gw, gb) = weighted_grads(out, [x, bn.weight, bn.bias])
        entry["steps"].append({
            "training": training, "x": encode(x), "output": encode(out), "r": encode(r),
            "grads": {"x": encode(gx), "weight": encode(gw), "bias": encode(gb)},
            "running_mean": encode(bn.running_mean), "running_var": encode(bn.running_var),
        })
    add(entry)


def batch_norm_cases():
    batch_norm_case("batch_norm2d_3x3x2x3_train_train_eval", (3, 3, 2, 3), [True, True, False])
    # A mean far from 0 tests that the variance is not computed as E[x²] − E[x]².
    batch_norm_case("batch_norm2d_offset_mean_2x2x3x2_train_train_eval", (2, 2, 3, 2),
                    [True, True, False], lo=3.0, hi=5.0)
    # One value per channel and image: the unbiased factor n/(n−1) is 3/2.
    batch_norm_case("batch_norm2d_3x4x1x1_train_eval", (3, 4, 1, 1), [True, False])
    batch_norm_case("batch_norm2d_1x2x4x3_eval_first", (1, 2, 4, 3), [False, True, False])


def main():
    torch.set_num_threads(1)  # single-threaded: bit-identical reruns
    conv2d_cases()
    conv_transpose2d_cases()
    max_pool_cases()
    avg_pool_cases()
    batch_norm_cases()
    write_cases(__file__, cases)

if __name__ == "__main__":
    main()
