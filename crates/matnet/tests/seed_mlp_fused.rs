//! The seed network's fused training kernel (`backend/cpu/dense_relu_dense/`)
//! against the composed graph: the same loss, accuracy, gradients and update
//! to float tolerance, on every backend (the reference backend takes the
//! composed path itself), results that do not depend on the thread count,
//! and the byte path (grey levels) giving the f32 path's bits.

mod common;

use matnet::backend::kernels::{DenseReluDense, Samples, dense_relu_dense_grads, grey_level};
use matnet::data::UnitPixels;
use matnet::models::{Arch, Classifier, ModelConfig, Net};
use matnet::nn::loss::cross_entropy;
use matnet::optim::Sgd;
use matnet::train::Player;
use matnet::{Module, Rng, Tensor};

/// A small seed-mlp (D = 4·5, `h` hidden, C = 4) and 2,500 samples: more
/// than two of the kernel's 1,024-sample chunks, the last block partial.
/// H = 10 takes the AVX-512 products where the CPU has them (D = 20: a
/// partial vector per row), other widths the packed GEMM.
fn problem(h: usize) -> (Classifier, Tensor, Tensor) {
    let model = small_seed_mlp(4, 5, h);
    let mut rng = Rng::new(3);
    let n = 2500;
    let x = Tensor::rand_uniform([n, 20], 0.0, 1.0, &mut rng);
    let y = Tensor::from_vec((0..n).map(|_| rng.below(4) as f32).collect(), [n]);
    (model, x, y)
}

/// A seed-mlp on `rows × cols` images, `h` hidden units, 4 classes.
fn small_seed_mlp(rows: usize, cols: usize, h: usize) -> Classifier {
    let config = ModelConfig {
        rows,
        cols,
        classes: 4,
        hidden: vec![h],
        ..ModelConfig::for_mnist(Arch::SeedMlp)
    };
    Classifier::new(config, 7).unwrap()
}

fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let (i, diff) = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs() / w.abs().max(1.0))
        .enumerate()
        .fold((0, 0.0f32), |m, (i, d)| if d > m.1 { (i, d) } else { m });
    assert!(
        diff <= tol,
        "{what}: max relative difference {diff:e} at {i} (got {}, want {}); first values {:?} vs {:?}",
        got[i],
        want[i],
        &got[..got.len().min(4)],
        &want[..want.len().min(4)]
    );
}

for_each_backend! {
    fn train_step_matches_the_composed_graph() {
        let (fused, x, y) = problem(10);
        let (composed, _, _) = problem(10);
        let sgd = |p| -> Box<dyn matnet::Optimizer> { Box::new(Sgd::new(p, 0.5)) };
        let mut pf = Player::new(fused.net.parameters(), sgd);
        let mut pc = Player::new(composed.net.parameters(), sgd);
        for step in 0..3 {
            let mf = fused.train_step(&mut pf, &x, &y).unwrap();
            let mc = pc.classification_step(&composed.logits(&x), &y).unwrap();
            assert_close(&format!("loss, step {step}"), &[mf.loss], &[mc.loss], 1e-5);
            assert_close(
                &format!("accuracy, step {step}"),
                &[mf.accuracy.unwrap()],
                &[mc.accuracy.unwrap()],
                1e-6,
            );
            for ((name, a), (_, b)) in fused
                .net
                .named_parameters()
                .into_iter()
                .zip(composed.net.named_parameters())
            {
                assert_close(&format!("{name} after step {step}"), &a.to_vec(), &b.to_vec(), 1e-5);
            }
        }
    }
}

#[test]
fn fused_gradients_match_autograd() {
    for h in [6, 10] {
        let (model, x, y) = problem(h);
        let Net::SeedMlp(net) = &model.net else {
            panic!("seed-mlp builds a SeedMlp")
        };
        let fused = net
            .fused_grads(&x, &y)
            .expect("CPU tensors take the fused kernel");
        let loss = cross_entropy(&model.logits(&x), &y);
        let grads = loss.backward();
        assert_close(&format!("H {h}: loss"), &[fused.loss], &[loss.item()], 1e-6);
        for (name, p) in model.net.named_parameters() {
            assert_close(
                &format!("H {h}: grad {name}"),
                &fused.grads.get(&p).expect("fused gradient").to_vec(),
                &grads.get(&p).expect("autograd gradient").to_vec(),
                1e-5,
            );
        }
    }
}

#[test]
fn fused_results_do_not_depend_on_the_thread_count() {
    let mut rng = Rng::new(11);
    let (n, d, h, c) = (3000, 33, 10, 10);
    let v = |len, rng: &mut Rng| Tensor::rand_uniform([len], -0.5, 0.5, rng).to_vec();
    let x = Tensor::rand_uniform([n * d], 0.0, 1.0, &mut rng).to_vec();
    let labels: Vec<f32> = (0..n).map(|_| rng.below(c) as f32).collect();
    let (w1, b1, w2, b2) = (
        v(h * d, &mut rng),
        v(h, &mut rng),
        v(c * h, &mut rng),
        v(c, &mut rng),
    );
    let net = DenseReluDense {
        w1: &w1,
        b1: &b1,
        w2: &w2,
        b2: &b2,
        d,
        h,
        c,
    };
    let one = dense_relu_dense_grads(&net, Samples::F32(&x), &labels, 1);
    let two = dense_relu_dense_grads(&net, Samples::F32(&x), &labels, 2);
    assert_eq!(one.loss.to_bits(), two.loss.to_bits());
    assert_eq!(one.correct, two.correct);
    assert_eq!(one.grad_w1, two.grad_w1);
    assert_eq!(one.grad_b1, two.grad_b1);
    assert_eq!(one.grad_w2, two.grad_w2);
    assert_eq!(one.grad_b2, two.grad_b2);
}

#[test]
fn grey_levels_give_the_f32_paths_bits() {
    // H 10 takes the AVX-512 products (where the CPU has them), H 6 the
    // packed GEMM on converted blocks; D 33 leaves a partial vector per row.
    for h in [10, 6] {
        let mut rng = Rng::new(5);
        let (n, d) = (2500, 33);
        let levels: Vec<u8> = (0..n * d).map(|_| rng.below(256) as u8).collect();
        let y = Tensor::from_vec((0..n).map(|_| rng.below(4) as f32).collect(), [n]);
        let model = small_seed_mlp(3, 11, h);
        let Net::SeedMlp(net) = &model.net else {
            panic!("seed-mlp builds a SeedMlp")
        };
        let x = Tensor::from_vec(levels.iter().map(|&k| grey_level(k)).collect(), [n, d]);
        let pixels = UnitPixels::new(x.clone(), &levels).expect("exact levels");
        let from_f32 = net.fused_grads(&x, &y).expect("fused");
        let from_levels = net.fused_grads_pixels(&pixels, &y).expect("fused");
        assert_eq!(
            from_f32.loss.to_bits(),
            from_levels.loss.to_bits(),
            "H {h}: loss"
        );
        assert_eq!(from_f32.accuracy, from_levels.accuracy, "H {h}: accuracy");
        for (name, p) in model.net.named_parameters() {
            assert_eq!(
                from_f32.grads.get(&p).expect("gradient").to_vec(),
                from_levels.grads.get(&p).expect("gradient").to_vec(),
                "H {h}: grad {name}"
            );
        }
    }
}

#[test]
fn unit_pixels_refuse_levels_that_do_not_give_the_images() {
    let levels = [0u8, 17, 255];
    let x = Tensor::from_vec(levels.iter().map(|&k| grey_level(k)).collect(), [3]);
    assert!(UnitPixels::new(x.clone(), &levels).is_some());
    assert!(UnitPixels::new(x.clone(), &[0, 18, 255]).is_none());
    assert!(UnitPixels::new(x, &[0, 17]).is_none());
    let standardized = Tensor::from_vec(vec![-0.4242, 0.1, 2.8215], [3]);
    assert!(UnitPixels::new(standardized, &levels).is_none());
}
