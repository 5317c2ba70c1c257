//! Recurrent layers: golden values and gradients against PyTorch's `nn.RNN`,
//! `nn.LSTM` and `nn.GRU` (`golden/rnn.json`, written by `golden/gen/rnn.py`),
//! finite-difference gradient checks (including truncated BPTT), and
//! PyTorch's parameter names, shapes and initialisation.

mod common;
use common::{assert_close, gradcheck, json_tensor, randn};
use matnet::nn::{
    Gru, Linear, Lstm, Module, Recurrent, RecurrentKind as Kind, RecurrentState, RecurrentWeights,
    RnnConfig, Sequential,
};
use matnet::{Rng, Tensor};
use serde_json::Value;

/// PyTorch's `mode` string in rnn.json.
fn kind_from_mode(mode: &str) -> Kind {
    match mode {
        "RNN" => Kind::Rnn,
        "LSTM" => Kind::Lstm,
        "GRU" => Kind::Gru,
        other => panic!("rnn.json names an unknown mode {other}"),
    }
}

/// Output sequence, `h_n` and (LSTM) `c_n` of any of the three layers, so
/// every test runs on all of them through the one [`Recurrent`] interface.
fn run(
    net: &dyn Recurrent,
    x: &Tensor,
    h0: Option<&Tensor>,
    c0: Option<&Tensor>,
) -> (Tensor, Tensor, Option<Tensor>) {
    let state = h0.map(|h| RecurrentState {
        h: h.clone(),
        c: c0.cloned(),
    });
    let (out, s) = net.forward_seq(x, state.as_ref());
    (out, s.h, s.c)
}

fn to_tensor(v: &Value) -> Tensor {
    let (shape, data) = json_tensor(v);
    Tensor::from_vec(data.into_iter().map(|x| x as f32).collect(), shape)
}

fn opt_tensor(v: &Value) -> Option<Tensor> {
    (!v.is_null()).then(|| to_tensor(v).requires_grad())
}

/// Compares and returns the largest absolute difference.
fn check(name: &str, got: &Tensor, want: &Value) -> f64 {
    let (shape, want) = json_tensor(want);
    assert_eq!(got.dims(), &shape[..], "{name}: shape");
    let got = got.to_vec();
    assert_close(name, &got, &want, 1e-5, 1e-5);
    got.iter()
        .zip(&want)
        .map(|(&g, &w)| (g as f64 - w).abs())
        .fold(0.0, f64::max)
}

/// The layer's tensors of a stack of `num_layers` as a flat list
/// (weight_ih, weight_hh[, bias_ih, bias_hh] per layer), freshly drawn.
fn weights(kind: Kind, d: usize, h: usize, num_layers: usize, bias: bool) -> Vec<Tensor> {
    let cfg = RnnConfig {
        num_layers,
        bias,
        ..Default::default()
    };
    // Larger than the U(±1/√H) init so that the gates leave their linear range.
    kind.build(d, h, cfg, &mut Rng::new(7))
        .parameters()
        .iter()
        .map(|p| p.mul_scalar(2.0))
        .collect()
}

/// Rebuilds the per-layer weights from the flat list made by [`weights`].
fn layers_from(flat: &[Tensor], bias: bool) -> Vec<RecurrentWeights> {
    let per = if bias { 4 } else { 2 };
    flat.chunks(per)
        .map(|w| RecurrentWeights {
            weight_ih: w[0].clone(),
            weight_hh: w[1].clone(),
            bias_ih: bias.then(|| w[2].clone()),
            bias_hh: bias.then(|| w[3].clone()),
        })
        .collect()
}

/// Output sequence, `h_n` and `c_n` flattened into one vector.
fn flat_outputs(out: Tensor, h_n: Tensor, c_n: Option<Tensor>) -> Tensor {
    let mut parts = vec![out.reshape([out.numel()]), h_n.reshape([h_n.numel()])];
    parts.extend(c_n.map(|c| c.reshape([c.numel()])));
    Tensor::cat(&parts, 0)
}

for_each_backend! {
    fn rnn_lstm_gru_match_pytorch() {
        let root: Value =
            serde_json::from_str(include_str!("golden/rnn.json")).expect("rnn.json parses");
        let cases = root["cases"].as_array().unwrap();
        let mut worst = 0.0f64;
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let kind = kind_from_mode(case["mode"].as_str().unwrap());
            let u = |k: &str| case[k].as_u64().unwrap() as usize;
            let cfg = RnnConfig {
                num_layers: u("num_layers"),
                bias: case["bias"].as_bool().unwrap(),
                batch_first: case["batch_first"].as_bool().unwrap(),
                tbptt: case["tbptt"].as_u64().map(|k| k as usize),
            };
            // Built by the constructor, then loaded from PyTorch's state_dict by
            // name: checks our names, order and shapes against PyTorch's.
            let net = kind.build(u("input_size"), u("hidden_size"), cfg, &mut Rng::new(0));
            let params = net.named_parameters();
            let want_params = case["params"].as_array().unwrap();
            assert_eq!(params.len(), want_params.len(), "{name}: parameter count");
            for ((pname, p), want) in params.iter().zip(want_params) {
                assert_eq!(pname, want[0].as_str().unwrap(), "{name}: parameter order");
                p.assign_(&to_tensor(&want[1]));
            }

            let x = to_tensor(&case["x"]).requires_grad();
            let (h0, c0) = (opt_tensor(&case["h0"]), opt_tensor(&case["c0"]));
            let (out, h_n, c_n) = run(&*net, &x, h0.as_ref(), c0.as_ref());
            worst = worst.max(check(&format!("{name} output"), &out, &case["output"]));
            worst = worst.max(check(&format!("{name} h_n"), &h_n, &case["h_n"]));
            let mut loss = out
                .mul(&to_tensor(&case["r_out"]))
                .sum_all()
                .add(&h_n.mul(&to_tensor(&case["r_h"])).sum_all());
            if let Some(c_n) = &c_n {
                worst = worst.max(check(&format!("{name} c_n"), c_n, &case["c_n"]));
                loss = loss.add(&c_n.mul(&to_tensor(&case["r_c"])).sum_all());
            }

            let grads = loss.backward();
            let grad = |t: &Tensor, what: &str| {
                grads
                    .get(t)
                    .unwrap_or_else(|| panic!("{name}: no gradient for {what}"))
                    .clone()
            };
            worst = worst.max(check(
                &format!("{name} grad x"),
                &grad(&x, "x"),
                &case["grad_x"],
            ));
            for (s, key) in [(&h0, "grad_h0"), (&c0, "grad_c0")] {
                if let Some(s) = s {
                    worst = worst.max(check(&format!("{name} {key}"), &grad(s, key), &case[key]));
                }
            }
            let want_grads = case["grad_params"].as_array().unwrap();
            assert_eq!(want_grads.len(), params.len(), "{name}: gradient count");
            for ((pname, p), want) in params.iter().zip(want_grads) {
                let g = grad(p, pname);
                worst = worst.max(check(&format!("{name} grad {pname}"), &g, &want[1]));
            }
        }
        println!(
            "RNN/LSTM/GRU golden: {} cases matched (outputs, h_n, c_n and gradients; max |diff| {worst:.2e})",
            cases.len()
        );
    }

    fn recurrent_gradients_match_finite_differences() {
        let (d, h, t, n) = (2, 3, 4, 2);
        for kind in [Kind::Rnn, Kind::Lstm, Kind::Gru] {
            // Two layers, batch first, with an initial state; then one layer,
            // time-major, no bias, zero state.
            for (layers, batch_first, bias, with_state) in
                [(2, true, true, true), (1, false, false, false)]
            {
                let x_shape = if batch_first { [n, t, d] } else { [t, n, d] };
                let mut inputs = vec![randn(&x_shape, 1)];
                let states = match (with_state, kind) {
                    (false, _) => 0,
                    (true, Kind::Lstm) => 2,
                    (true, _) => 1,
                };
                for s in 0..states {
                    inputs.push(randn(&[layers, n, h], 2 + s as u64));
                }
                inputs.extend(weights(kind, d, h, layers, bias));
                let name = format!(
                    "{kind:?} layers {layers} batch_first {batch_first} bias {bias} state {with_state}"
                );
                gradcheck(&name, inputs, |v| {
                    let net = kind.from_layers(layers_from(&v[1 + states..], bias), batch_first, None);
                    let (out, h_n, c_n) = run(
                        &*net,
                        &v[0],
                        v.get(1).filter(|_| states > 0),
                        v.get(2).filter(|_| states > 1),
                    );
                    flat_outputs(out, h_n, c_n)
                });
            }
        }
    }

    /// Truncated BPTT, window `k`: autograd through the layer with `tbptt: Some(k)`
    /// equals autograd through the truncated function (the sequence run in
    /// chunks of `k`, the state entering each later chunk a constant), and that
    /// function passes the finite-difference check.
    fn tbptt_gradients_are_those_of_the_truncated_function() {
        let (d, h, t, n, k, layers) = (2, 3, 5, 2, 2, 2);
        for kind in [Kind::Rnn, Kind::Lstm, Kind::Gru] {
            let states = if kind == Kind::Lstm { 2 } else { 1 };
            let mut inputs = vec![randn(&[n, t, d], 11)];
            for s in 0..states {
                inputs.push(randn(&[layers, n, h], 12 + s as u64));
            }
            inputs.extend(weights(kind, d, h, layers, true));
            let net = |v: &[Tensor], tbptt| {
                kind.from_layers(layers_from(&v[1 + states..], true), true, tbptt)
            };
            let state = |v: &[Tensor]| (v[1].clone(), (states > 1).then(|| v[2].clone()));

            // The states entering chunks 1, 2, ... at the unperturbed inputs: constants.
            let starts: Vec<usize> = (0..t).step_by(k).collect();
            let boundary: Vec<(Tensor, Option<Tensor>)> = {
                let _g = matnet::no_grad();
                let (h0, c0) = state(&inputs);
                starts
                    .iter()
                    .map(|&s| {
                        if s == 0 {
                            return (h0.clone(), c0.clone());
                        }
                        let (_, h_s, c_s) = run(
                            &*net(&inputs, None),
                            &inputs[0].narrow(1, 0, s),
                            Some(&h0),
                            c0.as_ref(),
                        );
                        (h_s, c_s)
                    })
                    .collect()
            };
            let truncated = |v: &[Tensor]| {
                let m = net(v, None);
                let mut outs = Vec::new();
                let mut last = None;
                for (j, &s) in starts.iter().enumerate() {
                    let (hs, cs) = if j == 0 {
                        state(v)
                    } else {
                        boundary[j].clone()
                    };
                    let len = k.min(t - s);
                    let (o, h_n, c_n) = run(&*m, &v[0].narrow(1, s, len), Some(&hs), cs.as_ref());
                    outs.push(o);
                    last = Some((h_n, c_n));
                }
                let (h_n, c_n) = last.unwrap();
                flat_outputs(Tensor::cat(&outs, 1), h_n, c_n)
            };
            let with_tbptt = |v: &[Tensor], tbptt| {
                let (h0, c0) = state(v);
                let (o, h_n, c_n) = run(&*net(v, tbptt), &v[0], Some(&h0), c0.as_ref());
                flat_outputs(o, h_n, c_n)
            };
            gradcheck(
                &format!("{kind:?} truncated function"),
                inputs.clone(),
                truncated,
            );

            // Same loss through the three graphs.
            let vars: Vec<Tensor> = inputs.iter().map(|t| t.detach().requires_grad()).collect();
            let r = randn(&[truncated(&vars).numel()], 99);
            let grads_of = |y: Tensor| {
                let g = y.mul(&r).sum_all().backward();
                (
                    y,
                    vars.iter()
                        .map(|v| g.get(v).unwrap().to_vec())
                        .collect::<Vec<_>>(),
                )
            };
            let (y_trunc, g_trunc) = grads_of(truncated(&vars));
            let (y_tbptt, g_tbptt) = grads_of(with_tbptt(&vars, Some(k)));
            let (y_full, g_full) = grads_of(with_tbptt(&vars, None));
            let want = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
            // Truncation changes gradients only, never values.
            assert_close(
                &format!("{kind:?} tbptt forward"),
                &y_tbptt.to_vec(),
                &want(&y_full.to_vec()),
                0.0,
                0.0,
            );
            assert_close(
                &format!("{kind:?} chunked forward"),
                &y_trunc.to_vec(),
                &want(&y_full.to_vec()),
                1e-6,
                1e-6,
            );
            for (i, (a, b)) in g_tbptt.iter().zip(&g_trunc).enumerate() {
                assert_close(
                    &format!("{kind:?} tbptt grad of input {i}"),
                    a,
                    &want(b),
                    1e-5,
                    1e-5,
                );
            }
            // ... and it does truncate: the initial state only reaches the first window.
            let diff = g_tbptt[1]
                .iter()
                .zip(&g_full[1])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(
                diff > 1e-3,
                "{kind:?}: tbptt left grad_h0 unchanged ({diff})"
            );
        }
    }

    fn parameters_are_named_shaped_and_initialised_like_pytorch() {
        let (d, h) = (3, 8);
        for kind in [Kind::Rnn, Kind::Lstm, Kind::Gru] {
            let g = kind.gates() * h;
            let cfg = RnnConfig {
                num_layers: 2,
                ..Default::default()
            };
            let net = kind.build(d, h, cfg, &mut Rng::new(3));
            let p = net.named_parameters();
            let got: Vec<(&str, Vec<usize>)> = p
                .iter()
                .map(|(n, t)| (n.as_str(), t.dims().to_vec()))
                .collect();
            let want = vec![
                ("weight_ih_l0", vec![g, d]),
                ("weight_hh_l0", vec![g, h]),
                ("bias_ih_l0", vec![g]),
                ("bias_hh_l0", vec![g]),
                ("weight_ih_l1", vec![g, h]),
                ("weight_hh_l1", vec![g, h]),
                ("bias_ih_l1", vec![g]),
                ("bias_hh_l1", vec![g]),
            ];
            assert_eq!(got, want, "{kind:?}");
            // PyTorch's formula: G·(D + H + 2) + G·(H + H + 2).
            assert_eq!(net.num_parameters(), g * (d + h + 2) + g * (2 * h + 2));
            // Every tensor, biases included, from U(±1/√H).
            let bound = 1.0 / (h as f32).sqrt();
            let all: Vec<f32> = p.iter().flat_map(|(_, t)| t.to_vec()).collect();
            assert!(
                all.iter().all(|v| v.abs() <= bound),
                "{kind:?}: init outside ±1/√H"
            );
            assert!(
                all.iter().any(|v| v.abs() > 0.9 * bound),
                "{kind:?}: init too narrow"
            );
            assert!(p.iter().all(|(_, t)| t.is_variable()));

            let no_bias = kind.build(d, h, RnnConfig { bias: false, ..cfg }, &mut Rng::new(3));
            let names: Vec<String> = no_bias
                .named_parameters()
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            assert_eq!(
                names,
                [
                    "weight_ih_l0",
                    "weight_hh_l0",
                    "weight_ih_l1",
                    "weight_hh_l1"
                ]
            );
        }
    }

    fn recurrent_layers_fit_sequential() {
        let mut rng = Rng::new(5);
        let cfg = RnnConfig {
            batch_first: true,
            tbptt: Some(3),
            ..Default::default()
        };
        let lstm = Lstm::new(3, 4, cfg, &mut rng);
        assert_eq!(
            lstm.describe(),
            "LSTM(3 -> 4, 1 layer, batch_first, tbptt 3)"
        );
        assert_eq!(
            (lstm.input_size(), lstm.hidden_size(), lstm.num_layers()),
            (3, 4, 1)
        );
        let net = Sequential::new()
            .append(lstm)
            .append(Linear::new(4, 2, &mut rng));
        let y = net.forward(&randn(&[2, 7, 3], 6));
        assert_eq!(y.dims(), &[2, 7, 2]);
        assert_eq!(net.named_parameters()[0].0, "0.weight_ih_l0");
        // Module::forward starts from a zero state, like forward_with_state(x, None).
        let gru = Gru::new(3, 4, RnnConfig::default(), &mut rng);
        let x = randn(&[6, 2, 3], 8);
        assert_eq!(
            gru.forward(&x).to_vec(),
            gru.forward_with_state(&x, None).0.to_vec()
        );
        let zeros = Tensor::zeros([1, 2, 4]);
        let (with_zeros, _) = gru.forward_with_state(&x, Some(&zeros));
        assert_close(
            "zero state",
            &with_zeros.to_vec(),
            &gru.forward(&x)
                .to_vec()
                .iter()
                .map(|&v| v as f64)
                .collect::<Vec<_>>(),
            1e-6,
            1e-6,
        );
    }

    fn fused_lstm_cell_matches_its_composition_and_finite_differences() {
        let (gates, c) = (randn(&[3, 8], 21), randn(&[3, 2], 22));
        gradcheck("lstm_cell", vec![gates.clone(), c.clone()], |x| {
            x[0].lstm_cell(&x[1])
        });
        // The same cell from ordinary ops: c' = σ(a_f)c + σ(a_i)tanh(a_g), h = σ(a_o)tanh(c').
        let gate = |k: usize| gates.narrow(1, 2 * k, 2);
        let c_new = gate(1)
            .sigmoid()
            .mul(&c)
            .add(&gate(0).sigmoid().mul(&gate(2).tanh()));
        let h_new = gate(3).sigmoid().mul(&c_new.tanh());
        let want = Tensor::cat(&[h_new, c_new], 1).to_vec();
        for (g, w) in gates.lstm_cell(&c).to_vec().iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "lstm_cell {g} vs composed {w}");
        }
    }

    /// The fused LSTM layer (full BPTT) against the step-by-step composition
    /// (taken when a truncation window is set; one longer than the sequence
    /// truncates nothing), at a hidden size with full 8-lane blocks and a
    /// remainder (H = 19), two layers: outputs and every gradient agree.
    fn fused_lstm_layer_matches_the_step_by_step_composition() {
        use matnet::Rng;
        use matnet::nn::{Lstm, Module, RnnConfig};
        let (n, t, d, h) = (3, 6, 5, 19);
        let x = randn(&[n, t, d], 31).requires_grad();
        let (h0, c0) = (randn(&[2, n, h], 32), randn(&[2, n, h], 33));
        let run = |tbptt: Option<usize>| {
            let cfg = RnnConfig {
                num_layers: 2,
                batch_first: true,
                tbptt,
                ..Default::default()
            };
            let lstm = Lstm::new(d, h, cfg, &mut Rng::new(7));
            let (out, (h_n, c_n)) = lstm.forward_with_state(&x, Some((&h0, &c0)));
            let r = randn(out.dims(), 34);
            let loss = out
                .mul(&r)
                .sum_all()
                .add(&h_n.sum_all())
                .add(&c_n.mul_scalar(0.5).sum_all());
            let grads = loss.backward();
            let mut all = out.to_vec();
            all.extend(grads.get(&x).expect("grad x").to_vec());
            for p in lstm.parameters() {
                all.extend(grads.get(&p).expect("grad of a weight").to_vec());
            }
            all
        };
        let (fused, composed) = (run(None), run(Some(1000)));
        let want: Vec<f64> = composed.iter().map(|&v| v as f64).collect();
        assert_close("fused LSTM layer vs composition", &fused, &want, 1e-5, 1e-6);
    }
}
