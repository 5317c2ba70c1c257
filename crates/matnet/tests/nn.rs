//! Layers, losses and optimizers: gradient checks and behaviour.

mod common;
use common::{gradcheck, randn, uniform};
use matnet::nn::{Dropout, Init, Linear, Module, Relu, Sequential, loss};
use matnet::optim::{Adam, LrSchedule, Optimizer, Sgd, clip_grad_norm};
use matnet::{Rng, Tensor};

#[test]
fn linear_gradients_match_finite_differences() {
    let mut rng = Rng::new(1);
    let lin = Linear::new(4, 3, &mut rng);
    let (w, b) = (lin.weight.clone(), lin.bias.clone().unwrap());
    // x, W and b all as checked inputs: y = x·Wᵀ + b.
    gradcheck("linear", vec![randn(&[5, 4], 2), w, b], |x| {
        let l = Linear {
            weight: x[1].clone(),
            bias: Some(x[2].clone()),
        };
        l.forward(&x[0])
    });
    // Leading dims are kept: [N, T, D_in] -> [N, T, D_out].
    assert_eq!(lin.forward(&randn(&[2, 3, 4], 3)).dims(), &[2, 3, 3]);
}

#[test]
fn sequential_names_parameters_like_pytorch() {
    let mut rng = Rng::new(0);
    let net = Sequential::new()
        .append(Linear::new(4, 8, &mut rng))
        .append(Relu)
        .append(Linear::new(8, 2, &mut rng));
    let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
    assert_eq!(net.num_parameters(), 4 * 8 + 8 + 8 * 2 + 2);
    assert_eq!(net.named_parameters()[0].1.dims(), &[8, 4]);
}

#[test]
fn loss_gradients_match_finite_differences() {
    let labels = Tensor::from_vec(vec![2., 0., 1., 2.], [4]);
    gradcheck("cross_entropy", vec![randn(&[4, 3], 1)], |x| {
        loss::cross_entropy(&x[0], &labels)
    });
    gradcheck("nll", vec![randn(&[4, 3], 2)], |x| {
        loss::nll_loss(&x[0].log_softmax(-1), &labels)
    });
    let t = uniform(&[3, 2], 0.0, 1.0, 3);
    gradcheck("mse", vec![randn(&[3, 2], 4)], |x| {
        loss::mse_loss(&x[0], &t)
    });
    gradcheck("bce", vec![uniform(&[3, 2], 0.1, 0.9, 5)], |x| {
        loss::binary_cross_entropy(&x[0], &t)
    });
    gradcheck(
        "bce_with_logits",
        vec![common::away_from_zero(&[3, 2], 0.05, 6)],
        |x| loss::binary_cross_entropy_with_logits(&x[0], &t),
    );
    gradcheck("l2", vec![randn(&[2, 2], 7), randn(&[3], 8)], |x| {
        loss::l2_penalty(x, 0.1)
    });
}

#[test]
fn loss_values() {
    // Uniform logits: cross-entropy = ln C.
    let ce =
        loss::cross_entropy(&Tensor::zeros([2, 4]), &Tensor::from_vec(vec![1., 3.], [2])).item();
    assert!((ce - 4f32.ln()).abs() < 1e-6);
    // Logits and probabilities forms agree.
    let z = randn(&[3, 2], 1);
    let t = uniform(&[3, 2], 0.0, 1.0, 2);
    let a = loss::binary_cross_entropy(&z.sigmoid(), &t).item();
    let b = loss::binary_cross_entropy_with_logits(&z, &t).item();
    assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    // Stable for huge logits.
    let big = Tensor::from_vec(vec![1e4, -1e4], [2]);
    assert!(
        loss::binary_cross_entropy_with_logits(&big, &Tensor::from_vec(vec![1., 0.], [2]))
            .item()
            .abs()
            < 1e-6
    );
    assert_eq!(
        loss::accuracy(
            &Tensor::from_vec(vec![0., 1., 3., 2.], [2, 2]),
            &Tensor::from_vec(vec![1., 1.], [2])
        ),
        0.5
    );
}

#[test]
fn dropout_scales_in_training_and_is_identity_in_eval() {
    let mut d = Dropout::new(0.25, 9);
    let x = Tensor::ones([100_000]);
    let y = d.forward(&x).to_vec();
    let zeros = y.iter().filter(|&&v| v == 0.0).count() as f32 / y.len() as f32;
    let mean: f32 = y.iter().sum::<f32>() / y.len() as f32;
    assert!((zeros - 0.25).abs() < 0.01, "dropped fraction {zeros}");
    assert!((mean - 1.0).abs() < 0.01, "mean {mean}");
    assert!(y.iter().all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6));
    d.set_training(false);
    assert_eq!(d.forward(&x).to_vec(), x.to_vec());
}

#[test]
fn initialisers_have_the_right_spread() {
    let mut rng = Rng::new(5);
    let std = |t: &Tensor| {
        let v = t.to_vec();
        let m = v.iter().sum::<f32>() / v.len() as f32;
        (v.iter().map(|x| (x - m) * (x - m)).sum::<f32>() / v.len() as f32).sqrt()
    };
    let he = Init::KaimingNormal.tensor([256, 512], 512, 256, &mut rng);
    assert!((std(&he) - (2.0f32 / 512.0).sqrt()).abs() < 0.002);
    let xa = Init::XavierUniform.tensor([256, 512], 512, 256, &mut rng);
    let bound = (6.0f32 / 768.0).sqrt();
    assert!(xa.to_vec().iter().all(|v| v.abs() <= bound));
    assert!((std(&xa) - bound / 3f32.sqrt()).abs() < 0.002);
    let u = Init::Uniform(-0.5, 0.5)
        .tensor([1000], 1, 1, &mut rng)
        .to_vec();
    assert!(u.iter().all(|v| (-0.5..0.5).contains(v)));
}

/// Minimises f(w) = Σ (w - c)² and checks the first updates by hand.
#[test]
fn optimizers_follow_their_update_rules() {
    let c = Tensor::from_vec(vec![1.0, -2.0], [2]);
    let run = |opt: &mut dyn Optimizer, w: &Tensor, steps: usize| {
        for _ in 0..steps {
            let grads = w.sub(&c).sqr().sum_all().backward();
            opt.step(&grads);
        }
    };
    // SGD: w1 = w0 - lr·2(w0 - c) = 0 - 0.1·2·(-1, 2) = (0.2, -0.4)
    let w = Tensor::zeros([2]).requires_grad();
    run(&mut Sgd::new(vec![w.clone()], 0.1), &w, 1);
    assert_close2(&w.to_vec(), &[0.2, -0.4]);
    // Momentum 0.9, second step: v = 0.9·g0 + g1.
    let w = Tensor::zeros([2]).requires_grad();
    run(&mut Sgd::new(vec![w.clone()], 0.1).momentum(0.9), &w, 2);
    // g0 = (-2, 4); w1 = (0.2, -0.4); g1 = (-1.6, 3.2); v = (-3.4, 6.8); w2 = w1 - 0.1 v
    assert_close2(&w.to_vec(), &[0.54, -1.08]);
    // Adam's first step moves every coordinate by lr against the gradient sign.
    let w = Tensor::zeros([2]).requires_grad();
    run(&mut Adam::new(vec![w.clone()], 0.01), &w, 1);
    assert_close2(&w.to_vec(), &[0.01, -0.01]);
    // AdamW decays the weight itself: at w0 = c the gradient is 0, so w1 = w0·(1 - lr·wd).
    let w = Tensor::from_vec(vec![1.0, -2.0], [2]).requires_grad();
    run(&mut Adam::adamw(vec![w.clone()], 0.1, 0.5), &w, 1);
    assert_close2(&w.to_vec(), &[0.95, -1.9]);
    // Nesterov SGD and Adam converge.
    let w = Tensor::zeros([2]).requires_grad();
    run(
        &mut Sgd::new(vec![w.clone()], 0.05).momentum(0.9).nesterov(true),
        &w,
        200,
    );
    assert_close2(&w.to_vec(), &[1.0, -2.0]);
    let w = Tensor::zeros([2]).requires_grad();
    run(&mut Adam::new(vec![w.clone()], 0.05), &w, 500);
    assert_close2(&w.to_vec(), &[1.0, -2.0]);
}

fn assert_close2(got: &[f32], want: &[f32]) {
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 2e-3, "{got:?} vs {want:?}");
    }
}

#[test]
fn schedules_and_clipping() {
    let s = LrSchedule::Step {
        every: 2,
        gamma: 0.5,
    };
    assert_eq!([0, 1, 2, 4].map(|t| s.lr_at(1.0, t)), [1.0, 1.0, 0.5, 0.25]);
    let c = LrSchedule::Cosine {
        total: 10,
        min_lr: 0.0,
    };
    assert!(
        (c.lr_at(1.0, 0) - 1.0).abs() < 1e-6
            && (c.lr_at(1.0, 5) - 0.5).abs() < 1e-6
            && c.lr_at(1.0, 10).abs() < 1e-6
    );
    let w = LrSchedule::Warmup {
        warmup: 3,
        then: Box::new(LrSchedule::Constant),
    };
    assert_eq!(
        [0, 1, 2, 3].map(|t| w.lr_at(1.0, t)),
        [0.25, 0.5, 0.75, 1.0]
    );

    let p = Tensor::from_vec(vec![3.0, 4.0], [2]).requires_grad();
    let mut grads = p.sqr().sum_all().mul_scalar(0.5).backward(); // grad = p, norm 5
    let norm = clip_grad_norm(&mut grads, std::slice::from_ref(&p), 1.0);
    assert!((norm - 5.0).abs() < 1e-6);
    assert_close2(&grads.get(&p).unwrap().to_vec(), &[0.6, 0.8]);
}
