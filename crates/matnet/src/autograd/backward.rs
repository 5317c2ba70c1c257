//! The backward pass: a topological walk and one exhaustive match that gives
//! each op's gradient rule, written with tensor ops (so any backend that runs
//! the forward ops also trains).

use std::collections::HashSet;

use super::{BinaryOp, Gradients, Op, UnaryOp, no_grad};
use crate::ops::conv::conv2d_weight_grad;
use crate::ops::recurrent::{lstm_cell_grads, lstm_layer_grads};
use crate::tensor::{Tensor, TensorId};

impl Tensor {
    /// Gradients of this scalar with respect to every variable it depends on.
    ///
    /// ```
    /// use matnet::Tensor;
    /// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], [3]).requires_grad();
    /// let y = x.mul(&x).sum_all(); // Σ x²
    /// let grads = y.backward();
    /// assert_eq!(grads.get(&x).unwrap().to_vec(), vec![2.0, 4.0, 6.0]);
    /// ```
    pub fn backward(&self) -> Gradients {
        self.assert_scalar("backward");
        self.backward_with(self.ones_like())
    }

    /// Backpropagates a given output gradient (the vector in a
    /// vector-Jacobian product) of this tensor's shape.
    pub fn backward_with(&self, grad: Tensor) -> Gradients {
        self.backpropagate(grad, None)
    }

    /// Gradients of this scalar with respect to `targets` only: a gradient
    /// rule runs only where it leads to one of them. A GAN's generator
    /// step sends its loss back through the discriminator to reach the
    /// generator; this skips the discriminator's own weight gradients
    /// (a third of its backward products), which that step would discard.
    ///
    /// ```
    /// use matnet::Tensor;
    /// let a = Tensor::from_vec(vec![2.0], [1]).requires_grad();
    /// let b = Tensor::from_vec(vec![3.0], [1]).requires_grad();
    /// let grads = a.mul(&b).sum_all().backward_for(&[a.clone()]);
    /// assert_eq!(grads.get(&a).unwrap().to_vec(), vec![3.0]);
    /// assert!(grads.get(&b).is_none());
    /// ```
    pub fn backward_for(&self, targets: &[Tensor]) -> Gradients {
        self.assert_scalar("backward_for");
        let targets: HashSet<TensorId> = targets.iter().map(Tensor::id).collect();
        self.backpropagate(self.ones_like(), Some(&targets))
    }

    fn assert_scalar(&self, caller: &str) {
        assert_eq!(
            self.numel(),
            1,
            "{caller}: called on a tensor of shape {:?}; reduce it to a scalar first",
            self.shape()
        );
    }

    fn backpropagate(&self, grad: Tensor, targets: Option<&HashSet<TensorId>>) -> Gradients {
        assert_eq!(
            grad.shape(),
            self.shape(),
            "backward_with: gradient shape {:?} differs from tensor shape {:?}",
            grad.shape(),
            self.shape()
        );
        let _guard = no_grad();
        let mut grads = Gradients::default();
        if !self.tracks_grad() {
            return grads;
        }
        let order = topological_order(self);
        // With targets: the nodes on a path to one of them (inputs come
        // before the nodes that use them in `order`).
        let on_path: Option<HashSet<TensorId>> = targets.map(|targets| {
            let mut on_path = HashSet::new();
            for node in &order {
                let leads = targets.contains(&node.id())
                    || node
                        .op()
                        .is_some_and(|op| op.inputs().iter().any(|i| on_path.contains(&i.id())));
                if leads {
                    on_path.insert(node.id());
                }
            }
            on_path
        });
        let needs =
            |t: &Tensor| t.tracks_grad() && on_path.as_ref().is_none_or(|p| p.contains(&t.id()));
        grads.insert(self.id(), grad);
        for node in order.iter().rev() {
            let Some(g) = grads.take(node.id()) else {
                continue;
            };
            let Some(op) = node.op() else {
                // A leaf variable: its gradient is a result, keep it.
                grads.insert(node.id(), g);
                continue;
            };
            let inputs = op.inputs();
            let gis = super::profile::time_backward(node, op, || input_grads(op, node, &g, &needs));
            for (input, gi) in inputs.iter().zip(gis) {
                if let Some(gi) = gi
                    && needs(input)
                {
                    grads.accumulate(input.id(), gi);
                }
            }
            // `g` (an intermediate gradient) is dropped here, keeping memory at
            // the size of the live frontier rather than of the whole graph.
        }
        grads
    }
}

/// Nodes that track gradients, every node after all of its inputs.
fn topological_order(root: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut visited = HashSet::new();
    // Iterative DFS: a long recurrent unroll must not overflow the stack.
    let mut stack = vec![(root.clone(), false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !visited.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        if let Some(op) = t.op() {
            for input in op.inputs() {
                if input.tracks_grad() && !visited.contains(&input.id()) {
                    stack.push((input.clone(), false));
                }
            }
        }
    }
    order
}

/// The gradient of each input of `op` (in `op.inputs()` order), given the
/// op's output `out` and the gradient `g` arriving at it; `None` (or a
/// gradient the caller drops) where `needs` says an input wants none.
fn input_grads(
    op: &Op,
    out: &Tensor,
    g: &Tensor,
    needs: &dyn Fn(&Tensor) -> bool,
) -> Vec<Option<Tensor>> {
    match op {
        Op::Binary(a, b, kind) => {
            let ga = needs(a).then(|| match kind {
                BinaryOp::Add | BinaryOp::Sub => g.clone(),
                BinaryOp::Mul => g.mul(b),
                BinaryOp::Div => g.div(b),
            });
            let gb = needs(b).then(|| match kind {
                BinaryOp::Add => g.clone(),
                BinaryOp::Sub => g.neg(),
                BinaryOp::Mul => g.mul(a),
                // d(a/b)/db = -a/b² = -out/b
                BinaryOp::Div => g.mul(out).div(b).neg(),
            });
            vec![
                ga.map(|ga| ga.sum_to(a.shape())),
                gb.map(|gb| gb.sum_to(b.shape())),
            ]
        }
        Op::Unary(x, kind) => {
            let gx = match kind {
                UnaryOp::Neg => g.neg(),
                UnaryOp::Exp => g.mul(out),
                UnaryOp::Log => g.div(x),
                UnaryOp::Sqrt => g.div(out).mul_scalar(0.5),
                UnaryOp::Sqr => g.mul(x).mul_scalar(2.0),
                UnaryOp::Abs => g.mul(&x.sign()),
                UnaryOp::Relu => g.leaky_relu_backward(x, 0.0),
                // σ' = σ(1-σ), the Hadamard form of the chain rule.
                UnaryOp::Sigmoid => g.mul(&out.mul(&out.affine(-1.0, 1.0))),
                UnaryOp::Tanh => g.mul(&out.sqr().affine(-1.0, 1.0)),
                UnaryOp::Gelu => g.mul(&x.gelu_derivative()),
            };
            vec![Some(gx)]
        }
        Op::Affine(_, mul, _) => vec![Some(g.mul_scalar(*mul))],
        Op::Powf(x, e) => vec![Some(g.mul(&x.powf(e - 1.0)).mul_scalar(*e))],
        Op::Clamp(x, lo, hi) => {
            let inside = x.ge_scalar(*lo).mul(&x.le_scalar(*hi));
            vec![Some(g.mul(&inside))]
        }
        Op::LeakyRelu(x, slope) => vec![Some(g.leaky_relu_backward(x, *slope))],
        Op::Where(c, a, b) => {
            let ga = g.mul(c).sum_to(a.shape());
            let gb = g.mul(&c.affine(-1.0, 1.0)).sum_to(b.shape());
            vec![None, Some(ga), Some(gb)]
        }
        Op::Matmul(a, b) => {
            // Skip the product for an operand that needs no gradient (the
            // input images of a first layer): it is a full GEMM.
            let (ga, gb) = crate::ops::matmul::matmul_grads(a, b, g, needs(a), needs(b));
            vec![ga, gb]
        }
        Op::Sum(x, dims) => {
            let keep = x.shape().reduced(dims, true);
            vec![Some(g.reshape(keep).broadcast_to(x.shape()))]
        }
        Op::Max(x, dims) => {
            // The gradient goes to the maximal entries (shared evenly on ties).
            let keep = x.shape().reduced(dims, true);
            let mask = x.eq(&out.reshape(keep.clone()));
            let count = mask.sum_dims(dims, true);
            vec![Some(mask.mul(&g.reshape(keep).div(&count)))]
        }
        Op::Softmax(_, dim) => {
            // grad_x = y ⊙ (g - Σ_dim g ⊙ y)
            let s = g.mul(out).sum_dims(&[*dim], true);
            vec![Some(out.mul(&g.sub(&s)))]
        }
        Op::LogSoftmax(_, dim) => {
            // grad_x = g - softmax(x) ⊙ Σ_dim g
            let s = g.sum_dims(&[*dim], true);
            vec![Some(g.sub(&out.exp().mul(&s)))]
        }
        Op::Reshape(x) => vec![Some(g.reshape(x.shape()))],
        Op::Permute(_, perm) => {
            let mut inv = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inv[p] = i;
            }
            vec![Some(g.permute(&inv))]
        }
        Op::Narrow(x, dim, start) => vec![Some(g.pad_dim(*dim, *start, x.dims()[*dim]))],
        Op::Cat(xs, dim) => {
            let mut start = 0;
            xs.iter()
                .map(|x| {
                    let len = x.dims()[*dim];
                    let gx = g.narrow(*dim as isize, start, len);
                    start += len;
                    Some(gx)
                })
                .collect()
        }
        Op::BroadcastTo(x) => vec![Some(g.sum_to(x.shape()))],
        Op::Copy(_) => vec![Some(g.clone())],
        Op::Gather(x, dim, index) => {
            vec![Some(x.zeros_like().scatter_add(*dim, index, g))]
        }
        // The adjoint pair of convolution: each is the other's gradient.
        Op::Im2col(_, geom) => vec![Some(g.col2im(*geom))],
        Op::Col2im(_, geom) => vec![Some(g.im2col(*geom))],
        // conv2d and conv_transpose2d are each other's input gradient; the
        // weight gradient correlates the input with the output gradient.
        // The bias gradient comes from the weight gradient's pass over g.
        Op::Conv2d(x, w, b, s) => {
            let bias = b.as_ref().is_some_and(needs);
            let (gw, gb) = if needs(w) || bias {
                let (gw, gb) = conv2d_weight_grad(x, g, s, bias);
                (needs(w).then_some(gw), gb)
            } else {
                (None, None)
            };
            let mut grads = vec![needs(x).then(|| g.conv_transpose2d_op(w, *s)), gw];
            if b.is_some() {
                grads.push(gb);
            }
            grads
        }
        Op::ConvTranspose2d(x, w, s) => vec![
            needs(x).then(|| g.conv2d_op(w, None, *s)),
            needs(w).then(|| conv2d_weight_grad(g, x, s, false).0),
        ],
        Op::LstmCell(gates, c) => {
            let (ga, gc) = lstm_cell_grads(gates, c, g);
            vec![Some(ga), Some(gc)]
        }
        Op::LstmLayer(xp, w, h0, c0, b, gates) => {
            let (grads, gb) = lstm_layer_grads([xp, w, h0, c0], b.as_ref(), gates, out, g);
            grads
                .into_iter()
                .map(Some)
                .chain(b.as_ref().map(|_| gb))
                .collect()
        }
        Op::MaxPool2d(_, idx, size) => vec![Some(g.max_unpool2d_op(idx, *size))],
        Op::MaxUnpool2d(x, idx) => {
            // Reading back the placed positions: a gather over each plane.
            let (planes, l) = (x.dims()[0] * x.dims()[1], x.dims()[2] * x.dims()[3]);
            let hw = g.dims()[2] * g.dims()[3];
            let picked = g.reshape([planes, hw]).gather(1, &idx.reshape([planes, l]));
            vec![Some(picked.reshape(x.shape()))]
        }
        Op::IndexSelect(x, dim, index) => {
            vec![Some(x.zeros_like().index_add(*dim, index, g))]
        }
    }
}
