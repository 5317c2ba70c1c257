//! LeNet-5 on MNIST with the library alone: one epoch of training, a
//! checkpoint, a reload with `models::load`, and the test-set accuracy.
//!
//! ```sh
//! cargo run --release -p matnet --example lenet_mnist [-- DATA_DIR]
//! ```
//!
//! The data directory is the argument, else `MATNET_DATA`, else the cache
//! (MNIST is downloaded there on first use).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use matnet::data::{Dataset, DatasetKind, Normalize, Split, batches, locate_or_download};
use matnet::models::{self, Arch, Classifier, ModelConfig, normalize_name};
use matnet::optim::Adam;
use matnet::train::{Player, RunningMetrics, evaluate};
use matnet::{Module, Rng};

fn main() -> matnet::Result<()> {
    let arg = std::env::args().nth(1).map(PathBuf::from);
    let dir = locate_or_download(
        arg.as_deref(),
        DatasetKind::Mnist,
        |dest| println!("downloading MNIST into {}", dest.display()),
        |_, _, _| {},
    )?;
    let train = Dataset::load(&dir, DatasetKind::Mnist, Split::Train)?;
    let test = Dataset::load(&dir, DatasetKind::Mnist, Split::Test)?;
    let normalize = Normalize::Standard;

    let config = ModelConfig {
        normalize: normalize_name(normalize).to_string(),
        ..ModelConfig::for_mnist(Arch::Lenet)
    };
    let model = Classifier::new(config, 0)?;
    println!(
        "{} ({} parameters), {} training images from {}",
        model.net.describe(),
        model.net.num_parameters(),
        train.len(),
        dir.display()
    );

    let mut player = Player::new(model.net.parameters(), |p| Box::new(Adam::new(p, 1e-3)));
    let mut running = RunningMetrics::default();
    let started = Instant::now();
    for (i, b) in batches(&train, 64, normalize, Some(&mut Rng::new(0))).enumerate() {
        let m = player.classification_step(&model.logits(&b.images), &b.labels)?;
        running.add(&m);
        if (i + 1) % 200 == 0 {
            println!(
                "step {:>4}: loss {:.4}, accuracy {:.2}% (running mean)",
                i + 1,
                running.loss(),
                100.0 * running.accuracy()
            );
        }
    }
    println!(
        "epoch 1: train loss {:.4}, accuracy {:.2}%, {:.1} s",
        running.loss(),
        100.0 * running.accuracy(),
        started.elapsed().as_secs_f64()
    );

    let out = std::env::temp_dir().join(format!("lenet_mnist_{}", std::process::id()));
    std::fs::create_dir_all(&out).map_err(|e| matnet::Error::io(&out, e))?;
    let path = out.join("lenet.safetensors");
    model.save(&path, BTreeMap::new())?;
    println!("saved {}", path.display());

    let loaded = models::load_classifier(&path)?;
    let e = evaluate(
        &loaded.net,
        loaded.config.classes,
        &test,
        loaded.config.normalization()?,
    );
    println!(
        "reloaded {} from {}: test accuracy {:.2}% ({} images), loss {:.4}",
        loaded.config.arch.name(),
        path.display(),
        100.0 * e.accuracy,
        test.len(),
        e.loss
    );
    std::fs::remove_dir_all(&out).map_err(|e| matnet::Error::io(&out, e))?;
    Ok(())
}
