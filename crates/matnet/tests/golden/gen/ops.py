#!/usr/bin/env python3
"""Generate golden reference values for matnet's tensor operations.

Writes ``crates/matnet/tests/golden/ops.json`` (next to this script's parent
directory).  Every case records the op name, its arguments, the inputs, the
forward output and, for differentiable ops, the gradient of
``sum(output * r)`` with respect to every differentiable input, where ``r`` is
a random tensor with the output's shape.

Reference values are computed with PyTorch in float64.  All random inputs are
drawn as float32 from a seeded numpy Generator and then upcast, so they are
exactly representable in both precisions and the float64 reference is as
precise as it can be.  Running the script twice yields an identical file.

File format::

    {"generator": "ops.py", "torch_version": "...", "cases": [
      {"name": ..., "op": ..., "args": {...},
       "inputs": [{"shape": [...], "data": [...]}, ...],
       "differentiable": [bool, ...],
       "output": {"shape": [...], "data": [...]},
       "r": {"shape": [...], "data": [...]} | null,
       "grads": [{"shape": [...], "data": [...]} | null, ...] | null},
      ...]}

``data`` is the row-major flattening of the tensor; scalars have shape ``[]``
and one element.  Integer inputs (indices, labels) and boolean conditions are
stored as floats (booleans as 0.0 / 1.0) and are never differentiable.

Usage: ``pip install numpy torch; python3 crates/matnet/tests/golden/gen/ops.py``
"""


import numpy as np
import torch
import torch.nn.functional as F

from golden import Random, encode, f32, write_cases

SEED = 20240521

# Input kinds: differentiable float, integer index/label, boolean condition.
FLOAT, INT, BOOL = "f", "i", "b"

R = Random(SEED)
rng = R.rng
uniform, distinct = R.uniform, R.distinct


# ---------------------------------------------------------------------------
# Input construction helpers (all values are exactly float32-representable)
# ---------------------------------------------------------------------------

def away_from(shape, kinks, lo=-1.5, hi=1.5, margin=0.05):
    """Uniform values in [lo, hi) that stay at least `margin` from every kink.

    Offending entries are redrawn until none remain (rejection sampling),
    so the result is still deterministic for a fixed seed.
    """
    x = uniform(shape, lo, hi)
    while True:
        bad = np.zeros(x.shape, dtype=bool)
        for k in kinks:
            bad |= np.abs(x - k) < margin
        if not bad.any():
            return x
        x[bad] = uniform(int(bad.sum()), lo, hi)


def positive(shape):
    """Values in [0.5, 2] for log / sqrt / powf / div denominators."""
    return uniform(shape, 0.5, 2.0)


def ints(shape, high):
    """Integer indices in [0, high) (int64)."""
    return rng.integers(0, high, size=shape, dtype=np.int64)


# ---------------------------------------------------------------------------
# Op table: op name -> function(args, *torch_tensors) -> torch tensor
# ---------------------------------------------------------------------------

def _all_dims(x, dims):
    return list(range(x.dim())) if dims is None else list(dims)


OPS = {
    "matmul": lambda a, x, y: torch.matmul(x, y),
    "dot": lambda a, x, y: torch.dot(x, y),
    "outer": lambda a, x, y: torch.outer(x, y),
    "transpose": lambda a, x: x.transpose(a["dim0"], a["dim1"]),
    "permute": lambda a, x: x.permute(*a["perm"]),
    "reshape": lambda a, x: x.reshape(a["shape"]),
    "narrow": lambda a, x: x.narrow(a["dim"], a["start"], a["length"]),
    "cat": lambda a, *xs: torch.cat(xs, dim=a["dim"]),
    "stack": lambda a, *xs: torch.stack(xs, dim=a["dim"]),
    "broadcast_to": lambda a, x: torch.broadcast_to(x, a["shape"]),
    "add": lambda a, x, y: x + y,
    "sub": lambda a, x, y: x - y,
    "mul": lambda a, x, y: x * y,
    "div": lambda a, x, y: x / y,
    "neg": lambda a, x: -x,
    "exp": lambda a, x: torch.exp(x),
    "log": lambda a, x: torch.log(x),
    "sqrt": lambda a, x: torch.sqrt(x),
    "abs": lambda a, x: torch.abs(x),
    "relu": lambda a, x: torch.relu(x),
    "sigmoid": lambda a, x: torch.sigmoid(x),
    "tanh": lambda a, x: torch.tanh(x),
    "gelu": lambda a, x: F.gelu(x),  # exact erf form (approximate="none")
    "powf": lambda a, x: torch.pow(x, a["exponent"]),
    "clamp": lambda a, x: torch.clamp(x, min=a["min"], max=a["max"]),
    "leaky_relu": lambda a, x: F.leaky_relu(x, negative_slope=a["slope"]),
    "add_scalar": lambda a, x: x + a["value"],
    "mul_scalar": lambda a, x: x * a["value"],
    "sum": lambda a, x: torch.sum(x, dim=_all_dims(x, a["dims"]), keepdim=a["keepdim"]),
    "mean": lambda a, x: torch.mean(x, dim=_all_dims(x, a["dims"]), keepdim=a["keepdim"]),
    "var": lambda a, x: torch.var(x, dim=_all_dims(x, a["dims"]),
                                  correction=a["correction"], keepdim=a["keepdim"]),
    "max": lambda a, x: torch.max(x, dim=a["dim"], keepdim=a["keepdim"]).values,
    "argmax": lambda a, x: torch.argmax(x, dim=a["dim"], keepdim=a["keepdim"]),
    "softmax": lambda a, x: torch.softmax(x, dim=a["dim"]),
    "log_softmax": lambda a, x: torch.log_softmax(x, dim=a["dim"]),
    "kron": lambda a, x, y: torch.kron(x, y),
    "gather": lambda a, src, idx: torch.gather(src, a["dim"], idx),
    "index_select": lambda a, src, idx: torch.index_select(src, a["dim"], idx),
    "one_hot": lambda a, lab: F.one_hot(lab, num_classes=a["num_classes"]),
    "where": lambda a, c, x, y: torch.where(c, x, y),
    "eq": lambda a, x, y: torch.eq(x, y),
    "ne": lambda a, x, y: torch.ne(x, y),
    "lt": lambda a, x, y: torch.lt(x, y),
    "le": lambda a, x, y: torch.le(x, y),
    "gt": lambda a, x, y: torch.gt(x, y),
    "ge": lambda a, x, y: torch.ge(x, y),
}

# Ops whose output carries no gradient.
NO_GRAD_OPS = {"argmax", "one_hot", "eq", "ne", "lt", "le", "gt", "ge"}


# ---------------------------------------------------------------------------
# Case evaluation and serialisation
# ---------------------------------------------------------------------------

cases = []
names = set()


def case(name, op, args, inputs, kinds=None):
    """Evaluate one op case in float64 and append it to `cases`.

    inputs: list of numpy arrays; kinds: list of FLOAT / INT / BOOL (defaults
    to all FLOAT).
    """
    assert name not in names, f"duplicate case name {name}"
    names.add(name)
    kinds = kinds or [FLOAT] * len(inputs)
    has_grad = op not in NO_GRAD_OPS

    tensors = []
    for arr, kind in zip(inputs, kinds):
        if kind == FLOAT:
            t = torch.tensor(np.asarray(arr, dtype=np.float64), dtype=torch.float64,
                             requires_grad=has_grad)
        elif kind == INT:
            t = torch.tensor(np.asarray(arr, dtype=np.int64), dtype=torch.int64)
        else:
            t = torch.tensor(np.asarray(arr, dtype=bool), dtype=torch.bool)
        tensors.append(t)

    out = OPS[op](args, *tensors)
    differentiable = [has_grad and k == FLOAT for k in kinds]

    entry = {
        "name": name,
        "op": op,
        "args": args,
        "inputs": [encode(t.to(torch.float64)) for t in tensors],
        "differentiable": differentiable,
        "output": encode(out.to(torch.float64)),
        "r": None,
        "grads": None,
    }
    if has_grad:
        r = torch.tensor(uniform(tuple(out.shape)), dtype=torch.float64)
        (out * r).sum().backward()
        entry["r"] = encode(r)
        entry["grads"] = [encode(t.grad) if d else None
                          for t, d in zip(tensors, differentiable)]
    cases.append(entry)


# ---------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------

def build_cases():
    # --- matmul / dot / outer -------------------------------------------
    case("matmul_2d_3x4_4x5", "matmul", {}, [uniform((3, 4)), uniform((4, 5))])
    case("matmul_2x2_worked_example", "matmul", {},
         [f32([[1, 2], [3, 4]]), f32([[5, 6], [7, 8]])])
    case("matmul_batched_3d", "matmul", {}, [uniform((2, 3, 4)), uniform((2, 4, 5))])
    case("matmul_batched_broadcast", "matmul", {},
         [uniform((2, 1, 3, 4)), uniform((3, 4, 5))])
    case("matmul_1d_2d", "matmul", {}, [uniform((4,)), uniform((4, 5))])
    case("matmul_2d_1d", "matmul", {}, [uniform((3, 4)), uniform((4,))])
    case("matmul_2d_17x33_33x9", "matmul", {}, [uniform((17, 33)), uniform((33, 9))])
    case("dot_len7", "dot", {}, [uniform((7,)), uniform((7,))])
    case("outer_4_3", "outer", {}, [uniform((4,)), uniform((3,))])

    # --- shape ops --------------------------------------------------------
    case("transpose_3d_dim0_dim2", "transpose", {"dim0": 0, "dim1": 2}, [uniform((2, 3, 4))])
    case("transpose_2d", "transpose", {"dim0": 0, "dim1": 1}, [uniform((3, 5))])
    case("permute_3d_201", "permute", {"perm": [2, 0, 1]}, [uniform((2, 3, 4))])
    case("permute_3d_120", "permute", {"perm": [1, 2, 0]}, [uniform((2, 3, 4))])
    case("reshape_3d_to_4x6", "reshape", {"shape": [4, 6]}, [uniform((2, 3, 4))])
    case("reshape_3d_to_flat", "reshape", {"shape": [24]}, [uniform((2, 3, 4))])
    case("reshape_2d_to_3d", "reshape", {"shape": [3, 2, 2]}, [uniform((6, 2))])
    case("narrow_2d_dim0", "narrow", {"dim": 0, "start": 1, "length": 2}, [uniform((4, 5))])
    case("narrow_3d_dim1", "narrow", {"dim": 1, "start": 2, "length": 3}, [uniform((2, 5, 3))])
    case("cat_2d_dim0", "cat", {"dim": 0},
         [uniform((1, 3)), uniform((2, 3)), uniform((3, 3))])
    case("cat_3d_dim1", "cat", {"dim": 1},
         [uniform((2, 1, 4)), uniform((2, 3, 4)), uniform((2, 2, 4))])
    case("cat_2d_dim1", "cat", {"dim": 1},
         [uniform((2, 2)), uniform((2, 1)), uniform((2, 3))])
    case("stack_2d_dim0", "stack", {"dim": 0},
         [uniform((2, 3)), uniform((2, 3)), uniform((2, 3))])
    case("stack_2d_dim2", "stack", {"dim": 2},
         [uniform((2, 3)), uniform((2, 3)), uniform((2, 3))])
    case("broadcast_to_3x1_to_2x3x4", "broadcast_to", {"shape": [2, 3, 4]}, [uniform((3, 1))])
    case("broadcast_to_4_to_3x4", "broadcast_to", {"shape": [3, 4]}, [uniform((4,))])

    # --- binary elementwise (same shape and broadcasting) ------------------
    shape_pairs = [
        ("same_3x4", (3, 4), (3, 4)),
        ("bcast_2x3x4_3x1", (2, 3, 4), (3, 1)),
        ("bcast_4_2x3x4", (4,), (2, 3, 4)),
        ("bcast_1x3_2x1", (1, 3), (2, 1)),
    ]
    for op in ("add", "sub", "mul", "div"):
        for tag, sa, sb in shape_pairs:
            b = positive(sb) if op == "div" else uniform(sb)
            case(f"{op}_{tag}", op, {}, [uniform(sa, -2.0, 2.0), b])

    # --- unary elementwise --------------------------------------------------
    case("neg_3x4", "neg", {}, [uniform((3, 4))])
    case("exp_3x4", "exp", {}, [uniform((3, 4), -2.0, 2.0)])
    case("exp_scalar", "exp", {}, [f32(0.75)])
    case("log_3x4", "log", {}, [positive((3, 4))])
    case("sqrt_3x4", "sqrt", {}, [positive((3, 4))])
    case("abs_3x4", "abs", {}, [away_from((3, 4), [0.0])])
    case("relu_3x4", "relu", {}, [away_from((3, 4), [0.0])])
    case("relu_2x3x4", "relu", {}, [away_from((2, 3, 4), [0.0])])
    case("sigmoid_3x4", "sigmoid", {}, [uniform((3, 4), -3.0, 3.0)])
    case("tanh_3x4", "tanh", {}, [uniform((3, 4), -2.0, 2.0)])
    case("gelu_3x4", "gelu", {}, [uniform((3, 4), -3.0, 3.0)])
    case("powf_2.5_3x4", "powf", {"exponent": 2.5}, [positive((3, 4))])
    case("clamp_3x4", "clamp", {"min": -0.5, "max": 0.7}, [away_from((3, 4), [-0.5, 0.7])])
    case("leaky_relu_3x4", "leaky_relu", {"slope": 0.1}, [away_from((3, 4), [0.0])])
    case("add_scalar_3x4", "add_scalar", {"value": 1.5}, [uniform((3, 4))])
    case("mul_scalar_3x4", "mul_scalar", {"value": -2.0}, [uniform((3, 4))])

    # --- reductions ------------------------------------------------------------
    reduce_args = [
        ("all", None, False),
        ("all_keepdim", None, True),
        ("dim1", [1], False),
        ("dim1_keepdim", [1], True),
        ("dims02", [0, 2], False),
        ("dims02_keepdim", [0, 2], True),
    ]
    for op in ("sum", "mean"):
        for tag, dims, keep in reduce_args:
            case(f"{op}_2x3x4_{tag}", op, {"dims": dims, "keepdim": keep}, [uniform((2, 3, 4))])
    case("sum_30x40_all_1200_elements", "sum", {"dims": None, "keepdim": False},
         [uniform((30, 40))])

    for tag, shape, dim, keep in [
        ("3x5_dim1", (3, 5), 1, False),
        ("3x5_dim0_keepdim", (3, 5), 0, True),
        ("2x3x4_dim0_keepdim", (2, 3, 4), 0, True),
        ("2x3x4_dim2", (2, 3, 4), 2, False),
    ]:
        case(f"max_{tag}", "max", {"dim": dim, "keepdim": keep}, [distinct(shape)])
        case(f"argmax_{tag}", "argmax", {"dim": dim, "keepdim": keep}, [distinct(shape)])

    for tag, shape, dims, keep, corr in [
        ("3x5_dim1_corr1", (3, 5), [1], False, 1),
        ("3x5_all_corr0", (3, 5), None, False, 0),
        ("3x5_all_corr1_keepdim", (3, 5), None, True, 1),
        ("2x3x4_dims02_corr1_keepdim", (2, 3, 4), [0, 2], True, 1),
        ("2x3x4_dim1_corr0_keepdim", (2, 3, 4), [1], True, 0),
        ("2x3x4_dim0_corr0", (2, 3, 4), [0], False, 0),
    ]:
        case(f"var_{tag}", "var", {"dims": dims, "keepdim": keep, "correction": corr},
             [uniform(shape, -2.0, 2.0)])

    # --- softmax / log_softmax ------------------------------------------------
    big = f32([[1e4, 1e4 + 1, 1e4 - 2, 1e4 + 0.5, 1e4 - 0.25],
               [-1e4, -1e4 + 3, -1e4 - 1, -1e4 + 0.25, -1e4 + 2]])
    for op in ("softmax", "log_softmax"):
        case(f"{op}_3x5_dim1", op, {"dim": 1}, [uniform((3, 5), -3.0, 3.0)])
        case(f"{op}_2x3x4_dim0", op, {"dim": 0}, [uniform((2, 3, 4), -3.0, 3.0)])
        case(f"{op}_large_values_1e4", op, {"dim": 1}, [big])

    # --- kron -------------------------------------------------------------------
    case("kron_2x2_2x3", "kron", {}, [uniform((2, 2)), uniform((2, 3))])
    case("kron_worked_example_eye2", "kron", {}, [f32([[1, 2], [3, 4]]), f32(np.eye(2))])

    # --- indexing ------------------------------------------------------------
    # Repeated indices make the gradient accumulate, which is what we want to test.
    case("gather_3x4_dim1", "gather", {"dim": 1},
         [uniform((3, 4)), np.array([[0, 3], [2, 2], [1, 0]])], [FLOAT, INT])
    case("gather_3x4_dim0", "gather", {"dim": 0},
         [uniform((3, 4)), np.array([[2, 0, 1, 1], [0, 0, 2, 1]])], [FLOAT, INT])
    case("gather_2x3x4_dim2", "gather", {"dim": 2},
         [uniform((2, 3, 4)), ints((2, 3, 2), 4)], [FLOAT, INT])
    case("index_select_4x3_dim0", "index_select", {"dim": 0},
         [uniform((4, 3)), np.array([2, 0, 2])], [FLOAT, INT])
    case("index_select_2x3x4_dim2", "index_select", {"dim": 2},
         [uniform((2, 3, 4)), np.array([3, 0])], [FLOAT, INT])
    case("one_hot_6_labels_5_classes", "one_hot", {"num_classes": 5},
         [np.array([3, 0, 4, 1, 1, 2])], [INT])

    # --- where -------------------------------------------------------------------
    case("where_bcast_cond3x1_a3x4_b4", "where", {},
         [np.array([[True], [False], [True]]), uniform((3, 4)), uniform((4,))],
         [BOOL, FLOAT, FLOAT])
    case("where_same_2x3", "where", {},
         [np.array([[True, False, False], [False, True, True]]),
          uniform((2, 3)), uniform((2, 3))],
         [BOOL, FLOAT, FLOAT])

    # --- comparisons ----------------------------------------------------------------
    # Coarse grid values so that several entries are exactly equal.
    a_same = f32(rng.integers(-2, 3, size=(3, 4)) * 0.5)
    b_same = f32(rng.integers(-2, 3, size=(3, 4)) * 0.5)
    b_same[0, 0] = a_same[0, 0]  # guarantee at least a couple of exact ties
    b_same[2, 3] = a_same[2, 3]
    a_bc = f32([[-0.5], [0.0], [1.0]])            # (3, 1)
    b_bc = f32([0.0, -0.5, 1.0, 0.5])             # (4,)
    for op in ("eq", "ne", "lt", "le", "gt", "ge"):
        case(f"{op}_3x4_with_ties", op, {}, [a_same, b_same])
        case(f"{op}_bcast_3x1_4", op, {}, [a_bc, b_bc])


def main():
    torch.set_num_threads(1)  # single-threaded: bit-identical reruns
    build_cases()
    write_cases(__file__, cases)

if __name__ == "__main__":
    main()
