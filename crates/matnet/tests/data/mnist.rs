//! Datasets from synthetic IDX files: loading, slicing, consistency errors,
//! and the data directory lookup.

use std::path::Path;

use matnet::data::{Dataset, DatasetKind, Split, find_or_explain, resolve_data_dir};

use crate::{
    assert_mentions, err_text, gz, idx_bytes, synthetic, tmp, write, write_synthetic_dataset,
};

/// How a missing-MNIST error says to fetch the files: by the CLI's download
/// command, or, with the library's `download` feature off, that it is off.
#[cfg(feature = "download")]
const FETCH_ADVICE: &str = "Run `matnet download mnist` to fetch them into";
#[cfg(not(feature = "download"))]
const FETCH_ADVICE: &str = "This build of the matnet library has its `download` feature off, \
                            so it cannot fetch them";

#[test]
fn loads_gz_and_raw_splits() {
    let dir = tmp();
    write_synthetic_dataset(dir.path(), 25, 7);
    let train = Dataset::load(dir.path(), DatasetKind::Mnist, Split::Train).unwrap();
    let test = Dataset::load(dir.path(), DatasetKind::Mnist, Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (25, 7));
    assert_eq!((train.rows(), train.cols(), train.image_size()), (4, 3, 12));
    assert_eq!(train.num_classes(), 10);
    let (images, labels) = synthetic(25, 4, 3);
    for i in 0..25 {
        assert_eq!(train.image(i), &images[i * 12..(i + 1) * 12]);
        assert_eq!(train.label(i), labels[i]);
    }
    assert_eq!(train.class_counts(), [3, 3, 3, 3, 3, 2, 2, 2, 2, 2]);
}

#[test]
fn subset_take_split_at() {
    let (images, labels) = synthetic(20, 2, 2);
    let ds = Dataset::from_raw(DatasetKind::Mnist, images, labels, 2, 2).unwrap();
    let s = ds.subset(5..9);
    assert_eq!(s.len(), 4);
    assert_eq!(s.image(0), ds.image(5));
    assert_eq!(s.label(3), ds.label(8));
    assert_eq!(ds.take(3).len(), 3);
    assert_eq!(ds.take(100).len(), 20);
    let (a, b) = ds.split_at(16);
    assert_eq!((a.len(), b.len()), (16, 4));
    assert_eq!(b.image(0), ds.image(16));
    assert_eq!(b.labels(), &ds.labels()[16..]);
    let (all, none) = ds.split_at(20);
    assert_eq!((all.len(), none.len()), (20, 0));
    assert!(none.is_empty());
}

#[test]
#[should_panic(expected = "split_at: 21 is past the end of 20 images")]
fn split_at_past_end_panics() {
    let (images, labels) = synthetic(20, 2, 2);
    let ds = Dataset::from_raw(DatasetKind::Mnist, images, labels, 2, 2).unwrap();
    ds.split_at(21);
}

#[test]
fn class_names() {
    let (images, labels) = synthetic(3, 1, 1);
    let digits =
        Dataset::from_raw(DatasetKind::Mnist, images.clone(), labels.clone(), 1, 1).unwrap();
    let fashion = Dataset::from_raw(DatasetKind::FashionMnist, images, labels, 1, 1).unwrap();
    assert_eq!(digits.class_names()[7], "7");
    assert_eq!(digits.class_names().len(), 10);
    assert_eq!(
        fashion.class_names(),
        [
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot"
        ]
    );
}

#[test]
fn dataset_kind_parse_and_display() {
    for kind in [DatasetKind::Mnist, DatasetKind::FashionMnist] {
        assert_eq!(kind.to_string().parse::<DatasetKind>().unwrap(), kind);
    }
    assert_eq!(
        "fashion-mnist".parse::<DatasetKind>().unwrap(),
        DatasetKind::FashionMnist
    );
    assert_eq!("MNIST".parse::<DatasetKind>().unwrap(), DatasetKind::Mnist);
    assert_eq!(
        err_text("cifar10".parse::<DatasetKind>(), "cifar10"),
        "unknown dataset \"cifar10\": expected \"mnist\" or \"fashion-mnist\""
    );
    assert_eq!(Split::Test.to_string(), "test");
    assert_eq!(Split::Test.file_names()[1], "t10k-labels-idx1-ubyte");
}

#[test]
fn label_count_differs_from_image_count() {
    let dir = tmp();
    let (images, labels) = synthetic(5, 2, 2);
    let img = write(
        dir.path(),
        "train-images-idx3-ubyte.gz",
        &gz(&idx_bytes(8, &[5, 2, 2], &images)),
    );
    let lab = write(
        dir.path(),
        "train-labels-idx1-ubyte",
        &idx_bytes(8, &[4], &labels[..4]),
    );
    let e = err_text(
        Dataset::load(dir.path(), DatasetKind::Mnist, Split::Train),
        "5 vs 4",
    );
    assert_eq!(
        e,
        format!(
            "{}: holds 4 labels but {} holds 5 images",
            lab.display(),
            img.display()
        )
    );
}

#[test]
fn label_out_of_range() {
    let dir = tmp();
    let img = write(dir.path(), "img", &idx_bytes(8, &[3, 1, 1], &[0, 0, 0]));
    let lab = write(dir.path(), "lab", &idx_bytes(8, &[3], &[1, 10, 2]));
    let e = err_text(
        Dataset::from_idx_files(&img, &lab, DatasetKind::FashionMnist),
        "label 10",
    );
    assert_eq!(
        e,
        format!(
            "{}: label 10 at index 1 is out of range: fashion-mnist has 10 classes, 0 to 9",
            lab.display()
        )
    );
}

#[test]
fn wrong_ranks() {
    let dir = tmp();
    let flat = write(dir.path(), "flat", &idx_bytes(8, &[4], &[0; 4]));
    let img = write(dir.path(), "img", &idx_bytes(8, &[2, 1, 2], &[0; 4]));
    let lab2 = write(dir.path(), "lab2", &idx_bytes(8, &[2, 1], &[0; 2]));
    assert_mentions(
        &err_text(
            Dataset::from_idx_files(&flat, &lab2, DatasetKind::Mnist),
            "1-D images",
        ),
        &["flat: expected 3 dimensions [images, rows, cols], found 1 ([4])"],
    );
    assert_mentions(
        &err_text(
            Dataset::from_idx_files(&img, &lab2, DatasetKind::Mnist),
            "2-D labels",
        ),
        &["lab2: expected 1 dimension [labels], found 2 ([2, 1])"],
    );
}

#[test]
fn from_raw_checks_lengths() {
    let e = err_text(
        Dataset::from_raw(DatasetKind::Mnist, vec![0; 7], vec![0, 1], 2, 2),
        "7 bytes",
    );
    assert_eq!(e, "7 image bytes do not make 2 images of 2×2");
}

#[test]
fn missing_files_say_what_to_do() {
    let dir = tmp();
    let e = err_text(
        Dataset::load(dir.path(), DatasetKind::Mnist, Split::Test),
        "empty dir",
    );
    assert_mentions(
        &e,
        &[
            "mnist test set: neither",
            &dir.path()
                .join("t10k-images-idx3-ubyte.gz")
                .display()
                .to_string(),
            FETCH_ADVICE,
            "--data DIR or MATNET_DATA=DIR",
        ],
    );
}

#[test]
fn explicit_data_dir_wins() {
    let dir = Path::new("/somewhere/else");
    for kind in [DatasetKind::Mnist, DatasetKind::FashionMnist] {
        assert_eq!(resolve_data_dir(Some(dir), kind), dir);
    }
}

#[test]
fn default_dir_follows_environment() {
    // Reads the environment as the test run has it, without changing it
    // (other tests read it concurrently).
    let dir = resolve_data_dir(None, DatasetKind::Mnist);
    match std::env::var_os("MATNET_DATA").filter(|v| !v.is_empty()) {
        Some(v) => assert_eq!(dir, Path::new(&v)),
        None => assert!(dir.ends_with("matnet/mnist"), "{}", dir.display()),
    }
    let fashion = resolve_data_dir(None, DatasetKind::FashionMnist);
    if std::env::var_os("MATNET_FASHION_DATA").is_none() {
        // MATNET_DATA (MNIST) must never be used for Fashion-MNIST.
        assert!(
            fashion == Path::new("/usr/share/datasets/fashion-mnist")
                || fashion.ends_with("matnet/fashion-mnist"),
            "{}",
            fashion.display()
        );
    }
}

#[test]
fn find_or_explain_finds_or_explains() {
    let dir = tmp();
    let e = err_text(
        find_or_explain(Some(dir.path()), DatasetKind::Mnist),
        "empty",
    );
    assert_mentions(
        &e,
        &[
            &format!(
                "mnist not found in {} (chosen by --data): no dataset files",
                dir.path().display()
            ),
            FETCH_ADVICE,
            "--data DIR or MATNET_DATA=DIR",
        ],
    );
    let e = err_text(
        find_or_explain(Some(dir.path()), DatasetKind::FashionMnist),
        "empty",
    );
    assert_mentions(
        &e,
        &[
            "apt-get install dataset-fashion-mnist",
            "MATNET_FASHION_DATA=DIR",
        ],
    );
    write_synthetic_dataset(dir.path(), 3, 2);
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte")).unwrap();
    let e = err_text(
        find_or_explain(Some(dir.path()), DatasetKind::Mnist),
        "one missing",
    );
    assert_mentions(&e, &["missing t10k-labels-idx1-ubyte[.gz]."]);
    write(
        dir.path(),
        "t10k-labels-idx1-ubyte.gz",
        &gz(&idx_bytes(8, &[2], &[0, 1])),
    );
    assert_eq!(
        find_or_explain(Some(dir.path()), DatasetKind::Mnist).unwrap(),
        dir.path()
    );
}
