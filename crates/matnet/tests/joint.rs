//! The joint model (seed report §5): shapes, the parts the ablation switches
//! off, finite-difference checks of the reconstruction path (its gradients
//! reach the encoder and the generator and never the discriminator), which
//! player each training step moves, and the checkpoint round trip.

use std::collections::BTreeMap;

use matnet::models::{
    self, Arch, Config, GLoss, Joint, JointConfig, JointTrainer, JointTraining, Model, Net,
    generator_loss,
};
use matnet::nn::loss::cross_entropy;
use matnet::{Module, Rng, Tensor};

/// A joint model small enough for finite differences: 8×8 images, three
/// classes, every width 2-5.
fn tiny() -> JointConfig {
    JointConfig {
        z_dim: 4,
        rows: 8,
        cols: 8,
        classes: 3,
        dataset: "mnist".into(),
        stem: [2, 3],
        rnn: true,
        rnn_hidden: 4,
        attention: true,
        attn_dim: 4,
        heads: 2,
        g_width: 2,
        reconstruction: true,
        encoder_hidden: 5,
        twin: false,
    }
}

fn labels(n: usize, classes: usize) -> Tensor {
    Tensor::from_vec((0..n).map(|i| (i % classes) as f32).collect(), [n])
}

fn values(params: &[(String, Tensor)]) -> Vec<Vec<f32>> {
    params.iter().map(|(_, p)| p.to_vec()).collect()
}

fn part(m: &Joint, prefix: &str) -> Vec<(String, Tensor)> {
    m.named_parameters()
        .into_iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .collect()
}

#[test]
fn the_heads_and_the_generator_have_the_documented_shapes() {
    let m = Joint::new(JointConfig::for_mnist(), 0).unwrap();
    let n = 3;
    let y = labels(n, 10);
    let x = m.generate(&m.noise(n, &mut Rng::new(1)), &y);
    assert_eq!(x.dims(), &[n, 784]);
    assert!(x.to_vec().iter().all(|v| (-1.0..=1.0).contains(v)));
    assert_eq!(m.discriminator.rows_of(&x).dims(), &[n, 7, 64 * 7]);
    assert_eq!(m.discriminator.features(&x).dims(), &[n, 128 + 64]);
    let (s, k) = m.discriminator.forward_both(&x);
    assert_eq!((s.dims(), k.dims()), (&[n][..], &[n, 10][..]));
    // As a module: class scores of [0, 1] images, the head on 2x − 1.
    let unit = x.affine(0.5, 0.5);
    let back = m.forward(&unit).to_vec();
    let worst = (back.iter().zip(k.to_vec()))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "class scores differ by {worst}");
}

#[test]
fn switched_off_parts_have_no_tensors() {
    let names = |c: JointConfig| -> Vec<String> {
        let m = Joint::new(c, 0).unwrap();
        m.named_parameters().into_iter().map(|(n, _)| n).collect()
    };
    let full = names(tiny());
    for prefix in ["discriminator.rnn.", "discriminator.attn.", "encoder."] {
        assert!(full.iter().any(|n| n.starts_with(prefix)), "{prefix}");
    }
    let off = [
        (
            JointConfig {
                rnn: false,
                ..tiny()
            },
            "discriminator.rnn.",
        ),
        (
            JointConfig {
                attention: false,
                ..tiny()
            },
            "discriminator.attn.",
        ),
        (
            JointConfig {
                reconstruction: false,
                ..tiny()
            },
            "encoder.",
        ),
    ];
    for (c, prefix) in off {
        let n = names(c.clone());
        assert!(!n.iter().any(|n| n.starts_with(prefix)), "{prefix}: {n:?}");
        assert!(n.len() < full.len());
        // The heads still read the features: F shrinks by H without the LSTM.
        let m = Joint::new(c, 0).unwrap();
        let (s, k) = m.discriminator.forward_both(&Tensor::zeros([2, 64]));
        assert_eq!((s.dims(), k.dims()), (&[2][..], &[2, 3][..]));
    }
    let both_off = Joint::new(
        JointConfig {
            rnn: false,
            attention: false,
            ..tiny()
        },
        0,
    )
    .unwrap();
    assert_eq!(
        both_off
            .discriminator
            .features(&Tensor::zeros([2, 64]))
            .dims(),
        &[2, 4]
    );
}

#[test]
fn bad_sizes_are_errors() {
    for c in [
        JointConfig { rows: 10, ..tiny() },
        JointConfig { heads: 3, ..tiny() },
        JointConfig { z_dim: 0, ..tiny() },
    ] {
        assert!(Joint::new(c, 0).is_err());
    }
}

/// Logits that make `D` judge samples 0, 2, 3 and 5 fake (`s < 0`).
fn judged() -> Tensor {
    Tensor::from_vec(vec![-1.0, 2.0, -0.5, -3.0, 1.0, -2.0], [6])
}

#[test]
fn reconstruction_runs_on_what_d_judges_fake_only() {
    let m = Joint::new(tiny(), 3).unwrap();
    let y = labels(6, 3);
    let fake = m.generate(&m.noise(6, &mut Rng::new(4)), &y);
    let rec = m.reconstruction(&fake, &y, &judged()).unwrap();
    assert_eq!(rec.samples, 4);
    assert!(rec.loss.item().is_finite() && rec.loss.item() > 0.0);
    assert!(m.reconstruction(&fake, &y, &Tensor::ones([6])).is_none());
    let no_encoder = Joint::new(
        JointConfig {
            reconstruction: false,
            ..tiny()
        },
        3,
    )
    .unwrap();
    assert!(no_encoder.reconstruction(&fake, &y, &judged()).is_none());
}

/// Central differences of the reconstruction loss against autograd for a
/// few elements of every generator and encoder tensor, and no gradient at
/// all for any discriminator tensor.
#[test]
fn reconstruction_gradients_reach_encoder_and_generator_not_discriminator() {
    let m = Joint::new(tiny(), 5).unwrap();
    let y = labels(6, 3);
    // The training path: D scores G's samples, the module takes both.
    let fake = m.generate(&m.noise(6, &mut Rng::new(6)), &y);
    let (s, _) = m.discriminator.forward_both(&fake);
    // Push the logits to the fixed pattern so the same four samples are
    // judged fake in every evaluation below, through D's graph.
    let logits = s.mul_scalar(0.0).add(&judged());
    let grads = m
        .reconstruction(&fake, &y, &logits)
        .unwrap()
        .loss
        .backward();

    for (name, p) in part(&m, "discriminator.") {
        let g = grads.get(&p).map(|g| g.to_vec());
        assert!(
            g.as_ref().is_none_or(|g| g.iter().all(|v| *v == 0.0)),
            "{name} got a gradient from the reconstruction loss"
        );
    }

    let target = fake.detach();
    let loss = || {
        let _g = matnet::no_grad();
        m.reconstruction(&target, &y, &judged())
            .unwrap()
            .loss
            .item() as f64
    };
    let mut rng = Rng::new(7);
    // A small step: the generator's pre-batch-norm values spread by only
    // a few hundredths (weights from N(0, 0.02)), and 1e-2 bent them.
    let (mut checked, eps) = (0, 1e-3f32);
    for prefix in ["encoder.", "generator."] {
        let params = part(&m, prefix);
        assert!(!params.is_empty());
        for (name, p) in params {
            let analytic = grads
                .get(&p)
                .unwrap_or_else(|| panic!("{name}: no gradient from the reconstruction loss"))
                .to_vec();
            assert!(analytic.iter().any(|v| *v != 0.0), "{name}: zero gradient");
            for _ in 0..4 {
                let j = rng.below(p.numel());
                let nudge = |d: f32| p.update_(|v| v[j] += d);
                nudge(eps);
                let up = loss();
                nudge(-2.0 * eps);
                let down = loss();
                nudge(eps);
                let numeric = (up - down) / (2.0 * eps as f64);
                let a = analytic[j] as f64;
                assert!(
                    (a - numeric).abs() <= 2e-3 + 5e-2 * numeric.abs(),
                    "{name}[{j}]: autograd {a} vs finite difference {numeric}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 40, "{checked} elements checked");
}

#[test]
fn each_step_moves_only_its_own_players() {
    let m = Joint::new(tiny(), 8).unwrap();
    let mut t = JointTrainer::new(&m, JointTraining::default());
    let mut rng = Rng::new(9);
    let real = Tensor::rand_uniform([6, 64], -1.0, 1.0, &mut rng);
    let y = labels(6, 3);
    let (d0, g0, e0) = (
        values(&part(&m, "discriminator.")),
        values(&part(&m, "generator.")),
        values(&part(&m, "encoder.")),
    );
    let ds = t.d_step(&m, &real, &y, &mut rng).unwrap();
    assert!(ds.loss.is_finite() && (0.0..=1.0).contains(&ds.d_real));
    assert_ne!(values(&part(&m, "discriminator.")), d0);
    assert_eq!(values(&part(&m, "generator.")), g0);
    assert_eq!(values(&part(&m, "encoder.")), e0);

    let d1 = values(&part(&m, "discriminator."));
    let gs = t.g_step(&m, &ds, 0).unwrap();
    assert!(gs.loss.is_finite());
    assert_eq!(values(&part(&m, "discriminator.")), d1);
    assert_ne!(values(&part(&m, "generator.")), g0);
    if gs.reconstructed > 0 {
        assert!(gs.reconstruction.is_some());
        assert_ne!(values(&part(&m, "encoder.")), e0);
    }
}

/// The lazy reconstruction term: on step 0 of `every = 3` it runs with
/// weight `3·λ` (the G loss exceeds that of `every = 1`, same model and
/// batch, by exactly `2·λ·rec`); on steps 1 and 2 it does not run and the
/// encoder, which only that term reaches, stays where it was.
#[test]
fn the_reconstruction_term_runs_on_every_kth_g_step_with_k_times_the_weight() {
    let n = 16;
    let lazy = |every| JointTraining {
        reconstruction_weight: 0.5,
        reconstruction_every: every,
        ..JointTraining::default()
    };
    let run = |seed, every, g_step| {
        let m = Joint::new(tiny(), seed).unwrap();
        let mut t = JointTrainer::new(&m, lazy(every));
        let mut rng = Rng::new(6);
        let real = Tensor::rand_uniform([n, 64], -1.0, 1.0, &mut rng);
        let ds = t.d_step(&m, &real, &labels(n, 3), &mut rng).unwrap();
        let e0 = values(&part(&m, "encoder."));
        let g = t.g_step(&m, &ds, g_step).unwrap();
        (g, e0 == values(&part(&m, "encoder.")))
    };
    // A model whose D judges some of its samples fake after one step.
    let seed = (0..64)
        .find(|&s| run(s, 1, 0).0.reconstructed > 0)
        .expect("some seed's D judges a sample fake");
    let step = |every, g_step| run(seed, every, g_step);
    let (every_step, _) = step(1, 0);
    let rec = every_step.reconstruction.unwrap();
    assert!(rec > 0.0);
    let (first, encoder_still) = step(3, 0);
    assert_eq!(first.reconstruction, Some(rec));
    assert_eq!(first.reconstructed, every_step.reconstructed);
    assert!(!encoder_still);
    let extra = first.loss - every_step.loss;
    assert!(
        (extra - 2.0 * 0.5 * rec).abs() < 1e-5 * (1.0 + rec),
        "{extra} vs {rec}"
    );
    for g_step in [1, 2, 4, 5] {
        let (skipped, encoder_still) = step(3, g_step);
        assert_eq!((skipped.reconstruction, skipped.reconstructed), (None, 0));
        assert!(encoder_still, "step {g_step} moved the encoder");
        assert!((every_step.loss - skipped.loss - 0.5 * rec).abs() < 1e-5 * (1.0 + rec));
    }
    assert_eq!(step(3, 6).0.reconstruction, Some(rec));
}

/// `real_class_only`: D's step is the one without class losses on samples
/// (same loss, same weights after it), G's keeps its class loss on them.
#[test]
fn real_class_only_drops_the_class_loss_on_samples_from_d_alone() {
    let n = 8;
    let run = |settings: JointTraining| {
        let m = Joint::new(tiny(), 3).unwrap();
        let mut t = JointTrainer::new(&m, settings);
        let mut rng = Rng::new(4);
        let real = Tensor::rand_uniform([n, 64], -1.0, 1.0, &mut rng);
        let ds = t.d_step(&m, &real, &labels(n, 3), &mut rng).unwrap();
        let d = values(&part(&m, "discriminator."));
        // G step 1: the lazy reconstruction term (every 4th) does not run.
        let g = t.g_step(&m, &ds, 1).unwrap();
        (ds.loss, d, g.loss)
    };
    let both = run(JointTraining::default());
    let none = run(JointTraining {
        fake_class_loss: false,
        ..JointTraining::default()
    });
    let real_only = run(JointTraining {
        real_class_only: true,
        ..JointTraining::default()
    });
    assert_eq!((real_only.0, &real_only.1), (none.0, &none.1));
    assert!(real_only.0 < both.0, "{} vs {}", real_only.0, both.0);
    // Same D, so G's loss differs from the one without class losses by the
    // cross-entropy of its samples, which is positive.
    assert!(real_only.2 > none.2, "{} vs {}", real_only.2, none.2);
}

/// A twin class head (TAC-GAN): D's loss is the one without class losses
/// on samples plus the twin head's cross-entropy on them; G's loss is
/// `adv + CE(k(x̃), c) − CE(t(x̃), c)`. A model without the option has no
/// twin head and draws no weights for one.
#[test]
fn a_twin_class_head_learns_samples_and_g_plays_against_it() {
    let n = 8;
    let with_twin = JointConfig {
        twin: true,
        ..tiny()
    };
    let d_loss = |settings: JointTraining| {
        let m = Joint::new(with_twin.clone(), 3).unwrap();
        let mut t = JointTrainer::new(&m, settings);
        let mut rng = Rng::new(4);
        let real = Tensor::rand_uniform([n, 64], -1.0, 1.0, &mut rng);
        let y = labels(n, 3);
        // The samples the step will draw, and the twin head's loss on them.
        let fake = m.generate(&m.noise(n, &mut rng.clone()), &y);
        let twin = m.discriminator.forward_heads(&fake).2.expect("a twin head");
        let twin_ce = cross_entropy(&twin, &y).item();
        let ds = t.d_step(&m, &real, &y, &mut rng).unwrap();
        (ds.loss, twin_ce, m, t, ds)
    };
    let (plain, ..) = d_loss(JointTraining {
        fake_class_loss: false,
        ..JointTraining::default()
    });
    let (loss, twin_ce, m, mut t, ds) = d_loss(JointTraining::default());
    assert!(twin_ce > 0.0);
    assert!(
        (loss - (plain + twin_ce)).abs() < 1e-5,
        "D's loss {loss} is not {plain} + {twin_ce}"
    );
    // G's step 1 (no reconstruction term) against D after its step.
    let (s, k, twin) = m.discriminator.forward_heads(&ds.fake);
    let y = labels(n, 3);
    let want = generator_loss(&s, GLoss::NonSaturating).item() + cross_entropy(&k, &y).item()
        - cross_entropy(&twin.unwrap(), &y).item();
    let got = t.g_step(&m, &ds, 1).unwrap().loss;
    assert!((got - want).abs() < 1e-5, "G's loss {got}, want {want}");
    // Without the option: no twin head, and the weights drawn as before.
    let m = Joint::new(tiny(), 3).unwrap();
    assert!(m.discriminator.twin.is_none());
    assert!(!m.named_parameters().iter().any(|(n, _)| n.contains("twin")));
    let twin_m = Joint::new(with_twin, 3).unwrap();
    assert_eq!(
        values(&part(&m, "discriminator.")),
        values(&part(&twin_m, "discriminator."))[..part(&m, "discriminator.").len()]
    );
}

#[test]
fn a_checkpoint_loads_as_joint_model_classifier_and_generator() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("joint.safetensors");
    let c = JointConfig {
        attention: false,
        ..tiny()
    };
    let m = Joint::new(c.clone(), 11).unwrap();
    m.save(&path, BTreeMap::new()).unwrap();
    let x = Tensor::rand_uniform([2, 64], 0.0, 1.0, &mut Rng::new(12));
    let want = m.forward(&x).to_vec();

    let Model::Joint(back) = models::load(&path).unwrap() else {
        panic!("not a joint model")
    };
    assert_eq!(back.config, c);
    assert_eq!(
        Config::from_json(&Config::Joint(c.clone()).to_json()).unwrap(),
        Config::Joint(c)
    );
    assert_eq!(back.forward(&x).to_vec(), want);

    let clf = models::load_classifier(&path).unwrap();
    assert_eq!(clf.config.arch, Arch::Joint);
    assert!(matches!(clf.net, Net::Joint(_)));
    assert_eq!(clf.logits(&x).to_vec(), want);

    let (gc, g) = models::load_generator(&path).unwrap();
    assert!(gc.conditional && gc.z_dim == 4 && gc.classes == 3);
    let z = gc.noise(2, &mut Rng::new(13));
    let y = labels(2, 3);
    assert_eq!(
        g.generate(&z, Some(&y)).to_vec(),
        back.generate(&z, &y).to_vec()
    );
    assert!(models::load_gan(&path).is_err());
}
