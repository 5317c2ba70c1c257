//! Property tests: broadcasting rules, view round trips, softmax invariants,
//! and the adjoint identity of the matrix product.

use matnet::{Rng, Shape, Tensor};
use proptest::prelude::*;

fn shape_strategy(max_rank: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..5, 1..=max_rank)
}

/// The properties, instantiated once per backend: each test makes `DEVICE`
/// the default for every tensor it builds.
macro_rules! properties {
    () => {
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any shape built by replacing some dims of `out` with 1 (and dropping
        /// leading dims) broadcasts with `out` back to `out`, in either order, and
        /// `add` produces values that follow the rule elementwise.
        #[test]
        fn broadcasting_rule(out in shape_strategy(4), mask in prop::collection::vec(any::<bool>(), 4), drop in 0usize..3, seed in any::<u64>()) {
            let _on = matnet::set_default_device(DEVICE);
            let drop = drop.min(out.len() - 1);
            let small: Vec<usize> = out.iter().enumerate().skip(drop).map(|(i, &d)| if mask[i] { 1 } else { d }).collect();
            let (so, ss) = (Shape::new(out.clone()), Shape::new(small.clone()));
            prop_assert_eq!(Shape::broadcast(&so, &ss, "test"), so.clone());
            prop_assert_eq!(Shape::broadcast(&ss, &so, "test"), so.clone());
            let mut rng = Rng::new(seed);
            let a = Tensor::randn(out.clone(), 0.0, 1.0, &mut rng);
            let b = Tensor::randn(small.clone(), 0.0, 1.0, &mut rng);
            let c = a.add(&b);
            prop_assert_eq!(c.shape(), &so);
            let explicit = a.add(&b.broadcast_to(so.clone()).contiguous());
            prop_assert_eq!(c.to_vec(), explicit.to_vec());
        }

        /// Two dims that differ and are both ≠ 1 never broadcast.
        #[test]
        fn incompatible_dims_are_rejected(a in 2usize..6, b in 2usize..6) {
            let _on = matnet::set_default_device(DEVICE);
            prop_assume!(a != b);
            prop_assert!(Shape::try_broadcast(&Shape::new([3, a]), &Shape::new([b])).is_none());
        }

        #[test]
        fn permute_round_trip(shape in shape_strategy(4), seed in any::<u64>()) {
            let _on = matnet::set_default_device(DEVICE);
            let mut rng = Rng::new(seed);
            let x = Tensor::randn(shape.clone(), 0.0, 1.0, &mut rng);
            let mut perm: Vec<usize> = (0..shape.len()).collect();
            rng.shuffle(&mut perm);
            let mut inv = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() { inv[p] = i; }
            let y = x.permute(&perm);
            prop_assert!(y.same_storage(&x));
            prop_assert_eq!(y.permute(&inv).to_vec(), x.to_vec());
            // Through a materialised copy too.
            prop_assert_eq!(y.contiguous().permute(&inv).to_vec(), x.to_vec());
        }

        #[test]
        fn reshape_round_trip(shape in shape_strategy(4), seed in any::<u64>()) {
            let _on = matnet::set_default_device(DEVICE);
            let x = Tensor::randn(shape.clone(), 0.0, 1.0, &mut Rng::new(seed));
            let n = x.numel();
            let flat = x.reshape([n]);
            prop_assert!(flat.same_storage(&x));
            prop_assert_eq!(flat.reshape(shape.clone()).to_vec(), x.to_vec());
            // A non-contiguous reshape copies but keeps the logical order.
            let t = x.reshape([1, n]).t();
            prop_assert_eq!(t.reshape([n]).to_vec(), x.to_vec());
        }

        #[test]
        fn softmax_rows_sum_to_one_and_ignore_shifts(rows in 1usize..6, cols in 1usize..9, shift in -50.0f32..50.0, seed in any::<u64>()) {
            let _on = matnet::set_default_device(DEVICE);
            let x = Tensor::randn([rows, cols], 0.0, 3.0, &mut Rng::new(seed));
            let s = x.softmax(-1);
            for row in s.to_vec2() {
                let total: f32 = row.iter().sum();
                prop_assert!((total - 1.0).abs() < 1e-5, "row sums to {}", total);
            }
            let shifted = x.add_scalar(shift).softmax(-1).to_vec();
            for (a, b) in s.to_vec().iter().zip(&shifted) {
                prop_assert!((a - b).abs() < 1e-5);
            }
        }

        /// <A x, y> = <x, Aᵀ y>
        #[test]
        fn matmul_adjoint(m in 1usize..40, n in 1usize..40, seed in any::<u64>()) {
            let _on = matnet::set_default_device(DEVICE);
            let mut rng = Rng::new(seed);
            let a = Tensor::randn([m, n], 0.0, 1.0, &mut rng);
            let x = Tensor::randn([n], 0.0, 1.0, &mut rng);
            let y = Tensor::randn([m], 0.0, 1.0, &mut rng);
            let lhs = a.matmul(&x).dot(&y).item();
            let rhs = x.dot(&a.t().matmul(&y)).item();
            prop_assert!((lhs - rhs).abs() <= 1e-4 * (1.0 + lhs.abs()), "{} vs {}", lhs, rhs);
        }
    }

    #[test]
    fn softmax_is_stable_for_huge_inputs() {
        let _on = matnet::set_default_device(DEVICE);
        let x = Tensor::from_vec(vec![1e4, 1e4 + 1.0, 1e4 - 2.0], [3]);
        let s = x.softmax(0).to_vec();
        assert!(s.iter().all(|v| v.is_finite()));
        let ls = x.log_softmax(0).to_vec();
        assert!(ls.iter().all(|v| v.is_finite()));
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn same_seed_same_numbers() {
        let _on = matnet::set_default_device(DEVICE);
        let a = Tensor::randn([100], 0.0, 1.0, &mut Rng::new(42)).to_vec();
        let b = Tensor::randn([100], 0.0, 1.0, &mut Rng::new(42)).to_vec();
        assert_eq!(a, b);
        let mean: f32 = a.iter().sum::<f32>() / 100.0;
        assert!(mean.abs() < 0.3);
        let u = Tensor::rand_uniform([1000], -0.5, 0.5, &mut Rng::new(1)).to_vec();
        assert!(u.iter().all(|&v| (-0.5..0.5).contains(&v)));
    }
    };
}

mod cpu {
    use super::*;
    const DEVICE: matnet::Device = matnet::Device::Cpu;
    properties!();
}

mod reference {
    use super::*;
    const DEVICE: matnet::Device = matnet::Device::Reference;
    properties!();
}
