//! `matnet::models`: checkpoints written before the models moved into the
//! library still load and give the outputs recorded then (`fixtures/`,
//! see its README), every architecture round-trips through `save` and
//! `load`, and bad files are errors that name the file and the problem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use matnet::data::{Dataset, DatasetKind, Split};
use matnet::io::CONFIG_KEY;
use matnet::models::{
    self, Arch, Classifier, Config, Model, ModelConfig, Reverser, ReverserConfig,
};
use matnet::train::evaluate;
use matnet::{Module, Rng, Tensor};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{name}"))
}

fn recorded(file: &str) -> Value {
    let text = std::fs::read_to_string(fixture(file)).expect("fixture readable");
    serde_json::from_str(&text).expect("fixture JSON parses")
}

/// The inputs `fixtures/record_fixtures.rs.txt` used.
fn image_inputs() -> Tensor {
    Tensor::rand_uniform([3, 784], 0.0, 1.0, &mut Rng::new(2026))
}

fn reverse_inputs() -> Tensor {
    Tensor::from_vec(
        vec![
            3., 1., 4., 1., 10., 1., 4., 1., 2., 7., 1., 8., 10., 8., 1., 7.,
        ],
        [2, 8],
    )
}

/// Compares with what the pre-issue-9 code computed; the tolerance only
/// allows for a kernel that sums in another order.
fn assert_matches(name: &str, got: &Tensor, want: &Value) {
    let shape: Vec<usize> = want["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(got.dims(), &shape[..], "{name}: shape");
    let want: Vec<f32> = want["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let got = got.to_vec();
    let worst = got
        .iter()
        .zip(&want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= 1e-5,
        "{name}: logits differ from the recorded ones by up to {worst}; first got {:?}, want {:?}",
        &got[..4],
        &want[..4]
    );
}

#[test]
fn checkpoints_written_before_the_redesign_load_and_give_the_recorded_logits() {
    let want = recorded("expected_logits.json");
    let _g = matnet::no_grad();
    for (name, arch) in [
        ("mlp", Arch::Mlp),
        ("lenet", Arch::Lenet),
        ("lstm", Arch::Lstm),
        ("seed-mlp", Arch::SeedMlp),
    ] {
        let Model::Classifier(m) = models::load(&fixture(&format!("{name}.safetensors"))).unwrap()
        else {
            panic!("{name}: not loaded as a classifier");
        };
        assert_eq!(m.config.arch, arch);
        assert_matches(name, &m.logits(&image_inputs()), &want[name]);
    }
    // The reverse checkpoint carries the old hand-written configuration.
    let path = fixture("reverse.safetensors");
    let meta = matnet::io::load(&path).unwrap().metadata;
    assert_eq!(
        meta[CONFIG_KEY],
        r#"{"task":"reverse","seq_len":4,"seed":5}"#
    );
    let Model::Reverser(r) = models::load(&path).unwrap() else {
        panic!("reverse: not loaded as a reverser");
    };
    assert_eq!(r.config, ReverserConfig::new(4));
    assert_matches("reverse", &r.logits(&reverse_inputs()), &want["reverse"]);
}

#[test]
fn fixtures_evaluate_on_mnist_as_they_did() {
    let Some(dir) = std::env::var_os("MATNET_DATA")
        .map(PathBuf::from)
        .filter(|d| d.join("t10k-labels-idx1-ubyte.gz").exists())
    else {
        println!("skipped: MATNET_DATA not set or MNIST files missing");
        return;
    };
    let test = Dataset::load(&dir, DatasetKind::Mnist, Split::Test).unwrap();
    let want = recorded("expected_eval.json");
    for name in ["mlp", "lenet", "lstm", "seed-mlp"] {
        let path = fixture(&format!("{name}.safetensors"));
        let m = models::load_classifier(&path).unwrap();
        let e = evaluate(
            &m.net,
            m.config.classes,
            &test,
            m.config.normalization().unwrap(),
        );
        // Recorded as `matnet eval` prints them: 4 decimals.
        let (acc, loss) = (
            want[name]["accuracy"].as_f64().unwrap(),
            want[name]["loss"].as_f64().unwrap(),
        );
        assert!(
            (e.accuracy as f64 - acc).abs() < 5e-5,
            "{name}: accuracy {} vs {acc}",
            e.accuracy
        );
        assert!(
            (e.loss as f64 - loss).abs() < 5e-5,
            "{name}: loss {} vs {loss}",
            e.loss
        );
    }
}

/// A small configuration of every architecture (wide defaults where the
/// architecture fixes its widths).
fn small(arch: Arch) -> ModelConfig {
    let mut c = ModelConfig::for_mnist(arch);
    match arch {
        Arch::Mlp => c.hidden = vec![8, 6],
        Arch::Rnn | Arch::Lstm | Arch::Gru => c.hidden = vec![5, 5],
        _ => {}
    }
    c
}

#[test]
fn every_architecture_round_trips_through_save_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let x = image_inputs();
    let _g = matnet::no_grad();
    for arch in Arch::ALL.into_iter().filter(|a| !a.is_gan()) {
        let mut m = Classifier::new(small(arch), 7).unwrap();
        m.net.set_training(false);
        let path = dir.path().join(format!("{}.safetensors", arch.name()));
        let extra = BTreeMap::from([("matnet.seed".to_string(), "7".to_string())]);
        m.save(&path, extra).unwrap();
        let back = models::load_classifier(&path).unwrap();
        assert_eq!(back.config, m.config, "{arch:?}");
        assert_eq!(back.logits(&x).to_vec(), m.logits(&x).to_vec(), "{arch:?}");
        // A fresh model of another seed differs: the weights came from the file.
        let other = Classifier::new(small(arch), 8).unwrap();
        assert_ne!(other.logits(&x).to_vec(), m.logits(&x).to_vec(), "{arch:?}");
    }
    let cfg = ReverserConfig {
        dim: 16,
        heads: 2,
        depth: 1,
        dim_feedforward: 32,
        ..ReverserConfig::new(4)
    };
    let r = Reverser::new(&cfg, &mut Rng::new(3));
    let path = dir.path().join("reverse.safetensors");
    r.save(&path, BTreeMap::new()).unwrap();
    let meta = matnet::io::load(&path).unwrap().metadata;
    assert_eq!(
        Config::from_json(&meta[CONFIG_KEY]).unwrap(),
        Config::Reverser(cfg.clone())
    );
    let Model::Reverser(back) = models::load(&path).unwrap() else {
        panic!("not a reverser");
    };
    assert_eq!(back.config, cfg);
    let ids = reverse_inputs();
    assert_eq!(back.logits(&ids).to_vec(), r.logits(&ids).to_vec());
    assert_eq!(
        back.decode(&[vec![1, 2, 3, 4]]),
        r.decode(&[vec![1, 2, 3, 4]])
    );
}

#[test]
fn configurations_parse_in_every_format_matnet_wrote() {
    // Old reverse format: the widths are the defaults, the seed is ignored.
    let old = Config::from_json(r#"{"task":"reverse","seq_len":6,"seed":9}"#).unwrap();
    assert_eq!(old, Config::Reverser(ReverserConfig::new(6)));
    // The new one names every width.
    let json = Config::Reverser(ReverserConfig::new(6)).to_json();
    assert_eq!(
        json,
        r#"{"task":"reverse","seq_len":6,"dim":64,"heads":4,"depth":2,"dim_feedforward":256}"#
    );
    // Classifier configurations are unchanged (no task field).
    let lenet = ModelConfig::for_mnist(Arch::Lenet);
    let json = Config::Classifier(lenet.clone()).to_json();
    assert!(json.starts_with(r#"{"arch":"lenet","rows":28"#), "{json}");
    assert_eq!(Config::from_json(&json).unwrap(), Config::Classifier(lenet));
}

fn load_err(path: &Path) -> String {
    match models::load(path) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_checkpoints_are_errors_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing.safetensors");
    let e = load_err(&missing);
    assert!(e.contains("nothing.safetensors"), "{e}");

    let write = |name: &str, config: Option<&str>, tensors: Vec<(String, Tensor)>| {
        let path = dir.path().join(name);
        let meta: BTreeMap<String, String> = config
            .map(|c| (CONFIG_KEY.to_string(), c.to_string()))
            .into_iter()
            .collect();
        matnet::io::save(&path, &tensors, &meta).unwrap();
        path
    };
    let w = || vec![("0.weight".to_string(), Tensor::zeros([10, 784]))];

    let e = load_err(&write("plain.safetensors", None, w()));
    assert!(
        e.contains("plain.safetensors") && e.contains(&format!("no {CONFIG_KEY}")),
        "{e}"
    );

    let e = load_err(&write(
        "alien.safetensors",
        Some(
            r#"{"arch":"resnet","rows":28,"cols":28,"classes":10,"hidden":[],"dropout":0.0,"dataset":"mnist","normalize":"unit"}"#,
        ),
        w(),
    ));
    assert!(
        e.contains("alien.safetensors") && e.contains("unknown variant `resnet`"),
        "{e}"
    );

    let e = load_err(&write(
        "task.safetensors",
        Some(r#"{"task":"translate"}"#),
        w(),
    ));
    assert!(
        e.contains("task.safetensors") && e.contains("unknown task"),
        "{e}"
    );

    let e = load_err(&write("junk.safetensors", Some("{not json"), w()));
    assert!(
        e.contains("junk.safetensors") && e.contains("not valid"),
        "{e}"
    );

    // A seed-mlp of hidden [10] whose first weight is [10, 784] but whose
    // second layer has the wrong width.
    let seed = ModelConfig::for_mnist(Arch::SeedMlp);
    let json = Config::Classifier(seed).to_json();
    let e = load_err(&write(
        "shapes.safetensors",
        Some(&json),
        vec![
            ("0.weight".to_string(), Tensor::zeros([10, 784])),
            ("0.bias".to_string(), Tensor::zeros([10])),
            ("2.weight".to_string(), Tensor::zeros([10, 12])),
            ("2.bias".to_string(), Tensor::zeros([10])),
        ],
    ));
    assert!(
        e.contains("shapes.safetensors")
            && e.contains("tensor '2.weight' has shape [10, 12], the model expects [10, 10]"),
        "{e}"
    );

    let mut bad = ModelConfig::for_mnist(Arch::SeedMlp);
    bad.hidden = vec![3, 4];
    let e = load_err(&write(
        "config.safetensors",
        Some(&Config::Classifier(bad).to_json()),
        w(),
    ));
    assert!(
        e.contains("config.safetensors") && e.contains("exactly one hidden layer"),
        "{e}"
    );

    // A reverse-task file is no classifier.
    let e = match models::load_classifier(&fixture("reverse.safetensors")) {
        Ok(_) => panic!("loaded as a classifier"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("reverse.safetensors") && e.contains("not an image classifier"),
        "{e}"
    );
}
