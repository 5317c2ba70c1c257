//! Differential test of the backends: random shapes, strided views
//! (narrowed, permuted, transposed) and broadcasts pushed through every
//! primitive of `matnet::backend::BackendStorage` on the fast CPU backend and
//! on the reference backend, compared with a tolerance. A failure lists every
//! case that differs, with the op and the largest difference.

#[path = "backend_diff/harness.rs"]
mod harness;

use harness::{Diff, Gen, Input};
use matnet::ops::conv::{Conv2dParams, ConvGeom};
use matnet::optim::{Adam, Optimizer, Sgd};
use matnet::{Rng, Tensor};

/// Every primitive of the backend trait (its doc comment's list).
const PRIMITIVES: [&str; 27] = [
    "from_host",
    "full",
    "to_host",
    "copy_strided",
    "copy_into",
    "unary",
    "binary",
    "where_cond",
    "reduce",
    "softmax",
    "matmul",
    "gather",
    "scatter_add",
    "index_select",
    "index_add",
    "conv2d",
    "conv_transpose2d",
    "conv2d_weight_grad",
    "im2col",
    "col2im",
    "max_pool2d",
    "max_unpool2d",
    "lstm_cell",
    "lstm_cell_backward",
    "lstm_layer",
    "lstm_layer_backward",
    "optim_step",
];

/// Random trials per case family.
const TRIALS: u64 = 12;
/// Tolerance for elementwise results (the CPU's `exp`/`tanh` polynomials
/// are within a few ulp of the reference's f64 versions).
const EW: (f64, f64) = (1e-5, 1e-6);
/// Tolerance for sums and products (f32 against f64 accumulation).
const SUM: (f64, f64) = (1e-4, 1e-5);

/// The gradients of `Σ out ⊙ r` (a fixed `r`) with respect to `vars`.
fn grads(out: &Tensor, vars: &[Tensor]) -> Vec<Tensor> {
    let mut rng = Rng::new(7);
    let r: Vec<f32> = (0..out.numel()).map(|_| rng.normal()).collect();
    let g = out.backward_with(Tensor::from_vec_on(r, out.shape().clone(), out.device()));
    vars.iter()
        .map(|v| g.get(v).cloned().unwrap_or_else(|| v.zeros_like()))
        .collect()
}

/// Marks inputs as variables.
fn vars(xs: &[Tensor]) -> Vec<Tensor> {
    xs.iter().map(|x| x.clone().requires_grad()).collect()
}

/// Values rounded to halves, so comparisons meet ties.
fn halves(x: Input) -> Input {
    x.map(|v| (v * 2.0).round() / 2.0)
}

fn memory(d: &mut Diff, g: &mut Gen) {
    let dims = g.dims(1, 4);
    let x = g.strided(&dims);
    d.check(&["full", "to_host"], "full_on", &[], EW, |_| {
        vec![Tensor::full_on(
            dims.clone(),
            0.25,
            matnet::default_device(),
        )]
    });
    let dev_full = dims.clone();
    d.check(&["full"], "zeros_like", std::slice::from_ref(&x), EW, |x| {
        vec![
            Tensor::full_on(dev_full.clone(), 1.5, x[0].device()),
            x[0].zeros_like(),
        ]
    });
    d.check(
        &["from_host", "to_host", "copy_strided"],
        "contiguous",
        &[x],
        EW,
        |x| vec![x[0].contiguous(), x[0].clone()],
    );
    // cat along a random dim of strided parts.
    let dim = g.rng.below(dims.len());
    let parts: Vec<Input> = (0..3)
        .map(|_| {
            let mut p = dims.clone();
            p[dim] = g.size(1, 3);
            g.operand(&p)
        })
        .collect();
    d.check(&["copy_into"], "cat", &parts, EW, |x| {
        vec![Tensor::cat(x, dim as isize)]
    });
    // assign_ into a narrowed view of a buffer.
    let mut big = dims.clone();
    big[dim] += 2;
    let (dst, src) = (g.contiguous(&big), g.strided(&dims));
    let n = dims[dim];
    d.check(
        &["copy_into"],
        "assign_ into a narrowed view",
        &[dst, src],
        EW,
        |x| {
            let dst = x[0].contiguous();
            dst.narrow(dim as isize, 1, n).assign_(&x[1]);
            vec![dst]
        },
    );
}

type UnaryCase = (&'static str, fn(&Tensor) -> Tensor);

fn unary(d: &mut Diff, g: &mut Gen) {
    let cases: [UnaryCase; 22] = [
        ("neg", |x| x.neg()),
        ("exp", |x| x.mul_scalar(3.0).exp()),
        ("log", |x| x.abs().add_scalar(0.1).log()),
        ("sqrt", |x| x.abs().sqrt()),
        ("sqr", |x| x.sqr()),
        ("abs", |x| x.abs()),
        ("relu", |x| x.relu()),
        ("sigmoid", |x| x.mul_scalar(4.0).sigmoid()),
        ("tanh", |x| x.mul_scalar(2.0).tanh()),
        ("gelu", |x| x.mul_scalar(2.0).gelu()),
        ("sign", |x| x.sign()),
        ("affine", |x| x.affine(1.5, -0.25)),
        ("powf", |x| x.abs().add_scalar(0.1).powf(1.7)),
        ("clamp", |x| x.clamp(-0.5, 0.75)),
        ("leaky_relu", |x| x.leaky_relu(0.1)),
        ("eq_scalar", |x| x.eq_scalar(0.5)),
        ("ne_scalar", |x| x.ne_scalar(0.5)),
        ("lt_scalar", |x| x.lt_scalar(0.5)),
        ("le_scalar", |x| x.le_scalar(0.5)),
        ("gt_scalar", |x| x.gt_scalar(0.5)),
        ("ge_scalar", |x| x.ge_scalar(0.5)),
        ("mul_scalar", |x| x.mul_scalar(-2.0)),
    ];
    let dims = g.dims(0, 4);
    for (name, f) in cases {
        let x = halves(g.strided(&dims));
        d.check(&["unary"], name, &[x], EW, |x| vec![f(&x[0])]);
    }
    // Backward-only kinds: GELU's derivative, ReLU's masked gradient.
    for (name, f) in [
        ("gelu backward", Tensor::gelu as fn(&Tensor) -> Tensor),
        ("relu backward", Tensor::relu),
    ] {
        let x = g.strided(&dims);
        d.check(&["unary", "binary"], name, &[x], EW, |x| {
            let v = vars(x);
            grads(&f(&v[0]), &v)
        });
    }
}

type BinaryCase = (&'static str, fn(&Tensor, &Tensor) -> Tensor);

fn binary(d: &mut Diff, g: &mut Gen) {
    let cases: [BinaryCase; 10] = [
        ("add", |a, b| a.add(b)),
        ("sub", |a, b| a.sub(b)),
        ("mul", |a, b| a.mul(b)),
        ("div", |a, b| a.div(&b.abs().add_scalar(0.5))),
        ("eq", |a, b| a.eq(b)),
        ("ne", |a, b| a.ne(b)),
        ("lt", |a, b| a.lt(b)),
        ("le", |a, b| a.le(b)),
        ("gt", |a, b| a.gt(b)),
        ("ge", |a, b| a.ge(b)),
    ];
    let dims = g.dims(1, 4);
    for (name, f) in cases {
        let (a, b) = (halves(g.operand(&dims)), halves(g.operand(&dims)));
        d.check(&["binary"], name, &[a, b], EW, |x| vec![f(&x[0], &x[1])]);
    }
    // Broadcasting with gradients (sum_to on the way back).
    let (a, b) = (g.operand(&dims), g.operand(&dims));
    d.check(
        &["binary", "reduce"],
        "mul/div backward",
        &[a, b],
        SUM,
        |x| {
            let v = vars(x);
            let y = v[0].mul(&v[1]).div(&v[1].abs().add_scalar(1.0));
            grads(&y, &v)
        },
    );
    let (c, a, b) = (halves(g.operand(&dims)), g.operand(&dims), g.operand(&dims));
    d.check(&["where_cond"], "where", &[c, a, b], EW, |x| {
        let v = vars(&x[1..]);
        let y = Tensor::where_cond(&x[0].gt_scalar(0.0), &v[0], &v[1]);
        let mut out = grads(&y, &v);
        out.push(y);
        out
    });
}

fn reductions(d: &mut Diff, g: &mut Gen) {
    let dims = g.dims(1, 4);
    let r = dims.len();
    let x = g.strided(&dims);
    // A random non-empty subset of axes, adjacent or not.
    let mut axes: Vec<isize> = (0..r as isize).filter(|_| g.rng.below(2) == 0).collect();
    if axes.is_empty() {
        axes.push(g.rng.below(r) as isize);
    }
    let keep = g.rng.below(2) == 0;
    let dim = g.rng.below(r) as isize;
    d.check(
        &["reduce"],
        &format!("sum over {axes:?}"),
        std::slice::from_ref(&x),
        SUM,
        |x| {
            vec![
                x[0].sum(&axes, keep),
                x[0].sum_all(),
                x[0].mean(&axes, keep),
            ]
        },
    );
    // Batch-norm shaped and large enough that the CPU splits the work
    // between threads: a per-channel sum read in place, a broadcast add.
    let (n, c) = (g.size(16, 20), g.size(4, 6));
    let big = g.strided(&[n, c, 32, 64]);
    let shift = g.strided(&[1, c, 1, 1]);
    d.check(
        &["reduce", "binary"],
        "per-channel sum and broadcast add, [N, C, 32, 64]",
        &[big, shift],
        SUM,
        |x| vec![x[0].sum(&[0, 2, 3], true), x[0].add(&x[1])],
    );
    d.check(
        &["reduce"],
        &format!("max/argmax over {dim}"),
        std::slice::from_ref(&x),
        EW,
        |x| {
            let v = vars(x);
            let m = v[0].max(dim, keep);
            let mut out = grads(&m, &v);
            out.extend([m, v[0].max_all(), v[0].argmax(dim, keep)]);
            out
        },
    );
    let x = x.map(|v| 5.0 * v);
    d.check(
        &["softmax"],
        &format!("softmax/log_softmax over {dim}"),
        &[x],
        SUM,
        |x| {
            let v = vars(x);
            let (s, l) = (v[0].softmax(dim), v[0].log_softmax(dim));
            let mut out = grads(&s.add(&l), &v);
            out.extend([s, l]);
            out
        },
    );
}

fn matmul(d: &mut Diff, g: &mut Gen) {
    let (m, k, n) = (g.size(1, 9), g.size(1, 17), g.size(1, 9));
    // Plain and batched with broadcast batch dims: [B1, 1, M, K]·[1, B2, K, N],
    // operands strided (a permuted 2-D operand is a transposed matrix).
    let (b1, b2) = (g.size(1, 3), g.size(1, 3));
    let shapes = [
        (vec![m, k], vec![k, n]),
        (vec![b1, m, k], vec![k, n]),
        (vec![b1, 1, m, k], vec![1, b2, k, n]),
        (vec![k], vec![b1, k, n]),
    ];
    for (sa, sb) in shapes {
        let (a, b) = (g.strided(&sa), g.strided(&sb));
        d.check(
            &["matmul"],
            &format!("matmul {sa:?}·{sb:?}"),
            &[a, b],
            SUM,
            |x| {
                let v = vars(x);
                let y = v[0].matmul(&v[1]);
                let mut out = grads(&y, &v);
                out.push(y);
                out
            },
        );
    }
}

fn indexing(d: &mut Diff, g: &mut Gen) {
    let dims = g.dims(1, 3);
    let dim = g.rng.below(dims.len());
    let x = g.strided(&dims);
    // gather: an index no larger than x outside `dim`, any length along it.
    let idims: Vec<usize> = dims
        .iter()
        .enumerate()
        .map(|(i, &s)| if i == dim { g.size(1, 5) } else { g.size(1, s) })
        .collect();
    let index = g.index(&idims, dims[dim]);
    let src = g.strided(&idims);
    d.check(
        &["gather", "scatter_add"],
        "gather / scatter_add",
        &[x.clone(), index, src],
        EW,
        |x| {
            let v = vars(&x[..1]);
            let y = v[0].gather(dim as isize, &x[1]);
            let mut out = grads(&y, &v);
            out.extend([y, x[0].scatter_add(dim, &x[1], &x[2])]);
            out
        },
    );
    let len = g.size(1, 5);
    let index = g.index(&[len], dims[dim]);
    let mut sdims = dims.clone();
    sdims[dim] = len;
    let src = g.strided(&sdims);
    d.check(
        &["index_select", "index_add"],
        "index_select / index_add",
        &[x, index.clone(), src],
        EW,
        |x| {
            let v = vars(&x[..1]);
            let y = v[0].index_select(dim as isize, &x[1]);
            let mut out = grads(&y, &v);
            out.extend([y, x[0].index_add(dim, &x[1], &x[2])]);
            out
        },
    );
    d.check(&["binary"], "one_hot", &[index], EW, |x| {
        vec![x[0].one_hot(5)]
    });
}

/// Random convolution parameters that fit an `h×w` input.
fn conv_params(g: &mut Gen, h: usize, w: usize) -> (Conv2dParams, (usize, usize)) {
    loop {
        let k = (g.size(1, 3), g.size(1, 3));
        let p = Conv2dParams {
            stride: (g.size(1, 2), g.size(1, 2)),
            padding: (g.size(0, 1), g.size(0, 1)),
            dilation: (g.size(1, 2), g.size(1, 2)),
            ..Default::default()
        };
        if h + 2 * p.padding.0 > p.dilation.0 * (k.0 - 1)
            && w + 2 * p.padding.1 > p.dilation.1 * (k.1 - 1)
        {
            return (p, k);
        }
    }
}

fn convolution(d: &mut Diff, g: &mut Gen) {
    let (n, groups, cg, og) = (g.size(1, 2), g.size(1, 2), g.size(1, 2), g.size(1, 2));
    let (h, w) = (g.size(3, 7), g.size(3, 7));
    let (mut p, k) = conv_params(g, h, w);
    p.groups = groups;
    let x = conv_and_transpose(d, g, [n, cg, og, h, w], p, k);
    // Many images of a small map at the DCGAN's kernel 4, stride 2,
    // padding 1: the CPU unfolds several images side by side per product
    // (and a shorter last run).
    let dcgan = Conv2dParams {
        stride: (2, 2),
        padding: (1, 1),
        groups: g.size(1, 2),
        ..Default::default()
    };
    let (n2, side, cg2, og2) = (g.size(9, 20), g.size(4, 8), g.size(1, 3), g.size(1, 3));
    conv_and_transpose(d, g, [n2, cg2, og2, side, side], dcgan, (4, 4));
    let geom = ConvGeom::new((h, w), k, &p);
    d.check(
        &["im2col", "col2im"],
        &format!("im2col/col2im {geom:?}"),
        std::slice::from_ref(&x),
        SUM,
        |x| {
            let v = vars(x);
            let cols = v[0].im2col(geom);
            let mut out = grads(&cols, &v);
            out.extend([cols.col2im(geom), cols]);
            out
        },
    );
    let (kp, sp) = (
        (g.size(1, 3).min(h), g.size(1, 3).min(w)),
        (g.size(1, 2), g.size(1, 2)),
    );
    d.check(
        &["max_pool2d", "max_unpool2d"],
        &format!("max_pool2d {kp:?} stride {sp:?}"),
        &[x],
        EW,
        |x| {
            let v = vars(x);
            let (y, idx) = v[0].max_pool2d_with_indices(kp, sp);
            let mut out = grads(&y, &v);
            out.extend([y.max_unpool2d(&idx, (h, w)), y, idx]);
            out
        },
    );
}

/// conv2d and conv_transpose2d with their gradients on `[n, groups·cg, h, w]`
/// inputs (`og` output channels per group); returns the input.
fn conv_and_transpose(
    d: &mut Diff,
    g: &mut Gen,
    [n, cg, og, h, w]: [usize; 5],
    p: Conv2dParams,
    k: (usize, usize),
) -> Input {
    let (c, o) = (p.groups * cg, p.groups * og);
    let x = g.strided(&[n, c, h, w]);
    let wt = g.strided(&[o, cg, k.0, k.1]);
    d.check(
        &["conv2d", "conv_transpose2d", "conv2d_weight_grad"],
        &format!("conv2d {p:?} kernel {k:?}"),
        &[x.clone(), wt.clone()],
        SUM,
        |x| {
            let v = vars(x);
            let y = v[0].conv2d(&v[1], None, p);
            let mut out = grads(&y, &v);
            out.push(y);
            out
        },
    );
    // With a bias: added in the forward product's pass, its gradient taken
    // in the weight gradient's.
    let b = g.strided(&[o]);
    d.check(
        &["conv2d", "conv_transpose2d", "conv2d_weight_grad"],
        &format!("conv2d {p:?} kernel {k:?} with bias"),
        &[x.clone(), wt.clone(), b],
        SUM,
        |x| {
            let v = vars(x);
            let y = v[0].conv2d(&v[1], Some(&v[2]), p);
            let mut out = grads(&y, &v);
            out.push(y);
            out
        },
    );
    // The transposed convolution as an op of its own: weight [C_in, C_out/g, kh, kw].
    let wt = g.strided(&[c, og, k.0, k.1]);
    let tp = Conv2dParams {
        dilation: (1, 1),
        ..p
    };
    d.check(
        &["conv_transpose2d", "conv2d", "conv2d_weight_grad"],
        &format!("conv_transpose2d {tp:?}"),
        &[x.clone(), wt],
        SUM,
        |x| {
            let v = vars(x);
            let y = v[0].conv_transpose2d(&v[1], None, tp);
            let mut out = grads(&y, &v);
            out.push(y);
            out
        },
    );
    x
}

fn recurrent(d: &mut Diff, g: &mut Gen) {
    let (t, n, h) = (g.size(1, 4), g.size(1, 3), g.size(1, 4));
    let gates = g.strided(&[n, 4 * h]).map(|v| 2.0 * v);
    let c = g.strided(&[n, h]);
    d.check(
        &["lstm_cell", "lstm_cell_backward"],
        "lstm_cell",
        &[gates, c.clone()],
        EW,
        |x| {
            let v = vars(x);
            let y = v[0].lstm_cell(&v[1]);
            let mut out = grads(&y, &v);
            out.push(y);
            out
        },
    );
    // A batch of 32+ rows: on two or more threads the fused layer runs its
    // recurrence on separate row ranges per thread.
    // Each with and without the gate bias (added in the kernel, its
    // gradient summed there).
    for n in [n, g.size(32, 40)] {
        for biased in [false, true] {
            let xp = g.strided(&[t, n, 4 * h]);
            let w = g.strided(&[4 * h, h]).map(|v| 0.5 * v);
            let (h0, c) = (g.strided(&[n, h]), g.strided(&[n, h]));
            let mut inputs = vec![xp, w, h0, c];
            if biased {
                inputs.push(g.strided(&[4 * h]));
            }
            d.check(
                &["lstm_layer", "lstm_layer_backward"],
                &format!("lstm_layer T={t} N={n} H={h} bias={biased}"),
                &inputs,
                SUM,
                |x| {
                    let v = vars(x);
                    let y = v[0].lstm_layer(&v[1], v.get(4), &v[2], &v[3]);
                    let mut out = grads(&y, &v);
                    out.push(y);
                    out
                },
            );
        }
    }
}

fn optimizers(d: &mut Diff, g: &mut Gen) {
    let dims = g.dims(1, 2);
    let (p, r) = (g.contiguous(&dims), g.strided(&dims));
    type Make = fn(Vec<Tensor>) -> Box<dyn Optimizer>;
    let makers: [(&str, Make); 5] = [
        ("sgd", |p| Box::new(Sgd::new(p, 0.1))),
        ("sgd momentum", |p| {
            Box::new(Sgd::new(p, 0.1).momentum(0.9).weight_decay(0.01))
        }),
        ("sgd nesterov", |p| {
            Box::new(Sgd::new(p, 0.1).momentum(0.8).nesterov(true))
        }),
        ("adam", |p| Box::new(Adam::new(p, 0.01).weight_decay(0.1))),
        ("adamw", |p| Box::new(Adam::adamw(p, 0.01, 0.1))),
    ];
    for (name, make) in makers {
        d.check(&["optim_step"], name, &[p.clone(), r.clone()], EW, |x| {
            let w = x[0].contiguous().detach().requires_grad();
            let mut opt = make(vec![w.clone()]);
            for _ in 0..3 {
                // Σ r ⊙ w²: the gradient 2·r⊙w changes with every step.
                let grads = w.sqr().mul(&x[1]).sum_all().backward();
                opt.step(&grads);
            }
            vec![w]
        });
    }
}

#[test]
fn every_primitive_matches_the_reference_backend() {
    let mut d = Diff::default();
    for seed in 0..TRIALS {
        let mut g = Gen::new(seed);
        memory(&mut d, &mut g);
        unary(&mut d, &mut g);
        binary(&mut d, &mut g);
        reductions(&mut d, &mut g);
        matmul(&mut d, &mut g);
        indexing(&mut d, &mut g);
        convolution(&mut d, &mut g);
        recurrent(&mut d, &mut g);
        optimizers(&mut d, &mut g);
    }
    d.finish(&PRIMITIVES);
}
