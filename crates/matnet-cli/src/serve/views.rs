//! What `POST /api/explain` returns: one input's path through a
//! classifier as matrices, each with its name and shape, so the page can
//! draw the network as the matrices it is.

use matnet::models::{Classifier, Net};
use matnet::nn::Module;
use matnet::{Tensor, no_grad};
use serde::Serialize;

use crate::inspect::{attention_received, conv_layers};
use crate::predict::{argmax, probabilities};

/// A named array with its shape, values row-major.
#[derive(Serialize)]
pub struct Matrix {
    /// What it is (`0.weight`, `layer 3 Conv2d(...)`, ...).
    pub name: String,
    /// How to read it: `image` `[rows, cols]`; `vector` `[D]`; `maps`
    /// `[C, H, W]` (feature maps); `sequence` `[T, D]` (one row per time
    /// step or patch); `attention` `[heads, P, P]` (row attends to
    /// column); `weight` (a parameter, any rank).
    pub kind: &'static str,
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f32>,
}

impl Matrix {
    fn new(name: impl Into<String>, kind: &'static str, t: &Tensor) -> Matrix {
        // Every activation here is for one input: drop the batch dimension.
        let dims = t.dims();
        let shape = if kind != "weight" && dims.len() > 1 && dims[0] == 1 {
            dims[1..].to_vec()
        } else {
            dims.to_vec()
        };
        Matrix {
            name: name.into(),
            kind,
            shape,
            data: t.to_vec(),
        }
    }
}

/// One input's path through a classifier.
#[derive(Serialize)]
pub struct Explanation {
    /// `softmax(logits)`, one per class.
    pub probabilities: Vec<f32>,
    /// The most probable class.
    pub class: usize,
    /// The input, then what each layer made of it, in order.
    pub activations: Vec<Matrix>,
    /// Every parameter (empty unless asked for: they do not depend on the input).
    pub weights: Vec<Matrix>,
}

/// Runs `x` `[1, rows·cols]` through `model`, keeping every intermediate
/// result the architecture has: each layer's output of a stack (conv
/// outputs as feature maps), the seed network's hidden layer, a recurrent
/// network's hidden state at every row, a vit's patch tokens and each
/// layer's attention maps.
pub fn explain(model: &Classifier, x: &Tensor, pixels: &[f32], weights: bool) -> Explanation {
    let _g = no_grad();
    let (rows, cols) = (model.config.rows, model.config.cols);
    let input = Tensor::from_vec(pixels.to_vec(), [rows, cols]);
    let mut acts = vec![Matrix::new("input", "image", &input)];
    match &model.net {
        Net::Layers(seq) => {
            let convs: Vec<usize> = conv_layers(seq).iter().map(|(i, _)| *i).collect();
            for (i, (layer, y)) in seq.layers().iter().zip(seq.forward_all(x)).enumerate() {
                let kind = if y.rank() == 4 { "maps" } else { "vector" };
                let what = if convs.contains(&i) {
                    " feature maps"
                } else {
                    ""
                };
                let name = format!("layer {i} {}{what}", layer.describe());
                acts.push(Matrix::new(name, kind, &y));
            }
        }
        Net::SeedMlp(m) => {
            // The fused network keeps its layers private; its parameters are
            // the public view, and a1 = relu(W1·x + b1) is one line of them.
            let p = m.named_parameters();
            let get = |n: &str| p.iter().find(|(k, _)| k == n).map(|(_, t)| t.clone());
            if let (Some(w1), Some(b1)) = (get("0.weight"), get("0.bias")) {
                let a1 = x.matmul(&w1.t()).add(&b1).relu();
                acts.push(Matrix::new("a1 = relu(W1·x + b1)", "vector", &a1));
            }
            let logits = model.logits(x);
            acts.push(Matrix::new("z2 = W2·a1 + b2 (logits)", "vector", &logits));
        }
        Net::Rows(r) => {
            let seq = x.reshape([1, rows, cols]);
            let (hidden, _) = r.rnn.forward_seq(&seq, None);
            let name = format!("hidden state h_t at each of the {rows} rows (last layer)");
            acts.push(Matrix::new(name, "sequence", &hidden));
            acts.push(Matrix::new("logits = fc(h_T)", "vector", &model.logits(x)));
        }
        Net::Vit(v) => {
            let tokens = v.pos.forward(&v.embed.forward(&v.patches(x)));
            acts.push(Matrix::new(
                "patch tokens (embedding + position)",
                "sequence",
                &tokens,
            ));
            let (logits, maps) = v.forward_attn(x);
            for (k, a) in maps.iter().enumerate() {
                let name = format!("layer {} attention softmax(Q·Kᵀ/√d) per head", k + 1);
                acts.push(Matrix::new(name, "attention", a));
                // Drawn on the patch grid, so it lines up with the digit.
                let (gh, gw) = (rows / v.patch_size(), cols / v.patch_size());
                let received = attention_received(a).reshape([gh, gw]);
                let name = format!("layer {} attention received per patch", k + 1);
                acts.push(Matrix::new(name, "image", &received));
            }
            acts.push(Matrix::new("logits", "vector", &logits));
        }
        Net::Joint(j) => {
            // The recogniser's stem reads [-1, 1] images, as in training.
            let signed = x.affine(2.0, -1.0);
            let stem = &j.discriminator.stem;
            for (i, (layer, y)) in stem
                .layers()
                .iter()
                .zip(stem.forward_all(&signed))
                .enumerate()
            {
                let kind = if y.rank() == 4 { "maps" } else { "vector" };
                let name = format!("stem layer {i} {}", layer.describe());
                acts.push(Matrix::new(name, kind, &y));
            }
            acts.push(Matrix::new("class logits", "vector", &model.logits(x)));
        }
    }
    let probs = probabilities(model, x);
    let weights = if weights {
        (model.net.named_parameters().iter())
            .map(|(n, t)| Matrix::new(n.clone(), "weight", t))
            .collect()
    } else {
        Vec::new()
    };
    Explanation {
        class: argmax(&probs),
        probabilities: probs,
        activations: acts,
        weights,
    }
}
