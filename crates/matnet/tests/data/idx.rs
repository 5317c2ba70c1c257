//! IDX files: round trips, and every kind of bad file returns an error that
//! names the file and the problem (never a panic, never a huge allocation).

use std::time::Instant;

use matnet::data::{IdxArray, IdxValues, read_idx, read_idx_values};

use crate::{assert_mentions, err_text, gz, idx_bytes, tmp, write};

#[test]
fn raw_round_trip_1_to_4_dims() {
    let dir = tmp();
    for dims in [vec![5u32], vec![2, 3], vec![2, 3, 4], vec![1, 2, 3, 2]] {
        let n: u32 = dims.iter().product();
        let data: Vec<u8> = (0..n).map(|i| (i * 37 % 256) as u8).collect();
        let path = write(dir.path(), "a-idx", &idx_bytes(8, &dims, &data));
        let arr = read_idx(&path).unwrap();
        let want: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
        assert_eq!(arr, IdxArray { dims: want, data });
    }
}

#[test]
fn gz_round_trip() {
    let dir = tmp();
    let data: Vec<u8> = (0..24).collect();
    let path = write(
        dir.path(),
        "x-idx3-ubyte.gz",
        &gz(&idx_bytes(8, &[2, 3, 4], &data)),
    );
    let arr = read_idx(&path).unwrap();
    assert_eq!(arr.dims, [2, 3, 4]);
    assert_eq!(arr.item_size(), 12);
    assert_eq!(arr.data, data);
}

#[test]
fn compression_is_detected_by_magic_not_extension() {
    let dir = tmp();
    let bytes = idx_bytes(8, &[3], &[7, 8, 9]);
    // gzip data without .gz, and raw data with .gz: both load.
    let a = write(dir.path(), "labels-no-ext", &gz(&bytes));
    let b = write(dir.path(), "labels-raw.gz", &bytes);
    assert_eq!(read_idx(&a).unwrap().data, [7, 8, 9]);
    assert_eq!(read_idx(&b).unwrap().data, [7, 8, 9]);
}

#[test]
fn empty_file_raw_and_gz_name() {
    let dir = tmp();
    for name in ["empty-idx1-ubyte", "empty-idx1-ubyte.gz"] {
        let path = write(dir.path(), name, &[]);
        let e = err_text(read_idx(&path), name);
        assert_eq!(
            e,
            format!(
                "{}: empty file: expected an IDX header (00 00 08 <ndims>) or a gzip stream",
                path.display()
            )
        );
    }
}

#[test]
fn wrong_magic_raw_and_gz() {
    let dir = tmp();
    let mut bytes = idx_bytes(8, &[3], &[1, 2, 3]);
    bytes[0] = 0x01;
    bytes[1] = 0x02;
    let raw = write(dir.path(), "bad-magic", &bytes);
    let zipped = write(dir.path(), "bad-magic.gz", &gz(&bytes));
    for path in [raw, zipped] {
        let e = err_text(read_idx(&path), "wrong magic");
        assert_mentions(
            &e,
            &[
                &path.display().to_string(),
                "not an IDX file: bad magic 01 02 08 01, expected 00 00 08 <ndims>",
            ],
        );
    }
}

#[test]
fn not_a_gzip_with_gz_extension() {
    let dir = tmp();
    let path = write(
        dir.path(),
        "train-images-idx3-ubyte.gz",
        b"<html>404 Not Found</html>",
    );
    let e = err_text(read_idx(&path), "html named .gz");
    assert_mentions(
        &e,
        &[
            &path.display().to_string(),
            "not an IDX file: bad magic 3c 68 74 6d",
            "the name ends in .gz but the file is not gzip-compressed either",
        ],
    );
}

#[test]
fn f32_elements_read_by_read_idx_values_only() {
    let dir = tmp();
    let vals = [0.0f32, 0.25, 1.0, -2.5, f32::NAN, 7.0];
    let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_be_bytes()).collect();
    for (name, file) in [
        ("f-raw", idx_bytes(0x0d, &[2, 3], &bytes)),
        ("f-gz", gz(&idx_bytes(0x0d, &[2, 3], &bytes))),
    ] {
        let path = write(dir.path(), name, &file);
        let (dims, values) = read_idx_values(&path).unwrap();
        assert_eq!(dims, [2, 3]);
        let IdxValues::F32(got) = values else {
            panic!("{name}: expected f32 values")
        };
        // Bit-exact, NaN included: judging values is the caller's business.
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&vals), "{name}");
    }
    // Bytes come back as bytes.
    let path = write(dir.path(), "u", &idx_bytes(8, &[3], &[1, 2, 3]));
    assert_eq!(
        read_idx_values(&path).unwrap().1,
        IdxValues::U8(vec![1, 2, 3])
    );
    // The length check counts four bytes per f32 element.
    let path = write(
        dir.path(),
        "f-short",
        &idx_bytes(0x0d, &[2, 3], &bytes[..20]),
    );
    assert_mentions(
        &err_text(read_idx_values(&path), "short f32"),
        &["truncated", "2 × 3 × 4 = 24 bytes", "holds 20"],
    );
    // Other element types are still refused, naming both accepted ones.
    let path = write(dir.path(), "i32", &idx_bytes(0x0c, &[1], &[0, 0, 0, 1]));
    assert_mentions(
        &err_text(read_idx_values(&path), "i32"),
        &[
            "0x0c (i32)",
            "0x08 (unsigned byte) and 0x0d (f32) are supported",
        ],
    );
}

#[test]
fn unsupported_element_type() {
    let dir = tmp();
    let path = write(dir.path(), "floats", &idx_bytes(0x0d, &[1], &[0, 0, 0, 0]));
    let e = err_text(read_idx(&path), "f32 IDX");
    assert_eq!(
        e,
        format!(
            "{}: unsupported IDX element type 0x0d (f32): only 0x08 (unsigned byte) is supported",
            path.display()
        )
    );
}

#[test]
fn zero_or_five_dimensions() {
    let dir = tmp();
    let zero = write(dir.path(), "zero", &[0, 0, 8, 0]);
    let five = write(dir.path(), "five", &idx_bytes(8, &[1, 1, 1, 1, 1], &[9]));
    assert_mentions(
        &err_text(read_idx(&zero), "0 dims"),
        &["zero: unsupported IDX header: 0 dimensions, expected 1 to 4"],
    );
    assert_mentions(
        &err_text(read_idx(&five), "5 dims"),
        &["five: unsupported IDX header: 5 dimensions, expected 1 to 4"],
    );
}

#[test]
fn truncated_header_raw_and_gz() {
    let dir = tmp();
    let short_magic = write(dir.path(), "short-magic", &[0, 0, 8]);
    assert_mentions(
        &err_text(read_idx(&short_magic), "3-byte file"),
        &["short-magic: truncated header: 3 of the 4 magic bytes present"],
    );
    // Promises 3 dimensions, holds one.
    let bytes = [0, 0, 8, 3, 0, 0, 0, 5];
    let raw = write(dir.path(), "short-dims", &bytes);
    assert_mentions(
        &err_text(read_idx(&raw), "short dims"),
        &["short-dims: truncated header: 3 dimensions need 12 bytes, file holds 4"],
    );
    let zipped = write(dir.path(), "short-dims.gz", &gz(&bytes));
    assert_mentions(
        &err_text(read_idx(&zipped), "short dims gz"),
        &[
            "short-dims.gz: truncated header (inside the gzip stream): 3 dimensions need 12 bytes, file holds 4",
        ],
    );
}

#[test]
fn truncated_labels_raw_and_gz() {
    let dir = tmp();
    let bytes = idx_bytes(8, &[60000], &vec![1u8; 59999]);
    let raw = write(dir.path(), "train-labels-idx1-ubyte", &bytes);
    let zipped = write(dir.path(), "train-labels-idx1-ubyte.gz", &gz(&bytes));
    for path in [raw, zipped] {
        assert_eq!(
            err_text(read_idx(&path), "59999 labels"),
            format!(
                "{}: truncated: header promises 60000 items, file holds 59999",
                path.display()
            )
        );
    }
}

#[test]
fn truncated_images_raw_and_gz() {
    let dir = tmp();
    let bytes = idx_bytes(8, &[2, 3, 4], &[0u8; 23]);
    let raw = write(dir.path(), "images", &bytes);
    let zipped = write(dir.path(), "images.gz", &gz(&bytes));
    for path in [raw, zipped] {
        assert_eq!(
            err_text(read_idx(&path), "23 of 24 bytes"),
            format!(
                "{}: truncated: header promises 2 × 3 × 4 = 24 bytes, file holds 23",
                path.display()
            )
        );
    }
}

#[test]
fn trailing_data_raw_and_gz() {
    let dir = tmp();
    let bytes = idx_bytes(8, &[3], &[1, 2, 3, 4]);
    let raw = write(dir.path(), "long", &bytes);
    assert_mentions(
        &err_text(read_idx(&raw), "long raw"),
        &["long: trailing data: header promises 3 items, file holds 4"],
    );
    let zipped = write(dir.path(), "long.gz", &gz(&bytes));
    assert_mentions(
        &err_text(read_idx(&zipped), "long gz"),
        &["long.gz: trailing data: header promises 3 items, the gzip stream holds more"],
    );
}

#[test]
fn truncated_gzip_stream() {
    let dir = tmp();
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
    let full = gz(&idx_bytes(8, &[5000], &data));
    // Cut in the middle of the deflate data, and just before the CRC trailer.
    for cut in [full.len() / 2, full.len() - 5] {
        let path = write(dir.path(), "cut.gz", &full[..cut]);
        let e = err_text(read_idx(&path), "cut gzip");
        assert_mentions(
            &e,
            &[
                &path.display().to_string(),
                "corrupt or truncated gzip stream",
            ],
        );
    }
    // Only the gzip magic.
    let path = write(dir.path(), "magic-only.gz", &[0x1f, 0x8b]);
    assert_mentions(
        &err_text(read_idx(&path), "magic only"),
        &["magic-only.gz: corrupt or truncated gzip stream"],
    );
}

#[test]
fn corrupt_gzip_checksum() {
    let dir = tmp();
    let mut bytes = gz(&idx_bytes(8, &[4], &[1, 2, 3, 4]));
    let n = bytes.len();
    bytes[n - 8] ^= 0xff; // the CRC32 of the trailer
    let path = write(dir.path(), "crc.gz", &bytes);
    assert_mentions(
        &err_text(read_idx(&path), "bad crc"),
        &["crc.gz: corrupt or truncated gzip stream"],
    );
}

#[test]
fn header_claiming_4_billion_images_is_an_error_not_an_allocation() {
    let dir = tmp();
    let bytes = idx_bytes(8, &[u32::MAX, 28, 28], &[0u8; 16]);
    let raw = write(dir.path(), "huge", &bytes);
    let zipped = write(dir.path(), "huge.gz", &gz(&bytes));
    for path in [raw, zipped] {
        let start = Instant::now();
        assert_eq!(
            err_text(read_idx(&path), "4 billion images"),
            format!(
                "{}: truncated: header promises 4294967295 × 28 × 28 = 3367254359280 bytes, file holds 16",
                path.display()
            )
        );
        // A 3 TB allocation would abort the process; this only documents that
        // the answer comes from the header alone.
        assert!(start.elapsed().as_secs() < 5);
    }
    // Sizes whose product overflows 64 bits.
    let overflow = write(dir.path(), "overflow", &idx_bytes(8, &[u32::MAX; 4], &[]));
    assert_mentions(
        &err_text(read_idx(&overflow), "overflow"),
        &[
            "overflow: absurd IDX header: dimensions 4294967295 × 4294967295 × 4294967295 × 4294967295 overflow the address space",
        ],
    );
}

#[test]
fn missing_file_names_the_path() {
    let dir = tmp();
    let path = dir.path().join("nope-idx1-ubyte.gz");
    let e = err_text(read_idx(&path), "missing");
    assert_mentions(&e, &[&path.display().to_string(), "No such file"]);
}
