//! `matnet eval`, and the evaluation used after training.

use std::path::{Path, PathBuf};

use anyhow::Context;
use matnet::Module;
use matnet::data::{Dataset, DatasetKind, Normalize, Split, batches};
use matnet::nn::loss::cross_entropy;

use crate::models::{Model, ModelConfig};
use crate::train::parse_normalize;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A checkpoint written by `matnet train`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Directory holding the dataset's IDX files (default: $MATNET_DATA, then the cache).
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// Loss, accuracy and confusion matrix of a model on a dataset.
pub struct Evaluation {
    pub loss: f32,
    pub accuracy: f32,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

/// Evaluates in batches without recording a graph.
/// Images per evaluation step. Large enough to keep the products efficient,
/// small enough that a conv model's activations stay in the allocator's heap
/// (at 1,000 images the `cnn` model's were 147 MB each, fresh `mmap`s whose
/// page faults cost more than the convolutions).
const EVAL_BATCH: usize = 250;

pub fn evaluate(model: &Model, ds: &Dataset, normalize: Normalize) -> Evaluation {
    let _no_grad = matnet::no_grad();
    let c = model.config.classes;
    let mut confusion = vec![vec![0usize; c]; c];
    let (mut loss, mut n) = (0.0f64, 0usize);
    for b in batches(ds, EVAL_BATCH, normalize, None) {
        let logits = model.logits(&b.images);
        let bn = b.labels.numel();
        loss += cross_entropy(&logits, &b.labels).item() as f64 * bn as f64;
        n += bn;
        let pred = logits.argmax(-1, false).to_vec();
        for (&p, &t) in pred.iter().zip(&b.labels.to_vec()) {
            confusion[t as usize][p as usize] += 1;
        }
    }
    let hits: usize = (0..c).map(|i| confusion[i][i]).sum();
    Evaluation {
        loss: (loss / n.max(1) as f64) as f32,
        accuracy: hits as f32 / n.max(1) as f32,
        confusion,
    }
}

/// Per-class accuracy and the confusion matrix, as text.
pub fn print_report(e: &Evaluation, class_names: &[&str]) {
    println!("per-class accuracy:");
    for (i, row) in e.confusion.iter().enumerate() {
        let total: usize = row.iter().sum();
        // MNIST's class names are its digits; print a name only when it adds something.
        let name = class_names
            .get(i)
            .copied()
            .filter(|n| *n != i.to_string())
            .unwrap_or("");
        println!(
            "  {i} {name:<12} {:>6.2}%  ({}/{})",
            100.0 * row[i] as f32 / total.max(1) as f32,
            row[i],
            total
        );
    }
    println!("confusion matrix (rows: true class, columns: predicted):");
    print!("      ");
    for j in 0..e.confusion.len() {
        print!("{j:>6}");
    }
    println!();
    for (i, row) in e.confusion.iter().enumerate() {
        print!("  {i:>3} ");
        for v in row {
            print!("{v:>6}");
        }
        println!();
    }
}

/// Rebuilds a model from a checkpoint (configuration from its metadata).
pub fn load_model(path: &Path) -> anyhow::Result<Model> {
    let ckpt = matnet::io::checkpoint::load(path)?;
    let json = ckpt.metadata.get("matnet.config").with_context(|| {
        format!(
            "{}: no matnet.config metadata; was it written by `matnet train`?",
            path.display()
        )
    })?;
    let config = ModelConfig::from_json(json).with_context(|| path.display().to_string())?;
    let mut model = Model::new(config, 0)?;
    matnet::io::checkpoint::load_into(path, &model.net.state_dict())?;
    model.net.set_training(false);
    Ok(model)
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let model = load_model(&args.checkpoint)?;
    let kind: DatasetKind = model.config.dataset.parse()?;
    let dir = crate::locate_data(args.data.as_deref(), kind)?;
    let test = Dataset::load(&dir, kind, Split::Test)?;
    anyhow::ensure!(
        test.rows() == model.config.rows && test.cols() == model.config.cols,
        "the model expects {}×{} images but the test set has {}×{}",
        model.config.rows,
        model.config.cols,
        test.rows(),
        test.cols()
    );
    let e = evaluate(&model, &test, parse_normalize(&model.config.normalize)?);
    println!(
        "{}: {} on {} test images of {kind}: accuracy {:.2}%, loss {:.4}",
        args.checkpoint.display(),
        model.config.arch.name(),
        test.len(),
        100.0 * e.accuracy,
        e.loss
    );
    print_report(&e, test.class_names());
    Ok(())
}
