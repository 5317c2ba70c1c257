#!/usr/bin/env python3
"""Generate golden reference values for matnet's recurrent layers.

Writes ``crates/matnet/tests/golden/rnn.json``: for ``nn.RNN``, ``nn.LSTM`` and
``nn.GRU`` (several layer counts, ``batch_first`` on and off, bias on and off,
with and without an initial state, and truncated backprop through time), the
input, the initial state, every parameter under its ``state_dict`` name, the
outputs ``output``, ``h_n`` (and ``c_n``), and the gradients of

    loss = sum(output * r_out) + sum(h_n * r_h) [+ sum(c_n * r_c)]

with respect to the input, the initial state and every parameter, for fixed
random ``r_out``, ``r_h``, ``r_c``.

Truncated backprop through time with window ``k`` (``"tbptt": k``) is computed
the PyTorch way: the sequence is run in chunks of ``k`` steps and the state
carried into each chunk after the first is detached.

Reference values are computed with PyTorch in float64. Every value is drawn as
float32 from a seeded numpy Generator and then upcast, so it is exactly
representable in both precisions. Running the script twice yields an identical
file.

File format::

    {"generator": "rnn.py", "torch_version": "...", "cases": [
      {"name": ..., "mode": "RNN" | "LSTM" | "GRU",
       "input_size": D, "hidden_size": H, "num_layers": L,
       "batch_first": bool, "bias": bool, "tbptt": k | null,
       "x": T, "h0": T | null, "c0": T | null,
       "params": [[name, T], ...],            # state_dict order
       "r_out": T, "r_h": T, "r_c": T | null,
       "output": T, "h_n": T, "c_n": T | null,
       "grad_x": T, "grad_h0": T | null, "grad_c0": T | null,
       "grad_params": [[name, T], ...]},
      ...]}

where each ``T`` is ``{"shape": [...], "data": [...]}`` (row-major data).

Usage: ``pip install numpy torch; python3 crates/matnet/tests/golden/gen/rnn.py``
"""


import torch
from torch import nn

from golden import Random, encode, write_cases

SEED = 20240607

uniform = Random(SEED).uniform
MODULES = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}


def run(module, mode, x, state, tbptt, batch_first):
    """Output sequence and final state; chunked with detached state for TBPTT."""
    if tbptt is None:
        return module(x, state)
    t_dim = 1 if batch_first else 0
    outs = []
    for start in range(0, x.shape[t_dim], tbptt):
        chunk = x.narrow(t_dim, start, min(tbptt, x.shape[t_dim] - start))
        if start > 0:
            state = tuple(s.detach() for s in state) if mode == "LSTM" else state.detach()
        out, state = module(chunk, state)
        outs.append(out)
    return torch.cat(outs, dim=t_dim), state


def make_case(name, mode, d, h, layers, t, n, batch_first, bias, with_state, tbptt=None):
    module = MODULES[mode](d, h, num_layers=layers, bias=bias, batch_first=batch_first).double()
    # Weights drawn here rather than by torch's init, so they are float32-exact.
    params = []
    with torch.no_grad():
        for pname, p in module.named_parameters():
            p.copy_(torch.from_numpy(uniform(tuple(p.shape), -0.6, 0.6)))
            params.append((pname, p))

    x_shape = (n, t, d) if batch_first else (t, n, d)
    x = torch.from_numpy(uniform(x_shape)).requires_grad_()
    state_shape = (layers, n, h)
    h0 = c0 = None
    if with_state:
        h0 = torch.from_numpy(uniform(state_shape)).requires_grad_()
        if mode == "LSTM":
            c0 = torch.from_numpy(uniform(state_shape)).requires_grad_()
    state = (h0, c0) if mode == "LSTM" and with_state else h0

    out, final = run(module, mode, x, state, tbptt, batch_first)
    h_n, c_n = final if mode == "LSTM" else (final, None)

    r_out = torch.from_numpy(uniform(tuple(out.shape)))
    r_h = torch.from_numpy(uniform(tuple(h_n.shape)))
    r_c = torch.from_numpy(uniform(tuple(c_n.shape))) if c_n is not None else None
    loss = (out * r_out).sum() + (h_n * r_h).sum()
    if c_n is not None:
        loss = loss + (c_n * r_c).sum()

    wrt = [x] + ([h0] if h0 is not None else []) + ([c0] if c0 is not None else [])
    wrt += [p for _, p in params]
    grads = torch.autograd.grad(loss, wrt)
    gx, rest = grads[0], list(grads[1:])
    g_h0 = rest.pop(0) if h0 is not None else None
    g_c0 = rest.pop(0) if c0 is not None else None

    opt = lambda v: encode(v) if v is not None else None
    return {
        "name": name, "mode": mode, "input_size": d, "hidden_size": h,
        "num_layers": layers, "batch_first": batch_first, "bias": bias, "tbptt": tbptt,
        "x": encode(x), "h0": opt(h0), "c0": opt(c0),
        "params": [[pn, encode(p)] for pn, p in params],
        "r_out": encode(r_out), "r_h": encode(r_h), "r_c": opt(r_c),
        "output": encode(out), "h_n": encode(h_n), "c_n": opt(c_n),
        "grad_x": encode(gx), "grad_h0": opt(g_h0), "grad_c0": opt(g_c0),
        "grad_params": [[pn, encode(g)] for (pn, _), g in zip(params, rest)],
    }


def build_cases():
    cases = []
    D, H, T, N = 3, 4, 5, 2
    for mode in ("RNN", "LSTM", "GRU"):
        m = mode.lower()
        cases.append(make_case(f"{m}_2layers_batch_first_state", mode, D, H, 2, T, N,
                               batch_first=True, bias=True, with_state=True))
        cases.append(make_case(f"{m}_2layers_batch_first_zero_state", mode, D, H, 2, T, N,
                               batch_first=True, bias=True, with_state=False))
        cases.append(make_case(f"{m}_1layer_time_major_no_bias", mode, D, H, 1, T, N,
                               batch_first=False, bias=False, with_state=False))
        cases.append(make_case(f"{m}_2layers_tbptt2_state", mode, D, H, 2, T, N,
                               batch_first=True, bias=True, with_state=True, tbptt=2))
    return cases


def main():
    torch.set_num_threads(1)  # single-threaded: bit-identical reruns
    cases = build_cases()
    write_cases(__file__, cases)

if __name__ == "__main__":
    main()
