//! Replays every seed (`tests/fuzz/corpus/TARGET/`) and every input a fuzzer
//! crashed on (`tests/fuzz/regressions/TARGET/`) through the fuzz targets' own
//! checks (`matnet::fuzzing`), on stable: no panic, allocations within the
//! bound for the input's size, and errors that name the file and say what
//! is wrong. The long runs need nightly and cargo-fuzz (README, Fuzzing).

use std::path::{Path, PathBuf};

use matnet::fuzzing::{self, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz")
}

/// The files of `tests/fuzz/KIND/TARGET`, sorted.
fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// Runs `check` on every corpus and regression file of `target`; returns
/// the corpus files, which must exist.
fn replay(target: &str, check: fn(&[u8]) -> usize) -> Vec<(PathBuf, Vec<u8>)> {
    let corpus = inputs("corpus", target);
    assert!(!corpus.is_empty(), "no seeds for {target}");
    let regressions = fuzz_dir().join("regressions").join(target);
    let regressions = if regressions.is_dir() {
        inputs("regressions", target)
    } else {
        Vec::new()
    };
    let mut most = 0;
    for (path, bytes) in corpus.iter().chain(&regressions) {
        // Printed so a failure (a panic, or an abort from the allocator)
        // says which file it was.
        println!("{}: {} bytes", path.display(), bytes.len());
        let peak = check(bytes);
        println!("  peak {peak} bytes");
        most = most.max(peak);
    }
    // Over all the inputs, not per input: the count is process-wide, so a
    // tiny input rejected at once can show a peak of 0 while another test's
    // thread frees memory (seen once in CI: a 122-byte PNG).
    assert!(most > 0, "the counting allocator is not counting");
    corpus
}

#[test]
fn idx_seeds_and_regressions() {
    let name = Path::new(fuzzing::NAME);
    for (path, bytes) in replay("idx", fuzzing::check_idx) {
        // The seeds are real MNIST slices, except the cut download (`.head`).
        let read = matnet::data::idx_values_from_bytes(name, &bytes);
        let cut = path.extension().is_some_and(|e| e == "head");
        assert_eq!(read.is_err(), cut, "{}: {:?}", path.display(), read.err());
    }
}

#[test]
fn png_seeds_and_regressions() {
    let name = Path::new(fuzzing::NAME);
    for (path, bytes) in replay("png", fuzzing::check_png) {
        let img = matnet::data::decode_png(name, &bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let digit = matnet::data::prepare_digit(name, &img, 28, 28).unwrap();
        assert!(digit.iter().any(|&p| p > 200), "{}: no ink", path.display());
    }
    for (path, bytes) in inputs("regressions", "png") {
        let e = matnet::data::decode_png(name, &bytes).unwrap_err();
        println!("{}: {e}", path.display());
    }
}

#[test]
fn checkpoint_seeds_and_regressions() {
    let name = Path::new(fuzzing::NAME);
    for (path, bytes) in replay("checkpoint", fuzzing::check_checkpoint) {
        // Every seed is a real checkpoint of one architecture.
        if let Err(e) = matnet::models::load_bytes(name, &bytes) {
            panic!("{}: {e}", path.display());
        }
    }
}

#[test]
fn state_seeds_and_regressions() {
    let name = Path::new(fuzzing::NAME);
    for (path, bytes) in replay("state", fuzzing::check_state) {
        // Every seed is a real training state written by `matnet train`.
        let state = matnet::io::TrainingState::from_file_bytes(name, &bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(state.run.contains("\"settings\""), "{}", path.display());
        let restored = fuzzing::restore_state(&state);
        let adam_mlp = path.ends_with("mlp-h2-adam.safetensors");
        println!("  restored: {restored:?}");
        assert_eq!(restored.is_ok(), adam_mlp, "{}", path.display());
    }
}

#[test]
fn a_billion_unit_layer_is_an_error_not_an_allocation() {
    let dir = fuzz_dir().join("regressions/checkpoint");
    let bytes = std::fs::read(dir.join("mlp-claims-a-billion-units")).unwrap();
    let name = Path::new(fuzzing::NAME);
    let (r, peak) = fuzzing::with_alloc_bound(64 * bytes.len() + (4 << 20), || {
        matnet::models::load_bytes(name, &bytes)
            .err()
            .unwrap()
            .to_string()
    });
    assert!(
        r.contains("configuration describes at least 795000000010 values")
            && r.contains("tensors hold 6370"),
        "{r}"
    );
    assert!(peak < 64 * bytes.len() + (4 << 20), "{peak}");
}
