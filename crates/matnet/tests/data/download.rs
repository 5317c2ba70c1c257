//! Checksums, atomic verified saves, and downloads from a local HTTP server
//! (this machine has no route to the public mirrors).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;

use matnet::data::download::save_verified;
use matnet::data::{MNIST_FILES, download_mnist_from, md5_file, verify_mnist};

use crate::{assert_mentions, err_text, real_mnist_dir, tmp, write, write_synthetic_dataset};

const HELLO_MD5: &str = "5d41402abc4b2a76b9719d911017c592";

/// Serves `files` (name → bytes) over plain HTTP/1.1 on 127.0.0.1, one
/// connection at a time, 404 for anything else; returns the base URL.
fn serve(files: HashMap<String, Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let name = request
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/');
            // Write errors mean the client hung up; nothing to do about them.
            let _ = match files.get(name) {
                Some(body) => write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .and_then(|_| stream.write_all(body)),
                None => stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ),
            };
        }
    });
    format!("http://{addr}/")
}

/// No `.part` files left behind in `dir`.
fn assert_no_temp_files(dir: &Path) {
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

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

#[test]
fn offline_download_error_says_what_was_tried_and_what_to_do() {
    let dir = tmp();
    let not_found = serve(HashMap::new());
    let dead = "http://127.0.0.1:1/";
    let e = err_text(
        download_mnist_from(dir.path(), &[dead, &not_found], |_, _, _| {}),
        "offline",
    );
    assert_mentions(
        &e,
        &[
            "could not download MNIST train-images-idx3-ubyte.gz from any mirror; tried",
            "http://127.0.0.1:1/train-images-idx3-ubyte.gz: ",
            &format!("{not_found}train-images-idx3-ubyte.gz: http status: 404"),
            "point matnet at their directory with --data DIR or MATNET_DATA=DIR",
            &dir.path().display().to_string(),
        ],
    );
    assert!(!dir.path().join("train-images-idx3-ubyte.gz").exists());
    assert_no_temp_files(dir.path());
}

#[test]
fn download_from_local_mirrors_skips_bad_ones() {
    let Some(real) = real_mnist_dir("download_from_local_mirrors_skips_bad_ones") else {
        return;
    };
    let good: HashMap<String, Vec<u8>> = MNIST_FILES
        .iter()
        .map(|f| (f.0.to_string(), std::fs::read(real.join(f.0)).unwrap()))
        .collect();
    let corrupt: HashMap<String, Vec<u8>> = good
        .iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            let mid = v.len() / 2;
            v[mid] ^= 1;
            (k.clone(), v)
        })
        .collect();
    let (good, corrupt) = (serve(good), serve(corrupt));
    let dead = "http://127.0.0.1:1/";

    let dir = tmp();
    let mut last: HashMap<String, (u64, Option<u64>)> = HashMap::new();
    download_mnist_from(dir.path(), &[dead, &corrupt, &good], |name, n, total| {
        last.insert(name.to_string(), (n, total));
    })
    .unwrap();
    verify_mnist(dir.path()).unwrap();
    assert_no_temp_files(dir.path());
    for (name, _, _) in MNIST_FILES {
        let len = std::fs::metadata(dir.path().join(name)).unwrap().len();
        assert_eq!(last[name], (len, Some(len)), "{name}");
    }

    // Verified files are kept: no mirror is needed the second time.
    download_mnist_from(dir.path(), &[dead], |_, _, _| panic!("downloaded again")).unwrap();

    // A damaged file is fetched again; only corrupt copies on offer -> error, old file kept.
    let labels = dir.path().join("t10k-labels-idx1-ubyte.gz");
    std::fs::write(&labels, b"damaged").unwrap();
    let e = err_text(
        download_mnist_from(dir.path(), &[&corrupt], |_, _, _| {}),
        "corrupt only",
    );
    assert_mentions(
        &e,
        &[&format!(
            "{corrupt}t10k-labels-idx1-ubyte.gz: MD5 mismatch: expected ec29112dd5afa0611ce80d1b7f02629c"
        )],
    );
    assert_eq!(std::fs::read(&labels).unwrap(), b"damaged");
    assert_no_temp_files(dir.path());
    download_mnist_from(dir.path(), &[&good], |_, _, _| {}).unwrap();
    verify_mnist(dir.path()).unwrap();
}
