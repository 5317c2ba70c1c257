//! Checkpoints: named f32 tensors plus string metadata in one safetensors file.
//!
//! A checkpoint is a PyTorch `state_dict`: names such as `fc1.weight` or
//! `0.bias`, and PyTorch layouts (a Linear weight `W` is `[D_out, D_in]` and the
//! layer computes `y = x·Wᵀ + b`). The model's configuration travels with the
//! weights as a JSON string under [`CONFIG_KEY`] in the metadata.
//!
//! ```
//! use std::collections::BTreeMap;
//! use matnet::io::{self, CONFIG_KEY};
//! use matnet::Tensor;
//!
//! # fn main() -> matnet::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("model.safetensors");
//! let w = Tensor::from_vec(vec![1., 2., 3., 4., 5., 6.], [2, 3]);
//! let b = Tensor::zeros([2]);
//! let params = vec![("fc.weight".to_string(), w), ("fc.bias".to_string(), b)];
//! let meta = BTreeMap::from([(CONFIG_KEY.to_string(), r#"{"hidden":[]}"#.to_string())]);
//! io::save(&path, &params, &meta)?;
//!
//! // Into a fresh model of the same shape: names and shapes are checked first.
//! let fresh = vec![
//!     ("fc.weight".to_string(), Tensor::zeros([2, 3])),
//!     ("fc.bias".to_string(), Tensor::ones([2])),
//! ];
//! let meta = io::load_into(&path, &fresh)?;
//! assert_eq!(fresh[0].1.to_vec(), vec![1., 2., 3., 4., 5., 6.]);
//! assert_eq!(fresh[1].1.to_vec(), vec![0., 0.]);
//! assert_eq!(meta[CONFIG_KEY], r#"{"hidden":[]}"#);
//! # Ok(())
//! # }
//! ```

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use safetensors::{Dtype, SafeTensorError, SafeTensors, View};

use crate::{Error, Result, Tensor};

/// The metadata key under which matnet stores the model configuration (JSON).
pub const CONFIG_KEY: &str = "matnet.config";

/// The safetensors header reserves this key for the metadata map.
const RESERVED_NAME: &str = "__metadata__";

/// Problems listed in one `load_into` error before the rest are counted.
const MAX_LISTED_PROBLEMS: usize = 8;

/// The contents of a checkpoint file.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The tensors, ordered by name.
    pub tensors: Vec<(String, Tensor)>,
    /// The file's string metadata; the model configuration is the JSON string
    /// under [`CONFIG_KEY`].
    pub metadata: BTreeMap<String, String>,
}

impl Checkpoint {
    /// The tensor called `name`, if the checkpoint has one.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| &self.tensors[i].1)
    }
}

/// Writes `tensors` (as F32) and `metadata` to a safetensors file at `path`.
///
/// The write is atomic: the file is written to a temporary file in the same
/// directory, flushed to disk and renamed over `path`, so `path` holds either
/// its old contents or the complete new checkpoint, never a partial one. On
/// error the temporary file is removed and an existing file is left untouched.
///
/// Put the model configuration as a JSON string under [`CONFIG_KEY`]; other
/// keys are stored as they are.
///
/// # Panics
/// When two tensors share a name, or a tensor is named `__metadata__` (the
/// format reserves it): the caller's parameter list is wrong, not the file.
pub fn save(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let mut seen = HashSet::new();
    for (name, _) in tensors {
        assert!(
            name != RESERVED_NAME,
            "save: a tensor may not be named '{RESERVED_NAME}'"
        );
        assert!(
            seen.insert(name.as_str()),
            "save: tensor name '{name}' appears twice"
        );
    }
    // The file is built in memory, then written by `write_atomic`.
    // `safetensors::serialize_to_file` streams instead and also renames a
    // temporary file into place, but it never syncs the data to disk.
    let bytes = serialize(tensors, metadata)
        .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    write_atomic(path, &bytes)
}

/// The safetensors bytes of `tensors` (F32) and `metadata`.
pub(crate) fn serialize(
    tensors: &[(String, Tensor)],
    metadata: &BTreeMap<String, String>,
) -> std::result::Result<Vec<u8>, String> {
    let views = tensors.iter().map(|(n, t)| (n.as_str(), F32View(t)));
    let info: Option<HashMap<String, String>> =
        (!metadata.is_empty()).then(|| metadata.clone().into_iter().collect());
    safetensors::serialize(views, info).map_err(|e| format!("cannot encode the tensors: {e}"))
}

/// Reads a safetensors checkpoint, with its tensors ordered by name.
///
/// F32 tensors are read as they are; F64, F16 and BF16 tensors are rounded to
/// f32. Any other dtype, and any file that is not a well-formed safetensors
/// file (truncated, corrupt, offsets outside the file), is an error naming
/// the file. The file is read whole and every length in its header is checked
/// against the file's size, so a lying header cannot cause a large allocation.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    load_bytes(path, &bytes)
}

/// [`load`] on the contents of a file already in memory; `path` is the file
/// name the errors give.
pub fn load_bytes(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
    parse(bytes).map_err(|msg| Error::format(path, msg))
}

/// [`load`] on the bytes of a file; the error says what is wrong (the
/// caller names the file).
pub(crate) fn parse(bytes: &[u8]) -> std::result::Result<Checkpoint, String> {
    let invalid = |e: SafeTensorError| format!("not a valid safetensors file ({e})");
    // `read_metadata` and `deserialize` both validate the header against the
    // buffer's length; only the former hands out the `__metadata__` map.
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(invalid)?;
    let file = SafeTensors::deserialize(bytes).map_err(invalid)?;
    let metadata = header
        .metadata()
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut tensors = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let t = decode(&name, view.dtype(), view.shape(), view.data())?;
            Ok((name, t))
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Checkpoint { tensors, metadata })
}

/// Loads the checkpoint at `path` into the model parameters `params`
/// (`(name, tensor)` pairs, PyTorch names) and returns its metadata.
///
/// Every name and shape is checked before any parameter is written, so on
/// error the model is unchanged. The error lists what is wrong, for example
/// `model.safetensors: missing tensor 'fc2.bias'`,
/// `model.safetensors: tensor 'fc1.weight' has shape [10, 784], the model expects [256, 784]`
/// or `model.safetensors: unexpected tensor 'extra.weight'`
/// (several problems are joined with `; `).
///
/// # Panics
/// When two parameters share a name or a parameter is a non-contiguous view
/// (a bug in the model's parameter list, not in the file).
pub fn load_into(path: &Path, params: &[(String, Tensor)]) -> Result<BTreeMap<String, String>> {
    let ckpt = load(path)?;
    assign(path, &ckpt, params)?;
    Ok(ckpt.metadata)
}

/// Copies the tensors of `ckpt` (read from `path`) into `params`, as
/// [`load_into`] does: every name and shape is checked first, so on error
/// the parameters are unchanged.
///
/// # Panics
/// As [`load_into`].
pub fn assign(path: &Path, ckpt: &Checkpoint, params: &[(String, Tensor)]) -> Result<()> {
    let by_name: BTreeMap<&str, &Tensor> =
        ckpt.tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    assign_checked(&by_name, params).map_err(|msg| Error::format(path, msg))
}

/// Copies `saved` into `params` by name once every name and shape has been
/// checked; otherwise changes nothing and lists the problems.
pub(crate) fn assign_checked(
    saved: &BTreeMap<&str, &Tensor>,
    params: &[(String, Tensor)],
) -> std::result::Result<(), String> {
    let mut unused: BTreeSet<&str> = saved.keys().copied().collect();
    let mut seen = HashSet::new();
    let mut problems = Vec::new();
    for (name, param) in params {
        assert!(
            seen.insert(name.as_str()),
            "load_into: parameter name '{name}' appears twice"
        );
        assert!(
            param.is_contiguous(),
            "load_into: parameter '{name}' of shape {:?} is a non-contiguous view",
            param.shape()
        );
        unused.remove(name.as_str());
        match saved.get(name.as_str()) {
            None => problems.push(format!("missing tensor '{name}'")),
            Some(t) if t.dims() != param.dims() => problems.push(format!(
                "tensor '{name}' has shape {:?}, the model expects {:?}",
                t.dims(),
                param.dims()
            )),
            Some(_) => {}
        }
    }
    problems.extend(unused.iter().map(|n| format!("unexpected tensor '{n}'")));
    if !problems.is_empty() {
        let mut msg = problems[..problems.len().min(MAX_LISTED_PROBLEMS)].join("; ");
        if problems.len() > MAX_LISTED_PROBLEMS {
            msg += &format!("; and {} more", problems.len() - MAX_LISTED_PROBLEMS);
        }
        return Err(msg);
    }
    for (name, param) in params {
        param.assign_(saved[name.as_str()]);
    }
    Ok(())
}

/// A matnet tensor seen as safetensors F32 data; the bytes are produced only
/// when the serializer asks, one tensor at a time.
struct F32View<'a>(&'a Tensor);

impl View for F32View<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }

    fn shape(&self) -> &[usize] {
        self.0.dims()
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Owned(
            self.0
                .with_data(|d| d.iter().flat_map(|x| x.to_le_bytes()).collect()),
        )
    }

    fn data_len(&self) -> usize {
        self.0.numel() * size_of::<f32>()
    }
}

/// The f32 tensor for the little-endian `data` of one checkpoint entry.
fn decode(
    name: &str,
    dtype: Dtype,
    dims: &[usize],
    data: &[u8],
) -> std::result::Result<Tensor, String> {
    // safetensors checks that the element count times the dtype size fits the
    // file, but a zero dimension makes that count 0 whatever the others are;
    // row-major strides multiply the non-zero ones and must not overflow.
    if dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d.max(1)))
        .is_none()
    {
        return Err(format!(
            "tensor '{name}' has shape {dims:?}, too large to index"
        ));
    }
    let values = match dtype {
        Dtype::F32 => from_le::<4>(data, f32::from_le_bytes),
        Dtype::F64 => from_le::<8>(data, |b| f64::from_le_bytes(b) as f32),
        Dtype::F16 => from_le::<2>(data, |b| f16_to_f32(u16::from_le_bytes(b))),
        // bf16 is the upper half of an f32.
        Dtype::BF16 => from_le::<2>(data, |b| {
            f32::from_bits((u16::from_le_bytes(b) as u32) << 16)
        }),
        other => {
            return Err(format!(
                "tensor '{name}' has dtype {other:?}; matnet reads F32 \
                 (and converts F64, F16 and BF16)"
            ));
        }
    };
    Tensor::try_from_vec(values, dims.to_vec()).map_err(|e| format!("tensor '{name}': {e}"))
}

fn from_le<const N: usize>(data: &[u8], f: impl Fn([u8; N]) -> f32) -> Vec<f32> {
    data.chunks_exact(N)
        .map(|c| f(c.try_into().expect("chunks_exact yields N bytes")))
        .collect()
}

/// IEEE 754 half precision to f32 (exact: every f16 is an f32).
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let mant = (h & 0x3ff) as u32;
    match exp {
        // Zero and subnormals: mant · 2⁻²⁴.
        0 => sign * mant as f32 * f32::from_bits(0x3380_0000),
        0x1f if mant == 0 => sign * f32::INFINITY,
        0x1f => f32::NAN,
        // Rebias the exponent from 15 to 127 and widen the mantissa.
        _ => f32::from_bits(
            (u32::from(h & 0x8000) << 16) | (((exp + 127 - 15) as u32) << 23) | (mant << 13),
        ),
    }
}

/// Writes `bytes` to `path` atomically: through a temporary file in the same
/// directory, synced to disk, then renamed over `path`. Readers see the old
/// file or the complete new one, never a partial write; on error the
/// temporary file is removed. [`save`] writes checkpoints this way; tools use
/// it for other outputs (images, reports).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_err = |e| Error::io(path, e);
    let file_name = path.file_name().ok_or_else(|| {
        io_err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file name",
        ))
    })?;
    // The temporary file must be in the target's directory: a rename across
    // file systems is a copy, and no longer atomic.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Named after the target, so one left behind by a killed process (no
    // destructor runs then) says where it came from.
    let mut builder = tempfile::Builder::new();
    let prefix = format!(".{}.", file_name.to_string_lossy());
    builder.prefix(&prefix).suffix(".tmp");
    // tempfile creates owner-only (0600) files; a checkpoint gets the usual
    // mode of a new file (0666 less the umask), as `File::create` would give.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    // From here on, dropping `tmp` (an early return) deletes the temporary file.
    let mut tmp = builder.tempfile_in(dir).map_err(io_err)?;
    tmp.write_all(bytes).map_err(io_err)?;
    tmp.as_file().sync_all().map_err(io_err)?;
    tmp.persist(path).map_err(|e| io_err(e.error))?;
    sync_dir(dir);
    Ok(())
}

/// Flushes the directory entry that the rename created.
#[cfg(unix)]
fn sync_dir(dir: &Path) {
    // The checkpoint is complete and in place by now; some file systems refuse
    // to fsync a directory, which is no reason to report the save as failed.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(not(unix))]
fn sync_dir(_: &Path) {}
