//! Checkpoints: round trips, PyTorch interop both ways, and the dtypes
//! matnet converts or refuses. Load errors, malformed files and atomic writes
//! are in `checkpoint_errors.rs`.

mod common;
use common::{assert_close, bits, json_tensor, meta, mlp, named, saved_mlp};
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
