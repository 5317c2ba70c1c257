//! The real files: MNIST from `MATNET_DATA`, Fashion-MNIST from Debian's
//! `dataset-fashion-mnist` package. Each test prints why it is skipped when
//! the files are not on this machine.

use std::path::{Path, PathBuf};

use matnet::data::{
    Dataset, DatasetKind, MNIST_FILES, Normalize, Split, find_or_explain, md5_file, to_tensors,
    verify_mnist,
};

use crate::{assert_mentions, err_text, gz, real_mnist_dir, tmp};

const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Mean and standard deviation of all pixels, on the `[0, 1]` scale.
fn pixel_stats(ds: &Dataset) -> (f64, f64) {
    let n = ds.images().len() as f64;
    let (s, s2) = ds.images().iter().fold((0.0, 0.0), |(s, s2), &x| {
        let v = x as f64 / 255.0;
        (s + v, s2 + v * v)
    });
    let mean = s / n;
    (mean, (s2 / n - mean * mean).sqrt())
}

#[test]
fn mnist_train_and_test() {
    let Some(dir) = real_mnist_dir("mnist_train_and_test") else {
        return;
    };
    assert_eq!(
        find_or_explain(Some(&dir), DatasetKind::Mnist).unwrap(),
        dir
    );
    let train = Dataset::load(&dir, DatasetKind::Mnist, Split::Train).unwrap();
    let test = Dataset::load(&dir, DatasetKind::Mnist, Split::Test).unwrap();
    assert_eq!((train.len(), train.rows(), train.cols()), (60_000, 28, 28));
    assert_eq!((test.len(), test.rows(), test.cols()), (10_000, 28, 28));
    assert_eq!(train.label(0), 5);
    assert_eq!(&test.labels()[..4], [7, 2, 1, 0]);
    // The well-known class histograms.
    assert_eq!(
        train.class_counts(),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(
        test.class_counts(),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    // The constants of Normalize::Standard come from these images.
    let (mean, std) = pixel_stats(&train);
    assert!(
        (mean - 0.1307).abs() < 1e-4 && (std - 0.3081).abs() < 1e-4,
        "{mean} {std}"
    );
    let (x, _) = to_tensors(&train.take(10_000), Normalize::Standard);
    assert!(x.mean_all().item().abs() < 0.02);

    // The seed report's split: the first 42,000 into 33,600 + 8,400.
    let (fit, valid) = train.take(42_000).split_at(33_600);
    assert_eq!((fit.len(), valid.len()), (33_600, 8_400));
    assert_eq!(valid.image(0), train.image(33_600));
    assert_eq!(valid.label(8_399), train.label(41_999));
}

#[test]
fn mnist_checksums() {
    let Some(dir) = real_mnist_dir("mnist_checksums") else {
        return;
    };
    verify_mnist(&dir).unwrap();
    for (name, md5_gz, _) in MNIST_FILES {
        assert_eq!(md5_file(&dir.join(name)).unwrap(), md5_gz, "{name}");
    }
}

#[test]
fn mnist_raw_files_verify_and_load() {
    let Some(dir) = real_mnist_dir("mnist_raw_files_verify_and_load") else {
        return;
    };
    // Decompressed copies (as `gunzip` leaves them) check against the raw MD5s.
    let raw = tmp();
    for (name, _, md5_raw) in MNIST_FILES {
        let mut bytes = Vec::new();
        let file = std::fs::File::open(dir.join(name)).unwrap();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(file), &mut bytes).unwrap();
        let path = raw.path().join(name.trim_end_matches(".gz"));
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(md5_file(&path).unwrap(), md5_raw, "{name}");
    }
    verify_mnist(raw.path()).unwrap();
    let test = Dataset::load(raw.path(), DatasetKind::Mnist, Split::Test).unwrap();
    let test_gz = Dataset::load(&dir, DatasetKind::Mnist, Split::Test).unwrap();
    assert_eq!(test.images(), test_gz.images());
    assert_eq!(test.labels(), test_gz.labels());

    // A label file cut by one byte, gzip-compressed again: named and explained.
    let labels = std::fs::read(raw.path().join("train-labels-idx1-ubyte")).unwrap();
    let cut = raw.path().join("train-labels-idx1-ubyte.gz");
    std::fs::write(&cut, gz(&labels[..labels.len() - 1])).unwrap();
    let e = err_text(
        Dataset::load(raw.path(), DatasetKind::Mnist, Split::Train),
        "cut labels",
    );
    assert_eq!(
        e,
        format!(
            "{}: truncated: header promises 60000 items, file holds 59999",
            cut.display()
        )
    );
}

/// The Fashion-MNIST directory, or `None` after printing why the test is skipped.
fn fashion_dir(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("MATNET_FASHION_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(FASHION_DIR));
    match find_or_explain(Some(&dir), DatasetKind::FashionMnist) {
        Ok(dir) => Some(dir),
        Err(e) => {
            println!("{test}: skipped: Fashion-MNIST files missing ({e})");
            None
        }
    }
}

#[test]
fn fashion_mnist_train_and_test() {
    let Some(dir) = fashion_dir("fashion_mnist_train_and_test") else {
        return;
    };
    let kind = DatasetKind::FashionMnist;
    let train = Dataset::load(&dir, kind, Split::Train).unwrap();
    let test = Dataset::load(&dir, kind, Split::Test).unwrap();
    assert_eq!((train.len(), train.rows(), train.cols()), (60_000, 28, 28));
    assert_eq!((test.len(), test.rows(), test.cols()), (10_000, 28, 28));
    assert_eq!(train.class_counts(), [6000; 10]);
    assert_eq!(test.class_counts(), [1000; 10]);
    assert_eq!(train.class_names()[train.label(0) as usize], "Ankle boot");
    // Clothes are brighter than digits: a different dataset, not MNIST renamed.
    let (mean, _) = pixel_stats(&train);
    assert!((mean - 0.2860).abs() < 1e-3, "{mean}");
    // And the MNIST checksums reject it.
    if Path::new(&dir).join(MNIST_FILES[0].0).is_file() {
        assert_mentions(&err_text(verify_mnist(&dir), "fashion"), &["MD5 mismatch"]);
    }
}
