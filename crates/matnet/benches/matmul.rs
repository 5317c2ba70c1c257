//! Criterion benchmark of `Tensor::matmul` (the user-facing path, output
//! allocation included) for square sizes and the MNIST MLP training shapes.
//! `matnet bench matmul` prints the same shapes as GFLOP/s beside a naive
//! loop and PyTorch (bench/torch_matmul.py --matnet).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use matnet::{Rng, Tensor, no_grad};

fn matmul(c: &mut Criterion) {
    let _g = no_grad();
    let mut rng = Rng::new(0);
    let mut group = c.benchmark_group("matmul");
    let mut shapes: Vec<(String, Tensor, Tensor)> = Vec::new();
    for n in [64, 128, 256, 512, 1024] {
        let a = Tensor::randn([n, n], 0.0, 1.0, &mut rng);
        let b = Tensor::randn([n, n], 0.0, 1.0, &mut rng);
        shapes.push((format!("square_{n}"), a, b));
    }
    // Y = X·W, grad_W = Xᵀ·G and grad_X = G·Wᵀ with transposed views.
    let x = Tensor::randn([64, 784], 0.0, 1.0, &mut rng);
    let w = Tensor::randn([784, 256], 0.0, 1.0, &mut rng);
    let g = Tensor::randn([64, 256], 0.0, 1.0, &mut rng);
    shapes.push(("mlp1_fwd".into(), x.clone(), w.clone()));
    shapes.push(("mlp1_gw".into(), x.t(), g.clone()));
    shapes.push(("mlp1_gx".into(), g, w.t()));
    for (name, a, b) in &shapes {
        let flops = 2 * a.dims()[0] * a.dims()[1] * b.dims()[1];
        group.throughput(Throughput::Elements(flops as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(name),
            &(a, b),
            |bench, (a, b)| bench.iter(|| a.matmul(b)),
        );
    }
    group.finish();
}

criterion_group!(benches, matmul);
criterion_main!(benches);
