//! Training states: optimizer and generator state round trips, a run that
//! continues from a saved state bit for bit, and clear errors for bad files.

use std::collections::BTreeMap;

use matnet::io::TrainingState;
use matnet::nn::{Dropout, Linear, Module, Relu, Sequential, rng_states};
use matnet::optim::{Adam, Optimizer, Sgd};
use matnet::train::Player;
use matnet::{Rng, Tensor};

/// A small net with dropout, so generator state matters too.
fn net(seed: u64) -> Sequential {
    let mut rng = Rng::new(seed);
    Sequential::new()
        .append(Linear::new(6, 8, &mut rng))
        .append(Relu)
        .append(Dropout::new(0.3, seed + 1))
        .append(Linear::new(8, 3, &mut rng))
}

fn adam(p: Vec<Tensor>) -> Box<dyn Optimizer> {
    Box::new(Adam::new(p, 0.01))
}

fn nesterov(p: Vec<Tensor>) -> Box<dyn Optimizer> {
    Box::new(Sgd::new(p, 0.05).momentum(0.9).nesterov(true))
}

/// One step on a batch drawn from `data`; the loss draws dropout masks.
fn step(m: &Sequential, player: &mut Player, data: &mut Rng) -> f32 {
    let x = Tensor::randn([5, 6], 0.0, 1.0, data);
    player.step(&m.forward(&x).sqr().mean_all()).unwrap()
}

fn weights(m: &dyn Module) -> Vec<Vec<u32>> {
    m.state_dict()
        .iter()
        .map(|(_, t)| t.to_vec().iter().map(|x| x.to_bits()).collect())
        .collect()
}

/// Three steps, save, then two more in the original and two in a fresh
/// copy loaded from the bytes: the same weights and losses, to the bit.
fn continues_exactly(make: fn(Vec<Tensor>) -> Box<dyn Optimizer>) {
    let a = net(1);
    let mut pa = Player::new(a.parameters(), make);
    let mut data = Rng::new(7);
    for _ in 0..3 {
        step(&a, &mut pa, &mut data);
    }
    let mut s = TrainingState::new("{}");
    s.put_module("model", &a);
    s.put_player("net", &pa);
    s.put_rng("data", &data);
    let bytes = s.to_bytes().unwrap();

    let b = net(99);
    let mut pb = Player::new(b.parameters(), make);
    let back = TrainingState::from_bytes(&bytes).unwrap();
    back.load_module("model", &b).unwrap();
    back.load_player("net", &mut pb).unwrap();
    let mut data_b = back.rng("data").unwrap();
    assert_eq!(rng_states(&b), rng_states(&a));
    for _ in 0..2 {
        let (la, lb) = (step(&a, &mut pa, &mut data), step(&b, &mut pb, &mut data_b));
        assert_eq!(la.to_bits(), lb.to_bits());
    }
    assert_eq!(weights(&a), weights(&b));
}

#[test]
fn adam_continues_exactly_from_a_saved_state() {
    continues_exactly(adam);
}

#[test]
fn sgd_momentum_continues_exactly_from_a_saved_state() {
    continues_exactly(nesterov);
}

#[test]
fn optimizer_state_dict_round_trip() {
    let m = net(3);
    let mut p = Player::new(m.parameters(), adam);
    let before = p.state_dict();
    assert_eq!(before.step, 0);
    assert!(before.buffers.iter().all(Option::is_none));
    step(&m, &mut p, &mut Rng::new(0));
    let s = p.state_dict();
    assert_eq!(s.step, 1);
    for (b, t) in s.buffers.iter().zip(m.parameters()) {
        assert_eq!(b.as_ref().unwrap().numel(), 2 * t.numel(), "m then v");
    }
    // A copy: later steps do not change it.
    let copy: Vec<f32> = s.buffers[0].as_ref().unwrap().to_vec();
    step(&m, &mut p, &mut Rng::new(1));
    assert_eq!(s.buffers[0].as_ref().unwrap().to_vec(), copy);

    let mut other = Player::new(net(4).parameters(), adam);
    other.load_state_dict(&s).unwrap();
    assert_eq!(other.state_dict().step, 1);
    // Wrong sizes are refused.
    let mut wrong = s.clone();
    wrong.buffers[0] = Some(Tensor::zeros([3]));
    let err = other.load_state_dict(&wrong).unwrap_err().to_string();
    assert!(err.contains("buffer 0 has 3 values"), "{err}");
    wrong.buffers.pop();
    let err = other.load_state_dict(&wrong).unwrap_err().to_string();
    assert!(err.contains("buffers for"), "{err}");
}

#[test]
fn rng_states_cover_the_dropout_layers() {
    let m = net(5);
    assert_eq!(rng_states(&m).len(), 1);
    let before = rng_states(&m);
    m.forward(&Tensor::ones([2, 6]));
    assert_ne!(rng_states(&m), before, "a forward pass draws a mask");
}

fn saved_file(dir: &std::path::Path) -> std::path::PathBuf {
    let m = net(2);
    let mut p = Player::new(m.parameters(), adam);
    step(&m, &mut p, &mut Rng::new(0));
    let mut s = TrainingState::new(r#"{"epoch":3}"#);
    s.put_module("model", &m);
    s.put_player("net", &p);
    let path = dir.join("state.safetensors");
    s.save(&path).unwrap();
    path
}

#[test]
fn a_state_file_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved_file(dir.path());
    let s = TrainingState::load(&path).unwrap();
    assert_eq!(s.run, r#"{"epoch":3}"#);
    assert_eq!(s.steps["net"], 1);
    assert_eq!(s.rngs.len(), 1);
    let again = TrainingState::from_bytes(&s.to_bytes().unwrap()).unwrap();
    assert_eq!(again.tensors.len(), s.tensors.len());
    for (n, t) in &s.tensors {
        assert_eq!(again.tensors[n].to_vec(), t.to_vec(), "{n}");
    }
}

/// Loads `bytes` from a file and returns the one-line error.
fn error_for(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.safetensors");
    std::fs::write(&path, bytes).unwrap();
    let e = TrainingState::load(&path).unwrap_err().to_string();
    assert!(e.contains("state.safetensors"), "names the file: {e}");
    e
}

#[test]
fn bad_state_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(saved_file(dir.path())).unwrap();

    let e = error_for(&good[..good.len() / 2]);
    assert!(e.contains("not a valid safetensors file"), "truncated: {e}");
    let e = error_for(&good[..3]);
    assert!(e.contains("not a valid safetensors file"), "{e}");
    let mut corrupt = good.clone();
    corrupt[10] ^= 0xff;
    let e = error_for(&corrupt);
    assert!(e.contains("not a valid safetensors file"), "corrupt: {e}");

    // A model checkpoint is not a training state.
    let ckpt = dir.path().join("model.safetensors");
    matnet::io::save(&ckpt, &net(0).state_dict(), &BTreeMap::new()).unwrap();
    let e = error_for(&std::fs::read(&ckpt).unwrap());
    assert!(e.contains("not a matnet training state"), "{e}");

    // A later format version.
    let mut s = TrainingState::from_bytes(&good).unwrap();
    s.run = "{}".into();
    let bytes = s.to_bytes().unwrap();
    // The header is JSON: change the version digit in place.
    let key = br#""matnet.state_format":"1""#;
    let at = bytes
        .windows(key.len())
        .position(|w| w == key)
        .expect("the version entry");
    let mut later = bytes.clone();
    later[at + key.len() - 2] = b'7';
    let e = error_for(&later);
    assert!(e.contains("format version '7'"), "{e}");

    // Loading into a different model names the problem.
    let other = Sequential::new().append(Linear::new(6, 3, &mut Rng::new(0)));
    let e = s.load_module("model", &other).unwrap_err().to_string();
    assert!(e.contains("random generators"), "{e}");
    let wide = net(0);
    let mut p = Player::new(wide.parameters(), adam);
    s.tensors.insert("optim.net.9".into(), Tensor::zeros([2]));
    let e = s.load_player("net", &mut p).unwrap_err().to_string();
    assert!(
        e.contains("unexpected optimizer tensor 'optim.net.9'"),
        "{e}"
    );
}
