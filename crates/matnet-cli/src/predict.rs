//! `matnet predict`: classify a PNG drawn or photographed by a user.

use std::path::{Path, PathBuf};

use matnet::Tensor;
use matnet::data::{digit_input, prepare_digit, read_png};

use matnet::models::{Classifier, load_classifier};

#[derive(clap::Args)]
pub struct PredictArgs {
    /// A checkpoint written by `matnet train`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The image: a PNG of any size, colour or grey, dark digit on light or light on dark.
    pub image: PathBuf,
}

/// A PNG prepared for `model`: its `rows×cols` pixels and the input row
/// `[1, rows·cols]`, normalised as the model was trained.
pub fn image_input(path: &Path, model: &Classifier) -> anyhow::Result<(Vec<u8>, Tensor)> {
    let (rows, cols) = (model.config.rows, model.config.cols);
    let pixels = prepare_digit(path, &read_png(path)?, rows, cols)?;
    let x = digit_input(&pixels, model.config.normalization()?);
    Ok((pixels, x))
}

pub fn run(args: PredictArgs) -> anyhow::Result<()> {
    let model = load_classifier(&args.checkpoint)?;
    let (_, x) = image_input(&args.image, &model)?;
    let probs = probabilities(&model, &x);
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let kind: matnet::data::DatasetKind = model.config.dataset.parse()?;
    let names = kind.class_names();
    println!(
        "{}: predicted {} ({:.1}%)",
        args.image.display(),
        names[order[0]],
        100.0 * probs[order[0]]
    );
    for &c in &order {
        let name = if names[c] == c.to_string() {
            ""
        } else {
            names[c]
        };
        println!("  {c} {name:<12} {:>6.2}%", 100.0 * probs[c]);
    }
    Ok(())
}

/// Class probabilities `softmax(logits)` for one input row `[1, rows·cols]`,
/// without recording a graph.
pub fn probabilities(model: &Classifier, x: &Tensor) -> Vec<f32> {
    let _g = matnet::no_grad();
    model.logits(x).softmax(-1).to_vec()
}

/// The index of the largest value (0 for an empty slice).
pub fn argmax(values: &[f32]) -> usize {
    (0..values.len())
        .max_by(|&a, &b| values[a].total_cmp(&values[b]))
        .unwrap_or(0)
}
