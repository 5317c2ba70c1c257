//! Resumable training, shared by every training loop: the run directory's
//! lock, the training state file (`state.safetensors`, written at each
//! epoch's end and every `--save-every` minutes), the signals that save and
//! stop, and `--resume RUN_DIR` with its check of conflicting flags.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use matnet::io::TrainingState;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use matnet::models::Arch;

use crate::train::{Task, TrainArgs};

/// The training state's file name in a run directory.
pub const STATE_FILE: &str = "state.safetensors";
/// The file `train` holds an exclusive lock on while it writes the directory.
const LOCK_FILE: &str = ".lock";

/// Flags that may differ on `--resume`: they do not change the numbers.
const FREE_FLAGS: [&str; 5] = ["resume", "quiet", "save_every", "data", "out"];
/// Flags that may differ on an adversarial run's `--resume`: they change
/// only epochs not yet trained (see [`resolve`]).
const FUTURE_FLAGS: [&str; 3] = ["epochs", "lr_drop_after", "lr_drop_factor"];

/// A training loop stopped by SIGINT or SIGTERM after saving its state.
#[derive(Debug)]
pub struct Interrupted {
    /// The run directory to resume.
    pub dir: PathBuf,
    /// The exit status: 128 + the signal's number (130 for SIGINT).
    pub code: u8,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "interrupted: state saved; resume with: matnet train --resume {}",
            self.dir.display()
        )
    }
}

impl std::error::Error for Interrupted {}

/// The arguments of a `train` call, with `--resume`'s settings read from
/// the run's state: the saved settings, plus the free flags given now. A
/// flag given on the command line that changes the numbers and differs from
/// the saved value is an error naming the flag and both values.
///
/// Flags that only shape epochs not yet trained may change for the
/// adversarial models (gan, dcgan, joint), whose learning rates depend on
/// nothing else: `--epochs` extends or shortens the run (not below the
/// epochs it has trained or started), and `--lr-drop-after` and
/// `--lr-drop-factor` set or move a drop that has not acted yet.
pub fn resolve(args: TrainArgs) -> anyhow::Result<TrainArgs> {
    let Some(dir) = args.resume.clone() else {
        return Ok(args);
    };
    let state = load(&dir)?;
    let run: Value = serde_json::from_str(&state.run)?;
    let saved = run
        .get("settings")
        .with_context(|| format!("{}: no run settings saved", dir.join(STATE_FILE).display()))?;
    let now = serde_json::to_value(&args)?;
    let mut resumed: TrainArgs = serde_json::from_value(saved.clone())
        .with_context(|| format!("{}: unreadable run settings", dir.display()))?;
    let adversarial = resumed.model.is_gan() || resumed.model == Arch::Joint;
    let future_free = adversarial && resumed.task == Task::Images;
    let given = |id: &str| args.explicit.iter().any(|e| e == id);
    for id in &args.explicit {
        if FREE_FLAGS.contains(&id.as_str()) || (future_free && FUTURE_FLAGS.contains(&id.as_str()))
        {
            continue;
        }
        let (a, b) = (now.get(id), saved.get(id));
        if a != b {
            let show = |v: Option<&Value>| match v {
                None | Some(Value::Null) => "not given".to_string(),
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
            };
            bail!(
                "--{} {} conflicts with the run's saved setting ({}) in {}; leave it out to resume",
                id.replace('_', "-"),
                show(a),
                show(b),
                dir.display()
            );
        }
    }
    if future_free {
        // Where the run stands: epochs finished, and whether one has started.
        let p = run.get("progress");
        let field = |f: &str| {
            p.and_then(|p| p.get(f))
                .and_then(Value::as_u64)
                .unwrap_or(0) as usize
        };
        let (done, mid_epoch) = (field("done"), field("step") > 0);
        let started = done + usize::from(mid_epoch);
        if given("epochs") {
            // A run may be shortened, not cut below what it trained.
            let epochs = args.epochs.unwrap_or(0);
            ensure!(
                epochs >= started,
                "--epochs {epochs}: the run in {} has {}; give at least {started}",
                dir.display(),
                if mid_epoch {
                    format!("finished {done} epochs and started epoch {started}")
                } else {
                    format!("finished {done} epochs")
                }
            );
            resumed.epochs = args.epochs;
        }
        if given("lr_drop_after") || given("lr_drop_factor") {
            // A drop acts from the epoch after E on; epochs finished or
            // started keep the rates they were trained with.
            let acted = |drop: Option<usize>| drop.is_some_and(|e| e < started);
            let old = resumed.gan.lr_drop_after;
            let new = if given("lr_drop_after") {
                args.gan.lr_drop_after
            } else {
                old
            };
            ensure!(
                !acted(old) && !acted(new),
                "--lr-drop-after {}: the run in {} has trained {started} epochs{}; a drop can only be set or moved after them",
                new.map_or("not given".into(), |e| e.to_string()),
                dir.display(),
                old.map_or(String::new(), |e| format!(" with a drop after epoch {e}"))
            );
            resumed.gan.lr_drop_after = new;
            if given("lr_drop_factor") {
                resumed.gan.lr_drop_factor = args.gan.lr_drop_factor;
            }
        }
    }
    resumed.resume = Some(dir.clone());
    resumed.out = Some(dir);
    resumed.quiet = args.quiet;
    resumed.save_every = args.save_every;
    if args.data.is_some() {
        resumed.data = args.data;
    }
    Ok(resumed)
}

fn load(dir: &Path) -> anyhow::Result<TrainingState> {
    let path = dir.join(STATE_FILE);
    if !path.exists() {
        bail!(
            "{}: no training state to resume (is {} a run directory?)",
            path.display(),
            dir.display()
        );
    }
    Ok(TrainingState::load(&path)?)
}

/// The writer of one run directory's training state: holds the directory's
/// lock, knows when a save is due and whether a signal asked to stop.
pub struct Saver {
    dir: PathBuf,
    settings: Value,
    every: Duration,
    last: Instant,
    signal: Arc<AtomicUsize>,
    // Held for the run's lifetime: the lock goes with the file.
    _lock: File,
}

impl Saver {
    /// Creates and locks the run directory `dir`, installs the SIGINT and
    /// SIGTERM handlers, and with `--resume` loads the saved state (the loop
    /// restores from it).
    pub fn open(dir: &Path, args: &TrainArgs) -> anyhow::Result<(Saver, Option<TrainingState>)> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create run directory {}", dir.display()))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot create {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "run directory {} is in use by another `matnet train` (it holds {}); \
                 wait for it or choose another --out",
                dir.display(),
                lock_path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", lock_path.display()));
            }
        }
        let state = args.resume.is_some().then(|| load(dir)).transpose()?;
        let minutes = args.save_every;
        anyhow::ensure!(
            minutes.is_finite() && minutes >= 0.0,
            "--save-every must be a number of minutes (0: after every step), got {minutes}"
        );
        let saver = Saver {
            dir: dir.to_path_buf(),
            settings: serde_json::to_value(args)?,
            every: Duration::from_secs_f64(minutes * 60.0),
            last: Instant::now(),
            signal: install_handlers()?,
            _lock: lock,
        };
        Ok((saver, state))
    }

    /// The loop's progress document saved in `state` (what it passed to
    /// [`Saver::save`]).
    pub fn progress<P: DeserializeOwned>(&self, state: &TrainingState) -> anyhow::Result<P> {
        let path = self.dir.join(STATE_FILE);
        let run: Value = serde_json::from_str(&state.run)?;
        let p = run
            .get("progress")
            .with_context(|| format!("{}: no progress saved", path.display()))?;
        serde_json::from_value(p.clone())
            .with_context(|| format!("{}: unreadable progress", path.display()))
    }

    /// Whether a save is due within an epoch: `--save-every` minutes have
    /// passed since the last one, or a signal asked to stop.
    pub fn due(&self) -> bool {
        self.signal.load(Ordering::SeqCst) != 0 || self.last.elapsed() >= self.every
    }

    /// Writes `state` (tensors and generators filled in by the loop) with
    /// the run's settings and the loop's `progress`, atomically. Then, if a
    /// signal arrived, returns [`Interrupted`] for the loop to pass up.
    pub fn save(
        &mut self,
        mut state: TrainingState,
        progress: &impl Serialize,
    ) -> anyhow::Result<()> {
        state.run = serde_json::json!({
            "settings": self.settings,
            "progress": progress,
        })
        .to_string();
        state.save(&self.dir.join(STATE_FILE))?;
        self.last = Instant::now();
        match self.signal.load(Ordering::SeqCst) {
            0 => Ok(()),
            sig => Err(Interrupted {
                dir: self.dir.clone(),
                code: (128 + sig) as u8,
            }
            .into()),
        }
    }
}

/// SIGINT and SIGTERM set a flag the loop reads after each step; a second
/// signal while it is set ends the process at once (signal-hook's
/// documented pattern: the shutdown check is registered first).
fn install_handlers() -> anyhow::Result<Arc<AtomicUsize>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = Arc::new(AtomicUsize::new(0));
    let pending = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&pending))?;
        signal_hook::flag::register(sig, Arc::clone(&pending))?;
        signal_hook::flag::register_usize(sig, Arc::clone(&flag), sig as usize)?;
    }
    Ok(flag)
}

/// The ids of the `train` flags given on the command line (not defaults).
pub fn explicit_flags(m: &clap::ArgMatches) -> Vec<String> {
    m.ids()
        .map(|id| id.as_str().to_string())
        .filter(|id| m.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
        .collect()
}
