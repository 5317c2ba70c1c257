//! Data augmentation: small random shifts and rotations of images, drawn
//! afresh for every image of every training batch.
//!
//! Each image gets one rotation about its centre followed by a shift, and is
//! resampled bilinearly; pixels whose source lies outside the image take a
//! fill value (black). The map from an output pixel back to its source is
//! affine, so it is computed once per image and evaluated with two
//! multiply-adds per pixel, without allocating.
//!
//! ```
//! use matnet::data::Augment;
//! use matnet::{Rng, Tensor};
//!
//! let images = Tensor::zeros([64, 28 * 28]); // one flat image per row
//! let aug = Augment::new(2, 10.0);           // ±2 pixels, ±10°
//! let mut rng = Rng::new(0);
//! let moved = aug.apply(&images, 28, 28, &mut rng);
//! assert_eq!(moved.dims(), [64, 784]);
//! ```

use crate::rng::Rng;
use crate::tensor::Tensor;

/// Random shifts and rotations (one draw per image), in the spirit of
/// torchvision's `RandomAffine(degrees, translate)` with whole-pixel shifts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Augment {
    /// Largest shift along each axis, in pixels: `dx` and `dy` are whole
    /// numbers drawn uniformly from `-max_shift..=max_shift`.
    pub max_shift: usize,
    /// Largest rotation, in degrees: the angle is uniform in
    /// `[-max_rotate_deg, max_rotate_deg)`.
    pub max_rotate_deg: f32,
    /// The value of pixels that come from outside the image: the input value
    /// of black, `0.0` for [`Normalize::Unit`](super::Normalize::Unit) and
    /// `Normalize::Standard.table()[0]` for standardised inputs.
    pub fill: f32,
}

impl Augment {
    /// Shifts of up to `max_shift` pixels and rotations of up to
    /// `max_rotate_deg` degrees either way, filling with `0.0`.
    pub fn new(max_shift: usize, max_rotate_deg: f32) -> Augment {
        Augment {
            max_shift,
            max_rotate_deg,
            fill: 0.0,
        }
    }

    /// The same augmentation with another fill value.
    pub fn with_fill(self, fill: f32) -> Augment {
        Augment { fill, ..self }
    }

    /// Draws one image's transform. Always consumes three numbers from
    /// `rng`, so a seed gives the same sequence whatever the ranges are.
    pub fn sample(&self, rng: &mut Rng) -> ShiftRotate {
        let span = 2 * self.max_shift + 1;
        let dx = rng.below(span) as f32 - self.max_shift as f32;
        let dy = rng.below(span) as f32 - self.max_shift as f32;
        let angle_deg = rng.uniform_range(-self.max_rotate_deg, self.max_rotate_deg);
        ShiftRotate { angle_deg, dx, dy }
    }

    /// Augments consecutive `rows × cols` images in `src` into `dst`, one
    /// draw from `rng` per image, in order.
    ///
    /// # Panics
    /// When `src` and `dst` differ in length or are not a whole number of images.
    pub fn apply_slice(
        &self,
        src: &[f32],
        dst: &mut [f32],
        rows: usize,
        cols: usize,
        rng: &mut Rng,
    ) {
        let d = rows * cols;
        assert!(
            d > 0 && src.len() == dst.len() && src.len().is_multiple_of(d),
            "Augment::apply_slice: {} inputs and {} outputs are not whole {rows}×{cols} images",
            src.len(),
            dst.len()
        );
        for (s, o) in src.chunks_exact(d).zip(dst.chunks_exact_mut(d)) {
            self.sample(rng).warp(s, o, rows, cols, self.fill);
        }
    }

    /// Augments a batch of images, one draw from `rng` per image.
    ///
    /// # Shapes
    /// `[B, rows·cols] -> [B, rows·cols]` (or any shape holding whole
    /// `rows × cols` images one after another, such as `[B, 1, rows, cols]`;
    /// the output has the input's shape). The result is a new tensor that
    /// does not track gradients.
    pub fn apply(&self, images: &Tensor, rows: usize, cols: usize, rng: &mut Rng) -> Tensor {
        let mut out = vec![0.0f32; images.numel()];
        images.with_data(|src| self.apply_slice(src, &mut out, rows, cols, rng));
        Tensor::from_vec(out, images.dims().to_vec())
    }
}

/// `shifts up to 2 px, rotations up to 10°`: what a run's first lines say.
impl std::fmt::Display for Augment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "shifts up to {} px, rotations up to {}°",
            self.max_shift, self.max_rotate_deg
        )
    }
}

/// One image's transform: a rotation by `angle_deg` about the image centre,
/// counter-clockwise as displayed (rows running down), then a shift by
/// `(dx, dy)` pixels (right and down).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShiftRotate {
    /// Rotation in degrees, counter-clockwise on screen.
    pub angle_deg: f32,
    /// Shift to the right, in pixels.
    pub dx: f32,
    /// Shift down, in pixels.
    pub dy: f32,
}

impl ShiftRotate {
    /// Resamples the `rows × cols` image `src` into `dst` (bilinear; sources
    /// outside the image read as `fill`). Every output lies between the
    /// smallest and largest of the input values and `fill`.
    ///
    /// The output pixel `p` (relative to the centre `c`) reads the input at
    /// `R⁻¹·(p − c − t) + c`, with `R` the rotation and `t = (dx, dy)`:
    /// ```text
    /// [sx]   [ cos θ  −sin θ ] [x − c_x − dx]   [c_x]
    /// [sy] = [ sin θ   cos θ ] [y − c_y − dy] + [c_y]
    /// ```
    ///
    /// # Panics
    /// When `src` or `dst` does not hold `rows·cols` values.
    pub fn warp(&self, src: &[f32], dst: &mut [f32], rows: usize, cols: usize, fill: f32) {
        assert!(
            src.len() == rows * cols && dst.len() == rows * cols,
            "ShiftRotate::warp: {} inputs and {} outputs for a {rows}×{cols} image",
            src.len(),
            dst.len()
        );
        let at = |x, y| inside(x, y, rows, cols).map_or(fill, |i| src[i]);
        self.for_each_source(rows, cols, |i, (x0, y0), (tx, ty)| {
            let top = lerp(at(x0, y0), at(x0 + 1, y0), tx);
            let bottom = lerp(at(x0, y0 + 1), at(x0 + 1, y0 + 1), tx);
            dst[i] = lerp(top, bottom, ty);
        });
    }

    /// Calls `f(i, (x0, y0), (tx, ty))` for every output pixel `i` (row
    /// major) with the top-left pixel of its bilinear source, which may lie
    /// outside the image, and the fractions `tx, ty ∈ [0, 1)` toward the
    /// next column and row. Whole-pixel shifts without rotation give
    /// fractions of exactly 0.
    fn for_each_source(
        &self,
        rows: usize,
        cols: usize,
        mut f: impl FnMut(usize, (isize, isize), (f32, f32)),
    ) {
        let (sin, cos) = self.angle_deg.to_radians().sin_cos();
        let (cx, cy) = ((cols as f32 - 1.0) / 2.0, (rows as f32 - 1.0) / 2.0);
        let (ux, uy) = (cx + self.dx, cy + self.dy);
        // sx = cos·x − sin·y + ox, sy = sin·x + cos·y + oy.
        let ox = cx - cos * ux + sin * uy;
        let oy = cy - sin * ux - cos * uy;
        for y in 0..rows {
            let yf = y as f32;
            let (bx, by) = (ox - sin * yf, oy + cos * yf);
            for x in 0..cols {
                let xf = x as f32;
                let (sx, sy) = (cos * xf + bx, sin * xf + by);
                let (fx, fy) = (sx.floor(), sy.floor());
                f(y * cols + x, (fx as isize, fy as isize), (sx - fx, sy - fy));
            }
        }
    }
}

/// A batch's drawn transforms as a differentiable map (for augmenting what a
/// GAN's discriminator sees, real and generated alike, in the manner of
/// DiffAugment, Zhao et al. 2020): each output pixel is the bilinear mix of
/// four source pixels,
/// `out = Σ_k w_k ⊙ gather(x ⧺ fill, 1, i_k)`,
/// where the index tensors `i_k` point at the four neighbours (or at the
/// appended fill column when a neighbour lies outside the image) and `w_k`
/// are the bilinear weights. Built from gathers, products and sums, it has
/// a backward rule: gradients flow through it to whatever produced `x`
/// (the generator), as the transposed map.
#[derive(Clone, Debug)]
pub struct Warp {
    rows: usize,
    cols: usize,
    fill: f32,
    /// Source indices of the four taps, `[N, rows·cols]` each.
    index: [Tensor; 4],
    /// Their bilinear weights, `[N, rows·cols]` each.
    weight: [Tensor; 4],
}

impl Augment {
    /// Draws one transform per image for a batch of `n` images of
    /// `rows × cols`, in the order [`Augment::apply`] draws them (same seed,
    /// same transforms), as a differentiable [`Warp`].
    pub fn draw(&self, n: usize, rows: usize, cols: usize, rng: &mut Rng) -> Warp {
        let p = rows * cols;
        let mut index: [Vec<f32>; 4] = std::array::from_fn(|_| Vec::with_capacity(n * p));
        let mut weight: [Vec<f32>; 4] = std::array::from_fn(|_| Vec::with_capacity(n * p));
        // Outside the image: the fill column appended at index `p`.
        let at = |x, y| inside(x, y, rows, cols).unwrap_or(p) as f32;
        for _ in 0..n {
            self.sample(rng)
                .for_each_source(rows, cols, |_, (x0, y0), (tx, ty)| {
                    let taps = [
                        (at(x0, y0), (1.0 - tx) * (1.0 - ty)),
                        (at(x0 + 1, y0), tx * (1.0 - ty)),
                        (at(x0, y0 + 1), (1.0 - tx) * ty),
                        (at(x0 + 1, y0 + 1), tx * ty),
                    ];
                    for (k, (i, wk)) in taps.into_iter().enumerate() {
                        index[k].push(i);
                        weight[k].push(wk);
                    }
                });
        }
        let tensor = |v: Vec<f32>| Tensor::from_vec(v, [n, p]);
        Warp {
            rows,
            cols,
            fill: self.fill,
            index: index.map(tensor),
            weight: weight.map(tensor),
        }
    }
}

impl Warp {
    /// The batch `x` `[N, rows·cols]` moved by the drawn transforms, with
    /// `x`'s gradient recorded.
    ///
    /// # Panics
    /// When `x` is not `[N, rows·cols]` for the batch size the warp was
    /// drawn for.
    pub fn apply(&self, x: &Tensor) -> Tensor {
        let n = self.index[0].dims()[0];
        assert!(
            x.dims() == [n, self.rows * self.cols],
            "Warp::apply: input {:?} is not [{n}, {}] ({}×{} images)",
            x.shape(),
            self.rows * self.cols,
            self.rows,
            self.cols
        );
        let dev = x.device();
        let padded = Tensor::cat(&[x.clone(), Tensor::full_on([n, 1], self.fill, dev)], 1);
        let tap = |k: usize| {
            let i = self.index[k].to_device(dev);
            padded.gather(1, &i).mul(&self.weight[k].to_device(dev))
        };
        tap(0).add(&tap(1)).add(&tap(2)).add(&tap(3))
    }
}

/// The row-major index of pixel `(x, y)` of a `rows × cols` image, or
/// `None` when it lies outside.
fn inside(x: isize, y: isize, rows: usize, cols: usize) -> Option<usize> {
    let (x, y) = (usize::try_from(x).ok()?, usize::try_from(y).ok()?);
    (x < cols && y < rows).then(|| y * cols + x)
}

/// `a + t·(b − a)` for `t ∈ [0, 1)`, clamped to `[min(a, b), max(a, b)]`
/// because rounding may otherwise overshoot by an ulp. With `t = 0` it is
/// exactly `a`, so whole-pixel shifts move values unchanged.
fn lerp(a: f32, b: f32, t: f32) -> f32 {
    (a + t * (b - a)).clamp(a.min(b), a.max(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic non-trivial image with values in [-1, 2].
    fn image(rows: usize, cols: usize) -> Vec<f32> {
        (0..rows * cols)
            .map(|i| ((i * 37 % 101) as f32 / 100.0) * 3.0 - 1.0)
            .collect()
    }

    fn warped(t: ShiftRotate, src: &[f32], rows: usize, cols: usize, fill: f32) -> Vec<f32> {
        let mut dst = vec![f32::NAN; src.len()];
        t.warp(src, &mut dst, rows, cols, fill);
        dst
    }

    #[test]
    fn zero_shift_and_rotation_is_the_identity() {
        let src = image(28, 28);
        let aug = Augment::new(0, 0.0).with_fill(-7.0);
        let mut rng = Rng::new(3);
        let mut dst = vec![f32::NAN; 5 * 784];
        let batch: Vec<f32> = (0..5).flat_map(|_| src.clone()).collect();
        aug.apply_slice(&batch, &mut dst, 28, 28, &mut rng);
        assert_eq!(dst, batch);
        // Odd, even and non-square sizes too.
        for (r, c) in [(5, 5), (4, 6), (1, 7)] {
            let s = image(r, c);
            let id = ShiftRotate {
                angle_deg: 0.0,
                dx: 0.0,
                dy: 0.0,
            };
            assert_eq!(warped(id, &s, r, c, 9.0), s, "{r}×{c}");
        }
    }

    #[test]
    fn a_one_pixel_shift_moves_a_one_hot_pixel_by_one() {
        let (rows, cols) = (7, 9);
        let mut src = vec![0.0; rows * cols];
        src[3 * cols + 4] = 1.0;
        for (dx, dy) in [
            (1.0, 0.0),
            (-1.0, 0.0),
            (0.0, 1.0),
            (0.0, -1.0),
            (2.0, -1.0),
        ] {
            let t = ShiftRotate {
                angle_deg: 0.0,
                dx,
                dy,
            };
            let out = warped(t, &src, rows, cols, 0.0);
            let mut want = vec![0.0; rows * cols];
            let (ty, tx) = ((3.0 + dy) as usize, (4.0 + dx) as usize);
            want[ty * cols + tx] = 1.0;
            assert_eq!(out, want, "shift ({dx}, {dy})");
        }
        // Content shifted out of the image is replaced by the fill.
        let t = ShiftRotate {
            angle_deg: 0.0,
            dx: 1.0,
            dy: 0.0,
        };
        let out = warped(t, &image(rows, cols), rows, cols, -5.0);
        assert!((0..rows).all(|y| out[y * cols] == -5.0));
    }

    #[test]
    fn rotating_a_square_image_by_90_degrees_is_rot90() {
        // Counter-clockwise on screen: out[i][j] = in[j][n−1−i], numpy's
        // rot90 (a transpose, then a vertical flip).
        for n in [5, 6, 28] {
            let src = image(n, n);
            let t = ShiftRotate {
                angle_deg: 90.0,
                dx: 0.0,
                dy: 0.0,
            };
            let out = warped(t, &src, n, n, 0.0);
            for i in 0..n {
                for j in 0..n {
                    let (got, want) = (out[i * n + j], src[j * n + (n - 1 - i)]);
                    assert!(
                        (got - want).abs() < 1e-4,
                        "n={n} ({i}, {j}): {got} vs {want}"
                    );
                }
            }
            // And -90° undoes it.
            let back = ShiftRotate {
                angle_deg: -90.0,
                ..t
            };
            let again = warped(back, &out, n, n, 0.0);
            for (a, b) in again.iter().zip(&src) {
                assert!((a - b).abs() < 1e-3);
            }
        }
    }

    #[test]
    fn a_small_rotation_keeps_the_centre_and_moves_the_edge_a_little() {
        // A bright horizontal bar through the centre of a 29×29 image,
        // rotated by 10° counter-clockwise: the centre pixel stays, the bar's
        // right end rises by about 14·tan(10°) ≈ 2.5 rows.
        let n = 29;
        let mut src = vec![0.0; n * n];
        (0..n).for_each(|x| src[14 * n + x] = 1.0);
        let t = ShiftRotate {
            angle_deg: 10.0,
            dx: 0.0,
            dy: 0.0,
        };
        let out = warped(t, &src, n, n, 0.0);
        assert!((out[14 * n + 14] - 1.0).abs() < 1e-6);
        let col = |x: usize| -> f32 {
            let mass: f32 = (0..n).map(|y| out[y * n + x]).sum();
            (0..n).map(|y| y as f32 * out[y * n + x]).sum::<f32>() / mass
        };
        assert!((col(26) - (14.0 - 12.0 * 10f32.to_radians().tan())).abs() < 0.1);
        assert!((col(2) - (14.0 + 12.0 * 10f32.to_radians().tan())).abs() < 0.1);
    }

    #[test]
    fn same_seed_same_output_and_draws_differ_between_images() {
        let src: Vec<f32> = (0..3).flat_map(|_| image(28, 28)).collect();
        let aug = Augment::new(2, 10.0);
        let run = |seed| {
            let mut out = vec![0.0; src.len()];
            aug.apply_slice(&src, &mut out, 28, 28, &mut Rng::new(seed));
            out
        };
        let (a, b, c) = (run(5), run(5), run(6));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a[..784], a[784..1568], "one draw per image");
        let t = Tensor::from_vec(src.clone(), [3, 1, 28, 28]);
        let via_tensor = aug.apply(&t, 28, 28, &mut Rng::new(5));
        assert_eq!(via_tensor.dims(), [3, 1, 28, 28]);
        assert_eq!(via_tensor.to_vec(), a);
    }

    #[test]
    fn samples_stay_within_the_ranges() {
        let aug = Augment::new(2, 10.0);
        let mut rng = Rng::new(1);
        let draws: Vec<ShiftRotate> = (0..2000).map(|_| aug.sample(&mut rng)).collect();
        for d in &draws {
            assert!((-10.0..10.0).contains(&d.angle_deg), "{d:?}");
            assert!([-2.0, -1.0, 0.0, 1.0, 2.0].contains(&d.dx), "{d:?}");
            assert!([-2.0, -1.0, 0.0, 1.0, 2.0].contains(&d.dy), "{d:?}");
        }
        for s in [-2.0, 2.0] {
            assert!(draws.iter().any(|d| d.dx == s) && draws.iter().any(|d| d.dy == s));
        }
    }

    #[test]
    fn output_stays_within_the_input_range() {
        let src = image(28, 28);
        let (lo, hi) = src
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        let mut rng = Rng::new(9);
        for fill in [0.0, lo, hi] {
            let aug = Augment::new(3, 45.0).with_fill(fill);
            for _ in 0..50 {
                let t = aug.sample(&mut rng);
                for v in warped(t, &src, 28, 28, fill) {
                    assert!(lo <= v && v <= hi, "{v} outside [{lo}, {hi}] for {t:?}");
                }
            }
        }
    }

    #[test]
    fn the_differentiable_warp_matches_apply_and_its_gradient_is_the_transpose() {
        let (n, rows, cols) = (6, 28, 28);
        let p = rows * cols;
        let mut data = Rng::new(4);
        let x: Vec<f32> = (0..n * p).map(|_| data.uniform_range(-1.0, 1.0)).collect();
        let x = Tensor::from_vec(x, [n, p]);
        for aug in [Augment::new(2, 10.0), Augment::new(3, 0.0)] {
            let aug = aug.with_fill(-1.0);
            // Same seed, same transforms as the resampling of `apply`.
            let want = aug.apply(&x, rows, cols, &mut Rng::new(11)).to_vec();
            let warp = aug.draw(n, rows, cols, &mut Rng::new(11));
            let got = warp.apply(&x).to_vec();
            let diff = want
                .iter()
                .zip(&got)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(diff < 1e-5, "{aug:?}: max |diff| {diff}");
            // Whole-pixel shifts move values unchanged.
            if aug.max_rotate_deg == 0.0 {
                assert_eq!(want, got);
            }
            // The map is affine in x: out = A·x + b·fill. Its gradient for
            // an output gradient y is Aᵀ·y, so <A·x, y> = <x, Aᵀ·y>.
            let y: Vec<f32> = (0..n * p).map(|_| data.uniform_range(-1.0, 1.0)).collect();
            let y = Tensor::from_vec(y, [n, p]);
            let xv = x.clone().requires_grad();
            let grads = warp.apply(&xv).mul(&y).sum_all().backward();
            let g = grads.get(&xv).expect("a gradient reaches x");
            let zero = Tensor::zeros([n, p]);
            let ax = warp.apply(&x).sub(&warp.apply(&zero));
            let lhs = ax.mul(&y).sum_all().item();
            let rhs = x.mul(g).sum_all().item();
            assert!(
                (lhs - rhs).abs() < 1e-3 * lhs.abs().max(1.0),
                "{aug:?}: <Ax, y> {lhs} against <x, Aᵀy> {rhs}"
            );
        }
    }
}
