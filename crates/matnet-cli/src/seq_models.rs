//! Sequence models over images: recurrent networks that read a digit as a
//! sequence of rows, and a small vision transformer over patches.

use matnet::nn::{
    Activation, EncoderLayerConfig, Gru, LearnedPositionalEncoding, Linear, Lstm, Module, Rnn,
    RnnConfig, TransformerEncoder, prefixed,
};
use matnet::{Rng, Tensor};

/// Which recurrent layer reads the rows.
pub enum Cell {
    Rnn(Rnn),
    Lstm(Lstm),
    Gru(Gru),
}

impl Cell {
    fn module(&self) -> &dyn Module {
        match self {
            Cell::Rnn(m) => m,
            Cell::Lstm(m) => m,
            Cell::Gru(m) => m,
        }
    }

    /// The last layer's final hidden state `[N, H]`.
    fn last_hidden(&self, x: &Tensor) -> Tensor {
        let h_n = match self {
            Cell::Rnn(m) => m.forward_with_state(x, None).1,
            Cell::Lstm(m) => m.forward_with_state(x, None).1.0,
            Cell::Gru(m) => m.forward_with_state(x, None).1,
        };
        let (l, n, h) = (h_n.dims()[0], h_n.dims()[1], h_n.dims()[2]);
        h_n.narrow(0, l - 1, 1).reshape([n, h])
    }
}

/// A digit read as `rows` time steps of `cols` features (top to bottom), a
/// recurrent stack, and a linear classifier on the last hidden state:
/// `[N, rows·cols] -> [N, rows, cols] -> h_T [N, H] -> [N, classes]`.
pub struct RowReader {
    pub cell: Cell,
    pub fc: Linear,
    rows: usize,
    cols: usize,
}

/// The recurrent layer kinds `RowReader` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    Rnn,
    Lstm,
    Gru,
}

impl RowReader {
    /// `layers` stacked layers of `hidden` units.
    pub fn new(
        kind: CellKind,
        (rows, cols): (usize, usize),
        hidden: usize,
        layers: usize,
        classes: usize,
        rng: &mut Rng,
    ) -> RowReader {
        let cfg = RnnConfig {
            num_layers: layers,
            batch_first: true,
            ..Default::default()
        };
        let cell = match kind {
            CellKind::Rnn => Cell::Rnn(Rnn::new(cols, hidden, cfg, rng)),
            CellKind::Lstm => Cell::Lstm(Lstm::new(cols, hidden, cfg, rng)),
            CellKind::Gru => Cell::Gru(Gru::new(cols, hidden, cfg, rng)),
        };
        RowReader {
            cell,
            fc: Linear::new(hidden, classes, rng),
            rows,
            cols,
        }
    }
}

impl Module for RowReader {
    fn forward(&self, x: &Tensor) -> Tensor {
        let seq = x.reshape([x.dims()[0], self.rows, self.cols]);
        self.fc.forward(&self.cell.last_hidden(&seq))
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("rnn", self.cell.module().named_parameters());
        p.extend(prefixed("fc", self.fc.named_parameters()));
        p
    }

    fn describe(&self) -> String {
        format!(
            "RowReader[{} rows of {}: {}, {}]",
            self.rows,
            self.cols,
            self.cell.module().describe(),
            self.fc.describe()
        )
    }
}

/// A small vision transformer: the image cut into `patch×patch` patches,
/// each flattened and projected to width `E` (`[N, P, patch²]·W_embᵀ`),
/// learned position embeddings added, a pre-norm transformer encoder, a
/// final layer norm, the mean over patches, and a linear classifier.
pub struct Vit {
    pub embed: Linear,
    pub pos: LearnedPositionalEncoding,
    pub encoder: TransformerEncoder,
    pub fc: Linear,
    rows: usize,
    cols: usize,
    patch: usize,
}

/// The shape of a [`Vit`].
pub struct VitConfig {
    /// Patch side in pixels (must divide the image sides).
    pub patch: usize,
    /// Model width `E`.
    pub dim: usize,
    /// Encoder layers.
    pub depth: usize,
    /// Attention heads.
    pub heads: usize,
    /// Dropout in the encoder.
    pub dropout: f32,
}

impl Vit {
    pub fn new((rows, cols): (usize, usize), c: &VitConfig, classes: usize, rng: &mut Rng) -> Vit {
        let tokens = (rows / c.patch) * (cols / c.patch);
        let layer = EncoderLayerConfig {
            dim_feedforward: 2 * c.dim,
            dropout: c.dropout,
            activation: Activation::Gelu,
            norm_first: true,
            ..EncoderLayerConfig::new(c.dim, c.heads)
        };
        Vit {
            embed: Linear::new(c.patch * c.patch, c.dim, rng),
            pos: LearnedPositionalEncoding::new(tokens, c.dim, rng),
            encoder: TransformerEncoder::new(&layer, c.depth, true, rng),
            fc: Linear::new(c.dim, classes, rng),
            rows,
            cols,
            patch: c.patch,
        }
    }

    /// Patch side in pixels.
    pub fn patch_size(&self) -> usize {
        self.patch
    }

    /// `[N, rows·cols] -> [N, P, patch²]`, patches in row-major order.
    pub fn patches(&self, x: &Tensor) -> Tensor {
        let (n, p) = (x.dims()[0], self.patch);
        let (gh, gw) = (self.rows / p, self.cols / p);
        x.reshape([n, gh, p, gw, p])
            .permute(&[0, 1, 3, 2, 4])
            .reshape([n, gh * gw, p * p])
    }

    /// Class scores and each encoder layer's attention weights `[N, H, P, P]`.
    pub fn forward_attn(&self, x: &Tensor) -> (Tensor, Vec<Tensor>) {
        let tokens = self.pos.forward(&self.embed.forward(&self.patches(x)));
        let (h, maps) = self.encoder.forward_attn(&tokens, None, None);
        (self.fc.forward(&h.mean(&[1], false)), maps)
    }
}

impl Module for Vit {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_attn(x).0
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("embed", self.embed.named_parameters());
        p.extend(prefixed("pos", self.pos.named_parameters()));
        p.extend(prefixed("encoder", self.encoder.named_parameters()));
        p.extend(prefixed("fc", self.fc.named_parameters()));
        p
    }

    fn set_training(&mut self, training: bool) {
        self.encoder.set_training(training);
    }

    fn describe(&self) -> String {
        format!(
            "Vit[{}×{} patches of {}×{}, {}, {} layers, {}]",
            self.rows / self.patch,
            self.cols / self.patch,
            self.patch,
            self.patch,
            self.embed.describe(),
            self.encoder.layers.len(),
            self.fc.describe()
        )
    }
}
