//! The JSON API: request bodies, their checks, and the work each endpoint
//! does on an inference thread.

use matnet::models::{Classifier, Gan, Model};
use matnet::{Rng, Tensor};
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::pool::Models;
use super::views::{Explanation, explain};
use crate::generate::{generate, lerp, to_images};
use crate::predict::{argmax, probabilities};
use matnet::data::{decode_png, prepare_digit};

/// Longest side of an uploaded PNG: the server refuses larger images before
/// decoding them, so concurrent requests cannot claim the library's whole
/// per-image allowance each.
const MAX_PNG_SIDE: u32 = 4096;

/// Width and height from a PNG's IHDR chunk (bytes 16..24), if present.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let be = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    Some((be(16)?, be(20)?))
}

/// Most images one generate request may ask for.
pub const MAX_IMAGES: usize = 256;

/// The body of `/api/predict` and `/api/explain` when it is JSON.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputRequest {
    /// Served model name (default: the first classifier).
    pub model: Option<String>,
    /// The `rows·cols` pixels row-major, ink 1 on background 0, already
    /// cropped and centred as MNIST digits are.
    pub pixels: Vec<f32>,
    /// Explain only: include every parameter (default true).
    pub weights: Option<bool>,
}

/// An input as it arrived: grey levels in `[0, 1]`, or PNG bytes still to
/// be decoded (on the inference thread: decoding is CPU work).
pub enum Input {
    Pixels(Vec<f32>),
    Png(Vec<u8>),
}

/// `/api/predict`'s answer.
#[derive(Serialize)]
pub struct Prediction {
    pub model: String,
    pub class: usize,
    pub label: String,
    pub probabilities: Vec<f32>,
}

/// `/api/explain`'s answer.
#[derive(Serialize)]
pub struct Explained {
    pub model: String,
    pub label: String,
    #[serde(flatten)]
    pub explanation: Explanation,
}

/// The body of `/api/generate`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    /// Served GAN name (default: the first GAN).
    pub model: Option<String>,
    /// Seed of the noise: the same seed gives the same images as
    /// `matnet generate --seed`.
    #[serde(default)]
    pub seed: u64,
    /// Images to generate (default 16).
    pub count: Option<usize>,
    /// Conditional models: the class to draw (default: 0, 1, 2, ... in turn).
    pub digit: Option<usize>,
    /// Walk from seed `seed`'s noise vector to seed `to`'s instead: one
    /// image per `t` in `[0, 1]`.
    pub interpolate: Option<Interpolate>,
}

/// A walk through latent space between two seeds' noise vectors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interpolate {
    /// The seed of the far end.
    pub to: u64,
    /// Positions on the line, 0 at `seed`, 1 at `to`.
    pub t: Vec<f32>,
}

/// `/api/generate`'s answer: grey bytes, 0 black, 255 white.
#[derive(Serialize)]
pub struct Generated {
    pub model: String,
    pub rows: usize,
    pub cols: usize,
    /// The class of each image (conditional models), else `null`.
    pub labels: Option<Vec<usize>>,
    pub images: Vec<Vec<u8>>,
}

/// The served model called `name`, or the first one `pick` accepts.
fn find<'a, T>(
    models: &'a Models,
    order: &[String],
    name: Option<&str>,
    pick: impl Fn(&'a Model) -> Option<&'a T>,
    what: &str,
) -> Result<(String, &'a T), ApiError> {
    match name {
        Some(n) => {
            let model = models
                .get(n)
                .ok_or_else(|| ApiError::not_found(format!("no model named '{n}'")))?;
            let m =
                pick(model).ok_or_else(|| ApiError::bad(format!("model '{n}' is not {what}")))?;
            Ok((n.to_string(), m))
        }
        None => order
            .iter()
            .find_map(|n| Some((n.clone(), pick(models.get(n)?)?)))
            .ok_or_else(|| ApiError::not_found(format!("no {what} is served"))),
    }
}

fn classifier(m: &Model) -> Option<&Classifier> {
    match m {
        Model::Classifier(c) => Some(c),
        _ => None,
    }
}

fn gan(m: &Model) -> Option<&Gan> {
    match m {
        Model::Gan(g) => Some(g),
        _ => None,
    }
}

/// The checked input of `model`: its grey levels and the normalised row `[1, rows·cols]`.
fn model_input(model: &Classifier, input: Input) -> Result<(Vec<f32>, Tensor), ApiError> {
    let (rows, cols) = (model.config.rows, model.config.cols);
    let grey: Vec<f32> = match input {
        Input::Pixels(p) => {
            if p.len() != rows * cols {
                return Err(ApiError::bad(format!(
                    "pixels: expected {} values ({rows}×{cols}), got {}",
                    rows * cols,
                    p.len()
                )));
            }
            if let Some(i) = p.iter().position(|v| !(0.0..=1.0).contains(v)) {
                return Err(ApiError::bad(format!(
                    "pixels[{i}] = {}: values must be in [0, 1]",
                    p[i]
                )));
            }
            p
        }
        Input::Png(bytes) => {
            let name = std::path::Path::new("the uploaded PNG");
            if let Some((w, h)) = png_size(&bytes)
                && w.max(h) > MAX_PNG_SIDE
            {
                return Err(ApiError::bad(format!(
                    "the PNG is {w}×{h} pixels; at most {MAX_PNG_SIDE} a side is read"
                )));
            }
            let img = decode_png(name, &bytes).map_err(|e| ApiError::bad(e.to_string()))?;
            let bytes =
                prepare_digit(name, &img, rows, cols).map_err(|e| ApiError::bad(e.to_string()))?;
            bytes.iter().map(|&b| b as f32 / 255.0).collect()
        }
    };
    let norm = model
        .config
        .normalization()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let v: Vec<f32> = grey.iter().map(|&g| norm.apply(g)).collect();
    Ok((grey, Tensor::from_vec(v, [1, rows * cols])))
}

fn label_of(model: &Classifier, class: usize) -> String {
    let names = model
        .config
        .dataset
        .parse::<matnet::data::DatasetKind>()
        .map(|k| k.class_names());
    match names {
        Ok(n) if class < n.len() => n[class].to_string(),
        _ => class.to_string(),
    }
}

/// `/api/predict` on a worker.
pub fn predict(
    models: &Models,
    order: &[String],
    name: Option<&str>,
    input: Input,
) -> Result<Prediction, ApiError> {
    let (name, model) = find(models, order, name, classifier, "a classifier")?;
    let (_, x) = model_input(model, input)?;
    let probs = probabilities(model, &x);
    let class = argmax(&probs);
    Ok(Prediction {
        model: name,
        class,
        label: label_of(model, class),
        probabilities: probs,
    })
}

/// `/api/explain` on a worker.
pub fn explain_input(
    models: &Models,
    order: &[String],
    name: Option<&str>,
    input: Input,
    weights: bool,
) -> Result<Explained, ApiError> {
    let (name, model) = find(models, order, name, classifier, "a classifier")?;
    let (grey, x) = model_input(model, input)?;
    let explanation = explain(model, &x, &grey, weights);
    Ok(Explained {
        model: name,
        label: label_of(model, explanation.class),
        explanation,
    })
}

/// `/api/generate` on a worker.
pub fn generate_images(
    models: &Models,
    order: &[String],
    req: GenerateRequest,
) -> Result<Generated, ApiError> {
    let (name, gan) = find(models, order, req.model.as_deref(), gan, "a GAN")?;
    let cfg = &gan.config;
    if let Some(d) = req.digit {
        if !cfg.conditional {
            return Err(ApiError::bad(format!(
                "digit: model '{name}' is not conditional"
            )));
        }
        if d >= cfg.classes {
            return Err(ApiError::bad(format!(
                "digit: must be below {}, got {d}",
                cfg.classes
            )));
        }
    }
    let noise = |seed: u64, n: usize| gan.noise(n, &mut Rng::new(seed));
    let z = match &req.interpolate {
        Some(walk) => {
            if walk.t.is_empty() || walk.t.len() > MAX_IMAGES {
                return Err(ApiError::bad(format!(
                    "interpolate.t: give 1 to {MAX_IMAGES} positions"
                )));
            }
            if let Some(t) = walk.t.iter().find(|t| !(0.0..=1.0).contains(*t)) {
                return Err(ApiError::bad(format!(
                    "interpolate.t: {t} is outside [0, 1]"
                )));
            }
            lerp(
                &noise(req.seed, 1).to_vec(),
                &noise(walk.to, 1).to_vec(),
                &walk.t,
            )
        }
        None => {
            let count = req.count.unwrap_or(16);
            if count == 0 || count > MAX_IMAGES {
                return Err(ApiError::bad(format!(
                    "count: must be 1 to {MAX_IMAGES}, got {count}"
                )));
            }
            noise(req.seed, count)
        }
    };
    let n = z.dims()[0];
    let labels: Vec<usize> = (0..n)
        .map(|i| match req.digit {
            Some(d) => d,
            None if req.interpolate.is_some() => 0,
            None => i % cfg.classes,
        })
        .collect();
    let pixels = generate(&gan.generator, &gan.config, &z, &labels);
    Ok(Generated {
        model: name,
        rows: cfg.rows,
        cols: cfg.cols,
        labels: cfg.conditional.then_some(labels),
        images: to_images(&pixels, cfg.rows * cfg.cols),
    })
}
