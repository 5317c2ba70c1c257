//! The source documents' worked examples, as tests.

mod common;
use common::randn;
use matnet::{Rng, Tensor};

#[test]
fn two_by_two_product() {
    // seed 004: [[1,2],[3,4]]·[[5,6],[7,8]] = [[19,22],[43,50]]
    let a = Tensor::from_vec(vec![1., 2., 3., 4.], [2, 2]);
    let b = Tensor::from_vec(vec![5., 6., 7., 8.], [2, 2]);
    assert_eq!(a.matmul(&b).to_vec2(), vec![vec![19., 22.], vec![43., 50.]]);
}

#[test]
fn hadamard_product() {
    // seed 003: [0.5, 3.6, 15.1] ⊙ [0, 0.9, 0.1] = [0, 3.24, 1.51]
    let a = Tensor::from_vec(vec![0.5, 3.6, 15.1], [3]);
    let b = Tensor::from_vec(vec![0.0, 0.9, 0.1], [3]);
    let c = a.mul(&b).to_vec();
    for (got, want) in c.iter().zip([0.0, 3.24, 1.51]) {
        assert!((got - want).abs() < 1e-6, "{c:?}");
    }
}

#[test]
fn batched_product_is_n_separate_products() {
    // seed 004: (n,m,p)@(n,p,q) -> (n,m,q), each slice its own 2-D product.
    let (n, m, p, q) = (4, 3, 5, 2);
    let a = randn(&[n, m, p], 1);
    let b = randn(&[n, p, q], 2);
    let c = a.matmul(&b);
    assert_eq!(c.dims(), &[n, m, q]);
    for i in 0..n {
        let ai = a.narrow(0, i, 1).reshape([m, p]);
        let bi = b.narrow(0, i, 1).reshape([p, q]);
        let ci = c.narrow(0, i, 1).reshape([m, q]).to_vec();
        let want = ai.matmul(&bi).to_vec();
        for (x, y) in ci.iter().zip(&want) {
            assert!((x - y).abs() < 1e-5, "batch {i}: {ci:?} vs {want:?}");
        }
    }
}

#[test]
fn kronecker_block_form() {
    // kron(A, B) = [[a11·B, a12·B], [a21·B, a22·B]]
    let a = Tensor::from_vec(vec![1., 2., 3., 4.], [2, 2]);
    let b = Tensor::from_vec(vec![0., 5., 6., 7.], [2, 2]);
    let k = a.kron(&b);
    assert_eq!(k.dims(), &[4, 4]);
    assert_eq!(
        k.to_vec2(),
        vec![
            vec![0., 5., 0., 10.],
            vec![6., 7., 12., 14.],
            vec![0., 15., 0., 20.],
            vec![18., 21., 24., 28.],
        ]
    );
    let i2 = Tensor::eye(2);
    assert_eq!(
        i2.kron(&b).narrow(0, 2, 2).narrow(1, 2, 2).to_vec(),
        b.to_vec()
    );
}

#[test]
fn transposed_operands_need_no_copy() {
    let a = randn(&[5, 3], 3);
    let at = a.t();
    assert!(!at.is_contiguous() && at.same_storage(&a));
    let b = randn(&[5, 4], 4);
    let want = at.contiguous().matmul(&b).to_vec();
    let got = at.matmul(&b).to_vec();
    for (x, y) in got.iter().zip(&want) {
        assert!((x - y).abs() < 1e-5);
    }
}

#[test]
fn feed_forward_4_3_2_learns() {
    // seed 001: input 4 -> hidden 3 -> output 2, W1 4×3, W2 3×2, sigmoid.
    // Toy task: outputs (x0 OR x1, x2 AND x3) over all 16 binary inputs.
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for i in 0..16u32 {
        let bits: Vec<f32> = (0..4).map(|k| ((i >> k) & 1) as f32).collect();
        targets.push(if bits[0] + bits[1] > 0.0 { 1.0 } else { 0.0 });
        targets.push(bits[2] * bits[3]);
        rows.extend(bits);
    }
    let x = Tensor::from_vec(rows, [16, 4]);
    let y = Tensor::from_vec(targets, [16, 2]);
    let mut rng = Rng::new(7);
    let w1 = Tensor::rand_uniform([4, 3], -1.0, 1.0, &mut rng).requires_grad();
    let b1 = Tensor::zeros([3]).requires_grad();
    let w2 = Tensor::rand_uniform([3, 2], -1.0, 1.0, &mut rng).requires_grad();
    let b2 = Tensor::zeros([2]).requires_grad();
    let params = [&w1, &b1, &w2, &b2];
    let loss_at = |_: ()| {
        let hidden = x.matmul(&w1).add(&b1).sigmoid();
        let out = hidden.matmul(&w2).add(&b2).sigmoid();
        out.sub(&y).sqr().mean_all()
    };
    let first = loss_at(()).item();
    for _ in 0..3000 {
        let grads = loss_at(()).backward();
        for p in params {
            let g = grads
                .get(p)
                .expect("every parameter gets a gradient")
                .to_vec();
            p.update_(|d| d.iter_mut().zip(&g).for_each(|(d, g)| *d -= 2.0 * g));
        }
    }
    let last = loss_at(()).item();
    assert!(last < first / 10.0 && last < 0.02, "loss {first} -> {last}");
}
