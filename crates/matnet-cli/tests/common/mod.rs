//! Helpers shared by the CLI test files: running the binary, checking a
//! clean failure, writing IDX and gzip bytes, and small checkpoints.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use matnet::Tensor;

pub fn matnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_matnet"))
        .args(args)
        .env_remove("MATNET_DATA")
        .output()
        .expect("the matnet binary runs")
}

/// Asserts a clean failure and returns its one error line.
pub fn fails(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "panicked: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0].to_string()
}

/// An IDX file of unsigned bytes.
pub fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    idx_typed(0x08, dims, data)
}

/// An IDX file with element type `ty` (0x08 bytes, 0x0D f32); `data` is the
/// raw big-endian element bytes.
pub fn idx_typed(ty: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, ty, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

/// `bytes` gzip-compressed.
pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A directory with a tiny, valid MNIST-format dataset; `tweak` may replace files.
pub fn dataset(tag: &str, tweak: impl FnOnce(&Path)) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("matnet-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (prefix, n) in [("train", 40u32), ("t10k", 10u32)] {
        let px: Vec<u8> = (0..n * 784).map(|i| (i % 251) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        std::fs::write(
            dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
            gz(&idx(&[n, 28, 28], &px)),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{prefix}-labels-idx1-ubyte.gz")),
            gz(&idx(&[n], &labels)),
        )
        .unwrap();
    }
    tweak(&dir);
    dir
}

pub const MLP_CONFIG: &str = r#"{"arch":"mlp","rows":28,"cols":28,"classes":10,"hidden":[16],"dropout":0.0,"dataset":"mnist","normalize":"unit"}"#;

pub fn checkpoint(tag: &str, tensors: Vec<(String, Tensor)>) -> PathBuf {
    checkpoint_with(tag, MLP_CONFIG, tensors)
}

pub fn checkpoint_with(tag: &str, config: &str, tensors: Vec<(String, Tensor)>) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "matnet-cli-{tag}-{}.safetensors",
        std::process::id()
    ));
    let meta = BTreeMap::from([(matnet::io::CONFIG_KEY.to_string(), config.to_string())]);
    matnet::io::checkpoint::save(&path, &tensors, &meta).unwrap();
    path
}

pub fn good_tensors() -> Vec<(String, Tensor)> {
    vec![
        ("0.weight".into(), Tensor::zeros([16, 784])),
        ("0.bias".into(), Tensor::zeros([16])),
        ("2.weight".into(), Tensor::zeros([10, 16])),
        ("2.bias".into(), Tensor::zeros([10])),
    ]
}

/// The MNIST directory from `MATNET_DATA` when it holds `file`; otherwise
/// prints why the calling test is skipped and returns `None`.
pub fn mnist_data(file: &str) -> Option<std::ffi::OsString> {
    let data = std::env::var_os("MATNET_DATA").filter(|d| Path::new(d).join(file).exists());
    if data.is_none() {
        println!("skipped: MATNET_DATA not set or MNIST files missing");
    }
    data
}

/// Runs `matnet train ARGS --data DATA --out OUT --quiet` and asserts it succeeded.
pub fn train(data: &std::ffi::OsStr, out: &Path, args: &[&str]) {
    train_threads(data, out, args, None);
}

/// [`train`] with `MATNET_NUM_THREADS=threads` when given; returns stdout.
pub fn train_threads(
    data: &std::ffi::OsStr,
    out: &Path,
    args: &[&str],
    threads: Option<&str>,
) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_matnet"));
    c.arg("train")
        .args(args)
        .args(["--quiet", "--data"])
        .arg(data)
        .arg("--out")
        .arg(out);
    if let Some(t) = threads {
        c.env("MATNET_NUM_THREADS", t);
    }
    let status = c.output().unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    String::from_utf8_lossy(&status.stdout).into_owned()
}

/// A finished run directory's checkpoint tensors (as bits) and its
/// `metrics.csv` without the timing columns.
pub type Outcome = (Vec<(String, Vec<u32>)>, Vec<String>);

pub fn outcome(dir: &Path) -> Outcome {
    let ckpt = matnet::io::checkpoint::load(&dir.join("model.safetensors")).unwrap();
    let tensors = ckpt
        .tensors
        .into_iter()
        .map(|(n, t)| (n, t.to_vec().iter().map(|x| x.to_bits()).collect()))
        .collect();
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap_or_default();
    let timing = ["seconds", "images_per_sec"];
    let header: Vec<&str> = csv.lines().next().unwrap_or("").split(',').collect();
    let rows = csv
        .lines()
        .map(|l| {
            l.split(',')
                .zip(&header)
                .filter(|(_, h)| !timing.contains(h))
                .map(|(v, _)| v)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    (tensors, rows)
}
