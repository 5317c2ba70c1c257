//! `Config::min_state_len`, which `models::load_bytes` checks before it
//! builds a model, against the models actually built: a lower bound (no
//! valid checkpoint is refused) and a tight one (what a checkpoint can make
//! the loader allocate stays within a small multiple of its tensors).

use matnet::Module;
use matnet::models::{Arch, Config, GanConfig, JointConfig, Model, ModelConfig, ReverserConfig};

fn state_len(config: &Config) -> u128 {
    let model = Model::new(config.clone(), 0).unwrap();
    model
        .state_dict()
        .iter()
        .map(|(_, t)| t.numel() as u128)
        .sum()
}

#[test]
fn the_bound_is_below_every_model_and_within_2x() {
    let mut configs = Vec::new();
    for arch in Arch::ALL.into_iter().filter(|a| !a.is_gan()) {
        configs.push(Config::Classifier(ModelConfig::for_mnist(arch)));
    }
    let custom = |arch, hidden: &[usize], rows, cols| {
        Config::Classifier(ModelConfig {
            hidden: hidden.to_vec(),
            rows,
            cols,
            classes: 3,
            ..ModelConfig::for_mnist(arch)
        })
    };
    configs.push(custom(Arch::Mlp, &[7, 0, 5], 4, 6));
    configs.push(custom(Arch::Mlp, &[], 28, 28));
    configs.push(custom(Arch::Lstm, &[16, 16, 16], 5, 9));
    configs.push(custom(Arch::Gru, &[4], 28, 3));
    configs.push(custom(Arch::Lenet, &[], 12, 40));
    configs.push(custom(Arch::Cnn, &[], 6, 6));
    configs.push(custom(Arch::Vit, &[], 14, 35));
    for arch in [Arch::Gan, Arch::Dcgan] {
        for conditional in [false, true] {
            configs.push(Config::Gan(GanConfig::for_mnist(arch, conditional)));
        }
    }
    let full = JointConfig::for_mnist();
    configs.push(Config::Joint(full.clone()));
    for (rnn, attention, reconstruction) in [
        (false, true, true),
        (true, false, true),
        (true, true, false),
    ] {
        configs.push(Config::Joint(JointConfig {
            rnn,
            attention,
            reconstruction,
            ..full.clone()
        }));
    }
    configs.push(Config::Reverser(ReverserConfig::new(8)));
    configs.push(Config::Reverser(ReverserConfig {
        dim: 8,
        heads: 2,
        depth: 3,
        dim_feedforward: 5,
        seq_len: 3,
    }));
    for config in &configs {
        let bound = config.min_state_len().unwrap();
        let n = state_len(config);
        println!("{config:?}: bound {bound}, model {n}");
        assert!(
            bound <= n,
            "{config:?}: bound {bound} above the model's {n}"
        );
        assert!(n <= 2 * bound, "{config:?}: bound {bound}, model {n}");
    }
}

#[test]
fn sizes_no_constructor_takes_are_errors() {
    let with = |f: fn(&mut ModelConfig)| {
        let mut c = ModelConfig::for_mnist(Arch::Lenet);
        f(&mut c);
        Config::Classifier(c)
            .min_state_len()
            .unwrap_err()
            .to_string()
    };
    assert!(with(|c| c.rows = 11).contains("at least 12×12"));
    assert!(with(|c| c.classes = 0).contains("classes of at least 1"));
    assert!(with(|c| c.dropout = 1.0).contains("dropout 1 is not a probability"));
    let r = ReverserConfig {
        heads: 3,
        ..ReverserConfig::new(4)
    };
    let e = Config::Reverser(r).min_state_len().unwrap_err().to_string();
    assert!(e.contains("dim 64, heads 3"), "{e}");
    // A billion-unit layer is a bound of a billion values or more, not an
    // allocation.
    let huge = Config::Classifier(ModelConfig {
        hidden: vec![1_000_000_000],
        ..ModelConfig::for_mnist(Arch::Mlp)
    });
    assert!(huge.min_state_len().unwrap() >= 784_000_000_000);
}
