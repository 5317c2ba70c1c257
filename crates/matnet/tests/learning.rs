//! Learning tests: the loss falls and accuracy passes a floor on fixed,
//! seeded data. The MNIST test reads `MATNET_DATA` and is skipped, saying
//! so, when the files are absent.

use matnet::data::{Dataset, DatasetKind, Normalize, Split, batches, to_tensors};
use matnet::nn::loss::{accuracy, cross_entropy};
use matnet::nn::{Dropout, Linear, Module, Relu, Sequential};
use matnet::optim::{Adam, Optimizer, Sgd};
use matnet::{Rng, Tensor};

/// Three Gaussian blobs in 2-D, classes 0..3.
fn blobs(n: usize, seed: u64) -> (Tensor, Tensor) {
    let mut rng = Rng::new(seed);
    let centres = [(-2.0, 0.0), (2.0, 0.0), (0.0, 2.5)];
    let mut x = Vec::with_capacity(2 * n);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % 3;
        x.push(centres[c].0 + 0.6 * rng.normal());
        x.push(centres[c].1 + 0.6 * rng.normal());
        y.push(c as f32);
    }
    (Tensor::from_vec(x, [n, 2]), Tensor::from_vec(y, [n]))
}

#[test]
fn mlp_learns_seeded_blobs() {
    let (x, y) = blobs(600, 1);
    let (xt, yt) = blobs(300, 2);
    let mut rng = Rng::new(3);
    let net = Sequential::new()
        .append(Linear::new(2, 16, &mut rng))
        .append(Relu)
        .append(Linear::new(16, 3, &mut rng));
    let mut opt = Sgd::new(net.parameters(), 0.1).momentum(0.9);
    let first = cross_entropy(&net.forward(&x), &y).item();
    for _ in 0..100 {
        let grads = cross_entropy(&net.forward(&x), &y).backward();
        opt.step(&grads);
    }
    let last = cross_entropy(&net.forward(&x), &y).item();
    let acc = accuracy(&net.forward(&xt), &yt);
    assert!(last < first * 0.3, "loss {first} -> {last}");
    assert!(acc > 0.95, "held-out accuracy {acc}");
}

fn mnist_dir() -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(std::env::var_os("MATNET_DATA")?);
    dir.join("train-labels-idx1-ubyte.gz")
        .exists()
        .then_some(dir)
}

#[test]
fn mlp_learns_an_mnist_subset() {
    let Some(dir) = mnist_dir() else {
        println!("skipped: MATNET_DATA not set or MNIST files missing (needs the four IDX files)");
        return;
    };
    let train = Dataset::load(&dir, DatasetKind::Mnist, Split::Train)
        .unwrap()
        .take(6000);
    let test = Dataset::load(&dir, DatasetKind::Mnist, Split::Test)
        .unwrap()
        .take(2000);
    let mut rng = Rng::new(0);
    let mut net = Sequential::new()
        .append(Linear::new(784, 128, &mut rng))
        .append(Relu)
        .append(Dropout::new(0.1, 1))
        .append(Linear::new(128, 10, &mut rng));
    let mut opt = Adam::new(net.parameters(), 2e-3);
    let (xt, yt) = to_tensors(&test, Normalize::Standard);
    let before = cross_entropy(&net.forward(&xt), &yt).item();
    for _ in 0..3 {
        for b in batches(&train, 64, Normalize::Standard, Some(&mut rng)) {
            let grads = cross_entropy(&net.forward(&b.images), &b.labels).backward();
            opt.step(&grads);
        }
    }
    net.set_training(false);
    let _g = matnet::no_grad();
    let logits = net.forward(&xt);
    let after = cross_entropy(&logits, &yt).item();
    let acc = accuracy(&logits, &yt);
    println!(
        "MNIST subset: test loss {before:.3} -> {after:.3}, accuracy {:.2}%",
        100.0 * acc
    );
    assert!(after < before * 0.25, "loss {before} -> {after}");
    assert!(
        acc > 0.88,
        "accuracy {acc} on 2,000 test images after 3 epochs on 6,000"
    );
}
