//! Shapes and the broadcasting rule.

use std::fmt;

/// The extent of each dimension of a tensor, outermost first (row-major).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl Shape {
    /// A shape from its dimensions.
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Shape(dims.into())
    }

    /// The dimensions as a slice.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Number of dimensions (0 for a scalar).
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }

    /// Row-major strides of a contiguous tensor of this shape.
    pub fn contiguous_strides(&self) -> Vec<usize> {
        let mut strides = vec![0; self.rank()];
        let mut acc = 1;
        for (s, &d) in strides.iter_mut().zip(&self.0).rev() {
            *s = acc;
            acc *= d;
        }
        strides
    }

    /// Resolves a possibly negative axis (`-1` is the last) for `op`, panicking
    /// with the op name when it is out of range.
    pub fn axis(&self, axis: impl Dim, op: &str) -> usize {
        self.resolve(axis.to_isize(), self.rank(), op)
    }

    /// Resolves the position of a new axis (`unsqueeze`, `stack`): `0..=rank`,
    /// with `-1` meaning after the last, as PyTorch.
    pub fn new_axis(&self, axis: impl Dim, op: &str) -> usize {
        self.resolve(axis.to_isize(), self.rank() + 1, op)
    }

    fn resolve(&self, axis: isize, count: usize, op: &str) -> usize {
        let r = count as isize;
        let a = if axis < 0 { axis + r } else { axis };
        assert!(
            (0..r).contains(&a),
            "{op}: axis {axis} out of range for shape {self:?}"
        );
        a as usize
    }

    /// The shape with `dims` removed, or set to 1 when `keepdim`.
    pub fn reduced(&self, dims: &[usize], keepdim: bool) -> Shape {
        let mut out = Vec::with_capacity(self.rank());
        for (i, &d) in self.0.iter().enumerate() {
            if dims.contains(&i) {
                if keepdim {
                    out.push(1);
                }
            } else {
                out.push(d);
            }
        }
        Shape(out)
    }

    /// The shape two operands broadcast to (NumPy rule: align trailing
    /// dimensions; each pair must be equal or contain a 1).
    pub fn broadcast(a: &Shape, b: &Shape, op: &str) -> Shape {
        Self::try_broadcast(a, b)
            .unwrap_or_else(|| panic!("{op}: shapes {a:?} and {b:?} cannot be broadcast together"))
    }

    /// Like [`Shape::broadcast`] but returns `None` on incompatible shapes.
    pub fn try_broadcast(a: &Shape, b: &Shape) -> Option<Shape> {
        let r = a.rank().max(b.rank());
        let mut out = vec![0; r];
        for (i, o) in out.iter_mut().enumerate() {
            let da = dim_from_end(a, r - 1 - i);
            let db = dim_from_end(b, r - 1 - i);
            *o = match (da, db) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => return None,
            };
        }
        Some(Shape(out))
    }

    /// True when this shape can be broadcast to `target` (the target is unchanged by it).
    pub fn broadcasts_to(&self, target: &Shape) -> bool {
        self.rank() <= target.rank() && Self::try_broadcast(self, target).as_ref() == Some(target)
    }
}

/// Dimension `k` counting from the end (0 = last), 1 when the shape is shorter.
fn dim_from_end(s: &Shape, k: usize) -> usize {
    if k < s.rank() {
        s.0[s.rank() - 1 - k]
    } else {
        1
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|d| d.to_string()).collect();
        write!(f, "[{}]", parts.join("×"))
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape(d.to_vec())
    }
}
impl From<Vec<usize>> for Shape {
    fn from(d: Vec<usize>) -> Self {
        Shape(d)
    }
}
impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape(d.to_vec())
    }
}
impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Self {
        s.clone()
    }
}
impl From<()> for Shape {
    fn from(_: ()) -> Self {
        Shape(Vec::new())
    }
}

/// A dimension argument, as every op that takes one accepts it: `usize`
/// counts from the front, `isize` (and `i32`, the type of a bare literal)
/// may also be negative, counting from the end (`-1` is the last), as in
/// PyTorch. One trait rather than a mix of `isize` and `usize` parameters.
pub trait Dim: Copy + std::fmt::Debug {
    /// The value as a signed axis.
    fn to_isize(self) -> isize;
}

impl Dim for usize {
    fn to_isize(self) -> isize {
        isize::try_from(self).unwrap_or(isize::MAX)
    }
}

impl Dim for isize {
    fn to_isize(self) -> isize {
        self
    }
}

impl Dim for i32 {
    fn to_isize(self) -> isize {
        self as isize
    }
}
