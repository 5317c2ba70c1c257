//! Checkpoint errors: exact messages for mismatched models, malformed and
//! truncated files, unreadable paths, and atomic writes. Round trips and
//! PyTorch interop are in `checkpoint.rs`.

mod common;
use common::{bits, mlp, named, saved_mlp};
use matnet::io;
use matnet::{Rng, Tensor};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ----- load_into: the model and the file disagree -----------------------------

fn assert_load_into_fails(path: &Path, model: &[(String, Tensor)], problem: &str) {
    let before: Vec<Vec<u32>> = model.iter().map(|(_, t)| bits(t)).collect();
    let err = io::load_into(path, model).unwrap_err().to_string();
    assert_eq!(err, format!("{}: {problem}", path.display()));
    assert!(err.contains("model.safetensors: "), "{err}");
    for ((name, t), b) in model.iter().zip(before) {
        assert_eq!(bits(t), b, "{name} was written despite the error");
    }
}

#[test]
fn load_into_reports_a_missing_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let mut saved = mlp(1);
    saved.retain(|(n, _)| n != "fc2.bias");
    io::save(&path, &saved, &BTreeMap::new()).unwrap();
    assert_load_into_fails(&path, &mlp(5), "missing tensor 'fc2.bias'");
}

#[test]
fn load_into_reports_a_misshaped_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let mut saved = mlp(1);
    saved[0].1 = Tensor::zeros([10, 784]);
    io::save(&path, &saved, &BTreeMap::new()).unwrap();
    let mut model = mlp(5);
    model[0].1 = Tensor::ones([256, 784]);
    assert_load_into_fails(
        &path,
        &model,
        "tensor 'fc1.weight' has shape [10, 784], the model expects [256, 784]",
    );
}

#[test]
fn load_into_reports_an_unexpected_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let mut saved = mlp(1);
    saved.push(("extra.weight".into(), Tensor::ones([2, 2])));
    io::save(&path, &saved, &BTreeMap::new()).unwrap();
    assert_load_into_fails(&path, &mlp(5), "unexpected tensor 'extra.weight'");
}

#[test]
fn load_into_lists_every_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let saved = named(&[
        ("fc.weight", Tensor::zeros([2, 3])),
        ("fc.bias", Tensor::zeros([3])),
        ("head.weight", Tensor::zeros([1, 2])),
    ]);
    io::save(&path, &saved, &BTreeMap::new()).unwrap();
    let model = named(&[
        ("fc.weight", Tensor::ones([2, 3])),
        ("fc.bias", Tensor::ones([2])),
        ("out.weight", Tensor::ones([1, 2])),
    ]);
    assert_load_into_fails(
        &path,
        &model,
        "tensor 'fc.bias' has shape [3], the model expects [2]; \
         missing tensor 'out.weight'; unexpected tensor 'head.weight'",
    );
}

#[test]
#[should_panic(expected = "load_into: parameter name 'fc1.bias' appears twice")]
fn load_into_panics_on_duplicate_parameter_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved_mlp(dir.path());
    let mut model = mlp(1);
    model.push(model[1].clone());
    let _ = io::load_into(&path, &model);
}

#[test]
#[should_panic(expected = "save: tensor name 'w' appears twice")]
fn save_panics_on_duplicate_names() {
    let dir = tempfile::tempdir().unwrap();
    let w = Tensor::zeros([1]);
    let _ = io::save(
        &dir.path().join("m.safetensors"),
        &named(&[("w", w.clone()), ("w", w)]),
        &BTreeMap::new(),
    );
}

// ----- malformed files: an error naming the file, never a panic ----------------

fn assert_load_error(path: &Path, what: &str) -> String {
    let err = match io::load(path) {
        Ok(c) => panic!("{what}: loaded {} tensors", c.tensors.len()),
        Err(e) => e.to_string(),
    };
    assert!(
        err.starts_with(&format!("{}: ", path.display())),
        "{what}: error does not name the file: {err}"
    );
    err
}

/// A file with a hand-written header and `data_len` bytes of data.
fn write_with_header(path: &Path, header: &str, data_len: usize) {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.resize(bytes.len() + data_len, 0);
    fs::write(path, bytes).unwrap();
}

#[test]
fn truncated_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = fs::read(saved_mlp(dir.path())).unwrap();
    let path = dir.path().join("cut.safetensors");
    // Every prefix: inside the length, the header and the data.
    for n in 0..good.len() {
        fs::write(&path, &good[..n]).unwrap();
        assert_load_error(&path, &format!("first {n} of {} bytes", good.len()));
    }
    // And one byte too many.
    let mut long = good.clone();
    long.push(0);
    fs::write(&path, long).unwrap();
    assert_load_error(&path, "one trailing byte");
}

#[test]
fn empty_file_and_random_bytes_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    fs::write(&path, b"").unwrap();
    let err = assert_load_error(&path, "empty file");
    assert!(err.contains("not a valid safetensors file"), "{err}");

    let mut rng = Rng::new(11);
    for len in [1, 7, 8, 9, 64, 1000, 100_000] {
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        fs::write(&path, &bytes).unwrap();
        assert_load_error(&path, &format!("{len} random bytes"));
        // A plausible small length followed by garbage.
        let mut bytes = bytes;
        if len >= 16 {
            bytes[..8].copy_from_slice(&((len as u64) / 2).to_le_bytes());
            fs::write(&path, &bytes).unwrap();
            assert_load_error(&path, &format!("{len} random bytes, small length"));
        }
    }
    fs::write(&path, b"{\"not\": \"safetensors\"}").unwrap();
    assert_load_error(&path, "a JSON file");
}

#[test]
fn lying_headers_are_errors_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    // Header lengths far beyond the file (and beyond memory).
    for claimed in [u64::MAX, 1 << 40, 99_999_999, 64] {
        let mut bytes = claimed.to_le_bytes().to_vec();
        bytes.extend_from_slice(br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#);
        fs::write(&path, bytes).unwrap();
        assert_load_error(&path, &format!("header length {claimed}"));
    }
    // Tensors whose shapes or offsets point far past the end of the file;
    // each file holds `data_len` bytes of data.
    let cases = [
        (
            r#"{"w":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4398046511104]}}"#,
            4,
            "4 TiB tensor",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
            4,
            "offsets past the end",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
            8,
            "gap before the data",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#,
            4,
            "shape and offsets disagree",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}}"#,
            4,
            "element count overflows",
        ),
        (
            r#"{"w":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}}"#,
            4,
            "unknown dtype",
        ),
        (
            r#"{"__metadata__":{"epoch":3},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
            4,
            "non-string metadata",
        ),
    ];
    for (header, data_len, what) in cases {
        write_with_header(&path, header, data_len);
        let err = assert_load_error(&path, what);
        assert!(
            err.contains("not a valid safetensors file"),
            "{what}: {err}"
        );
    }
    // safetensors accepts this one (0 elements, 0 bytes), but its row-major
    // strides would overflow.
    let header = r#"{"w":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}}"#;
    write_with_header(&path, header, 0);
    let err = assert_load_error(&path, "empty tensor with overflowing strides");
    assert!(
        err.ends_with("tensor 'w' has shape [0, 4294967296, 4294967296], too large to index"),
        "{err}"
    );
}

#[test]
fn unreadable_paths_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.safetensors");
    assert_load_error(&missing, "missing file");
    assert_load_error(dir.path(), "a directory");
    let err = io::load_into(&missing, &mlp(1)).unwrap_err().to_string();
    assert!(err.starts_with(&missing.display().to_string()), "{err}");
}

// ----- atomic writes ---------------------------------------------------------

#[test]
fn save_leaves_only_the_checkpoint_behind() {
    let dir = tempfile::tempdir().unwrap();
    saved_mlp(dir.path());
    saved_mlp(dir.path());
    assert_eq!(dir_entries(dir.path()), ["model.safetensors"]);
}

#[test]
fn save_replaces_the_file_instead_of_writing_into_it() {
    // A reader that opened the old checkpoint keeps reading the old, complete
    // bytes: the new file is renamed into place, the old one never truncated.
    let dir = tempfile::tempdir().unwrap();
    let path = saved_mlp(dir.path());
    let old = fs::read(&path).unwrap();
    let reader = fs::File::open(&path).unwrap();
    io::save(&path, &named(&[("w", Tensor::ones([3]))]), &BTreeMap::new()).unwrap();
    let mut seen = Vec::new();
    std::io::Read::read_to_end(&mut &reader, &mut seen).unwrap();
    assert_eq!(seen, old);
    assert_eq!(io::load(&path).unwrap().tensors.len(), 1);
}

#[test]
fn failed_save_onto_a_directory_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("model.safetensors");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("keep"), b"x").unwrap();
    let err = io::save(&target, &mlp(1), &BTreeMap::new()).unwrap_err();
    assert!(
        err.to_string().starts_with(&target.display().to_string()),
        "{err}"
    );
    assert_eq!(dir_entries(dir.path()), ["model.safetensors"]);
    assert_eq!(dir_entries(&target), ["keep"]);
}

#[test]
fn failed_save_into_a_missing_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/model.safetensors");
    let err = io::save(&path, &mlp(1), &BTreeMap::new()).unwrap_err();
    assert!(
        err.to_string().starts_with(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(dir_entries(dir.path()), Vec::<String>::new());
}

#[cfg(unix)]
#[test]
fn failed_save_into_a_read_only_directory_keeps_the_old_checkpoint() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = saved_mlp(dir.path());
    let old = fs::read(&path).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o555)).unwrap();
    // Root (as in many containers) writes through the permission bits.
    let privileged = fs::write(dir.path().join("probe"), b"").is_ok();
    let result = io::save(&path, &mlp(2), &BTreeMap::new());
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    if privileged {
        eprintln!("skipped: the directory stays writable for this user");
        return;
    }
    let err = result.unwrap_err().to_string();
    assert!(err.starts_with(&path.display().to_string()), "{err}");
    assert_eq!(fs::read(&path).unwrap(), old);
    assert_eq!(dir_entries(dir.path()), ["model.safetensors"]);
}

#[cfg(unix)]
#[test]
fn saved_checkpoints_get_ordinary_file_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = saved_mlp(dir.path());
    let made = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    let probe = dir.path().join("probe");
    fs::write(&probe, b"").unwrap();
    let usual = fs::metadata(&probe).unwrap().permissions().mode() & 0o777;
    assert_eq!(made, usual, "{made:o} vs File::create's {usual:o}");
}
