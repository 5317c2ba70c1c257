//! Autograd memory stays flat: a training loop of 10,000 steps allocates a
//! graph per step and frees all of it (live bytes are counted exactly).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use matnet::{Rng, Tensor};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, only counting bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn ten_thousand_steps_keep_memory_flat() {
    let mut rng = Rng::new(3);
    let x = Tensor::randn([32, 20], 0.0, 1.0, &mut rng);
    let labels = Tensor::from_vec((0..32).map(|i| (i % 5) as f32).collect(), [32, 1]);
    let w1 = Tensor::randn([20, 16], 0.0, 0.3, &mut rng).requires_grad();
    let w2 = Tensor::randn([16, 5], 0.0, 0.3, &mut rng).requires_grad();
    let mut live_after = Vec::new();
    for step in 0..10_000 {
        let h = x.matmul(&w1).relu();
        let logp = h.matmul(&w2).log_softmax(-1);
        let loss = logp.gather(1, &labels).mean_all().neg();
        let grads = loss.backward();
        for w in [&w1, &w2] {
            let g = grads.get(w).unwrap().to_vec();
            w.update_(|d| d.iter_mut().zip(&g).for_each(|(d, g)| *d -= 0.05 * g));
        }
        drop((grads, loss));
        if step == 999 || step == 9_999 {
            live_after.push(LIVE.load(Ordering::Relaxed));
        }
    }
    let growth = live_after[1] - live_after[0];
    println!(
        "live bytes after 1,000 steps: {}, after 10,000: {}",
        live_after[0], live_after[1]
    );
    assert!(
        growth.abs() < 4096,
        "live memory grew by {growth} bytes over 9,000 steps"
    );
}
