//! Downloads from a local HTTP server (this machine has no route to the
//! public mirrors); only with the `download` feature.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use matnet::data::{MNIST_FILES, download_mnist_from, verify_mnist};

use crate::{assert_mentions, assert_no_temp_files, err_text, real_mnist_dir, tmp};

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
