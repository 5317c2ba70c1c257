//! The profiler and op kinds: each recorded event names its op by `OpKind`,
//! forward in program order and backward in reverse, with shapes and which
//! inputs received a gradient.

use matnet::Tensor;
use matnet::autograd::OpKind;
use matnet::autograd::profile::{Phase, profile};

fn var(data: Vec<f32>, shape: [usize; 2]) -> Tensor {
    Tensor::from_vec(data, shape).requires_grad()
}

#[test]
fn op_kind_and_name_of_recorded_ops() {
    let x = var(vec![0.5, -1.0, 2.0, 1.5, 0.0, -0.25], [2, 3]);
    let y = var(vec![1.0; 6], [2, 3]);
    let cases = [
        (x.add(&y), OpKind::Add, "add"),
        (x.mul(&y), OpKind::Mul, "mul"),
        (x.exp(), OpKind::Exp, "exp"),
        (x.relu(), OpKind::Relu, "relu"),
        (x.t(), OpKind::Permute, "permute"),
        (x.matmul(&y.t()), OpKind::Matmul, "matmul"),
        (x.sum_all(), OpKind::Sum, "sum"),
    ];
    for (t, kind, name) in cases {
        let op = t.op().expect("recorded");
        assert_eq!(op.kind(), kind);
        assert_eq!(op.name(), name);
        assert_eq!(kind.name(), name);
        assert_eq!(kind.to_string(), name);
    }
}

#[test]
fn every_kind_is_listed_once() {
    let all = OpKind::ALL;
    for (i, k) in all.iter().enumerate() {
        assert!(!all[..i].contains(k), "{k} listed twice");
    }
    for k in [
        OpKind::Conv2d,
        OpKind::LstmLayer,
        OpKind::Gelu,
        OpKind::Where,
    ] {
        assert!(all.contains(&k), "{k} missing from OpKind::ALL");
    }
}

#[test]
fn profile_records_kinds_forward_then_backward_in_reverse() {
    let x = var(vec![0.5, -1.0, 2.0, 1.5, 0.0, -0.25], [2, 3]);
    let w = var((0..12).map(|i| i as f32 * 0.1 - 0.5).collect(), [3, 4]);
    let (grads, events) = profile(|| x.matmul(&w).relu().sum_all().backward());
    assert!(grads.get(&w).is_some());

    let forward: Vec<OpKind> = events
        .iter()
        .filter(|e| e.phase == Phase::Forward)
        .map(|e| e.op)
        .collect();
    let backward: Vec<OpKind> = events
        .iter()
        .filter(|e| e.phase == Phase::Backward)
        .map(|e| e.op)
        .collect();
    assert_eq!(forward, [OpKind::Matmul, OpKind::Relu, OpKind::Sum]);
    let mut reversed = forward.clone();
    reversed.reverse();
    assert_eq!(backward, reversed);

    let matmul = &events[0];
    assert_eq!(matmul.inputs[0].0, x.id());
    assert_eq!(matmul.inputs[1].0, w.id());
    assert_eq!(matmul.inputs[1].1.dims(), [3, 4]);
    assert_eq!(matmul.output.1.dims(), [2, 4]);
    let matmul_back = events.last().unwrap();
    assert_eq!(matmul_back.op, OpKind::Matmul);
    assert_eq!(matmul_back.grads, [true, true]);
}
