//! The differential harness: random inputs built as the same strided views on
//! both devices, and a comparison that records every mismatch.

use std::collections::BTreeSet;

use matnet::{Device, Rng, Tensor};

/// How an input view is laid out over its buffer.
#[derive(Clone, Debug)]
enum Step {
    /// `narrow(dim, start, len)` of a larger buffer.
    Narrow(usize, usize, usize),
    /// `permute(perm)` of a buffer stored in another dimension order.
    Permute(Vec<usize>),
    /// `broadcast_to(dims)` of a buffer with some dimensions of size 1.
    Broadcast(Vec<usize>),
}

/// A random input: host data, the buffer's shape and the view steps that
/// turn it into a tensor of the wanted shape, replayed on each device.
#[derive(Clone, Debug)]
pub struct Input {
    data: Vec<f32>,
    dims: Vec<usize>,
    steps: Vec<Step>,
}

impl Input {
    /// The tensor on `device`.
    pub fn on(&self, device: Device) -> Tensor {
        let mut t = Tensor::from_vec_on(self.data.clone(), self.dims.clone(), device);
        for s in &self.steps {
            t = match s {
                Step::Narrow(d, start, len) => t.narrow(*d as isize, *start, *len),
                Step::Permute(p) => t.permute(p),
                Step::Broadcast(dims) => t.broadcast_to(dims.clone()),
            };
        }
        t
    }

    /// A copy with every value mapped through `f` (positive inputs for
    /// `log`, whole numbers for indices).
    pub fn map(mut self, mut f: impl FnMut(f32) -> f32) -> Input {
        self.data.iter_mut().for_each(|v| *v = f(*v));
        self
    }
}

/// Random test data and layouts.
pub struct Gen {
    pub rng: Rng,
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng::new(seed),
        }
    }

    /// A size in `lo..=hi`.
    pub fn size(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.rng.below(hi - lo + 1)
    }

    /// Random dims of rank `lo..=hi`, sizes 1..=4.
    pub fn dims(&mut self, lo: usize, hi: usize) -> Vec<usize> {
        let r = self.size(lo, hi);
        (0..r).map(|_| self.size(1, 4)).collect()
    }

    fn values(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.rng.normal()).collect()
    }

    /// A contiguous input of shape `dims`.
    pub fn contiguous(&mut self, dims: &[usize]) -> Input {
        let n = dims.iter().product();
        Input {
            data: self.values(n),
            dims: dims.to_vec(),
            steps: Vec::new(),
        }
    }

    /// An input of shape `dims` that is, at random, contiguous, a narrowed
    /// view, a permuted view or both (never broadcast).
    pub fn strided(&mut self, dims: &[usize]) -> Input {
        let r = dims.len();
        let mut steps = Vec::new();
        // Stored dims: dims reordered by a random permutation, and one
        // dimension longer than needed.
        let mut perm: Vec<usize> = (0..r).collect();
        let permuted = r > 1 && self.rng.below(2) == 0;
        if permuted {
            self.rng.shuffle(&mut perm);
        }
        let mut stored: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
        if r > 0 && self.rng.below(2) == 0 {
            let d = self.rng.below(r);
            let extra = self.size(1, 3);
            let start = self.rng.below(extra + 1);
            steps.push(Step::Narrow(d, start, stored[d]));
            stored[d] += extra;
        }
        if permuted {
            // Output dim j is stored dim inv[j].
            let mut inv = vec![0; r];
            for (i, &p) in perm.iter().enumerate() {
                inv[p] = i;
            }
            steps.push(Step::Permute(inv));
        }
        let n = stored.iter().product();
        Input {
            data: self.values(n),
            dims: stored,
            steps,
        }
    }

    /// [`Gen::strided`], or a broadcast of a smaller buffer, for operands of
    /// elementwise ops.
    pub fn operand(&mut self, dims: &[usize]) -> Input {
        if self.rng.below(3) > 0 {
            return self.strided(dims);
        }
        let small: Vec<usize> = dims
            .iter()
            .map(|&d| if self.rng.below(2) == 0 { 1 } else { d })
            .collect();
        let mut x = self.strided(&small);
        x.steps.push(Step::Broadcast(dims.to_vec()));
        x
    }

    /// Whole-number index values in `0..bound`, shape `dims`, strided.
    pub fn index(&mut self, dims: &[usize], bound: usize) -> Input {
        let x = self.strided(dims);
        let mut rng = Rng::new(self.rng.next_u64());
        x.map(|_| rng.below(bound) as f32)
    }
}

/// Runs cases on both devices and collects every mismatch.
#[derive(Default)]
pub struct Diff {
    failures: Vec<String>,
    covered: BTreeSet<&'static str>,
    cases: usize,
}

impl Diff {
    /// Runs `f` on each device with the inputs built there, and compares the
    /// outputs of the fast CPU backend with the reference backend's.
    /// `primitives` names what the case exercises.
    pub fn check(
        &mut self,
        primitives: &[&'static str],
        what: &str,
        inputs: &[Input],
        (rtol, atol): (f64, f64),
        f: impl Fn(&[Tensor]) -> Vec<Tensor>,
    ) {
        self.covered.extend(primitives);
        self.cases += 1;
        let run = |d: Device| {
            // Constructors inside `f` (no inputs, constants) follow the device too.
            let _on = matnet::set_default_device(d);
            let xs: Vec<Tensor> = inputs.iter().map(|i| i.on(d)).collect();
            f(&xs)
        };
        let (cpu, reference) = (run(Device::Cpu), run(Device::Reference));
        for (k, (c, r)) in cpu.iter().zip(&reference).enumerate() {
            assert_eq!(c.device(), Device::Cpu, "{what}: result left its device");
            assert_eq!(
                r.device(),
                Device::Reference,
                "{what}: result left its device"
            );
            if c.shape() != r.shape() {
                self.failures.push(format!(
                    "{what} (output {k}): shapes {:?} (cpu) and {:?} (reference)",
                    c.shape(),
                    r.shape()
                ));
                continue;
            }
            let (cv, rv) = (c.to_vec(), r.to_vec());
            let mut worst: Option<(f64, usize)> = None;
            for (i, (&a, &b)) in cv.iter().zip(&rv).enumerate() {
                let same_nan = a.is_nan() && b.is_nan();
                let diff = (a as f64 - b as f64).abs();
                let bad = !same_nan && (diff.is_nan() || diff > atol + rtol * (b as f64).abs());
                if bad && worst.is_none_or(|(w, _)| diff > w || diff.is_nan()) {
                    worst = Some((diff, i));
                }
            }
            if let Some((diff, i)) = worst {
                self.failures.push(format!(
                    "{what} (output {k}, shape {:?}): max |diff| {diff:.3e} at {i}: cpu {} vs reference {}\n  cpu:       {:?}\n  reference: {:?}",
                    c.shape(),
                    cv[i],
                    rv[i],
                    &cv[..cv.len().min(8)],
                    &rv[..rv.len().min(8)],
                ));
            }
        }
    }

    /// Panics with every mismatch, and if some primitive of `all` was never
    /// exercised.
    pub fn finish(self, all: &[&str]) {
        let missing: Vec<&&str> = all.iter().filter(|p| !self.covered.contains(**p)).collect();
        assert!(
            missing.is_empty(),
            "primitives never exercised: {missing:?}"
        );
        assert!(
            self.failures.is_empty(),
            "{} of {} cases differ between cpu and reference:\n{}",
            self.failures.len(),
            self.cases,
            self.failures.join("\n")
        );
        println!("{} cases over {} primitives agree", self.cases, all.len());
    }
}
