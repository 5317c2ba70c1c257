//! Binary cross-entropy losses against PyTorch (float64): values and
//! gradients written by `golden/gen/loss.py` and committed.

mod common;
use common::{assert_close, json_tensor};
use matnet::Tensor;
use matnet::nn::loss;
use serde_json::Value;

fn to_tensor(v: &Value) -> Tensor {
    let (shape, data) = json_tensor(v);
    Tensor::from_vec(data.into_iter().map(|x| x as f32).collect(), shape)
}

#[test]
fn bce_losses_match_pytorch() {
    let file: Value =
        serde_json::from_str(include_str!("golden/loss.json")).expect("golden/loss.json parses");
    let cases = file["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 7);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let x = to_tensor(&case["inputs"][0]).requires_grad();
        let y = to_tensor(&case["inputs"][1]);
        let out = match case["op"].as_str().unwrap() {
            "bce" => loss::binary_cross_entropy(&x, &y),
            "bce_with_logits" => loss::binary_cross_entropy_with_logits(&x, &y),
            op => panic!("{name}: unknown op {op}"),
        };
        let (_, want) = json_tensor(&case["output"]);
        assert_close(name, &out.to_vec(), &want, 1e-5, 1e-6);
        if !case["grad"].is_null() {
            let grads = out.backward();
            let (_, want) = json_tensor(&case["grad"]);
            assert_close(
                &format!("{name} grad"),
                &grads.get(&x).unwrap().to_vec(),
                &want,
                1e-4,
                1e-6,
            );
        }
    }
}

#[test]
fn saturated_probabilities_are_finite_with_finite_gradients() {
    // p = 0 and p = 1 exactly: the log is floored at -100 (PyTorch), and the
    // gradient has no NaN or infinity.
    let p = Tensor::from_vec(vec![0.0, 1.0, 0.0, 1.0], [4]).requires_grad();
    let y = Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0], [4]);
    let l = loss::binary_cross_entropy(&p, &y);
    assert!((l.item() - 50.0).abs() < 1e-4, "{}", l.item());
    let g = l.backward().get(&p).unwrap().to_vec();
    assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
}
