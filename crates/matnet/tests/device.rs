//! Devices: every tensor carries one, results stay on their inputs' device,
//! mixing devices panics naming the op, and a whole training step runs on
//! the reference backend with the same numbers as on the CPU.

use matnet::nn::{BatchNorm2d, Linear, Module, Relu, Sequential};
use matnet::optim::{Adam, Optimizer};
use matnet::{Device, Rng, Tensor, set_default_device};

#[test]
fn constructors_default_to_cpu_and_follow_the_default_device_scope() {
    assert_eq!(Tensor::zeros([2]).device(), Device::Cpu);
    {
        let _on = set_default_device(Device::Reference);
        let t = Tensor::randn([2, 3], 0.0, 1.0, &mut Rng::new(0));
        assert_eq!(t.device(), Device::Reference);
        assert_eq!(t.t().matmul(&t).device(), Device::Reference);
        assert_eq!(t.sum_all().device(), Device::Reference);
    }
    assert_eq!(Tensor::ones([1]).device(), Device::Cpu);
    let z = Tensor::zeros_on([3], Device::Reference);
    assert_eq!(
        (z.device(), z.ones_like().device()),
        (Device::Reference, Device::Reference)
    );
}

#[test]
fn to_device_copies_values_and_keeps_variables_trainable() {
    let x = Tensor::from_vec(vec![1., 2., 3., 4., 5., 6.], [2, 3]).requires_grad();
    let r = x.t().to_device(Device::Reference);
    assert_eq!(r.device(), Device::Reference);
    assert_eq!(r.to_vec(), vec![1., 4., 2., 5., 3., 6.]);
    let v = x.to_device(Device::Reference);
    assert!(v.is_variable());
    let g = v.sqr().sum_all().backward();
    assert_eq!(g.get(&v).unwrap().to_vec(), vec![2., 4., 6., 8., 10., 12.]);
    assert_eq!(v.to_device(Device::Cpu).device(), Device::Cpu);
}

#[test]
#[should_panic(expected = "add: tensors on different devices (cpu and reference)")]
fn mixing_devices_panics_with_the_op_and_both_devices() {
    let a = Tensor::ones([2]);
    let b = Tensor::ones_like(&a).to_device(Device::Reference);
    a.add(&b);
}

#[test]
#[should_panic(expected = "matmul: tensors on different devices (reference and cpu)")]
fn mixing_devices_in_matmul_panics() {
    let a = Tensor::full_on([2, 2], 1.0, Device::Reference);
    a.matmul(&Tensor::ones([2, 2]));
}

/// Two Adam steps of a small MLP with batch norm statistics, on `device`:
/// the parameters and running statistics afterwards.
fn train_steps(device: Device) -> Vec<Vec<f32>> {
    let _on = set_default_device(device);
    let mut rng = Rng::new(3);
    let net = Sequential::new()
        .append(Linear::new(6, 5, &mut rng))
        .append(Relu)
        .append(Linear::new(5, 3, &mut rng));
    let bn = BatchNorm2d::new(2);
    let mut opt = Adam::adamw(net.parameters(), 0.01, 0.1);
    let x = Tensor::randn([4, 6], 0.0, 1.0, &mut rng);
    let img = Tensor::randn([3, 2, 2, 2], 1.0, 2.0, &mut rng);
    let labels = Tensor::from_vec(vec![0., 2., 1., 2.], [4]);
    for _ in 0..2 {
        let loss = matnet::nn::loss::cross_entropy(&net.forward(&x), &labels);
        let grads = loss.backward();
        opt.step(&grads);
        bn.forward(&img);
    }
    let mut out: Vec<Vec<f32>> = net.parameters().iter().map(|p| p.to_vec()).collect();
    out.extend(bn.named_buffers().iter().map(|(_, b)| b.to_vec()));
    for p in net.parameters() {
        assert_eq!(p.device(), device);
    }
    out
}

#[test]
fn a_training_step_on_the_reference_backend_matches_the_cpu() {
    let (cpu, reference) = (train_steps(Device::Cpu), train_steps(Device::Reference));
    for (c, r) in cpu.iter().zip(&reference) {
        for (a, b) in c.iter().zip(r) {
            assert!(
                (a - b).abs() <= 1e-5 + 1e-4 * b.abs(),
                "cpu {a} vs reference {b}"
            );
        }
    }
}

#[test]
fn assign_copies_across_devices_so_checkpoints_load_anywhere() {
    let dst = Tensor::zeros_on([2, 2], Device::Reference);
    dst.assign_(&Tensor::from_vec(vec![1., 2., 3., 4.], [2, 2]).t());
    assert_eq!(dst.device(), Device::Reference);
    assert_eq!(dst.to_vec(), vec![1., 3., 2., 4.]);
    // A model built on the reference backend loads a checkpoint saved from the CPU.
    let dir = std::env::temp_dir().join(format!("matnet-device-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.safetensors");
    let cpu = Linear::new(3, 2, &mut Rng::new(1));
    matnet::io::save(&path, &cpu.state_dict(), &Default::default()).unwrap();
    let on_ref = {
        let _on = set_default_device(Device::Reference);
        Linear::new(3, 2, &mut Rng::new(2))
    };
    matnet::io::load_into(&path, &on_ref.state_dict()).unwrap();
    for (a, b) in cpu.parameters().iter().zip(on_ref.parameters()) {
        assert_eq!(b.device(), Device::Reference);
        assert_eq!(a.to_vec(), b.to_vec());
    }
    std::fs::remove_dir_all(&dir).ok();
}
