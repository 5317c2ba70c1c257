//! The checks the fuzz targets in `fuzz/` run on each input, kept here so the
//! stable test `tests/fuzz_regressions.rs` replays every corpus and
//! regression file through exactly the same code: a crash the fuzzer found
//! stays a failing `cargo test --workspace`, with no nightly toolchain.
//! (A file `include!`d by both would work too, but would be compiled twice
//! and checked by neither clippy run as library code.)
//!
//! Each check feeds one input to one file reader and panics when the reader
//! panics, allocates more than a bound derived from the input's length, or
//! fails with a message that does not name the file and say what is wrong.
//! Not a public API: hidden from the docs, no stability promise.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::Error;
use crate::Module;
use crate::data::{self, IdxValues};
use crate::io::TrainingState;
use crate::models::{self, Arch, Classifier, ModelConfig};
use crate::optim::Adam;
use crate::train::Player;

/// The name the checks give their input; every error must mention it.
pub const NAME: &str = "fuzz-input";

/// Slack on every allocation bound: buffers whose size does not depend on
/// the input (a gzip window, a libtest capture buffer, a thread's stack data).
const SLACK: usize = 4 << 20;

/// Deflate expands at most 1032:1 (one 258-byte match per two bits).
const DEFLATE_RATIO: usize = 1032;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The system allocator, counting the bytes live: install it with
/// `#[global_allocator]` in a fuzz target or test binary, and every check
/// aborts the process the moment its input makes the reader hold more than
/// the check's bound.
pub struct CountingAlloc;

impl CountingAlloc {
    fn grow(n: usize) {
        let live = LIVE.fetch_add(n, Ordering::Relaxed) + n;
        PEAK.fetch_max(live, Ordering::Relaxed);
        if live > LIMIT.load(Ordering::Relaxed) {
            over_limit();
        }
    }

    fn shrink(n: usize) {
        LIVE.fetch_sub(n, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to `System` with the caller's arguments;
// the counters never change what is returned.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::grow(layout.size());
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::grow(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        Self::shrink(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > old {
            Self::grow(new_size - old);
        }
        // SAFETY: as for `alloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            if new_size > old {
                Self::shrink(new_size - old);
            }
        } else if new_size < old {
            Self::shrink(old - new_size);
        }
        p
    }
}

/// Reports and aborts without allocating (we are inside the allocator).
fn over_limit() -> ! {
    let msg = b"fuzzing: the reader allocated more than the bound for this input\n";
    // SAFETY: writes a static buffer to stderr.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
    std::process::abort()
}

/// Runs `f` with at most `bound` more bytes live than before it; returns its
/// result and the most it held. (Without [`CountingAlloc`] installed nothing
/// is counted and the peak is 0.)
pub fn with_alloc_bound<R>(bound: usize, f: impl FnOnce() -> R) -> (R, usize) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    LIMIT.store(base.saturating_add(bound), Ordering::Relaxed);
    let r = f();
    LIMIT.store(usize::MAX, Ordering::Relaxed);
    (r, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

/// Panics unless `e` names the input and says something specific: the
/// message after the file name has at least three words.
pub fn assert_specific(e: &Error) {
    let msg = e.to_string();
    let what = msg
        .strip_prefix(NAME)
        .and_then(|m| m.strip_prefix(": "))
        .unwrap_or_else(|| panic!("the error does not start with the file name: {msg:?}"));
    assert!(
        what.split_whitespace().count() >= 3,
        "the error does not say what is wrong: {msg:?}"
    );
}

/// The IDX reader (raw or gzip, bytes and f32 elements). Returns the peak
/// bytes held.
pub fn check_idx(input: &[u8]) -> usize {
    let name = Path::new(NAME);
    // Raw: the data cannot exceed the input; f32 values are as many bytes.
    // Gzip: the stream inflates at most 1032:1 and a growing Vec may hold
    // twice what it read, plus the f32 copy.
    let bound = if input.starts_with(&[0x1f, 0x8b]) {
        3 * DEFLATE_RATIO * input.len()
    } else {
        3 * input.len()
    };
    let ((), peak) = with_alloc_bound(bound + SLACK, || {
        match data::idx_from_bytes(name, input) {
            Ok(a) => {
                assert!((1..=4).contains(&a.dims.len()), "dims {:?}", a.dims);
                assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
                assert_eq!(a.item_size() * a.dims[0], a.data.len());
            }
            Err(e) => assert_specific(&e),
        }
        match data::idx_values_from_bytes(name, input) {
            Ok((dims, IdxValues::U8(v))) => assert_eq!(v.len(), dims.iter().product::<usize>()),
            Ok((dims, IdxValues::F32(v))) => assert_eq!(v.len(), dims.iter().product::<usize>()),
            Err(e) => assert_specific(&e),
        }
    });
    peak
}

/// PNG input as `predict`, `inspect` (decode, then prepare a digit) and
/// `gan-score` (decode) read it. Returns the peak bytes held.
pub fn check_png(input: &[u8]) -> usize {
    let name = Path::new(NAME);
    // At most 1032 bytes of packed rows per input byte, at least one bit per
    // pixel; then per pixel at most 8 bytes decoded (RGBA16), 1 grey and
    // 8 for the two f32 planes `prepare_digit` holds: 17, rounded up.
    let pixels = (8 * DEFLATE_RATIO * input.len()).min(data::png::MAX_PIXELS as usize);
    let ((), peak) = with_alloc_bound(24 * pixels + SLACK, || {
        match data::decode_png(name, input) {
            Ok(img) => {
                assert_eq!(img.pixels.len(), img.width * img.height);
                for (rows, cols) in [(28, 28), (5, 9)] {
                    match data::prepare_digit(name, &img, rows, cols) {
                        Ok(px) => assert_eq!(px.len(), rows * cols),
                        Err(e) => assert_specific(&e),
                    }
                }
            }
            Err(e) => assert_specific(&e),
        }
    });
    peak
}

/// The checkpoint loader with the model configuration: [`models::load_bytes`].
/// Returns the peak bytes held.
pub fn check_checkpoint(input: &[u8]) -> usize {
    let name = Path::new(NAME);
    // Tensors may be f16 (2 bytes each, 4 as f32), read once into the
    // checkpoint and once more into the model; the JSON header parses into
    // maps a few times its size.
    let ((), peak) = with_alloc_bound(64 * input.len() + SLACK, || {
        match models::load_bytes(name, input) {
            Ok(m) => {
                use crate::Module;
                let n: usize = m.state_dict().iter().map(|(_, t)| t.numel()).sum();
                assert!(
                    4 * n <= 2 * input.len(),
                    "{n} values from {} bytes",
                    input.len()
                );
            }
            Err(e) => assert_specific(&e),
        }
    });
    peak
}

/// The training-state loader as `matnet train --resume` uses it:
/// [`TrainingState::from_file_bytes`], then the model, the optimizer and
/// the loop's generators restored from it into the network of the seed
/// states (`matnet train --model mlp --hidden 2 --dropout 0.2`); other
/// networks' states must fail with a message naming what does not match.
/// Returns the peak bytes held.
pub fn check_state(input: &[u8]) -> usize {
    let name = Path::new(NAME);
    // As for checkpoints: tensors read once, copied once into the model and
    // the optimizer; JSON maps a few times their text.
    let ((), peak) = with_alloc_bound(64 * input.len() + SLACK, || {
        let state = match TrainingState::from_file_bytes(name, input) {
            Ok(s) => s,
            Err(e) => return assert_specific(&e),
        };
        let n: usize = state.tensors.values().map(|t| t.numel()).sum();
        assert!(
            4 * n <= 2 * input.len(),
            "{n} values from {} bytes",
            input.len()
        );
        let restored = restore_state(&state);
        if let Err(e) = restored {
            // The restore errors say what does not match but not the file
            // (the training loop adds it): at least three words.
            let msg = e.to_string();
            assert!(msg.split_whitespace().count() >= 3, "{msg:?}");
        }
    });
    peak
}

/// Restores `state` as `--resume` would for the seed states' network (an
/// mlp with one hidden layer of 2 and dropout 0.2, Adam): model, optimizer,
/// the loop's generators.
pub fn restore_state(state: &TrainingState) -> crate::Result<()> {
    let config = ModelConfig {
        hidden: vec![2],
        dropout: 0.2,
        ..ModelConfig::for_mnist(Arch::Mlp)
    };
    let model = Classifier::new(config, 0).expect("a fixed small mlp builds");
    let mut player = Player::new(model.net.parameters(), |p| Box::new(Adam::new(p, 1e-3)));
    state.load_module("model", &model.net)?;
    state.load_player("net", &mut player)?;
    state.rng("shuffle")?;
    state.rng("augment")?;
    Ok(())
}
