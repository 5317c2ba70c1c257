//! The `matnet` binary on bad input: one clear error line, a non-zero exit,
//! never a panic; and end-to-end train and predict runs. `matnet inspect`
//! is in `inspect.rs`.

mod common;

use std::path::Path;
use std::process::Output;

use common::{
    Outcome, checkpoint, dataset, fails, good_tensors, gz, idx, matnet, mnist_data, outcome,
    train_threads,
};

use matnet::Tensor;

fn train_on(dir: &Path) -> Output {
    matnet(&[
        "train",
        "--data",
        dir.to_str().unwrap(),
        "--epochs",
        "1",
        "--quiet",
        "--out",
        dir.join("run").to_str().unwrap(),
    ])
}

#[test]
fn no_arguments_tells_a_new_user_what_to_run() {
    let out = matnet(&[]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("matnet train") && text.contains("--data DIR"),
        "{text}"
    );
    let help = matnet(&["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("First steps"));
}

#[test]
fn truncated_gzip() {
    let dir = dataset("trunc", |d| {
        let p = d.join("train-labels-idx1-ubyte.gz");
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    });
    let line = fails(&train_on(&dir));
    assert!(line.contains("train-labels-idx1-ubyte.gz"), "{line}");
}

#[test]
fn wrong_magic() {
    let dir = dataset("magic", |d| {
        let mut bytes = idx(&[40, 28, 28], &vec![0u8; 40 * 784]);
        bytes[2] = 0x0d; // float data: not what MNIST holds
        bytes[0] = 7;
        std::fs::write(d.join("train-images-idx3-ubyte.gz"), gz(&bytes)).unwrap();
    });
    let line = fails(&train_on(&dir));
    assert!(
        line.contains("train-images-idx3-ubyte.gz") && line.contains("magic"),
        "{line}"
    );
}

#[test]
fn label_count_differs_from_image_count() {
    let dir = dataset("count", |d| {
        let labels: Vec<u8> = (0..39).map(|i| (i % 10) as u8).collect();
        std::fs::write(
            d.join("train-labels-idx1-ubyte.gz"),
            gz(&idx(&[39], &labels)),
        )
        .unwrap();
    });
    let line = fails(&train_on(&dir));
    assert!(line.contains("40") && line.contains("39"), "{line}");
}

#[test]
fn header_claiming_four_billion_images() {
    let dir = dataset("huge", |d| {
        std::fs::write(
            d.join("train-images-idx3-ubyte.gz"),
            gz(&idx(&[u32::MAX, 28, 28], &[0u8; 784])),
        )
        .unwrap();
    });
    let line = fails(&train_on(&dir));
    assert!(line.contains("train-images-idx3-ubyte.gz"), "{line}");
}

#[test]
fn empty_file() {
    let dir = dataset("empty", |d| {
        std::fs::write(d.join("t10k-labels-idx1-ubyte.gz"), b"").unwrap()
    });
    let line = fails(&train_on(&dir));
    assert!(line.contains("t10k-labels-idx1-ubyte.gz"), "{line}");
}

#[test]
fn too_few_images_for_the_recipe() {
    // Valid files, but fewer training images than the validation split needs.
    let line = fails(&train_on(&dataset("small", |_| {})));
    assert!(line.contains("only 40 images"), "{line}");
}

#[test]
fn bad_arguments() {
    let dir = dataset("args", |_| {});
    let d = dir.to_str().unwrap();
    for (flag, value) in [
        ("--lr", "-1"),
        ("--lr", "NaN"),
        ("--epochs", "0"),
        ("--batch-size", "0"),
        ("--dropout", "1.5"),
    ] {
        let line = fails(&matnet(&["train", "--data", d, &format!("{flag}={value}")]));
        assert!(line.contains(flag), "{flag}: {line}");
    }
    for (args, flag) in [
        (&["--shift", "3"][..], "--shift"),
        (&["--rotate", "5"][..], "--rotate"),
        (&["--augment", "--rotate", "200"][..], "--rotate"),
        (&["--augment", "--rotate", "NaN"][..], "--rotate"),
        (&["--augment", "--rotate=-1"][..], "--rotate"),
    ] {
        let mut all = vec!["train", "--data", d];
        all.extend(args);
        let line = fails(&matnet(&all));
        assert!(line.contains(flag), "{args:?}: {line}");
    }
    let missing = fails(&matnet(&["train", "--data", "/nonexistent/matnet-data"]));
    assert!(missing.contains("/nonexistent/matnet-data"), "{missing}");
}

#[test]
fn checkpoint_with_missing_tensor() {
    let mut t = good_tensors();
    t.pop();
    let path = checkpoint("missing", t);
    let line = fails(&matnet(&["eval", "--checkpoint", path.to_str().unwrap()]));
    assert!(line.contains("missing tensor '2.bias'"), "{line}");
}

#[test]
fn checkpoint_with_misshaped_tensor() {
    let mut t = good_tensors();
    t[0].1 = Tensor::zeros([16, 783]);
    let path = checkpoint("shape", t);
    let png = std::env::temp_dir().join("matnet-cli-unused.png");
    let line = fails(&matnet(&[
        "predict",
        "--checkpoint",
        path.to_str().unwrap(),
        png.to_str().unwrap(),
    ]));
    assert!(
        line.contains("'0.weight' has shape [16, 783], the model expects [16, 784]"),
        "{line}"
    );
}

#[test]
fn png_that_is_not_a_png() {
    let path = checkpoint("png", good_tensors());
    let fake = std::env::temp_dir().join(format!("matnet-cli-fake-{}.png", std::process::id()));
    std::fs::write(&fake, b"this is not an image").unwrap();
    let line = fails(&matnet(&[
        "predict",
        "--checkpoint",
        path.to_str().unwrap(),
        fake.to_str().unwrap(),
    ]));
    assert!(line.contains("not a PNG file"), "{line}");
}

#[test]
fn eval_needs_only_the_two_test_files() {
    // A directory with t10k-* alone: eval reads the test set and nothing
    // else (it used to ask for, and try to download, the training set).
    let dir = dataset("evalonly", |d| {
        for f in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"] {
            std::fs::remove_file(d.join(f)).unwrap();
        }
    });
    let ckpt = checkpoint("evalonly", good_tensors());
    let out = matnet(&[
        "eval",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--data",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("10 test images"));
}

#[test]
fn a_missing_checkpoint_is_named_once() {
    let missing = std::env::temp_dir().join("matnet-cli-no-such-checkpoint.safetensors");
    for cmd in [
        &["eval", "--checkpoint"][..],
        &["predict", "--checkpoint"][..],
    ] {
        let mut args = cmd.to_vec();
        args.push(missing.to_str().unwrap());
        if cmd[0] == "predict" {
            args.push("digit.png");
        }
        let line = fails(&matnet(&args));
        assert!(line.contains(missing.to_str().unwrap()), "{line}");
        assert_eq!(line.matches("os error 2").count(), 1, "{line}");
    }
}

#[test]
fn not_a_checkpoint() {
    let fake = std::env::temp_dir().join(format!(
        "matnet-cli-fake-{}.safetensors",
        std::process::id()
    ));
    std::fs::write(&fake, b"random bytes, not safetensors").unwrap();
    let line = fails(&matnet(&["eval", "--checkpoint", fake.to_str().unwrap()]));
    assert!(line.contains("safetensors"), "{line}");
}

/// Trains with `args` on `threads` threads; returns the checkpoint's tensors
/// (as bits) with `metrics.csv` less its timing columns, and stdout.
fn trained(data: &std::ffi::OsStr, tag: &str, threads: &str, args: &[&str]) -> (Outcome, String) {
    let out = std::env::temp_dir().join(format!("matnet-cli-det-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let stdout = train_threads(data, &out, args, Some(threads));
    let got = outcome(&out);
    let _ = std::fs::remove_dir_all(&out);
    (got, stdout)
}

/// Prints how far apart two runs' weights are (values differing, max
/// |diff|) and asserts they are the same to the bit, metrics included.
fn assert_identical(what: &str, a: &Outcome, b: &Outcome) {
    assert_eq!(a.0.len(), b.0.len(), "{what}: different tensors");
    let (mut values, mut differ, mut max) = (0usize, 0usize, 0.0f32);
    for ((name, x), (other, y)) in a.0.iter().zip(&b.0) {
        assert_eq!((name, x.len()), (other, y.len()), "{what}");
        values += x.len();
        for (&p, &q) in x.iter().zip(y) {
            if p != q {
                differ += 1;
                max = max.max((f32::from_bits(p) - f32::from_bits(q)).abs());
            }
        }
    }
    println!(
        "{what}: {} tensors, {values} values, {differ} differ, max |diff| {max:e}; \
         metrics.csv rows {} ({})",
        a.0.len(),
        a.1.len(),
        if a.1 == b.1 { "identical" } else { "DIFFER" }
    );
    assert_eq!(differ, 0, "{what}: weights differ");
    assert_eq!(a.1, b.1, "{what}: metrics.csv differs");
}

#[test]
fn same_seed_same_numbers_run_to_run() {
    let Some(data) = mnist_data("train-images-idx3-ubyte.gz") else {
        return;
    };
    let args = ["--epochs", "1", "--limit", "2000", "--seed", "11"];
    let a = trained(&data, "a", "2", &args);
    let b = trained(&data, "b", "2", &args);
    assert_identical("mlp, two runs on 2 threads", &a.0, &b.0);
}

/// Every model `matnet train` offers, one short run on 1 and on 2 threads:
/// the same weights and metrics, bit for bit. (Reductions run in a fixed
/// order whatever the split: conv weight gradients sum fixed runs of images,
/// recurrent layers give each thread whole rows of the batch.) seed-mlp has
/// its own test below.
#[test]
fn every_model_same_numbers_on_one_and_two_threads() {
    let Some(data) = mnist_data("train-images-idx3-ubyte.gz") else {
        return;
    };
    let short: [(&str, &[&str]); 11] = [
        ("mlp", &["--model", "mlp", "--limit", "2000"]),
        ("lenet", &["--model", "lenet", "--limit", "640"]),
        ("cnn", &["--model", "cnn", "--limit", "640"]),
        ("rnn", &["--model", "rnn", "--limit", "640"]),
        ("lstm", &["--model", "lstm", "--limit", "640"]),
        ("gru", &["--model", "gru", "--limit", "640"]),
        ("vit", &["--model", "vit", "--limit", "640"]),
        ("gan", &["--model", "gan", "--limit", "640"]),
        ("dcgan", &["--model", "dcgan", "--limit", "640"]),
        ("joint", &["--model", "joint", "--limit", "256"]),
        (
            "reverse",
            &["--task", "reverse", "--steps", "60", "--held-out", "20"],
        ),
    ];
    for (model, args) in short {
        let args: Vec<&str> = args
            .iter()
            .copied()
            .chain(["--epochs", "1", "--seed", "3"])
            .collect();
        let two = trained(&data, &format!("{model}-2"), "2", &args);
        let one = trained(&data, &format!("{model}-1"), "1", &args);
        assert_identical(&format!("{model}, 1 and 2 threads"), &two.0, &one.0);
    }
}

#[test]
fn seed_mlp_learns_the_same_on_any_thread_count() {
    let Some(data) = mnist_data("train-images-idx3-ubyte.gz") else {
        return;
    };
    let args = ["--model", "seed-mlp", "--epochs", "30", "--seed", "0"];
    let two = trained(&data, "seed2", "2", &args);
    let one = trained(&data, "seed1", "1", &args);
    assert_identical("seed-mlp, 1 and 2 threads", &two.0, &one.0);
    let test = two
        .1
        .split("test ")
        .nth(1)
        .and_then(|t| t.split('%').next())
        .and_then(|t| t.parse::<f32>().ok())
        .unwrap_or_else(|| panic!("no test accuracy in: {}", two.1));
    assert!(test > 55.0, "test accuracy {test}% after 30 iterations");
}

#[test]
fn bench_json_names_the_cpu_and_kernel() {
    let out = matnet(&[
        "bench",
        "matmul",
        "--json",
        "--threads",
        "1",
        "--no-naive",
        "--only",
        "square_64",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bench prints JSON");
    let cpu = &v["cpu"];
    assert!(cpu["model"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(cpu["features"].is_array(), "{v}");
    let kernel = cpu["kernel"].as_str().expect("a kernel name");
    assert!(["portable", "avx2", "avx512"].contains(&kernel), "{v}");
    let rows = v["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], "square_64");
    // The table form prints the same facts first.
    let text = matnet(&[
        "bench",
        "matmul",
        "--threads",
        "1",
        "--no-naive",
        "--only",
        "square_64",
    ]);
    let first = String::from_utf8_lossy(&text.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    assert!(
        first.starts_with("cpu: ") && first.contains(kernel),
        "{first}"
    );
}

/// Writes an MNIST test digit as a user might draw it: dark ink on a light,
/// slightly coloured background, 5× larger, off-centre, as RGB PNG.
fn user_style_png(digit: &[u8], path: &Path) {
    let (s, w, h) = (5u32, 28 * 5 + 60, 28 * 5 + 20);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let (sx, sy) = (x as i64 - 50, y as i64 - 4);
        let v = if (0..140).contains(&sx) && (0..140).contains(&sy) {
            digit[(sy as u32 / s * 28 + sx as u32 / s) as usize]
        } else {
            0
        };
        let g = 250 - (v as u32 * 230 / 255) as u8;
        image::Rgb([g, g, g.saturating_sub(12)])
    });
    img.save(path).unwrap();
}

#[test]
fn predict_reads_a_user_drawn_digit() {
    let Some(data) = mnist_data("t10k-images-idx3-ubyte.gz") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("matnet-cli-predict-{}", std::process::id()));
    common::train(&data, &dir, &["--epochs", "2", "--limit", "10000"]);
    let test = matnet::data::Dataset::load(
        Path::new(&data),
        matnet::data::DatasetKind::Mnist,
        matnet::data::Split::Test,
    )
    .unwrap();
    let mut right = 0;
    for i in 0..10 {
        let png = dir.join(format!("digit{i}.png"));
        user_style_png(test.image(i), &png);
        let out = matnet(&[
            "predict",
            "--checkpoint",
            dir.join("model.safetensors").to_str().unwrap(),
            png.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let predicted = text
            .split("predicted ")
            .nth(1)
            .and_then(|t| t.chars().next())
            .unwrap();
        if predicted.to_digit(10) == Some(test.label(i) as u32) {
            right += 1;
        }
    }
    // The network is ~97% accurate on MNIST itself; preprocessing must keep
    // that on re-drawn digits.
    assert!(
        right >= 9,
        "only {right}/10 re-drawn test digits recognised"
    );
}

/// The sequence task: a causal transformer learns to reverse 8 digits and
/// decodes held-out sequences greedily; 400 steps already reverse nearly
/// all of them (the recipe's 1,000 steps are in the closing notes).
#[test]
fn train_reverse_task_learns_to_reverse() {
    let dir = std::env::temp_dir().join(format!("matnet-cli-reverse-{}", std::process::id()));
    let out = matnet(&[
        "train",
        "--task",
        "reverse",
        "--steps",
        "400",
        "--held-out",
        "200",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "held-out: 198/200 sequences reversed exactly (99.00%), ..."
    let line = text
        .lines()
        .find(|l| l.starts_with("held-out:"))
        .expect("an exact-match line");
    let exact: usize = line["held-out: ".len()..]
        .split('/')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!(exact >= 190, "{line}");
    // The checkpoint rebuilds through the library's loader and still reverses.
    let matnet::models::Model::Reverser(model) =
        matnet::models::load(&dir.join("model.safetensors")).expect("the checkpoint loads")
    else {
        panic!("not loaded as the reverse-task model");
    };
    assert_eq!(model.config.seq_len, 8);
    let mut rng = matnet::Rng::new(99);
    let seqs: Vec<Vec<usize>> = (0..50)
        .map(|_| (0..8).map(|_| rng.below(10)).collect())
        .collect();
    let right = model
        .decode(&seqs)
        .iter()
        .zip(&seqs)
        .filter(|(d, s)| d.iter().eq(s.iter().rev()))
        .count();
    assert!(right >= 45, "the reloaded model reversed {right}/50");
}
