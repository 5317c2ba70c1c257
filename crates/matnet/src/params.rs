//! Geometry and parameter types shared by the layers above and the kernels
//! below (`nn/`, `ops/`, `autograd/` and `backend/` all import them). A leaf
//! module: it depends on nothing but `shape`, so no arrow runs from
//! `backend/` up to `ops/` (candle keeps its conv params at the top level
//! for the same reason).

use crate::shape::Shape;

/// Geometry of a 2-D convolution over an `h×w` image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Vertical stride.
    pub sh: usize,
    /// Horizontal stride.
    pub sw: usize,
    /// Zero padding at top and bottom.
    pub ph: usize,
    /// Zero padding at left and right.
    pub pw: usize,
    /// Vertical dilation.
    pub dh: usize,
    /// Horizontal dilation.
    pub dw: usize,
}

impl ConvGeom {
    /// The geometry of a convolution over an `h×w` input with a `kh×kw` kernel.
    pub fn new((h, w): (usize, usize), (kh, kw): (usize, usize), p: &Conv2dParams) -> ConvGeom {
        ConvGeom {
            h,
            w,
            kh,
            kw,
            sh: p.stride.0,
            sw: p.stride.1,
            ph: p.padding.0,
            pw: p.padding.1,
            dh: p.dilation.0,
            dw: p.dilation.1,
        }
    }

    /// Output height `⌊(h + 2·ph − dh·(kh−1) − 1) / sh⌋ + 1`.
    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.ph - self.dh * (self.kh - 1) - 1) / self.sh + 1
    }

    /// Output width, likewise.
    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.pw - self.dw * (self.kw - 1) - 1) / self.sw + 1
    }

    pub(crate) fn check(&self, op: &str) {
        assert!(
            self.kh > 0 && self.kw > 0 && self.sh > 0 && self.sw > 0 && self.dh > 0 && self.dw > 0,
            "{op}: kernel size, stride and dilation must be positive ({self:?})"
        );
        assert!(
            self.h + 2 * self.ph > self.dh * (self.kh - 1)
                && self.w + 2 * self.pw > self.dw * (self.kw - 1),
            "{op}: a {}×{} kernel (dilation {}×{}) does not fit a {}×{} input padded by {}×{}",
            self.kh,
            self.kw,
            self.dh,
            self.dw,
            self.h,
            self.w,
            self.ph,
            self.pw
        );
    }
}

/// Stride, padding, dilation and groups of a convolution (PyTorch's meaning).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    /// (vertical, horizontal) stride.
    pub stride: (usize, usize),
    /// Zero padding on each side.
    pub padding: (usize, usize),
    /// Spacing between kernel taps.
    pub dilation: (usize, usize),
    /// Channel groups: input and output channels split into this many
    /// independent convolutions.
    pub groups: usize,
    /// Extra rows/columns on one side of a transposed convolution's output.
    pub output_padding: (usize, usize),
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
            output_padding: (0, 0),
        }
    }
}

/// The sizes of one convolution `[N, C, H, W] ⋆ [O, C/groups, kh, kw]`,
/// as recorded by the conv ops for their backward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    /// Images.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Output channels.
    pub o: usize,
    /// Channel groups.
    pub groups: usize,
    /// Geometry of one image's convolution.
    pub geom: ConvGeom,
}

impl ConvShape {
    /// Rows of one group's column matrix: `C/groups · kh · kw`.
    pub fn col_rows(&self) -> usize {
        self.c / self.groups * self.geom.kh * self.geom.kw
    }

    /// Columns of it: `OH · OW`.
    pub fn col_len(&self) -> usize {
        self.geom.out_h() * self.geom.out_w()
    }

    /// A 1×1 kernel at stride 1 without padding: the columns are the image.
    pub fn pointwise(&self) -> bool {
        let g = &self.geom;
        (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw) == (1, 1, 1, 1, 0, 0)
    }

    /// The weight shape `[O, C/groups, kh, kw]`.
    pub fn weight_shape(&self) -> Shape {
        Shape::new([self.o, self.c / self.groups, self.geom.kh, self.geom.kw])
    }
}

/// Sizes of one LSTM layer run: `T` steps of `N` rows, hidden size `H`.
#[derive(Clone, Copy, Debug)]
pub struct LstmDims {
    /// Time steps.
    pub t: usize,
    /// Rows (batch size).
    pub n: usize,
    /// Hidden size.
    pub h: usize,
}
