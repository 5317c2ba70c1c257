//! GAN models: shapes of both players in all four variants, the losses of
//! eq. 8-9 against hand-computed values, a generator step through a frozen
//! discriminator, and the checkpoint round trip.

use std::collections::BTreeMap;

use matnet::models::{
    self, Arch, Config, DStep, GLoss, Gan, GanConfig, GanTrainer, GanTraining, Model,
    discriminator_loss, generator_loss,
};
use matnet::{Module, Rng, Tensor};

const VARIANTS: [(Arch, bool); 4] = [
    (Arch::Gan, false),
    (Arch::Gan, true),
    (Arch::Dcgan, false),
    (Arch::Dcgan, true),
];

fn labels(n: usize) -> Tensor {
    Tensor::from_vec((0..n).map(|i| (i % 10) as f32).collect(), [n])
}

/// Every parameter's values, to compare before and after a step.
fn values(m: &dyn Module) -> Vec<Vec<f32>> {
    m.parameters().iter().map(|p| p.to_vec()).collect()
}

fn sigmoid(s: f32) -> f64 {
    1.0 / (1.0 + (-s as f64).exp())
}

#[test]
fn both_players_have_the_documented_shapes_in_all_four_variants() {
    for (arch, cond) in VARIANTS {
        let gan = Gan::new(GanConfig::for_mnist(arch, cond), 1).unwrap();
        let n = 5;
        let y = labels(n);
        let y = cond.then_some(&y);
        let x = gan.generator.generate(&gan.noise(n, &mut Rng::new(2)), y);
        assert_eq!(x.dims(), &[n, 784], "{arch:?} conditional {cond}");
        assert!(
            x.to_vec().iter().all(|v| (-1.0..=1.0).contains(v)),
            "tanh output"
        );
        let s = gan.discriminator.logits(&x, y);
        assert_eq!(s.dims(), &[n], "{arch:?} conditional {cond}");
        let names: Vec<String> = gan.state_dict().into_iter().map(|(n, _)| n).collect();
        assert!(
            names
                .iter()
                .all(|n| n.starts_with("generator.") || n.starts_with("discriminator."))
        );
        assert_eq!(
            names.iter().any(|n| n.contains("label.weight")),
            cond,
            "{names:?}"
        );
    }
}

#[test]
fn labels_change_a_conditional_generators_output() {
    let gan = Gan::new(GanConfig::for_mnist(Arch::Dcgan, true), 3).unwrap();
    let z = gan.noise(1, &mut Rng::new(4));
    let three = gan
        .generator
        .generate(&z, Some(&Tensor::from_vec(vec![3.0], [1])));
    let seven = gan
        .generator
        .generate(&z, Some(&Tensor::from_vec(vec![7.0], [1])));
    assert_ne!(three.to_vec(), seven.to_vec());
}

#[test]
fn losses_are_eq_8_and_eq_9_on_logits() {
    let real = [2.0f32, -0.5, 0.3];
    let fake = [-1.0f32, 0.7];
    let (r, f) = (
        Tensor::from_vec(real.to_vec(), [3]),
        Tensor::from_vec(fake.to_vec(), [2]),
    );
    let mean =
        |v: &[f32], g: &dyn Fn(f32) -> f64| v.iter().map(|&s| g(s)).sum::<f64>() / v.len() as f64;
    // Minus eq. 8, with real target 0.9: −(0.9 log D + 0.1 log(1 − D)) on reals.
    let want_d = mean(&real, &|s| {
        -(0.9 * sigmoid(s).ln() + 0.1 * (1.0 - sigmoid(s)).ln())
    }) + mean(&fake, &|s| -(1.0 - sigmoid(s)).ln());
    let got_d = discriminator_loss(&r, &f, 0.9).item() as f64;
    assert!((got_d - want_d).abs() < 1e-5, "{got_d} vs {want_d}");
    // Eq. 9: E[log(1 − D(G(z)))]; non-saturating: −E[log D(G(z))].
    let want_mm = mean(&fake, &|s| (1.0 - sigmoid(s)).ln());
    let want_ns = mean(&fake, &|s| -sigmoid(s).ln());
    let got_mm = generator_loss(&f, GLoss::Minimax).item() as f64;
    let got_ns = generator_loss(&f, GLoss::NonSaturating).item() as f64;
    assert!((got_mm - want_mm).abs() < 1e-5, "{got_mm} vs {want_mm}");
    assert!((got_ns - want_ns).abs() < 1e-5, "{got_ns} vs {want_ns}");
}

#[test]
fn a_generator_step_reaches_g_through_a_frozen_discriminator() {
    for (arch, cond) in VARIANTS {
        let gan = Gan::new(GanConfig::for_mnist(arch, cond), 5).unwrap();
        let mut trainer = GanTrainer::new(&gan, GanTraining::default());
        let mut rng = Rng::new(6);
        let real = Tensor::rand_uniform([8, 784], -1.0, 1.0, &mut rng);
        let d_step = trainer.d_step(&gan, &real, &labels(8), &mut rng).unwrap();

        // The G loss's gradient reaches every generator weight.
        let logits = gan
            .discriminator
            .logits(&d_step.fake, d_step.labels.as_ref());
        let loss = generator_loss(&logits, GLoss::NonSaturating);
        let grads = loss.backward();
        // What a player's step computes: the same gradients for G's
        // weights, none for D's (their rules are skipped).
        let g_only = loss.backward_for(&gan.generator.parameters());
        for (name, p) in gan.generator.named_parameters() {
            let g = grads
                .get(&p)
                .unwrap_or_else(|| panic!("no gradient for generator.{name}"));
            assert!(
                g.to_vec().iter().any(|v| *v != 0.0),
                "{arch:?}: generator.{name} gets a zero gradient"
            );
            assert_eq!(
                g_only.get(&p).map(|t| t.to_vec()),
                Some(g.to_vec()),
                "{arch:?}: backward_for differs on generator.{name}"
            );
        }
        for (name, p) in gan.discriminator.named_parameters() {
            assert!(grads.get(&p).is_some(), "{arch:?}: discriminator.{name}");
            assert!(
                g_only.get(&p).is_none(),
                "{arch:?}: backward_for computed discriminator.{name}"
            );
        }

        let d_before = values(&gan.discriminator);
        let g_before = values(&gan.generator);
        trainer.g_step(&gan, &d_step).unwrap();
        let d_after = values(&gan.discriminator);
        assert_eq!(d_before, d_after, "{arch:?}: the G step moved D");
        let moved = gan
            .generator
            .parameters()
            .iter()
            .zip(&g_before)
            .filter(|(p, b)| p.to_vec() != **b)
            .count();
        assert_eq!(moved, g_before.len(), "{arch:?}: every G tensor moves");
    }
}

#[test]
fn a_discriminator_step_leaves_the_generator_alone() {
    let gan = Gan::new(GanConfig::for_mnist(Arch::Gan, false), 7).unwrap();
    let mut trainer = GanTrainer::new(&gan, GanTraining::default());
    let g_before = values(&gan.generator);
    let mut rng = Rng::new(8);
    let real = Tensor::rand_uniform([4, 784], -1.0, 1.0, &mut rng);
    let s = trainer.d_step(&gan, &real, &labels(4), &mut rng).unwrap();
    assert!(
        s.loss.is_finite() && (0.0..=1.0).contains(&s.d_real) && (0.0..=1.0).contains(&s.d_fake)
    );
    let g_after = values(&gan.generator);
    assert_eq!(g_before, g_after);
}

#[test]
fn a_gan_checkpoint_holds_both_players_and_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    for (arch, cond) in VARIANTS {
        let mut gan = Gan::new(GanConfig::for_mnist(arch, cond), 9).unwrap();
        // A few training steps, so batch-norm statistics differ from their initial values.
        let mut trainer = GanTrainer::new(&gan, GanTraining::default());
        let mut rng = Rng::new(10);
        for _ in 0..2 {
            let real = Tensor::rand_uniform([6, 784], -1.0, 1.0, &mut rng);
            let s = trainer.d_step(&gan, &real, &labels(6), &mut rng).unwrap();
            trainer.g_step(&gan, &s).unwrap();
        }
        gan.set_training(false);
        let path = dir.path().join(format!("{arch:?}{cond}.safetensors"));
        gan.save(&path, BTreeMap::new()).unwrap();

        let Model::Gan(back) = models::load(&path).unwrap() else {
            panic!("{arch:?}: not loaded as a GAN")
        };
        assert_eq!(back.config, gan.config);
        assert_eq!(
            Config::from_json(&Config::Gan(gan.config.clone()).to_json()).unwrap(),
            Config::Gan(gan.config.clone())
        );
        let z = gan.noise(3, &mut rng);
        let y = labels(3);
        let y = cond.then_some(&y);
        let x = gan.generator.generate(&z, y);
        assert_eq!(back.generator.generate(&z, y).to_vec(), x.to_vec());
        assert_eq!(
            back.discriminator.logits(&x, y).to_vec(),
            gan.discriminator.logits(&x, y).to_vec()
        );
        assert!(models::load_classifier(&path).is_err());
    }
}

#[test]
fn a_classifier_architecture_is_not_a_gan_and_the_reverse() {
    let e = Gan::new(GanConfig::for_mnist(Arch::Lenet, false), 0)
        .err()
        .unwrap();
    assert!(e.to_string().contains("not a GAN"), "{e}");
    let c = models::ModelConfig::for_mnist(Arch::Dcgan);
    let e = models::Classifier::new(c, 0).err().unwrap();
    assert!(e.to_string().contains("is a GAN"), "{e}");
}

#[test]
fn each_players_step_improves_its_own_objective() {
    for (arch, cond) in VARIANTS {
        let gan = Gan::new(GanConfig::for_mnist(arch, cond), 11).unwrap();
        let mut trainer = GanTrainer::new(
            &gan,
            GanTraining {
                lr_d: 1e-4,
                lr_g: 1e-4,
                ..GanTraining::default()
            },
        );
        let mut rng = Rng::new(12);
        let real = Tensor::rand_uniform([16, 784], -1.0, 1.0, &mut rng);
        let y = labels(16);
        let yc = cond.then_some(&y);
        let z = gan.noise(16, &mut rng);
        let g_loss = || {
            let fake = gan.generator.generate(&z, yc);
            generator_loss(&gan.discriminator.logits(&fake, yc), GLoss::NonSaturating).item()
        };
        let step = trainer.d_step(&gan, &real, &y, &mut rng).unwrap();
        let before = g_loss();
        let d = DStep {
            fake: gan.generator.generate(&z, yc),
            labels: yc.cloned(),
            ..step
        };
        trainer.g_step(&gan, &d).unwrap();
        let after = g_loss();
        assert!(
            after < before,
            "{arch:?} {cond}: G loss {before} -> {after}"
        );
    }
}
