//! Training state: everything a run needs to continue exactly where it
//! stopped, in one safetensors file.
//!
//! A checkpoint (`model.safetensors`) holds a model; a training state holds
//! the run: the model's weights and buffers, each optimizer's moments and
//! step count, every random generator (dropout masks inside the model, and
//! the loop's own streams: shuffling, augmentation, noise) and a JSON
//! document the training loop fills with its position and metrics.
//!
//! # File layout
//! Tensors (F32): `model.<state_dict name>` and `optim.<player>.<i>` (the
//! `i`-th parameter's optimizer buffer, absent until its first update).
//! Metadata strings: `matnet.state_format` (the format version, [`FORMAT`]),
//! `matnet.steps` (JSON: optimizer step count per player), `matnet.rngs`
//! (JSON: generator states by name, four u64 each) and `matnet.run` (the
//! loop's JSON document).
//!
//! ```
//! use matnet::io::TrainingState;
//! use matnet::nn::{Linear, Module};
//! use matnet::optim::Adam;
//! use matnet::train::Player;
//! use matnet::{Rng, Tensor};
//!
//! # fn main() -> matnet::Result<()> {
//! let mut rng = Rng::new(0);
//! let net = Linear::new(3, 2, &mut rng);
//! let mut player = Player::new(net.parameters(), |p| Box::new(Adam::new(p, 0.1)));
//! player.step(&net.forward(&Tensor::ones([4, 3])).sum_all())?;
//!
//! let mut state = TrainingState::new(r#"{"epoch":1}"#);
//! state.put_module("model", &net);
//! state.put_player("net", &player);
//! state.put_rng("shuffle", &rng);
//! let bytes = state.to_bytes()?;
//!
//! let back = TrainingState::from_bytes(&bytes)?;
//! let fresh = Linear::new(3, 2, &mut Rng::new(9));
//! back.load_module("model", &fresh)?;
//! assert_eq!(fresh.weight.to_vec(), net.weight.to_vec());
//! assert_eq!(back.rng("shuffle")?.next_u64(), rng.next_u64());
//! assert_eq!(back.run, r#"{"epoch":1}"#);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use super::checkpoint::{assign_checked, parse, serialize, write_atomic};
use crate::nn::{Module, load_rng_states, rng_states};
use crate::optim::OptimizerState;
use crate::train::{Ema, Player};
use crate::{Error, Result, Rng, Tensor};

/// The version of the layout this matnet writes and reads.
pub const FORMAT: u32 = 1;

const FORMAT_KEY: &str = "matnet.state_format";
const STEPS_KEY: &str = "matnet.steps";
const RNGS_KEY: &str = "matnet.rngs";
const RUN_KEY: &str = "matnet.run";

/// A training run's state (see the [module docs](self) for the layout).
#[derive(Clone, Debug)]
pub struct TrainingState {
    /// Model and optimizer tensors by name (copies, not views of the model).
    pub tensors: BTreeMap<String, Tensor>,
    /// Optimizer step counts by player name.
    pub steps: BTreeMap<String, u64>,
    /// Generator states by name.
    pub rngs: BTreeMap<String, [u64; 4]>,
    /// The training loop's own JSON document (position, metrics, settings).
    pub run: String,
}

impl TrainingState {
    /// An empty state carrying the loop's JSON document `run`.
    pub fn new(run: impl Into<String>) -> TrainingState {
        TrainingState {
            tensors: BTreeMap::new(),
            steps: BTreeMap::new(),
            rngs: BTreeMap::new(),
            run: run.into(),
        }
    }

    /// Copies `m`'s `state_dict` as `<prefix>.<name>` and its generators
    /// (dropout) as `<prefix>.<i>`.
    pub fn put_module(&mut self, prefix: &str, m: &dyn Module) {
        self.put_tensors(prefix, &m.state_dict());
        for (i, s) in rng_states(m).into_iter().enumerate() {
            self.rngs.insert(format!("{prefix}.{i}"), s);
        }
    }

    /// Loads what [`TrainingState::put_module`] saved into `m` (in place).
    /// Names and shapes are checked first: a mismatch is an error listing
    /// them, and `m` is unchanged.
    pub fn load_module(&self, prefix: &str, m: &dyn Module) -> Result<()> {
        let saved = self.tensors_under(prefix);
        let rngs: Vec<[u64; 4]> = (0..)
            .map_while(|i| self.rngs.get(&format!("{prefix}.{i}")).copied())
            .collect();
        if rngs.len() != rng_states(m).len() {
            return Err(Error::Invalid(format!(
                "'{prefix}': {} random generators saved, the model has {}",
                rngs.len(),
                rng_states(m).len()
            )));
        }
        assign_checked(&saved, &m.state_dict())
            .map_err(|msg| Error::Invalid(format!("'{prefix}': {msg}")))?;
        load_rng_states(m, &rngs)
    }

    /// Copies `player`'s optimizer state as `optim.<name>.<i>` and its step count.
    pub fn put_player(&mut self, name: &str, player: &Player) {
        let s = player.state_dict();
        for (i, b) in s.buffers.into_iter().enumerate() {
            if let Some(b) = b {
                self.tensors.insert(format!("optim.{name}.{i}"), b);
            }
        }
        self.steps.insert(name.to_string(), s.step);
    }

    /// Restores the optimizer state [`TrainingState::put_player`] saved
    /// under `name` into `player`; wrong sizes are an error.
    pub fn load_player(&self, name: &str, player: &mut Player) -> Result<()> {
        let step = *self
            .steps
            .get(name)
            .ok_or_else(|| Error::Invalid(format!("no optimizer state for '{name}'")))?;
        let prefix = format!("optim.{name}.");
        let n = player.params().len();
        let stray = self.tensors.keys().find(|k| {
            k.strip_prefix(&prefix)
                .is_some_and(|i| i.parse::<usize>().map_or(true, |i| i >= n))
        });
        if let Some(k) = stray {
            return Err(Error::Invalid(format!(
                "unexpected optimizer tensor '{k}' ('{name}' has {n} parameters)"
            )));
        }
        let buffers = (0..n)
            .map(|i| self.tensors.get(&format!("{prefix}{i}")).cloned())
            .collect();
        player
            .load_state_dict(&OptimizerState { step, buffers })
            .map_err(|e| Error::Invalid(format!("optimizer '{name}': {e}")))
    }

    /// Copies an exponential moving average as `<prefix>.<name>`, and its
    /// update count.
    pub fn put_ema(&mut self, prefix: &str, ema: &Ema) {
        self.put_tensors(prefix, ema.tensors());
        self.steps.insert(prefix.to_string(), ema.updates());
    }

    /// Restores the average [`TrainingState::put_ema`] saved under
    /// `prefix` into `ema`; missing or misshapen tensors are an error.
    pub fn load_ema(&self, prefix: &str, ema: &mut Ema) -> Result<()> {
        let updates = *self
            .steps
            .get(prefix)
            .ok_or_else(|| Error::Invalid(format!("no moving average '{prefix}' saved")))?;
        ema.load(&self.tensors_under(prefix), updates)
            .map_err(|e| Error::Invalid(format!("'{prefix}': {e}")))
    }

    /// Copies `tensors` (host copies, not views) as `<prefix>.<name>`.
    fn put_tensors(&mut self, prefix: &str, tensors: &[(String, Tensor)]) {
        for (name, t) in tensors {
            let copy = Tensor::from_vec(t.to_vec(), t.dims().to_vec());
            self.tensors.insert(format!("{prefix}.{name}"), copy);
        }
    }

    /// The tensors saved as `<prefix>.<name>`, by `name`.
    fn tensors_under(&self, prefix: &str) -> BTreeMap<&str, &Tensor> {
        let dot = format!("{prefix}.");
        self.tensors
            .iter()
            .filter_map(|(n, t)| n.strip_prefix(&dot).map(|n| (n, t)))
            .collect()
    }

    /// Saves a generator's state under `name`.
    pub fn put_rng(&mut self, name: &str, rng: &Rng) {
        self.rngs.insert(name.to_string(), rng.state());
    }

    /// The generator saved under `name`.
    pub fn rng(&self, name: &str) -> Result<Rng> {
        self.rngs
            .get(name)
            .map(|&s| Rng::from_state(s))
            .ok_or_else(|| Error::Invalid(format!("no random generator '{name}' saved")))
    }

    /// The file's bytes (safetensors).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        // String keys and integer values: serializing cannot fail.
        let meta = BTreeMap::from([
            (FORMAT_KEY.to_string(), FORMAT.to_string()),
            (
                STEPS_KEY.to_string(),
                serde_json::to_string(&self.steps).expect("integers serialize"),
            ),
            (
                RNGS_KEY.to_string(),
                serde_json::to_string(&self.rngs).expect("integers serialize"),
            ),
            (RUN_KEY.to_string(), self.run.clone()),
        ]);
        let tensors: Vec<(String, Tensor)> = self
            .tensors
            .iter()
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        serialize(&tensors, &meta).map_err(Error::Invalid)
    }

    /// Reads a state from the bytes of a file. Never panics; every length
    /// is checked against `bytes.len()` before anything is allocated, so
    /// memory stays within a small multiple of the input's size. The error
    /// says what is wrong (wrong format version, missing or malformed
    /// entry, corrupt safetensors) but not which file: [`TrainingState::load`]
    /// adds that.
    pub fn from_bytes(bytes: &[u8]) -> Result<TrainingState> {
        let ckpt = parse(bytes).map_err(Error::Invalid)?;
        let meta = &ckpt.metadata;
        let get = |key: &str| {
            meta.get(key).ok_or_else(|| {
                Error::Invalid(format!("not a matnet training state (no '{key}' entry)"))
            })
        };
        let version = get(FORMAT_KEY)?;
        if version.parse::<u32>().ok() != Some(FORMAT) {
            return Err(Error::Invalid(format!(
                "training state format version '{version}'; this matnet reads version {FORMAT}"
            )));
        }
        let bad = |key: &str, e: serde_json::Error| {
            Error::Invalid(format!("malformed '{key}' entry ({e})"))
        };
        let steps = serde_json::from_str(get(STEPS_KEY)?).map_err(|e| bad(STEPS_KEY, e))?;
        let rngs = serde_json::from_str(get(RNGS_KEY)?).map_err(|e| bad(RNGS_KEY, e))?;
        let run = get(RUN_KEY)?;
        serde_json::from_str::<serde::de::IgnoredAny>(run).map_err(|e| bad(RUN_KEY, e))?;
        Ok(TrainingState {
            tensors: ckpt.tensors.into_iter().collect(),
            steps,
            rngs,
            run: run.clone(),
        })
    }

    /// Writes the state to `path` atomically (temporary file, sync, rename),
    /// so a run killed while saving keeps its previous state.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self
            .to_bytes()
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        write_atomic(path, &bytes)
    }

    /// Reads the state at `path`; errors name the file.
    pub fn load(path: &Path) -> Result<TrainingState> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        TrainingState::from_file_bytes(path, &bytes)
    }

    /// [`TrainingState::from_bytes`] on a file's contents already in memory,
    /// with errors naming `path`.
    pub fn from_file_bytes(path: &Path, bytes: &[u8]) -> Result<TrainingState> {
        TrainingState::from_bytes(bytes).map_err(|e| Error::format(path, e.to_string()))
    }
}
