//! Checkpoints: round trips, PyTorch interop both ways, exact error messages
//! for mismatched models, malformed files, and atomic writes.

mod common;
use common::{assert_close, json_tensor};
use matnet::io::{self, CONFIG_KEY, Checkpoint};
use matnet::nn::{BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, Module, Relu, Sequential};
use matnet::ops::conv::Conv2dParams;
use matnet::{Rng, Tensor};
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn named(pairs: &[(&str, Tensor)]) -> Vec<(String, Tensor)> {
    pairs
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect()
}

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec().iter().map(|x| x.to_bits()).collect()
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A two-layer MLP's parameters, PyTorch names, random values.
fn mlp(seed: u64) -> Vec<(String, Tensor)> {
    let mut rng = Rng::new(seed);
    named(&[
        ("fc1.weight", Tensor::randn([5, 4], 0.0, 1.0, &mut rng)),
        ("fc1.bias", Tensor::randn([5], 0.0, 1.0, &mut rng)),
        ("fc2.weight", Tensor::randn([2, 5], 0.0, 1.0, &mut rng)),
        ("fc2.bias", Tensor::randn([2], 0.0, 1.0, &mut rng)),
    ])
}

fn saved_mlp(dir: &Path) -> PathBuf {
    let path = dir.join("model.safetensors");
    let config = r#"{"layers":[4,5,2]}"#;
    io::save(&path, &mlp(1), &meta(&[(CONFIG_KEY, config)])).unwrap();
    path
}

// ----- round trip ------------------------------------------------------------

#[test]
fn round_trip_keeps_values_shapes_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let mut rng = Rng::new(7);
    let special = Tensor::from_vec(
        vec![
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            f32::MAX,
        ],
        [2, 3],
    );
    let m = Tensor::randn([3, 4], 0.0, 1.0, &mut rng);
    // Given unsorted, including a non-contiguous view (saved row-major as
    // it reads), a scalar, an empty tensor and a 3-D one.
    let tensors = named(&[
        ("z.transposed", m.t()),
        ("b.special", special.clone()),
        ("a.scalar", Tensor::scalar(2.5)),
        ("c.empty", Tensor::zeros([0, 3])),
        ("d.cube", Tensor::randn([2, 3, 4], 0.0, 1.0, &mut rng)),
    ]);
    let metadata = meta(&[
        (CONFIG_KEY, r#"{"layers":[784,256,10],"act":"relu"}"#),
        ("epoch", "12"),
        ("note", "ünïcode ✓"),
    ]);
    io::save(&path, &tensors, &metadata).unwrap();

    let Checkpoint {
        tensors: loaded,
        metadata: loaded_meta,
    } = io::load(&path).unwrap();
    assert_eq!(loaded_meta, metadata);
    let names: Vec<&str> = loaded.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["a.scalar", "b.special", "c.empty", "d.cube", "z.transposed"]
    );
    for (name, want) in &tensors {
        let got = &loaded.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(got.dims(), want.dims(), "{name}");
        assert_eq!(bits(got), bits(want), "{name}");
        assert!(got.is_contiguous() && !got.tracks_grad(), "{name}");
    }
    assert_eq!(loaded[4].1.dims(), [4, 3]);
}

#[test]
fn round_trip_without_metadata_and_nan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let t = Tensor::from_vec(vec![f32::NAN, 1.0], [2]);
    io::save(&path, &named(&[("w", t.clone())]), &BTreeMap::new()).unwrap();
    let ckpt = io::load(&path).unwrap();
    assert!(ckpt.metadata.is_empty());
    assert_eq!(bits(ckpt.get("w").unwrap()), bits(&t));
    assert!(ckpt.get("v").is_none());
}

#[test]
fn save_overwrites_an_existing_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved_mlp(dir.path());
    let newer = mlp(2);
    io::save(&path, &newer, &BTreeMap::new()).unwrap();
    let ckpt = io::load(&path).unwrap();
    assert_eq!(bits(ckpt.get("fc1.weight").unwrap()), bits(&newer[0].1));
    assert!(ckpt.metadata.is_empty());
}

#[test]
fn load_into_copies_every_tensor_and_returns_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved_mlp(dir.path());
    let model: Vec<(String, Tensor)> = mlp(99)
        .into_iter()
        .map(|(n, t)| (n, t.requires_grad()))
        .collect();
    let metadata = io::load_into(&path, &model).unwrap();
    assert_eq!(metadata[CONFIG_KEY], r#"{"layers":[4,5,2]}"#);
    for ((name, got), (_, want)) in model.iter().zip(mlp(1)) {
        assert_eq!(bits(got), bits(&want), "{name}");
        assert!(got.is_variable(), "{name} is still a parameter");
    }
}

/// Conv, batch norm, ReLU, pool, flatten, linear: a net with buffers.
fn bn_net(seed: u64) -> Sequential {
    let mut rng = Rng::new(seed);
    let pad1 = Conv2dParams {
        padding: (1, 1),
        ..Default::default()
    };
    Sequential::new()
        .append(Conv2d::new(1, 3, (3, 3), pad1, &mut rng))
        .append(BatchNorm2d::new(3))
        .append(Relu)
        .append(MaxPool2d {
            kernel: (2, 2),
            stride: (2, 2),
        })
        .append(Flatten)
        .append(Linear::new(3 * 3 * 3, 4, &mut rng))
}

#[test]
fn batch_norm_running_statistics_round_trip() {
    let mut net = bn_net(1);
    // A few training-mode passes move the running statistics off their
    // initial 0 and 1.
    let mut rng = Rng::new(2);
    for _ in 0..3 {
        net.forward(&Tensor::randn([5, 1, 6, 6], 0.5, 2.0, &mut rng));
    }
    net.set_training(false);
    let names: Vec<String> = net.state_dict().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "0.weight",
            "0.bias",
            "1.weight",
            "1.bias",
            "5.weight",
            "5.bias",
            "1.running_mean",
            "1.running_var",
        ]
    );
    let mean = net.named_buffers()[0].1.to_vec();
    assert!(mean.iter().all(|&m| m != 0.0), "{mean:?}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bn.safetensors");
    io::save(&path, &net.state_dict(), &BTreeMap::new()).unwrap();
    let saved = io::load(&path).unwrap();
    for (name, t) in net.named_buffers() {
        assert_eq!(bits(saved.get(&name).unwrap()), bits(&t), "{name}");
    }

    let mut fresh = bn_net(9);
    fresh.set_training(false);
    let x = Tensor::randn([4, 1, 6, 6], 0.0, 1.0, &mut rng);
    // Parameters alone are not the model: the statistics change the output.
    io::save(&path, &net.named_parameters(), &BTreeMap::new()).unwrap();
    io::load_into(&path, &fresh.named_parameters()).unwrap();
    assert_ne!(bits(&fresh.forward(&x)), bits(&net.forward(&x)));
    // The whole state_dict gives the same evaluation outputs, bit for bit.
    io::save(&path, &net.state_dict(), &BTreeMap::new()).unwrap();
    io::load_into(&path, &fresh.state_dict()).unwrap();
    for ((name, a), (_, b)) in fresh.state_dict().iter().zip(net.state_dict()) {
        assert_eq!(bits(a), bits(&b), "{name}");
    }
    assert_eq!(bits(&fresh.forward(&x)), bits(&net.forward(&x)));
    // A parameters-only file is missing the statistics, by name.
    io::save(&path, &net.named_parameters(), &BTreeMap::new()).unwrap();
    let err = io::load_into(&path, &fresh.state_dict()).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("missing tensor '1.running_mean'; missing tensor '1.running_var'"),
        "{err}"
    );
}

// ----- PyTorch interop -------------------------------------------------------

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// `y = relu(x·W1ᵀ + b1)·W2ᵀ + b2` with PyTorch's `[D_out, D_in]` weights.
fn sequential_forward(x: &Tensor, p: impl Fn(&str) -> Tensor) -> Tensor {
    let h = x.matmul(&p("0.weight").t()).add(&p("0.bias")).relu();
    h.matmul(&p("2.weight").t()).add(&p("2.bias"))
}

#[test]
fn torch_checkpoint_loads_and_reproduces_torch_output() {
    let path = golden_dir().join("torch_linear.safetensors");
    let golden: Value =
        serde_json::from_str(&fs::read_to_string(golden_dir().join("torch_linear.json")).unwrap())
            .unwrap();
    let ckpt = io::load(&path).unwrap();

    let want_meta: BTreeMap<String, String> =
        serde_json::from_value(golden["metadata"].clone()).unwrap();
    assert_eq!(ckpt.metadata, want_meta);
    let config: Value = serde_json::from_str(&ckpt.metadata[CONFIG_KEY]).unwrap();
    assert_eq!(config["layers"], json!([4, 3, 2]));

    let want_tensors = golden["tensors"].as_object().unwrap();
    let names: Vec<&String> = ckpt.tensors.iter().map(|(n, _)| n).collect();
    assert_eq!(names, want_tensors.keys().collect::<Vec<_>>());
    for (name, t) in &ckpt.tensors {
        let (shape, data) = json_tensor(&want_tensors[name]);
        assert_eq!(t.dims(), shape, "{name}");
        // The JSON holds the float32 values (as float64 decimals, which
        // serde_json may read back 1 ulp off in f64): equal once rounded.
        let want: Vec<f32> = data.iter().map(|&v| v as f32).collect();
        assert_eq!(t.to_vec(), want, "{name}");
    }

    let (x_shape, x) = json_tensor(&golden["input"]);
    let x = Tensor::from_vec(x.iter().map(|&v| v as f32).collect(), x_shape);
    let (y_shape, y_want) = json_tensor(&golden["output"]);
    let y = sequential_forward(&x, |n| ckpt.get(n).unwrap().clone());
    assert_eq!(y.dims(), y_shape);
    assert_close("torch output", &y.to_vec(), &y_want, 0.0, 1e-5);

    // And into a model: same names and shapes as torch's state_dict.
    let model = named(&[
        ("0.weight", Tensor::zeros([3, 4])),
        ("0.bias", Tensor::zeros([3])),
        ("2.weight", Tensor::zeros([2, 3])),
        ("2.bias", Tensor::zeros([2])),
    ]);
    io::load_into(&path, &model).unwrap();
    let p = |n: &str| model.iter().find(|(m, _)| m == n).unwrap().1.clone();
    assert_close(
        "torch output via load_into",
        &sequential_forward(&x, p).to_vec(),
        &y_want,
        0.0,
        1e-5,
    );
}

/// Writes `target/tmp/matnet_sequential.safetensors` for PyTorch to read:
/// `python3 crates/matnet/tests/golden/gen/load_in_torch.py <that file>`
/// loads it with `model.load_state_dict(load_file(...))` and checks the
/// output recorded in its metadata (see `golden/gen/README.md`).
#[test]
fn matnet_checkpoint_for_torch() {
    let mut rng = Rng::new(2024);
    let params = named(&[
        ("0.weight", Tensor::randn([3, 4], 0.0, 0.5, &mut rng)),
        ("0.bias", Tensor::randn([3], 0.0, 0.5, &mut rng)),
        ("2.weight", Tensor::randn([2, 3], 0.0, 0.5, &mut rng)),
        ("2.bias", Tensor::randn([2], 0.0, 0.5, &mut rng)),
    ]);
    let x = Tensor::randn([6, 4], 0.0, 1.0, &mut rng);
    let p = |n: &str| params.iter().find(|(m, _)| m == n).unwrap().1.clone();
    let y = sequential_forward(&x, p);
    let as_json = |t: &Tensor| json!({"shape": t.dims(), "data": t.to_vec()}).to_string();
    let metadata = meta(&[
        (CONFIG_KEY, r#"{"layers":[4,3,2],"activation":"relu"}"#),
        ("test.input", &as_json(&x)),
        ("test.output", &as_json(&y)),
    ]);
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("matnet_sequential.safetensors");
    io::save(&path, &params, &metadata).unwrap();
    let back = io::load(&path).unwrap();
    assert_eq!(back.metadata, metadata);
    assert_eq!(bits(back.get("2.weight").unwrap()), bits(&params[2].1));
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

// ----- dtypes ----------------------------------------------------------------

/// A safetensors file written by the reference crate, for dtypes matnet
/// does not write itself.
fn write_raw(path: &Path, entries: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(&str, TensorView)> = entries
        .iter()
        .map(|(n, dt, shape, data)| (*n, TensorView::new(*dt, shape.clone(), data).unwrap()))
        .collect();
    fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn f64_f16_and_bf16_are_converted_to_f32() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.safetensors");
    let f64s: Vec<u8> = [1.5f64, -1e-3, 1e300]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    // 1, -2, 65504 (largest f16), 2⁻²⁴ (smallest subnormal), 2⁻¹⁴ (smallest
    // normal), -0, +inf, NaN.
    let f16s: Vec<u8> = [
        0x3c00u16, 0xc000, 0x7bff, 0x0001, 0x0400, 0x8000, 0x7c00, 0x7e00,
    ]
    .iter()
    .flat_map(|x| x.to_le_bytes())
    .collect();
    // 1, -2.5, 3.140625 (π in bf16).
    let bf16s: Vec<u8> = [0x3f80u16, 0xc020, 0x4049]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    write_raw(
        &path,
        &[
            ("d", Dtype::F64, vec![3], f64s),
            ("h", Dtype::F16, vec![2, 4], f16s),
            ("b", Dtype::BF16, vec![3], bf16s),
        ],
    );
    let ckpt = io::load(&path).unwrap();
    assert_eq!(ckpt.get("d").unwrap().to_vec(), [1.5, -1e-3, f32::INFINITY]);
    let h = ckpt.get("h").unwrap();
    assert_eq!(h.dims(), [2, 4]);
    let h = h.to_vec();
    assert_eq!(
        h[..7],
        [
            1.0,
            -2.0,
            65504.0,
            2f32.powi(-24),
            2f32.powi(-14),
            -0.0,
            f32::INFINITY
        ]
    );
    assert!(h[5].is_sign_negative() && h[7].is_nan());
    assert_eq!(ckpt.get("b").unwrap().to_vec(), [1.0, -2.5, 3.140625]);
}

#[test]
fn integer_tensors_are_an_error_naming_tensor_and_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    write_raw(
        &path,
        &[
            ("w", Dtype::F32, vec![1], 1f32.to_le_bytes().to_vec()),
            ("step", Dtype::I64, vec![], 7i64.to_le_bytes().to_vec()),
        ],
    );
    let err = io::load(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: tensor 'step' has dtype I64; matnet reads F32 (and converts F64, F16 and BF16)",
            path.display()
        )
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
