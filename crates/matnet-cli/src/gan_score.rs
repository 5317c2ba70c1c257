//! `matnet gan-score`: how good is a set of generated digits? Fréchet
//! distance, Inception Score, precision and recall, and class shares, all in
//! the feature space of a fixed scoring classifier, with the same numbers
//! for real MNIST images beside them for scale.

use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use matnet::data::{Dataset, DatasetKind, Normalize, Split};
use matnet::metrics::{
    Gaussian, class_shares, frechet_distance, inception_score, precision_recall,
};
use matnet::models::{Classifier, load_classifier};
use matnet::{Rng, Tensor, no_grad};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::samples::{Grid, SIDE, read_samples, unit};

/// The committed scoring classifier: LeNet-5 trained by
/// `matnet train --model lenet --seed 1 --epochs 6` (see `assets/README.md`).
/// Loaded from the repository rather than embedded with `include_bytes!`:
/// the library loads checkpoints from paths only, and a file keeps the
/// binary small and the scorer inspectable with `matnet eval`.
const SCORER_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../assets/scorer-lenet.safetensors"
);

/// Its sha256: scores only compare when every run uses these exact weights.
pub const SCORER_SHA256: &str = "788b181a642b4896184d897e3016b678519b9ed33259ee97419ecc9627a6983f";

/// Nearest neighbours that set each point's ball (Kynkäänniemi et al.).
const K: usize = 3;

/// Images per forward pass of the scorer.
const BATCH: usize = 1000;

#[derive(clap::Args)]
pub struct GanScoreArgs {
    /// The samples: an IDX file of 28×28 images (u8 or f32 in [0, 1],
    /// gzipped or not), a folder of 28×28 PNGs, or one PNG grid (--grid).
    pub samples: PathBuf,
    /// Directory with the MNIST files; the test set is the reference, the
    /// training set gives the real-vs-real baseline (default: $MATNET_DATA,
    /// then the cache).
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Also report the share of samples classified as this digit.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..10))]
    pub digit: Option<u8>,
    /// Read SAMPLES as a PNG grid of ROWSxCOLS 28×28 cells, with no gaps or
    /// 1-pixel gaps between cells (and optionally a 1-pixel border).
    #[arg(long, value_name = "ROWSxCOLS")]
    pub grid: Option<Grid>,
    /// Scoring classifier checkpoint (default: the committed one; its
    /// sha256 must match, so scores compare across runs and machines).
    #[arg(long)]
    pub scorer: Option<PathBuf>,
    /// Print the scores as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The scores of one image set against the reference.
#[derive(Serialize)]
pub struct Scores {
    pub images: usize,
    pub fid: f64,
    pub inception_score: f64,
    pub precision: f64,
    pub recall: f64,
    /// Share of the images classified as each digit, 0 to 9.
    pub class_shares: Vec<f64>,
    /// With `--digit`: the share classified as it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digit_share: Option<f64>,
}

#[derive(Serialize)]
struct Report {
    samples_path: String,
    samples_format: String,
    reference: String,
    reference_images: usize,
    scorer_sha256: &'static str,
    feature_dim: usize,
    k: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    digit: Option<u8>,
    samples: Scores,
    baseline: Scores,
}

/// The scoring classifier: features from its penultimate layer, class
/// probabilities from its last.
pub struct Scorer {
    model: Classifier,
    norm: Normalize,
}

impl Scorer {
    /// Loads the checkpoint at `path` after checking its sha256.
    pub fn load(path: &Path) -> anyhow::Result<Scorer> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "{}: cannot read the scoring classifier (see assets/README.md)",
                path.display()
            )
        })?;
        let sum = format!("{:x}", Sha256::digest(&bytes));
        ensure!(
            sum == SCORER_SHA256,
            "{}: sha256 {sum} is not the scoring classifier's {SCORER_SHA256}; scores would not compare with other runs",
            path.display()
        );
        let model = load_classifier(path)?;
        ensure!(
            model.net.layers().is_some() && (model.config.rows, model.config.cols) == (SIDE, SIDE),
            "{}: the scorer must be a layer stack on {SIDE}×{SIDE} images",
            path.display()
        );
        let norm = model
            .config
            .normalization()
            .with_context(|| path.display().to_string())?;
        Ok(Scorer { model, norm })
    }

    /// Features `[N, D]` (the penultimate layer's activations; D = 84 for
    /// LeNet) and class probabilities `[N, 10]` for `n` images given as
    /// intensities in `[0, 1]`.
    pub fn embed(&self, pixels: &[f32], n: usize) -> (Tensor, Tensor) {
        let _g = no_grad();
        let layers = self.model.net.layers().expect("checked in load").layers();
        let (body, head) = layers.split_at(layers.len() - 1);
        let norm = self.norm;
        let (mut feats, mut probs) = (Vec::new(), Vec::new());
        for start in (0..n).step_by(BATCH) {
            let end = (start + BATCH).min(n);
            let x: Vec<f32> = pixels[start * SIDE * SIDE..end * SIDE * SIDE]
                .iter()
                .map(|&u| norm.apply(u))
                .collect();
            let x = Tensor::from_vec(x, [end - start, SIDE * SIDE]);
            let f = body.iter().fold(x, |h, l| l.forward(&h));
            probs.push(head[0].forward(&f).softmax(-1));
            feats.push(f);
        }
        (Tensor::cat(&feats, 0), Tensor::cat(&probs, 0))
    }
}

fn score(
    feats: &Tensor,
    probs: &Tensor,
    reference: &(Gaussian, Tensor),
    digit: Option<u8>,
) -> Scores {
    let (precision, recall) = precision_recall(&reference.1, feats, K);
    let shares = class_shares(probs);
    Scores {
        images: feats.dims()[0],
        fid: frechet_distance(&Gaussian::fit(feats), &reference.0),
        inception_score: inception_score(probs),
        precision,
        recall,
        digit_share: digit.map(|d| shares[d as usize]),
        class_shares: shares,
    }
}

pub fn run(args: GanScoreArgs) -> anyhow::Result<()> {
    let samples = read_samples(&args.samples, args.grid)?;
    ensure!(
        samples.count > K,
        "{}: {} image{}; gan-score needs at least {} ({K} nearest neighbours per point, and a covariance)",
        args.samples.display(),
        samples.count,
        if samples.count == 1 { "" } else { "s" },
        K + 1
    );
    let scorer_path = args
        .scorer
        .clone()
        .unwrap_or_else(|| PathBuf::from(SCORER_PATH));
    let scorer = Scorer::load(&scorer_path)?;
    let dir = match &args.reference {
        Some(d) => d.clone(),
        None => crate::locate_data(None, DatasetKind::Mnist)?,
    };
    let test = Dataset::load(&dir, DatasetKind::Mnist, Split::Test)?;
    let train = Dataset::load(&dir, DatasetKind::Mnist, Split::Train)?;
    ensure!(
        test.rows() == SIDE && test.cols() == SIDE && test.len() > K,
        "{}: the reference must hold more than {K} {SIDE}×{SIDE} test images",
        dir.display()
    );

    let (ref_feats, _) = scorer.embed(&unit(test.images()), test.len());
    let reference = (Gaussian::fit(&ref_feats), ref_feats);
    let (feats, probs) = scorer.embed(&samples.pixels, samples.count);
    let sample_scores = score(&feats, &probs, &reference, args.digit);

    // Real against real: a seeded random subset of the training set, as
    // large as the sample set (at most the whole training set).
    let m = samples.count.min(train.len());
    let mut order: Vec<usize> = (0..train.len()).collect();
    Rng::new(0).shuffle(&mut order);
    let subset: Vec<f32> = order[..m]
        .iter()
        .flat_map(|&i| unit(train.image(i)))
        .collect();
    let (bf, bp) = scorer.embed(&subset, m);
    let baseline = score(&bf, &bp, &reference, args.digit);

    let report = Report {
        samples_path: args.samples.display().to_string(),
        samples_format: samples.format,
        reference: dir.display().to_string(),
        reference_images: test.len(),
        scorer_sha256: SCORER_SHA256,
        feature_dim: reference.1.dims()[1],
        k: K,
        digit: args.digit,
        samples: sample_scores,
        baseline,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn print_table(r: &Report) {
    println!(
        "samples:   {} images from {} ({})",
        r.samples.images, r.samples_path, r.samples_format
    );
    println!(
        "reference: MNIST test set, {} images, in {}",
        r.reference_images, r.reference
    );
    println!(
        "scorer:    LeNet-5, {}-dimensional penultimate features, sha256 {}…",
        r.feature_dim,
        &r.scorer_sha256[..12]
    );
    println!(
        "baseline:  {} MNIST training images (seeded random subset) against the same test set\n",
        r.baseline.images
    );
    let (s, b) = (&r.samples, &r.baseline);
    println!("{:<28} {:>10} {:>10}", "", "samples", "baseline");
    println!(
        "{:<28} {:>10.3} {:>10.3}",
        "FID (lower is better)", s.fid, b.fid
    );
    println!(
        "{:<28} {:>10.3} {:>10.3}",
        "Inception Score (max 10)", s.inception_score, b.inception_score
    );
    println!(
        "{:<28} {:>10.3} {:>10.3}",
        format!("precision (k = {})", r.k),
        s.precision,
        b.precision
    );
    println!(
        "{:<28} {:>10.3} {:>10.3}",
        format!("recall (k = {})", r.k),
        s.recall,
        b.recall
    );
    println!("class shares:");
    for d in 0..s.class_shares.len() {
        println!(
            "  {:<26} {:>9.1}% {:>9.1}%",
            d,
            100.0 * s.class_shares[d],
            100.0 * b.class_shares[d]
        );
    }
    if let (Some(d), Some(sd), Some(bd)) = (r.digit, s.digit_share, b.digit_share) {
        println!(
            "{:<28} {:>9.1}% {:>9.1}%",
            format!("classified as {d}"),
            100.0 * sd,
            100.0 * bd
        );
    }
}
