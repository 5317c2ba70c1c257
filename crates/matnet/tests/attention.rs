//! Attention and transformer layers: PyTorch golden values, the source
//! document's equations on hand-checkable matrices, masking and layer
//! behaviour. Finite-difference checks are in `attention_gradcheck.rs`.

mod common;
use common::{assert_close, json_tensor, randn, usize_list};
use matnet::nn::attention::{causal_mask, scaled_dot_product_attention, self_attention_raw};
use matnet::nn::{
    Activation, AttnMask, Embedding, EncoderLayerConfig, LayerNorm, LearnedPositionalEncoding,
    Module, MultiheadAttention, SinusoidalPositionalEncoding, TransformerEncoder,
    TransformerEncoderLayer,
};
use matnet::{Rng, Tensor};
use serde_json::Value;

// ----- golden values from PyTorch (golden/gen/attention.py) -------------------

/// A tensor from the golden file; the script writes -∞ as -1e30.
fn to_tensor(v: &Value) -> Tensor {
    let (shape, data) = json_tensor(v);
    let data = data
        .into_iter()
        .map(|x| {
            if x <= -1e30 {
                f32::NEG_INFINITY
            } else {
                x as f32
            }
        })
        .collect();
    Tensor::from_vec(data, shape)
}

/// Copies the case's parameters into `m`, checking that matnet names the
/// same parameters as PyTorch's `state_dict`.
fn load(m: &dyn Module, params: &Value) {
    let ours: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
    let mut theirs: Vec<String> = params.as_object().unwrap().keys().cloned().collect();
    let mut sorted = ours.clone();
    sorted.sort();
    theirs.sort();
    assert_eq!(sorted, theirs, "parameter names differ from PyTorch's");
    for (name, p) in m.named_parameters() {
        let t = to_tensor(&params[&name]);
        assert_eq!(p.dims(), t.dims(), "{name}: shape");
        p.assign_(&t);
    }
}

fn encoder_config(c: &Value) -> EncoderLayerConfig {
    let n = |k: &str| c[k].as_u64().unwrap() as usize;
    EncoderLayerConfig {
        dim_feedforward: n("dim_feedforward"),
        dropout: 0.0,
        activation: match c["activation"].as_str().unwrap() {
            "relu" => Activation::Relu,
            "gelu" => Activation::Gelu,
            a => panic!("unknown activation {a}"),
        },
        norm_first: c["norm_first"].as_bool().unwrap(),
        ..EncoderLayerConfig::new(n("d_model"), n("nhead"))
    }
}

type Named = Vec<(String, Tensor)>;

/// Runs one case; returns the largest absolute difference seen.
fn run_case(case: &Value) -> f64 {
    let name = case["name"].as_str().unwrap();
    let cfg = &case["config"];
    let mut rng = Rng::new(0);
    let inputs: Vec<(String, Tensor)> = case["inputs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let t = to_tensor(v);
            // Token ids are not differentiable; everything else is.
            let t = if k == "ids" { t } else { t.requires_grad() };
            (k.clone(), t)
        })
        .collect();
    let input = |k: &str| inputs.iter().find(|(n, _)| n == k).unwrap().1.clone();
    let mask = |k: &str| case["masks"].get(k).map(to_tensor);
    let (outputs, params): (Vec<(&str, Tensor)>, Named) = match case["kind"].as_str().unwrap() {
        "mha" => {
            let e = cfg["embed_dim"].as_u64().unwrap() as usize;
            let h = cfg["num_heads"].as_u64().unwrap() as usize;
            let m = MultiheadAttention::new(e, h, &mut rng);
            load(&m, &case["params"]);
            let attn = mask("attn_mask").map(AttnMask::Float);
            let pad = mask("key_padding_mask").map(AttnMask::Bool);
            let (y, w) = if case["inputs"].get("x").is_some() {
                let x = input("x");
                m.forward_attn(&x, &x, &x, attn.as_ref(), pad.as_ref())
            } else {
                m.forward_attn(
                    &input("query"),
                    &input("key"),
                    &input("value"),
                    attn.as_ref(),
                    pad.as_ref(),
                )
            };
            (vec![("output", y), ("weights", w)], m.named_parameters())
        }
        "layer_norm" => {
            let m = LayerNorm::new(&usize_list(&cfg["normalized_shape"]));
            load(&m, &case["params"]);
            (
                vec![("output", m.forward(&input("x")))],
                m.named_parameters(),
            )
        }
        "encoder_layer" => {
            let m = TransformerEncoderLayer::new(&encoder_config(cfg), &mut rng);
            load(&m, &case["params"]);
            let src_mask = mask("src_mask").map(AttnMask::Float);
            let y = m.forward_masked(&input("x"), src_mask.as_ref(), None);
            (vec![("output", y)], m.named_parameters())
        }
        "embedding" => {
            let n = |k: &str| cfg[k].as_u64().unwrap() as usize;
            let m = Embedding::new(n("num_embeddings"), n("dim"), &mut rng);
            load(&m, &case["params"]);
            (
                vec![("output", m.forward(&input("ids")))],
                m.named_parameters(),
            )
        }
        k => panic!("{name}: unknown kind {k}"),
    };

    let mut worst = 0.0f64;
    let mut check = |what: String, got: &Tensor, want: &Value| {
        let (shape, want) = json_tensor(want);
        assert_eq!(got.dims(), &shape[..], "{what}: shape");
        let got = got.to_vec();
        assert_close(&what, &got, &want, 1e-5, 1e-5);
        for (g, w) in got.iter().zip(&want) {
            worst = worst.max((*g as f64 - w).abs());
        }
    };
    let mut loss = Tensor::scalar(0.0);
    for (k, y) in &outputs {
        check(format!("{name} {k}"), y, &case["outputs"][k]);
        loss = loss.add(&y.mul(&to_tensor(&case["r"][k])).sum_all());
    }
    let grads = loss.backward();
    let grads_want = case["grads"].as_object().unwrap();
    let leaves = inputs
        .iter()
        .filter(|(_, t)| t.is_variable())
        .chain(&params);
    let mut n = 0;
    for (k, t) in leaves {
        let g = grads
            .get(t)
            .unwrap_or_else(|| panic!("{name}: {k} got no gradient"));
        check(format!("{name} grad {k}"), g, &grads_want[k]);
        n += 1;
    }
    assert_eq!(n, grads_want.len(), "{name}: gradients compared");
    worst
}

// ----- the document's equations on matrices small enough to check by hand ----

fn assert_rows(name: &str, got: &Tensor, want: &[&[f32]]) {
    let want: Vec<f64> = want
        .iter()
        .flat_map(|r| r.iter().map(|&v| v as f64))
        .collect();
    assert_close(name, &got.to_vec(), &want, 1e-6, 1e-6);
}

/// `d out[:, t] / d x` vanishes for every input position after `t`.
fn assert_causal(name: &str, f: impl Fn(&Tensor) -> Tensor, x: &Tensor) {
    let (n, t, e) = (x.dims()[0], x.dims()[1], x.dims()[2]);
    for step in 0..t {
        let x = x.detach().requires_grad();
        let y = f(&x);
        let g = y
            .narrow(1, step, 1)
            .mul(&randn(&[n, 1, e], 7))
            .sum_all()
            .backward();
        let g = g.get(&x).unwrap().to_vec();
        for (i, v) in g.iter().enumerate() {
            let pos = (i / e) % t;
            if pos > step {
                assert_eq!(*v, 0.0, "{name}: output {step} depends on input {pos}");
            }
        }
        // ... while it does depend on the positions before it.
        assert!(g.iter().any(|v| *v != 0.0), "{name}: no gradient at all");
    }
}

// ----- layer behaviour --------------------------------------------------------

for_each_backend! {
    fn layers_match_pytorch() {
        let root: Value =
            serde_json::from_str(include_str!("golden/attention.json")).expect("attention.json parses");
        let cases = root["cases"].as_array().unwrap();
        let mut worst = 0.0f64;
        let mut names = Vec::new();
        for case in cases {
            worst = worst.max(run_case(case));
            names.push(case["name"].as_str().unwrap());
        }
        println!(
            "attention golden: {} cases matched (outputs and gradients, max |diff| {worst:.1e}): {names:?}",
            cases.len()
        );
    }

    fn eq6_raw_self_attention_by_hand() {
        let e = std::f32::consts::E;
        // X = I: X·Xᵀ = I, so each row of A is softmax([1, 0]) = [e/(e+1), 1/(e+1)],
        // and A·X = A.
        let (y, a) = self_attention_raw(&Tensor::eye(2));
        let (p, q) = (e / (e + 1.0), 1.0 / (e + 1.0));
        assert_rows("eq6 A, X = I", &a, &[&[p, q], &[q, p]]);
        assert_rows("eq6 A·X, X = I", &y, &[&[p, q], &[q, p]]);

        // X = [[1, 0], [1, 1]]: X·Xᵀ = [[1, 1], [1, 2]];
        // row 0: softmax([1, 1]) = [1/2, 1/2]; row 1: softmax([1, 2]) = [1/(1+e), e/(1+e)].
        // A·X: row 0 = ½[1, 0] + ½[1, 1] = [1, 1/2];
        //      row 1 = 1/(1+e)·[1, 0] + e/(1+e)·[1, 1] = [1, e/(1+e)].
        let x = Tensor::from_vec(vec![1., 0., 1., 1.], [2, 2]);
        let (y, a) = self_attention_raw(&x);
        assert_rows("eq6 A", &a, &[&[0.5, 0.5], &[q, p]]);
        assert_rows("eq6 A·X", &y, &[&[1.0, 0.5], &[1.0, p]]);
        // Rows of A sum to 1 (the document's remark after eq. 6), batched too.
        let (_, a) = self_attention_raw(&randn(&[3, 4, 5], 1));
        for s in a.sum(&[-1], false).to_vec() {
            assert!((s - 1.0).abs() < 1e-6, "row sum {s}");
        }
    }

    fn eq7_scaled_dot_product_attention_by_hand() {
        let e2 = std::f32::consts::E.powi(2);
        // X = [[1, 0], [1, 1]] and the parameter matrices of eq. 7 (Q = X·W^Q, ...):
        //   W^Q = [[1, 1, 1, 1], [-1, -1, -1, -1]]  ->  Q = [[1, 1, 1, 1], [0, 0, 0, 0]]
        //   W^K = [[1, 1, 1, 1], [0, -2, 0, -2]]    ->  K = [[1, 1, 1, 1], [1, -1, 1, -1]]
        //   W^V = [[2, 0], [-2, 4]]                 ->  V = [[2, 0], [0, 4]]
        // d_k = 4, √d_k = 2; Q·Kᵀ/2 = [[4, 0], [0, 0]]/2 = [[2, 0], [0, 0]].
        // A = [[e²/(e²+1), 1/(e²+1)], [1/2, 1/2]];
        // A·V = [[2e²/(e²+1), 4/(e²+1)], [1, 2]].
        let x = Tensor::from_vec(vec![1., 0., 1., 1.], [2, 2]);
        let wq = Tensor::from_vec(vec![1., 1., 1., 1., -1., -1., -1., -1.], [2, 4]);
        let wk = Tensor::from_vec(vec![1., 1., 1., 1., 0., -2., 0., -2.], [2, 4]);
        let wv = Tensor::from_vec(vec![2., 0., -2., 4.], [2, 2]);
        let (q, k, v) = (x.matmul(&wq), x.matmul(&wk), x.matmul(&wv));
        assert_rows("Q", &q, &[&[1., 1., 1., 1.], &[0., 0., 0., 0.]]);
        let (y, a) = scaled_dot_product_attention(&q, &k, &v, None);
        let (p, r) = (e2 / (e2 + 1.0), 1.0 / (e2 + 1.0));
        assert_rows("eq7 A", &a, &[&[p, r], &[0.5, 0.5]]);
        assert_rows("eq7 A·V", &y, &[&[2.0 * p, 4.0 * r], &[1.0, 2.0]]);

        // Masking key 1 from query 0 leaves query 0 all of V's row 0.
        let m = AttnMask::Bool(Tensor::from_vec(vec![0., 1., 0., 0.], [2, 2]));
        let (y, a) = scaled_dot_product_attention(&q, &k, &v, Some(&m));
        assert_rows("masked A", &a, &[&[1.0, 0.0], &[0.5, 0.5]]);
        assert_rows("masked A·V", &y, &[&[2.0, 0.0], &[1.0, 2.0]]);
    }

    fn masks_bool_and_float_agree() {
        let t = 4;
        let (q, k, v) = (
            randn(&[2, 3, t, 5], 1),
            randn(&[2, 3, t, 5], 2),
            randn(&[2, 3, t, 6], 3),
        );
        let causal = causal_mask(t);
        assert_eq!(causal.tensor().dims(), &[t, t]);
        // The same mask as booleans (1 = masked out): strictly above the diagonal.
        let upper: Vec<f32> = (0..t * t)
            .map(|i| if i % t > i / t { 1.0 } else { 0.0 })
            .collect();
        let as_bool = AttnMask::Bool(Tensor::from_vec(upper, [t, t]));
        let (y1, a1) = scaled_dot_product_attention(&q, &k, &v, Some(&causal));
        let (y2, a2) = scaled_dot_product_attention(&q, &k, &v, Some(&as_bool));
        assert_eq!(y1.to_vec(), y2.to_vec());
        assert_eq!(a1.to_vec(), a2.to_vec());
        // Lower-triangular weights whose rows sum to 1.
        let a = a1.to_vec();
        for (i, w) in a.iter().enumerate() {
            let (row, col) = ((i / t) % t, i % t);
            if col > row {
                assert_eq!(*w, 0.0, "weight above the diagonal");
            }
        }
        for s in a1.sum(&[-1], false).to_vec() {
            assert!((s - 1.0).abs() < 1e-6);
        }
    }

    fn causal_mask_blocks_the_future() {
        let mut rng = Rng::new(3);
        let x = randn(&[2, 5, 8], 4);
        let mask = causal_mask(5);
        let mha = MultiheadAttention::new(8, 2, &mut rng);
        assert_causal(
            "mha",
            |x| mha.forward_attn(x, x, x, Some(&mask), None).0,
            &x,
        );
        let c = EncoderLayerConfig {
            dim_feedforward: 16,
            dropout: 0.0,
            ..EncoderLayerConfig::new(8, 2)
        };
        for norm_first in [false, true] {
            let layer = TransformerEncoderLayer::new(&EncoderLayerConfig { norm_first, ..c }, &mut rng);
            assert_causal(
                "encoder layer",
                |x| layer.forward_masked(x, Some(&mask), None),
                &x,
            );
        }
        let stack = TransformerEncoder::new(&c, 2, true, &mut rng);
        assert_causal(
            "encoder",
            |x| stack.forward_masked(x, Some(&mask), None),
            &x,
        );
    }

    fn multihead_attention_is_per_head_sdpa() {
        let mut rng = Rng::new(5);
        let (n, t, e, h) = (2, 4, 6, 3);
        let mha = MultiheadAttention::new(e, h, &mut rng);
        let names: Vec<String> = mha.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "in_proj_weight",
                "in_proj_bias",
                "out_proj.weight",
                "out_proj.bias"
            ]
        );
        assert_eq!(mha.num_parameters(), 3 * e * e + 3 * e + e * e + e);
        // Give the biases values so they are exercised.
        mha.in_proj_bias
            .as_ref()
            .unwrap()
            .assign_(&randn(&[3 * e], 9));
        mha.out_proj
            .bias
            .as_ref()
            .unwrap()
            .assign_(&randn(&[e], 10));
        let x = randn(&[n, t, e], 6);
        let (y, a) = mha.forward_attn(&x, &x, &x, None, None);
        assert_eq!(y.dims(), &[n, t, e]);
        assert_eq!(a.dims(), &[n, h, t, t]);

        // The same by hand: project, split columns into heads, eq. 7 per head, concat.
        let dh = e / h;
        let w = &mha.in_proj_weight;
        let b = mha.in_proj_bias.as_ref().unwrap();
        let proj = |i: usize| {
            x.matmul(&w.narrow(0, i * e, e).t())
                .add(&b.narrow(0, i * e, e))
        };
        let (q, k, v) = (proj(0), proj(1), proj(2));
        let mut heads = Vec::new();
        for j in 0..h {
            let part = |m: &Tensor| m.narrow(2, j * dh, dh);
            let (o, aj) = scaled_dot_product_attention(&part(&q), &part(&k), &part(&v), None);
            let want: Vec<f64> = aj.to_vec().into_iter().map(f64::from).collect();
            let got = a.narrow(1, j, 1).to_vec();
            assert_close(&format!("head {j} weights"), &got, &want, 1e-5, 1e-6);
            heads.push(o);
        }
        let want = mha.out_proj.forward(&Tensor::cat(&heads, 2));
        let want: Vec<f64> = want.to_vec().into_iter().map(f64::from).collect();
        assert_close("mha output", &y.to_vec(), &want, 1e-5, 1e-6);

        // Distinct query/key/value tensors take the separate-projection path and agree.
        let x2 = x.add_scalar(0.0);
        let (y2, _) = mha.forward_attn(&x, &x2, &x2, None, None);
        let want: Vec<f64> = y.to_vec().into_iter().map(f64::from).collect();
        assert_close("separate projections", &y2.to_vec(), &want, 1e-5, 1e-6);
        // An unbatched [T, E] input is the batch of one.
        let x0 = x.narrow(0, 0, 1).reshape([t, e]);
        let (y0, a0) = mha.forward_attn(&x0, &x0, &x0, None, None);
        assert_eq!((y0.dims(), a0.dims()), (&[t, e][..], &[h, t, t][..]));
        let want: Vec<f64> = y
            .narrow(0, 0, 1)
            .to_vec()
            .into_iter()
            .map(f64::from)
            .collect();
        assert_close("unbatched", &y0.to_vec(), &want, 1e-5, 1e-6);
        // Module::forward is unmasked self-attention.
        assert_eq!(mha.forward(&x).to_vec(), y.to_vec());
    }

    fn attention_dropout_only_in_training() {
        let mut rng = Rng::new(8);
        let mut mha = MultiheadAttention::with_dropout(4, 2, 0.5, &mut rng);
        let x = randn(&[2, 6, 4], 1);
        let (_, a) = mha.forward_attn(&x, &x, &x, None, None);
        let zeros = a.to_vec().iter().filter(|&&w| w == 0.0).count();
        assert!(zeros > 0, "dropout dropped nothing");
        mha.set_training(false);
        let (_, a) = mha.forward_attn(&x, &x, &x, None, None);
        for s in a.sum(&[-1], false).to_vec() {
            assert!((s - 1.0).abs() < 1e-6);
        }
    }

    fn embeddings_and_positional_encodings() {
        let mut rng = Rng::new(2);
        let emb = Embedding::new(5, 3, &mut rng);
        let ids = Tensor::from_vec(vec![4., 0., 4., 2.], [2, 2]);
        let y = emb.forward(&ids);
        assert_eq!(y.dims(), &[2, 2, 3]);
        let w = emb.weight.to_vec2();
        assert_eq!(y.to_vec()[..3], w[4][..]);
        assert_eq!(y.to_vec()[9..], w[2][..]);

        // P[t, 2i] = sin(t/10000^(2i/D)), P[t, 2i+1] = cos(...): D = 4, t = 0, 1.
        let pe = SinusoidalPositionalEncoding::new(10, 4);
        assert!(pe.named_parameters().is_empty());
        let p = pe.forward(&Tensor::zeros([1, 2, 4]));
        let w1 = 0.01f32; // 10000^(-2/4)
        let want = [0., 1., 0., 1., 1f32.sin(), 1f32.cos(), w1.sin(), w1.cos()];
        let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
        assert_close("sinusoidal", &p.to_vec(), &want, 1e-6, 1e-6);
        let x = randn(&[2, 3, 4], 3);
        let want: Vec<f64> = x
            .add(&pe.pe.narrow(0, 0, 3))
            .to_vec()
            .into_iter()
            .map(f64::from)
            .collect();
        assert_close(
            "broadcast over batch",
            &pe.forward(&x).to_vec(),
            &want,
            0.0,
            0.0,
        );

        let lpe = LearnedPositionalEncoding::new(10, 4, &mut rng);
        assert_eq!(lpe.named_parameters()[0].0, "weight");
        assert_eq!(lpe.forward(&x).dims(), &[2, 3, 4]);
    }

    fn encoder_names_parameters_like_pytorch() {
        let mut rng = Rng::new(1);
        let c = EncoderLayerConfig {
            dim_feedforward: 16,
            ..EncoderLayerConfig::new(8, 2)
        };
        let enc = TransformerEncoder::new(&c, 2, true, &mut rng);
        let names: Vec<String> = enc.named_parameters().into_iter().map(|(n, _)| n).collect();
        let layer = [
            "self_attn.in_proj_weight",
            "self_attn.in_proj_bias",
            "self_attn.out_proj.weight",
            "self_attn.out_proj.bias",
            "linear1.weight",
            "linear1.bias",
            "linear2.weight",
            "linear2.bias",
            "norm1.weight",
            "norm1.bias",
            "norm2.weight",
            "norm2.bias",
        ];
        let mut want: Vec<String> = Vec::new();
        for i in 0..2 {
            want.extend(layer.iter().map(|n| format!("layers.{i}.{n}")));
        }
        want.extend(["norm.weight".to_string(), "norm.bias".to_string()]);
        assert_eq!(names, want);
        let per_layer = 3 * 64 + 3 * 8 + 64 + 8 + 16 * 8 + 16 + 8 * 16 + 8 + 4 * 8;
        assert_eq!(enc.num_parameters(), 2 * per_layer + 16);
        let x = randn(&[2, 5, 8], 2);
        let (y, maps) = enc.forward_attn(&x, None, None);
        assert_eq!(y.dims(), &[2, 5, 8]);
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[1].dims(), &[2, 2, 5, 5]);
    }
}
