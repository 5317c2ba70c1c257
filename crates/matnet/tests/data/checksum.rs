//! Checksums and atomic verified saves (built with or without the
//! `download` feature).

use matnet::data::checksum::save_verified;
use matnet::data::{md5_file, verify_mnist};

use crate::{assert_mentions, assert_no_temp_files, err_text, tmp, write, write_synthetic_dataset};

const HELLO_MD5: &str = "5d41402abc4b2a76b9719d911017c592";

#[test]
fn md5_of_a_file() {
    let dir = tmp();
    let path = write(dir.path(), "hello", b"hello");
    assert_eq!(md5_file(&path).unwrap(), HELLO_MD5);
    let e = err_text(md5_file(&dir.path().join("absent")), "absent");
    assert_mentions(&e, &["absent", "No such file"]);
}

#[test]
fn save_verified_renames_only_a_matching_file() {
    let dir = tmp();
    let dest = dir.path().join("hello.gz");
    let mut seen = 0;
    save_verified(&mut &b"hello"[..], &dest, HELLO_MD5, |n| seen = n).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
    assert_eq!(seen, 5);
    assert_no_temp_files(dir.path());

    // A mismatch leaves neither a new file nor a temporary one, and keeps the old file.
    let e = err_text(
        save_verified(&mut &b"hellp"[..], &dest, HELLO_MD5, |_| {}),
        "mismatch",
    );
    assert_mentions(
        &e,
        &[
            "MD5 mismatch: expected 5d41402abc4b2a76b9719d911017c592, got",
            "(5 bytes)",
        ],
    );
    assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
    let fresh = dir.path().join("fresh.gz");
    assert!(save_verified(&mut &b"x"[..], &fresh, HELLO_MD5, |_| {}).is_err());
    assert!(!fresh.exists());
    assert_no_temp_files(dir.path());
}

#[test]
fn verify_rejects_other_files_and_lists_missing_ones() {
    let dir = tmp();
    let e = err_text(verify_mnist(dir.path()), "empty dir");
    assert_eq!(
        e,
        format!(
            "{}: MNIST files missing: train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], \
             t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]",
            dir.path().display()
        )
    );
    write_synthetic_dataset(dir.path(), 3, 2);
    let e = err_text(verify_mnist(dir.path()), "synthetic files");
    assert_mentions(
        &e,
        &[
            &dir.path()
                .join("train-images-idx3-ubyte.gz")
                .display()
                .to_string(),
            "MD5 mismatch: expected f68b3c2dcbeaaa9fbdd348bbdeb94873, got",
            "delete it and run `matnet download mnist`",
        ],
    );
}
