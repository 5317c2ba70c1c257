//! Convolution: the documents' worked example and claims, the adjoint
//! identity, and finite-difference gradient checks.

mod common;
use common::{gradcheck, randn};
use matnet::Tensor;
use matnet::ops::conv::Conv2dParams;

fn figure1() -> Tensor {
    // seed 000, Figure 1
    #[rustfmt::skip]
    let x = vec![
        128., 36., 52., 221., 134.,
        35., 27., 25., 200., 187.,
        37., 27., 24., 28., 181.,
        37., 25., 28., 193., 178.,
        42., 56., 132., 192., 177.,
    ];
    Tensor::from_vec(x, [5, 5])
}

for_each_backend! {
    fn documents_worked_example() {
        let x = figure1();
        let k = Tensor::from_vec(vec![1., 0., 0., 1.], [2, 2]); // Figure 2
        let valid = x.valid_conv2d(&k);
        assert_eq!(valid.dims(), &[4, 4]);
        let v = valid.to_vec2();
        assert_eq!(v[0][0], 128. + 27.); // 155
        // Every entry is x(u, v) + x(u+1, v+1) for this diagonal kernel.
        let xs = x.to_vec2();
        for u in 0..4 {
            for w in 0..4 {
                assert_eq!(v[u][w], xs[u][w] + xs[u + 1][w + 1]);
            }
        }
        let full = x.full_conv2d(&k);
        assert_eq!(full.dims(), &[6, 6]);
        let f = full.to_vec2();
        // z(u, v) = Σ x(i, j)·k(u−i, v−j) = x(u, v) + x(u−1, v−1) (zero outside).
        let at = |i: isize, j: isize| {
            if (0..5).contains(&i) && (0..5).contains(&j) {
                xs[i as usize][j as usize]
            } else {
                0.0
            }
        };
        for u in 0..6isize {
            for w in 0..6isize {
                assert_eq!(
                    f[u as usize][w as usize],
                    at(u, w) + at(u - 1, w - 1),
                    "({u}, {w})"
                );
            }
        }
    }

    fn rot180_is_an_involution() {
        let w = randn(&[2, 3, 4, 5], 1);
        assert_eq!(w.rot180().rot180().to_vec(), w.to_vec());
        let k = Tensor::from_vec(vec![1., 2., 3., 4.], [2, 2]);
        assert_eq!(k.rot180().to_vec(), vec![4., 3., 2., 1.]);
    }

    fn transposed_conv_is_full_padded_conv_with_rotated_kernel() {
        // Stride 1, no padding: conv_transpose2d(x, W) = conv2d(pad(x, k−1), rot180(W)ᵀ)
        // where ᵀ swaps the in/out channel dims of W.
        let x = randn(&[2, 3, 5, 6], 2);
        let w = randn(&[3, 4, 3, 2], 3); // [C_in, C_out, kh, kw]
        let t = x.conv_transpose2d(&w, None, Conv2dParams::default());
        let padded = Conv2dParams {
            padding: (2, 1),
            ..Default::default()
        };
        let c = x.conv2d(&w.rot180().transpose(0, 1).contiguous(), None, padded);
        assert_eq!(t.dims(), c.dims());
        for (a, b) in t.to_vec().iter().zip(c.to_vec()) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    fn adjoint_identity_for_strides_and_paddings() {
        // <conv2d(x, W), y> = <x, conv_transpose2d(y, W)>
        for (s, p, d, seed) in [
            (1, 0, 1, 1u64),
            (1, 1, 1, 2),
            (2, 0, 1, 3),
            (2, 1, 1, 4),
            (2, 2, 1, 5),
            (1, 1, 2, 6),
            (3, 1, 1, 7),
        ] {
            let (h, w) = (9, 8);
            let x = randn(&[2, 3, h, w], seed);
            let wt = randn(&[4, 3, 3, 3], seed + 10);
            let params = Conv2dParams {
                stride: (s, s),
                padding: (p, p),
                dilation: (d, d),
                ..Default::default()
            };
            let y_shape = x.conv2d(&wt, None, params).dims().to_vec();
            let y = randn(&y_shape, seed + 20);
            // output_padding restores sizes that the stride rounded away.
            let op = |n: usize| (n + 2 * p - d * 2 - 1) % s;
            let tparams = Conv2dParams {
                output_padding: (op(h), op(w)),
                ..params
            };
            let lhs = x.conv2d(&wt, None, params).mul(&y).sum_all().item();
            let back = y.conv_transpose2d(&wt, None, tparams);
            assert_eq!(back.dims(), x.dims(), "stride {s} padding {p} dilation {d}");
            let rhs = x.mul(&back).sum_all().item();
            assert!(
                (lhs - rhs).abs() <= 1e-3 * (1.0 + lhs.abs()),
                "s={s} p={p} d={d}: {lhs} vs {rhs}"
            );
        }
    }

    fn conv2d_gradients() {
        let b = randn(&[4], 3);
        for (params, name) in [
            (Conv2dParams::default(), "plain"),
            (
                Conv2dParams {
                    stride: (2, 1),
                    padding: (1, 2),
                    ..Default::default()
                },
                "stride+padding",
            ),
            (
                Conv2dParams {
                    dilation: (2, 2),
                    padding: (1, 1),
                    ..Default::default()
                },
                "dilation",
            ),
        ] {
            gradcheck(
                &format!("conv2d {name}"),
                vec![randn(&[2, 2, 6, 5], 1), randn(&[4, 2, 3, 3], 2), b.clone()],
                |x| x[0].conv2d(&x[1], Some(&x[2]), params),
            );
        }
        let grouped = Conv2dParams {
            groups: 2,
            ..Default::default()
        };
        gradcheck(
            "conv2d groups",
            vec![randn(&[1, 4, 5, 5], 4), randn(&[6, 2, 2, 2], 5)],
            |x| x[0].conv2d(&x[1], None, grouped),
        );
    }

    fn conv_transpose2d_gradients() {
        for (params, name) in [
            (Conv2dParams::default(), "plain"),
            (
                Conv2dParams {
                    stride: (2, 2),
                    padding: (1, 0),
                    output_padding: (1, 1),
                    ..Default::default()
                },
                "stride+padding",
            ),
            (
                Conv2dParams {
                    groups: 2,
                    dilation: (2, 1),
                    ..Default::default()
                },
                "groups+dilation",
            ),
        ] {
            gradcheck(
                &format!("conv_transpose2d {name}"),
                vec![
                    randn(&[2, 4, 3, 4], 6),
                    randn(&[4, 3, 3, 2], 7),
                    randn(&[params.groups * 3], 8),
                ],
                |x| x[0].conv_transpose2d(&x[1], Some(&x[2]), params),
            );
        }
    }

    #[should_panic(
        expected = "conv2d: input [1, 3, 5, 5] and weight [4, 2, 3, 3] do not match with 1 groups"
    )]
    fn channel_mismatch_panics() {
        Tensor::zeros([1, 3, 5, 5]).conv2d(&Tensor::zeros([4, 2, 3, 3]), None, Conv2dParams::default());
    }

    fn pooling_values_and_indices() {
        #[rustfmt::skip]
        let x = Tensor::from_vec(vec![
            1., 5., 2., 0.,
            3., 4., 9., 1.,
            7., 2., 6., 8.,
            0., 1., 3., 2.,
        ], [1, 1, 4, 4]);
        let (m, idx) = x.max_pool2d_with_indices((2, 2), (2, 2));
        assert_eq!(m.to_vec(), vec![5., 9., 7., 8.]);
        assert_eq!(idx.to_vec(), vec![1., 6., 8., 11.]);
        // Overlapping 3×3 windows, stride 1.
        assert_eq!(x.max_pool2d((3, 3), (1, 1)).to_vec(), vec![9., 9., 9., 9.]);
        assert_eq!(
            x.avg_pool2d((2, 2), (2, 2), (0, 0)).to_vec(),
            vec![13. / 4., 12. / 4., 10. / 4., 19. / 4.]
        );
        // Zero padding counts: the corner window sees 1 real value of 4.
        assert_eq!(x.avg_pool2d((2, 2), (2, 2), (1, 1)).to_vec()[0], 1. / 4.);
        assert_eq!(x.adaptive_avg_pool2d((1, 1)).to_vec(), vec![54. / 16.]);
    }

    fn pooling_gradients() {
        // Distinct values so each window has one maximum (away from ties).
        let x = Tensor::from_vec(
            (0..2 * 3 * 5 * 5)
                .map(|i| ((i * 37) % 150) as f32 * 0.1)
                .collect(),
            [2, 3, 5, 5],
        );
        gradcheck("max_pool2d", vec![x.clone()], |x| {
            x[0].max_pool2d((2, 2), (2, 2))
        });
        gradcheck("max_pool2d overlapping", vec![x.clone()], |x| {
            x[0].max_pool2d((3, 3), (1, 1))
        });
        gradcheck("avg_pool2d", vec![randn(&[2, 3, 5, 5], 9)], |x| {
            x[0].avg_pool2d((3, 3), (2, 2), (1, 1))
        });
        gradcheck("adaptive_avg_pool2d", vec![randn(&[1, 2, 4, 6], 10)], |x| {
            x[0].adaptive_avg_pool2d((2, 3))
        });
        // max_unpool2d's own gradient reads back the placed positions.
        let (_, idx) = x.max_pool2d_with_indices((2, 2), (2, 2));
        gradcheck("max_unpool2d", vec![randn(&[2, 3, 2, 2], 11)], |v| {
            v[0].max_unpool2d(&idx, (5, 5))
        });
    }

    fn max_unpool2d_places_values_at_the_pooled_positions() {
        // 1×1×2×4 input; 2×2 windows at stride 2 pick 5 (flat index 1) and 8 (7).
        let x = Tensor::from_vec(vec![1., 5., 2., 3., 4., 0., 6., 8.], [1, 1, 2, 4]);
        let (vals, idx) = x.max_pool2d_with_indices((2, 2), (2, 2));
        assert_eq!(vals.to_vec(), vec![5., 8.]);
        assert_eq!(idx.to_vec(), vec![1., 7.]);
        let up = vals.max_unpool2d(&idx, (2, 4));
        assert_eq!(up.to_vec(), vec![0., 5., 0., 0., 0., 0., 0., 8.]);
    }

    #[should_panic(expected = "max_unpool2d: an index is outside the 2×2 output plane")]
    fn max_unpool2d_rejects_out_of_range_indices() {
        let v = Tensor::from_vec(vec![1.0], [1, 1, 1, 1]);
        v.max_unpool2d(&Tensor::from_vec(vec![4.0], [1, 1, 1, 1]), (2, 2));
    }

    fn lenet_shaped_stack() {
        use matnet::Rng;
        use matnet::nn::{Conv2d, Flatten, Linear, MaxPool2d, Module, Relu, Sequential};
        let mut rng = Rng::new(0);
        let pad2 = Conv2dParams {
            padding: (2, 2),
            ..Default::default()
        };
        let net = Sequential::new()
            .append(Conv2d::new(1, 6, (5, 5), pad2, &mut rng))
            .append(Relu)
            .append(MaxPool2d {
                kernel: (2, 2),
                stride: (2, 2),
            })
            .append(Conv2d::new(
                6,
                16,
                (5, 5),
                Conv2dParams::default(),
                &mut rng,
            ))
            .append(Relu)
            .append(MaxPool2d {
                kernel: (2, 2),
                stride: (2, 2),
            })
            .append(Flatten)
            .append(Linear::new(400, 120, &mut rng))
            .append(Relu)
            .append(Linear::new(120, 84, &mut rng))
            .append(Relu)
            .append(Linear::new(84, 10, &mut rng));
        let y = net.forward(&randn(&[3, 1, 28, 28], 1));
        assert_eq!(y.dims(), &[3, 10]);
        // LeNet-5 as in the issue: 61,706 parameters, PyTorch names.
        assert_eq!(net.num_parameters(), 61_706);
        assert_eq!(net.named_parameters()[0].0, "0.weight");
        assert_eq!(net.named_parameters()[0].1.dims(), &[6, 1, 5, 5]);
    }

    fn batch_norm_statistics_and_running_estimates() {
        use matnet::nn::{BatchNorm2d, Module};
        let mut bn = BatchNorm2d::new(3);
        let x = randn(&[4, 3, 5, 5], 2).mul_scalar(3.0).add_scalar(2.0);
        let y = bn.forward(&x);
        // Each channel comes out with mean 0 and (biased) variance 1.
        let m = y.mean(&[0, 2, 3], false).to_vec();
        let v = y.var(&[0, 2, 3], false, 0).to_vec();
        for c in 0..3 {
            assert!(
                m[c].abs() < 1e-5 && (v[c] - 1.0).abs() < 1e-3,
                "channel {c}: mean {} var {}",
                m[c],
                v[c]
            );
        }
        // Running estimates moved 10% towards the batch (unbiased variance).
        let bm = x.mean(&[0, 2, 3], false).to_vec();
        let bv = x.var(&[0, 2, 3], false, 1).to_vec();
        for c in 0..3 {
            assert!((bn.running_mean.to_vec()[c] - 0.1 * bm[c]).abs() < 1e-5);
            assert!((bn.running_var.to_vec()[c] - (0.9 + 0.1 * bv[c])).abs() < 1e-4);
        }
        // Evaluation uses the running estimates.
        bn.set_training(false);
        let e = bn.forward(&x).to_vec();
        let want =
            (x.to_vec()[0] - bn.running_mean.to_vec()[0]) / (bn.running_var.to_vec()[0] + 1e-5).sqrt();
        assert!((e[0] - want).abs() < 1e-5);
        assert_eq!(bn.named_buffers()[0].0, "running_mean");
    }

    fn layer_gradients() {
        use matnet::nn::{BatchNorm2d, Module};
        let bn = BatchNorm2d::new(2);
        let (w, b) = (bn.weight.clone(), bn.bias.clone());
        gradcheck(
            "batch_norm2d training",
            vec![
                randn(&[3, 2, 3, 3], 4),
                w.mul_scalar(1.5),
                b.add_scalar(0.2),
            ],
            |x| {
                let mut layer = BatchNorm2d::new(2);
                layer.weight = x[1].clone();
                layer.bias = x[2].clone();
                layer.forward(&x[0])
            },
        );
    }
}

/// The bias rides in the convolution's own passes (added to each image's
/// block after its product, its gradient summed per image after the weight
/// gradient's product) and gives the bits of a separate broadcast add and
/// of summing the output gradient over images and pixels, for one image
/// per product (24×24 maps), chunks of images (4×4 maps) and groups.
#[test]
fn the_fused_bias_gives_the_bits_of_a_separate_add_and_sum() {
    let grouped = Conv2dParams {
        groups: 2,
        padding: (1, 1),
        ..Default::default()
    };
    for (x_shape, w_shape, p) in [
        ([5, 3, 26, 26], [8, 3, 3, 3], Conv2dParams::default()),
        ([9, 4, 6, 6], [6, 4, 3, 3], Conv2dParams::default()),
        ([3, 4, 7, 7], [6, 2, 3, 3], grouped),
    ] {
        let o = w_shape[0];
        let (x, w) = (randn(&x_shape, 1), randn(&w_shape, 2));
        let b = randn(&[o], 3).requires_grad();
        let fused = x.conv2d(&w, Some(&b), p);
        let separate = x.conv2d(&w, None, p).add(&b.reshape([1, o, 1, 1]));
        assert_eq!(fused.to_vec(), separate.to_vec(), "{x_shape:?}");
        let r = randn(fused.dims(), 4);
        let gb = fused.mul(&r).sum_all().backward();
        let want = r
            .sum_to(&matnet::shape::Shape::new([1, o, 1, 1]))
            .reshape([o]);
        assert_eq!(gb.get(&b).unwrap().to_vec(), want.to_vec(), "{x_shape:?}");
    }
}
