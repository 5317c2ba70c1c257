//! Recurrent classifiers that read an image as a sequence of rows.

use crate::nn::{Linear, Module, Recurrent, RecurrentKind, RnnConfig, prefixed};
use crate::{Rng, Tensor};

/// A digit read as `rows` time steps of `cols` features (top to bottom), a
/// recurrent stack of any [`RecurrentKind`], and a linear classifier on the
/// last layer's final hidden state.
///
/// # Shapes
/// `[N, rows·cols] -> [N, rows, cols] -> h_T [N, H] -> [N, classes]`.
pub struct RowReader {
    /// The recurrent stack (batch-first).
    pub rnn: Box<dyn Recurrent>,
    /// The classifier on the final hidden state.
    pub fc: Linear,
    rows: usize,
    cols: usize,
}

impl RowReader {
    /// `layers` stacked layers of `hidden` units of kind `kind`.
    pub fn new(
        kind: RecurrentKind,
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
        RowReader {
            rnn: kind.build(cols, hidden, cfg, rng),
            fc: Linear::new(hidden, classes, rng),
            rows,
            cols,
        }
    }
}

impl Module for RowReader {
    fn forward(&self, x: &Tensor) -> Tensor {
        let seq = x.reshape([x.dims()[0], self.rows, self.cols]);
        let h_n = self.rnn.forward_seq(&seq, None).1.h; // [L, N, H]
        let (l, n, h) = (h_n.dims()[0], h_n.dims()[1], h_n.dims()[2]);
        self.fc.forward(&h_n.narrow(0, l - 1, 1).reshape([n, h]))
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("rnn", self.rnn.named_parameters());
        p.extend(prefixed("fc", self.fc.named_parameters()));
        p
    }

    fn describe(&self) -> String {
        format!(
            "RowReader[{} rows of {}: {}, {}]",
            self.rows,
            self.cols,
            self.rnn.describe(),
            self.fc.describe()
        )
    }
}
