//! MNIST and Fashion-MNIST: four IDX files per dataset, held in memory as bytes.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::idx::read_idx;
use super::location::advice;
use crate::error::{Error, Result};

/// Classes in both datasets.
const NUM_CLASSES: usize = 10;

const DIGIT_NAMES: [&str; NUM_CLASSES] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Fashion-MNIST's labels, in class-id order (Xiao, Rasul and Vollgraf, 2017).
const FASHION_NAMES: [&str; NUM_CLASSES] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Which dataset: both use the same file names and IDX format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// Handwritten digits 0–9 (LeCun, Cortes and Burges).
    Mnist,
    /// Zalando's 28×28 grey clothing images, 10 classes.
    FashionMnist,
}

impl DatasetKind {
    /// The name used on the command line and in directory names:
    /// `"mnist"` or `"fashion-mnist"`.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
        }
    }

    /// The environment variable naming this dataset's directory:
    /// `MATNET_DATA` for MNIST, `MATNET_FASHION_DATA` for Fashion-MNIST.
    pub fn env_var(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "MATNET_DATA",
            DatasetKind::FashionMnist => "MATNET_FASHION_DATA",
        }
    }

    /// The class names, indexed by label.
    pub fn class_names(self) -> &'static [&'static str] {
        match self {
            DatasetKind::Mnist => &DIGIT_NAMES,
            DatasetKind::FashionMnist => &FASHION_NAMES,
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetKind {
    type Err = Error;

    /// Parses `"mnist"` or `"fashion-mnist"` (case-insensitive; `fashion_mnist`
    /// and `fashion` are accepted too).
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "mnist" => Ok(DatasetKind::Mnist),
            "fashion-mnist" | "fashion_mnist" | "fashionmnist" | "fashion" => {
                Ok(DatasetKind::FashionMnist)
            }
            _ => Err(Error::Invalid(format!(
                "unknown dataset {s:?}: expected \"mnist\" or \"fashion-mnist\""
            ))),
        }
    }
}

/// The training or the test half of a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// 60,000 images in both datasets.
    Train,
    /// 10,000 images in both datasets.
    Test,
}

impl Split {
    /// The prefix of the split's file names: `"train"` or `"t10k"`.
    pub fn file_prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }

    /// The base names (without `.gz`) of the split's image and label files.
    pub fn file_names(self) -> [String; 2] {
        let p = self.file_prefix();
        [
            format!("{p}-images-idx3-ubyte"),
            format!("{p}-labels-idx1-ubyte"),
        ]
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Test => "test",
        })
    }
}

/// The base names (without `.gz`) of the four files of a dataset.
pub fn dataset_file_names() -> [String; 4] {
    let [a, b] = Split::Train.file_names();
    let [c, d] = Split::Test.file_names();
    [a, b, c, d]
}

/// Finds `dir/name.gz` or else `dir/name`; `None` when neither exists.
pub fn find_file(dir: &Path, base: &str) -> Option<PathBuf> {
    [dir.join(format!("{base}.gz")), dir.join(base)]
        .into_iter()
        .find(|p| p.is_file())
}

/// Images and labels of one split, as bytes: image `i` is
/// `rows × cols` grey levels (0 = background) and its label is a class id.
#[derive(Clone, Debug)]
pub struct Dataset {
    images: Vec<u8>,
    labels: Vec<u8>,
    n: usize,
    rows: usize,
    cols: usize,
    num_classes: usize,
    kind: DatasetKind,
}

impl Dataset {
    /// Loads one split from `dir`, which holds `train-images-idx3-ubyte`,
    /// `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
    /// `t10k-labels-idx1-ubyte`, each gzip-compressed (`.gz`, preferred) or raw.
    ///
    /// Errors name the files: a missing file, a bad IDX file, an image count
    /// that differs from the label count, a label outside `0..10`.
    pub fn load(dir: &Path, kind: DatasetKind, split: Split) -> Result<Dataset> {
        let [images, labels] = split.file_names().map(|base| {
            find_file(dir, &base).ok_or_else(|| {
                Error::Invalid(format!(
                    "{kind} {split} set: neither {} nor {} exists. {}",
                    dir.join(format!("{base}.gz")).display(),
                    dir.join(&base).display(),
                    advice(kind),
                ))
            })
        });
        Dataset::from_idx_files(&images?, &labels?, kind)
    }

    /// Loads an image file (`[N, rows, cols]`) and a label file (`[N]`) given
    /// by path.
    pub fn from_idx_files(images: &Path, labels: &Path, kind: DatasetKind) -> Result<Dataset> {
        let img = read_idx(images)?;
        let lab = read_idx(labels)?;
        let &[n, rows, cols] = img.dims.as_slice() else {
            return Err(Error::format(
                images,
                format!(
                    "expected 3 dimensions [images, rows, cols], found {} ({:?})",
                    img.dims.len(),
                    img.dims
                ),
            ));
        };
        let &[n_labels] = lab.dims.as_slice() else {
            return Err(Error::format(
                labels,
                format!(
                    "expected 1 dimension [labels], found {} ({:?})",
                    lab.dims.len(),
                    lab.dims
                ),
            ));
        };
        if n != n_labels {
            return Err(Error::format(
                labels,
                format!(
                    "holds {n_labels} labels but {} holds {n} images",
                    images.display()
                ),
            ));
        }
        Dataset::from_raw(kind, img.data, lab.data, rows, cols)
            .map_err(|e| Error::format(labels, e.to_string()))
    }

    /// A dataset from bytes already in memory: `images` holds
    /// `labels.len()` images of `rows × cols` bytes each, row-major.
    ///
    /// Errors when the lengths disagree or a label is not below 10.
    pub fn from_raw(
        kind: DatasetKind,
        images: Vec<u8>,
        labels: Vec<u8>,
        rows: usize,
        cols: usize,
    ) -> Result<Dataset> {
        let n = labels.len();
        if Some(images.len()) != n.checked_mul(rows).and_then(|x| x.checked_mul(cols)) {
            return Err(Error::Invalid(format!(
                "{} image bytes do not make {n} images of {rows}×{cols}",
                images.len()
            )));
        }
        if let Some(i) = labels.iter().position(|&l| l as usize >= NUM_CLASSES) {
            return Err(Error::Invalid(format!(
                "label {} at index {i} is out of range: {kind} has {NUM_CLASSES} classes, 0 to {}",
                labels[i],
                NUM_CLASSES - 1
            )));
        }
        Ok(Dataset {
            images,
            labels,
            n,
            rows,
            cols,
            num_classes: NUM_CLASSES,
            kind,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.n
    }

    /// `true` when the dataset holds no images.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Image height in pixels (28).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Image width in pixels (28).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Pixels per image, `rows × cols` (784): the `D` of a `[N, D]` batch.
    pub fn image_size(&self) -> usize {
        self.rows * self.cols
    }

    /// Number of classes (10).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Which dataset this is.
    pub fn kind(&self) -> DatasetKind {
        self.kind
    }

    /// The class names, indexed by label: the digits `"0"`..`"9"` for MNIST,
    /// `"T-shirt/top"`..`"Ankle boot"` for Fashion-MNIST.
    pub fn class_names(&self) -> &'static [&'static str] {
        self.kind.class_names()
    }

    /// The label of image `i`. Panics when `i >= len()`.
    pub fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }

    /// All labels, in order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Image `i`: `rows × cols` grey levels, row-major. Panics when `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        assert!(
            i < self.n,
            "image: index {i} out of range for {} images",
            self.n
        );
        let d = self.image_size();
        &self.images[i * d..(i + 1) * d]
    }

    /// All images, concatenated: `len() × image_size()` bytes.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// Images `range` as a new dataset (a copy). Panics when the range is
    /// reversed or runs past `len()`, like slice indexing.
    pub fn subset(&self, range: Range<usize>) -> Dataset {
        assert!(
            range.start <= range.end && range.end <= self.n,
            "subset: range {range:?} out of bounds for {} images",
            self.n
        );
        let d = self.image_size();
        Dataset {
            images: self.images[range.start * d..range.end * d].to_vec(),
            labels: self.labels[range.clone()].to_vec(),
            n: range.len(),
            rows: self.rows,
            cols: self.cols,
            num_classes: self.num_classes,
            kind: self.kind,
        }
    }

    /// The first `n` images (all of them when `n >= len()`), like `Iterator::take`.
    pub fn take(&self, n: usize) -> Dataset {
        self.subset(0..n.min(self.n))
    }

    /// The first `n` images and the rest, e.g. 42,000 into 33,600 training and
    /// 8,400 validation images. Panics when `n > len()`, like `slice::split_at`.
    pub fn split_at(&self, n: usize) -> (Dataset, Dataset) {
        assert!(
            n <= self.n,
            "split_at: {n} is past the end of {} images",
            self.n
        );
        (self.subset(0..n), self.subset(n..self.n))
    }

    /// Number of images of each class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }
}
