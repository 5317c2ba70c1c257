//! Finite-difference gradient checks for every differentiable op, including
//! broadcast and strided (transposed, narrowed, permuted) inputs.

mod common;
use common::{away_from_zero, gradcheck, randn, uniform};
use matnet::Tensor;

for_each_backend! {
    fn binary_ops_with_broadcasting() {
        let cases: [(&[usize], &[usize]); 4] = [
            (&[3, 4], &[3, 4]),
            (&[2, 3, 4], &[3, 1]),
            (&[4], &[2, 3, 4]),
            (&[1, 3], &[2, 1]),
        ];
        for (i, (sa, sb)) in cases.iter().enumerate() {
            let a = randn(sa, 1 + i as u64);
            let b = randn(sb, 10 + i as u64);
            let bpos = uniform(sb, 0.5, 2.0, 20 + i as u64);
            gradcheck("add", vec![a.clone(), b.clone()], |x| x[0].add(&x[1]));
            gradcheck("sub", vec![a.clone(), b.clone()], |x| x[0].sub(&x[1]));
            gradcheck("mul", vec![a.clone(), b.clone()], |x| x[0].mul(&x[1]));
            gradcheck("div", vec![a.clone(), bpos], |x| x[0].div(&x[1]));
        }
        // A tensor used twice accumulates both contributions.
        gradcheck("x*x+x", vec![randn(&[5], 3)], |x| {
            x[0].mul(&x[0]).add(&x[0])
        });
    }

    fn unary_ops() {
        let x = randn(&[3, 4], 5);
        let pos = uniform(&[3, 4], 0.5, 2.0, 6);
        let kinked = away_from_zero(&[3, 4], 0.1, 7);
        gradcheck("neg", vec![x.clone()], |x| x[0].neg());
        gradcheck("exp", vec![x.clone()], |x| x[0].exp());
        gradcheck("log", vec![pos.clone()], |x| x[0].log());
        gradcheck("sqrt", vec![pos.clone()], |x| x[0].sqrt());
        gradcheck("sqr", vec![x.clone()], |x| x[0].sqr());
        gradcheck("powf", vec![pos.clone()], |x| x[0].powf(2.5));
        gradcheck("abs", vec![kinked.clone()], |x| x[0].abs());
        gradcheck("relu", vec![kinked.clone()], |x| x[0].relu());
        gradcheck("leaky_relu", vec![kinked.clone()], |x| x[0].leaky_relu(0.1));
        gradcheck("sigmoid", vec![x.clone()], |x| x[0].sigmoid());
        gradcheck("tanh", vec![x.clone()], |x| x[0].tanh());
        gradcheck("gelu", vec![x.clone()], |x| x[0].gelu());
        gradcheck("affine", vec![x.clone()], |x| x[0].affine(-1.5, 0.3));
        gradcheck("scalar forms", vec![x.clone()], |x| {
            x[0].add_scalar(1.0)
                .mul_scalar(2.0)
                .sub_scalar(0.5)
                .div_scalar(4.0)
        });
        // Clamp bounds chosen away from the data so no element sits on a kink.
        let c = Tensor::from_vec(vec![-1.2, -0.3, 0.1, 0.6, 0.9, 1.5], [6]);
        gradcheck("clamp", vec![c], |x| x[0].clamp(-0.5, 0.7));
    }

    fn strided_inputs() {
        // Transposed, narrowed, permuted and broadcast views feed the same ops.
        gradcheck("transposed exp", vec![randn(&[3, 4], 8)], |x| {
            x[0].t().exp()
        });
        gradcheck("narrow*2", vec![randn(&[4, 5], 9)], |x| {
            x[0].narrow(1, 1, 3).mul_scalar(2.0).sigmoid()
        });
        gradcheck("permute", vec![randn(&[2, 3, 4], 10)], |x| {
            x[0].permute(&[2, 0, 1]).tanh()
        });
        gradcheck("broadcast_to", vec![randn(&[3, 1], 11)], |x| {
            x[0].broadcast_to([2, 3, 4]).sqr()
        });
        gradcheck(
            "transposed mul broadcast",
            vec![randn(&[4, 3], 12), randn(&[4], 13)],
            |x| x[0].t().mul(&x[1]),
        );
        gradcheck("contiguous of view", vec![randn(&[3, 4], 14)], |x| {
            x[0].t().contiguous().reshape([2, 6])
        });
    }

    fn matmul_family() {
        gradcheck(
            "matmul 2d",
            vec![randn(&[3, 4], 1), randn(&[4, 5], 2)],
            |x| x[0].matmul(&x[1]),
        );
        gradcheck(
            "matmul transposed operands",
            vec![randn(&[4, 3], 3), randn(&[5, 4], 4)],
            |x| x[0].t().matmul(&x[1].t()),
        );
        gradcheck(
            "matmul batched",
            vec![randn(&[2, 3, 4], 5), randn(&[2, 4, 5], 6)],
            |x| x[0].matmul(&x[1]),
        );
        gradcheck(
            "matmul broadcast batch",
            vec![randn(&[2, 1, 3, 4], 7), randn(&[3, 4, 5], 8)],
            |x| x[0].matmul(&x[1]),
        );
        gradcheck(
            "matmul shared weight",
            vec![randn(&[2, 3, 4], 9), randn(&[4, 5], 10)],
            |x| x[0].matmul(&x[1]),
        );
        gradcheck(
            "matmul 2d x batched",
            vec![randn(&[3, 4], 11), randn(&[2, 4, 5], 12)],
            |x| x[0].matmul(&x[1]),
        );
        gradcheck(
            "vec @ mat",
            vec![randn(&[4], 13), randn(&[4, 5], 14)],
            |x| x[0].matmul(&x[1]),
        );
        gradcheck(
            "mat @ vec",
            vec![randn(&[3, 4], 15), randn(&[4], 16)],
            |x| x[0].matmul(&x[1]),
        );
        gradcheck("dot", vec![randn(&[7], 17), randn(&[7], 18)], |x| {
            x[0].dot(&x[1])
        });
        gradcheck("outer", vec![randn(&[4], 19), randn(&[3], 20)], |x| {
            x[0].outer(&x[1])
        });
        gradcheck("kron", vec![randn(&[2, 2], 21), randn(&[2, 3], 22)], |x| {
            x[0].kron(&x[1])
        });
    }

    fn movement_ops() {
        gradcheck("reshape", vec![randn(&[2, 6], 1)], |x| {
            x[0].reshape([3, 4]).sqr()
        });
        gradcheck("transpose", vec![randn(&[2, 3, 4], 2)], |x| {
            x[0].transpose(0, 2).sqr()
        });
        gradcheck("narrow", vec![randn(&[5, 3], 3)], |x| {
            x[0].narrow(0, 1, 3).sqr()
        });
        gradcheck(
            "cat",
            vec![randn(&[2, 3], 4), randn(&[2, 1], 5), randn(&[2, 2], 6)],
            |x| Tensor::cat(&[x[0].clone(), x[1].clone(), x[2].clone()], 1).sqr(),
        );
        gradcheck("stack", vec![randn(&[2, 3], 7), randn(&[2, 3], 8)], |x| {
            Tensor::stack(&[x[0].clone(), x[1].clone()], 1).sqr()
        });
        gradcheck("squeeze/unsqueeze", vec![randn(&[3, 1], 9)], |x| {
            x[0].squeeze(1).unsqueeze(0).sqr()
        });
    }

    fn reductions() {
        let x = randn(&[2, 3, 4], 1);
        gradcheck("sum all", vec![x.clone()], |x| x[0].sum_all());
        gradcheck("sum dim", vec![x.clone()], |x| x[0].sum(&[1], false));
        gradcheck("sum dims keepdim", vec![x.clone()], |x| {
            x[0].sum(&[0, 2], true)
        });
        gradcheck("mean", vec![x.clone()], |x| x[0].mean(&[-1], false));
        gradcheck("mean all", vec![x.clone()], |x| x[0].mean_all());
        gradcheck("var unbiased", vec![x.clone()], |x| {
            x[0].var(&[2], false, 1)
        });
        gradcheck("var population", vec![x.clone()], |x| {
            x[0].var(&[0, 1], true, 0)
        });
        // Distinct values so the argmax is unique and 2·eps never changes it.
        let d = Tensor::from_vec(
            (0..12).map(|i| ((i * 7) % 12) as f32 * 0.3).collect(),
            [3, 4],
        );
        gradcheck("max dim", vec![d.clone()], |x| x[0].max(1, false));
        gradcheck("max keepdim", vec![d.clone()], |x| x[0].max(0, true));
        gradcheck("max all", vec![d], |x| x[0].max_all());
    }

    fn softmax_family() {
        gradcheck("softmax last", vec![randn(&[3, 5], 1)], |x| {
            x[0].softmax(-1)
        });
        gradcheck("softmax dim0", vec![randn(&[2, 3, 4], 2)], |x| {
            x[0].softmax(0)
        });
        gradcheck("log_softmax last", vec![randn(&[3, 5], 3)], |x| {
            x[0].log_softmax(1)
        });
        gradcheck("log_softmax middle", vec![randn(&[2, 3, 4], 4)], |x| {
            x[0].log_softmax(1)
        });
    }

    fn indexing_and_where() {
        let idx = Tensor::from_vec(vec![2., 0., 1., 1., 3., 0.], [3, 2]);
        gradcheck("gather dim1", vec![randn(&[3, 4], 1)], |x| {
            x[0].gather(1, &idx)
        });
        let idx0 = Tensor::from_vec(vec![1., 0., 2., 1.], [2, 2]);
        gradcheck("gather dim0", vec![randn(&[3, 2], 2)], |x| {
            x[0].gather(0, &idx0)
        });
        let sel = Tensor::from_vec(vec![2., 0., 2.], [3]);
        gradcheck("index_select repeated", vec![randn(&[3, 4], 3)], |x| {
            x[0].index_select(0, &sel)
        });
        gradcheck("index_select dim1", vec![randn(&[2, 3, 2], 4)], |x| {
            x[0].index_select(1, &sel)
        });
        let cond = Tensor::from_vec(vec![1., 0., 1.], [3, 1]);
        gradcheck("where", vec![randn(&[3, 4], 5), randn(&[4], 6)], |x| {
            Tensor::where_cond(&cond, &x[0], &x[1])
        });
    }
}
