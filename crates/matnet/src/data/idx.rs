//! The IDX format of the MNIST files (LeCun et al.), raw or gzip-compressed.
//!
//! ```text
//! offset  bytes         meaning
//! 0       00 00         magic: two zero bytes
//! 2       1             element type (0x08 = unsigned byte; 0x0D = big-endian f32,
//!                       read by [`read_idx_values`] only)
//! 3       1             number of dimensions d (1..=4 here)
//! 4       4·d           each dimension as a big-endian u32
//! 4+4d    Π dims        the elements, row-major
//! ```
//!
//! The header is checked against the data before anything the size of the
//! data is allocated: a 20-byte file that claims 4 billion images is an error,
//! never a 3 TB allocation.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use flate2::read::GzDecoder;

use crate::error::{Error, Result};

/// The two bytes every gzip stream starts with (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Element type: unsigned byte (every MNIST file).
const TYPE_U8: u8 = 0x08;

/// Element type: big-endian IEEE f32 (samples written by other tools).
const TYPE_F32: u8 = 0x0d;

/// Most dimensions accepted (MNIST uses 1 for labels and 3 for images).
const MAX_DIMS: usize = 4;

/// An IDX array of unsigned bytes: its dimensions and its row-major elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions from the header, outermost first (`[60000, 28, 28]`).
    pub dims: Vec<usize>,
    /// The elements, row-major; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

impl IdxArray {
    /// Bytes per item: the product of every dimension after the first
    /// (`28 × 28 = 784` for an image file, 1 for a label file).
    pub fn item_size(&self) -> usize {
        self.dims[1..].iter().product()
    }
}

/// Reads an IDX file of unsigned bytes, gzip-compressed or raw.
///
/// Compression is detected from the first two bytes (`1f 8b`), not from the
/// file name. Every error names the file and what is wrong with it: a bad
/// magic number, an unsupported element type, a header whose sizes overflow,
/// data shorter or longer than the header promises, a corrupt gzip stream.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let (dims, _, data) = read_typed(path, &[TYPE_U8])?;
    Ok(IdxArray { dims, data })
}

/// [`read_idx`] on the contents of a file already in memory; `name` is the
/// file name the errors give.
pub fn idx_from_bytes(name: &Path, bytes: &[u8]) -> Result<IdxArray> {
    let (dims, _, data) = parse_typed(name, bytes, bytes.len() as u64, &[TYPE_U8])?;
    Ok(IdxArray { dims, data })
}

/// The elements of an IDX file of bytes or of f32 values.
#[derive(Clone, Debug, PartialEq)]
pub enum IdxValues {
    /// Type 0x08.
    U8(Vec<u8>),
    /// Type 0x0D, converted from big-endian.
    F32(Vec<f32>),
}

/// [`read_idx`] that also accepts f32 elements (type 0x0D), as other tools
/// write generated images. Returns the dimensions and the elements; the
/// header is checked against the data as in [`read_idx`].
pub fn read_idx_values(path: &Path) -> Result<(Vec<usize>, IdxValues)> {
    Ok(to_values(read_typed(path, &[TYPE_U8, TYPE_F32])?))
}

/// [`read_idx_values`] on the contents of a file already in memory; `name`
/// is the file name the errors give.
pub fn idx_values_from_bytes(name: &Path, bytes: &[u8]) -> Result<(Vec<usize>, IdxValues)> {
    let typed = parse_typed(name, bytes, bytes.len() as u64, &[TYPE_U8, TYPE_F32])?;
    Ok(to_values(typed))
}

fn to_values((dims, ty, data): (Vec<usize>, u8, Vec<u8>)) -> (Vec<usize>, IdxValues) {
    let values = if ty == TYPE_F32 {
        let f = data.chunks_exact(4);
        IdxValues::F32(
            f.map(|b| f32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        )
    } else {
        IdxValues::U8(data)
    };
    (dims, values)
}

/// Reads an IDX file whose element type is one of `types`: its dimensions,
/// element type and raw element bytes.
fn read_typed(path: &Path, types: &[u8]) -> Result<(Vec<usize>, u8, Vec<u8>)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    parse_typed(path, BufReader::new(file), file_len, types)
}

/// [`read_typed`] on a stream of `file_len` bytes; `path` names it in errors.
fn parse_typed(
    path: &Path,
    mut reader: impl Read,
    file_len: u64,
    types: &[u8],
) -> Result<(Vec<usize>, u8, Vec<u8>)> {
    let mut start = [0u8; 2];
    let got = read_full(&mut reader, &mut start).map_err(|e| Error::io(path, e))?;
    if got == 0 {
        return Err(Error::format(
            path,
            "empty file: expected an IDX header (00 00 08 <ndims>) or a gzip stream",
        ));
    }
    // Put the two sniffed bytes back in front of the stream.
    let stream = (&start[..got]).chain(reader);
    if got == 2 && start == GZIP_MAGIC {
        let mut gz = GzDecoder::new(stream);
        let (ty, dims) = read_header(path, &mut gz, true, types)?;
        let expected = data_len(path, &dims, ty)?;
        // Read at most one byte past the promise, into a buffer that grows with
        // the data actually decompressed: a lying header costs nothing.
        let mut data = Vec::new();
        (&mut gz)
            .take(expected as u64 + 1)
            .read_to_end(&mut data)
            .map_err(|e| gzip_error(path, e))?;
        check_len(path, &dims, expected, data.len() as u64, true)?;
        Ok((dims, ty, data))
    } else {
        let mut raw = stream;
        let (ty, dims) = read_header(path, &mut raw, false, types)?;
        let expected = data_len(path, &dims, ty)?;
        let header_len = 4 + 4 * dims.len() as u64;
        check_len(
            path,
            &dims,
            expected,
            file_len.saturating_sub(header_len),
            false,
        )?;
        // The file length matched the promise, so this allocation is backed by data.
        let mut data = vec![0u8; expected];
        raw.read_exact(&mut data).map_err(|e| Error::io(path, e))?;
        Ok((dims, ty, data))
    }
}

/// Reads the magic number and the dimensions: the element type (one of
/// `types`) and the dimensions.
fn read_header(path: &Path, r: &mut impl Read, gz: bool, types: &[u8]) -> Result<(u8, Vec<usize>)> {
    let read = |r: &mut dyn Read, buf: &mut [u8]| -> Result<usize> {
        read_full(r, buf).map_err(|e| {
            if gz {
                gzip_error(path, e)
            } else {
                Error::io(path, e)
            }
        })
    };
    let inside = if gz { " (inside the gzip stream)" } else { "" };
    let mut magic = [0u8; 4];
    let got = read(r, &mut magic)?;
    if got < 4 {
        return Err(Error::format(
            path,
            format!("truncated header{inside}: {got} of the 4 magic bytes present"),
        ));
    }
    if magic[0] != 0 || magic[1] != 0 {
        let hint = if !gz && path.extension().is_some_and(|e| e == "gz") {
            " (the name ends in .gz but the file is not gzip-compressed either)"
        } else {
            ""
        };
        return Err(Error::format(
            path,
            format!(
                "not an IDX file: bad magic {:02x} {:02x} {:02x} {:02x}, expected 00 00 08 <ndims>{hint}",
                magic[0], magic[1], magic[2], magic[3]
            ),
        ));
    }
    if !types.contains(&magic[2]) {
        let supported: Vec<String> = types
            .iter()
            .map(|&t| format!("0x{t:02x} ({})", type_name(t)))
            .collect();
        return Err(Error::format(
            path,
            format!(
                "unsupported IDX element type 0x{:02x} ({}): only {} supported",
                magic[2],
                type_name(magic[2]),
                if types.len() == 1 {
                    format!("{} is", supported[0])
                } else {
                    format!("{} are", supported.join(" and "))
                }
            ),
        ));
    }
    let ndims = magic[3] as usize;
    if !(1..=MAX_DIMS).contains(&ndims) {
        return Err(Error::format(
            path,
            format!("unsupported IDX header: {ndims} dimensions, expected 1 to {MAX_DIMS}"),
        ));
    }
    let mut raw_dims = [0u8; 4 * MAX_DIMS];
    let raw_dims = &mut raw_dims[..4 * ndims];
    let got = read(r, raw_dims)?;
    if got < raw_dims.len() {
        return Err(Error::format(
            path,
            format!(
                "truncated header{inside}: {ndims} dimensions need {} bytes, file holds {got}",
                raw_dims.len()
            ),
        ));
    }
    let dims = raw_dims
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    Ok((magic[2], dims))
}

/// The data bytes the header promises, with checked arithmetic.
fn data_len(path: &Path, dims: &[usize], ty: u8) -> Result<usize> {
    let elem = if ty == TYPE_F32 { 4 } else { 1 };
    // Below isize::MAX: a Vec can hold it and `expected + 1` cannot overflow.
    dims.iter()
        .try_fold(elem, |acc: usize, &d| acc.checked_mul(d))
        .filter(|&n| n < isize::MAX as usize)
        .ok_or_else(|| {
            Error::format(
                path,
                format!(
                    "absurd IDX header: dimensions {} overflow the address space",
                    dims_text(dims)
                ),
            )
        })
}

/// Compares the data found with the header's promise.
fn check_len(path: &Path, dims: &[usize], expected: usize, found: u64, gz: bool) -> Result<()> {
    let expected = expected as u64;
    if found == expected {
        return Ok(());
    }
    let count: u64 = dims.iter().map(|&d| d as u64).product();
    let promise = if count != expected {
        format!("{} × 4 = {expected} bytes", dims_text(dims))
    } else if dims.len() == 1 {
        format!("{expected} items")
    } else {
        format!("{} = {expected} bytes", dims_text(dims))
    };
    let msg = if found < expected {
        format!("truncated: header promises {promise}, file holds {found}")
    } else if gz {
        format!("trailing data: header promises {promise}, the gzip stream holds more")
    } else {
        format!("trailing data: header promises {promise}, file holds {found}")
    };
    Err(Error::format(path, msg))
}

/// An error from inside the gzip decoder: a corrupt or cut-off stream.
fn gzip_error(path: &Path, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
            Error::format(path, format!("corrupt or truncated gzip stream: {e}"))
        }
        _ => Error::io(path, e),
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
/// (`read_exact` would conflate a short file with a broken decoder.)
fn read_full(r: &mut (impl Read + ?Sized), buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// `60000 × 28 × 28`.
fn dims_text(dims: &[usize]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(" × ")
}

/// The IDX name of an element type code, for error messages.
fn type_name(t: u8) -> &'static str {
    match t {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0b => "i16",
        0x0c => "i32",
        0x0d => "f32",
        0x0e => "f64",
        _ => "not an IDX type",
    }
}
