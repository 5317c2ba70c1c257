//! `matnet::train`: the shared training step. One player learns; two
//! players alternate as a GAN does, each updating only its own parameters
//! while gradients pass through the other's network; clipping and
//! divergence behave as documented.

use matnet::nn::loss::cross_entropy;
use matnet::nn::{Linear, Module, Relu, Sequential};
use matnet::optim::{Adam, Sgd, clip_grad_norm};
use matnet::train::{Player, RunningMetrics};
use matnet::{Rng, Tensor};

fn values(params: &[Tensor]) -> Vec<Vec<f32>> {
    params.iter().map(Tensor::to_vec).collect()
}

#[test]
fn one_player_learns_a_separable_problem() {
    let mut rng = Rng::new(0);
    let net = Sequential::new()
        .append(Linear::new(2, 16, &mut rng))
        .append(Relu)
        .append(Linear::new(16, 2, &mut rng));
    let x = Tensor::randn([64, 2], 0.0, 1.0, &mut rng);
    // Class 1 where x₀ + x₁ > 0.
    let y = Tensor::from_vec(
        x.to_vec()
            .chunks(2)
            .map(|p| f32::from(p[0] + p[1] > 0.0))
            .collect(),
        [64],
    );
    let mut player = Player::new(net.parameters(), |p| Box::new(Adam::new(p, 0.05)));
    let first = player.classification_step(&net.forward(&x), &y).unwrap();
    let mut running = RunningMetrics::default();
    for _ in 0..100 {
        running.add(&player.classification_step(&net.forward(&x), &y).unwrap());
    }
    let last = player.classification_step(&net.forward(&x), &y).unwrap();
    assert_eq!((first.examples, running.examples()), (64, 6400));
    assert!(
        last.loss < 0.3 * first.loss,
        "{} -> {}",
        first.loss,
        last.loss
    );
    assert!(last.accuracy.unwrap() > 0.95, "{:?}", last.accuracy);
    assert!(running.accuracy() > first.accuracy.unwrap() as f64);
}

/// A generator `G: z -> x` and a discriminator `D: x -> score`, as in a GAN.
/// D's step (on detached fakes) touches only D; G's step sends gradients
/// back through D's network into G, and changes G but not D.
#[test]
fn two_players_alternate_and_each_step_updates_only_its_own_parameters() {
    let mut rng = Rng::new(1);
    let g = Sequential::new()
        .append(Linear::new(3, 8, &mut rng))
        .append(Relu)
        .append(Linear::new(8, 2, &mut rng));
    let d = Sequential::new()
        .append(Linear::new(2, 8, &mut rng))
        .append(Relu)
        .append(Linear::new(8, 1, &mut rng));
    let mut d_player = Player::new(d.parameters(), |p| Box::new(Sgd::new(p, 0.05)));
    let mut g_player = Player::new(g.parameters(), |p| Box::new(Sgd::new(p, 0.05)));
    let real = Tensor::randn([16, 2], 3.0, 0.5, &mut rng);
    for _ in 0..3 {
        let z = Tensor::randn([16, 3], 0.0, 1.0, &mut rng);

        // Discriminator step: D(real) up, D(fake) down (a WGAN-style loss).
        let (g_before, d_before) = (values(g_player.params()), values(d_player.params()));
        let fake = g.forward(&z).detach();
        let d_loss = d.forward(&fake).sub(&d.forward(&real)).mean_all();
        d_player.step(&d_loss).unwrap();
        assert_eq!(values(g_player.params()), g_before, "D's step moved G");
        assert_ne!(
            values(d_player.params()),
            d_before,
            "D's step left D unchanged"
        );

        // Generator step: G wants D to score its samples high. The loss
        // depends on G only through D's network.
        let (g_before, d_before) = (values(g_player.params()), values(d_player.params()));
        let g_loss = d.forward(&g.forward(&z)).neg().mean_all();
        let grads = g_loss.backward();
        for p in g_player.params() {
            let gp = grads.get(p).expect("a gradient reached G through D");
            assert!(gp.to_vec().iter().any(|v| *v != 0.0));
        }
        // The same backward also computes D's gradients; G's step ignores them.
        assert!(d_player.params().iter().all(|p| grads.get(p).is_some()));
        g_player.step(&g_loss).unwrap();
        assert_eq!(values(d_player.params()), d_before, "G's step moved D");
        // Plain SGD: each G parameter moved by exactly -lr · its gradient.
        for (p, before) in g_player.params().iter().zip(&g_before) {
            let gp = grads.get(p).unwrap().to_vec();
            for ((now, was), grad) in p.to_vec().iter().zip(before).zip(&gp) {
                assert!((now - (was - 0.05 * grad)).abs() < 1e-6);
            }
        }
    }
}

#[test]
fn clipping_limits_the_players_own_gradient_norm() {
    let mut rng = Rng::new(2);
    let net = Linear::new(4, 3, &mut rng);
    let x = Tensor::randn([8, 4], 0.0, 10.0, &mut rng);
    let y = Tensor::from_vec(vec![0., 1., 2., 0., 1., 2., 0., 1.], [8]);
    let before = values(&net.parameters());
    let mut player = Player::new(net.parameters(), |p| Box::new(Sgd::new(p, 1.0))).clip(Some(0.01));
    let loss = cross_entropy(&net.forward(&x), &y);
    // What the step will apply: the gradient scaled to norm 0.01.
    let mut grads = loss.backward();
    assert!(clip_grad_norm(&mut grads, player.params(), 0.01) > 0.01);
    player.step(&loss).unwrap();
    let moved: f64 = net
        .parameters()
        .iter()
        .zip(&before)
        .flat_map(|(p, b)| {
            p.to_vec()
                .iter()
                .zip(b)
                .map(|(n, o)| ((n - o) as f64).powi(2))
                .collect::<Vec<_>>()
        })
        .sum::<f64>()
        .sqrt();
    assert!((moved - 0.01).abs() < 1e-5, "moved by {moved}");
}

#[test]
fn a_non_finite_loss_is_an_error_and_changes_nothing() {
    let net = Linear::new(2, 2, &mut Rng::new(3));
    let before = values(&net.parameters());
    let mut player = Player::new(net.parameters(), |p| Box::new(Sgd::new(p, 0.1)));
    let loss = net
        .forward(&Tensor::ones([1, 2]))
        .sum_all()
        .mul_scalar(f32::NAN);
    let e = player.step(&loss).unwrap_err().to_string();
    assert!(e.contains("training diverged: the loss became NaN"), "{e}");
    assert_eq!(values(&net.parameters()), before);
    player.set_lr(0.5);
    assert_eq!(player.lr(), 0.5);
}
