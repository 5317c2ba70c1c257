//! `matnet eval`, and the evaluation used after training.

use std::path::PathBuf;

use matnet::data::{Dataset, DatasetKind, Split};
use matnet::models::load_classifier;
use matnet::train::{Evaluation, evaluate};

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A checkpoint written by `matnet train`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Directory holding the dataset's IDX files (default: $MATNET_DATA, then the cache).
    #[arg(long)]
    pub data: Option<PathBuf>,
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

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let model = load_classifier(&args.checkpoint)?;
    let kind: DatasetKind = model.config.dataset.parse()?;
    // The test set alone: a directory holding only the two t10k files will do.
    let dir = crate::locate_splits(args.data.as_deref(), kind, &[Split::Test])?;
    let test = Dataset::load(&dir, kind, Split::Test)?;
    anyhow::ensure!(
        test.rows() == model.config.rows && test.cols() == model.config.cols,
        "the model expects {}×{} images but the test set has {}×{}",
        model.config.rows,
        model.config.cols,
        test.rows(),
        test.cols()
    );
    let e = evaluate(
        &model.net,
        model.config.classes,
        &test,
        model.config.normalization()?,
    );
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
