//! Thread pool behaviour: coverage of tasks, nesting, panics, concurrency.

use matnet::backend::kernels::{num_threads, parallel_for, parallel_for_pinned};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn runs_every_task_once() {
    for threads in [0, 1, 2, 3, 8] {
        for n in [0, 1, 2, 3, 17, 32, 33, 1000] {
            for run in [parallel_for, parallel_for_pinned] {
                let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                run(n, threads, &|i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
        }
    }
}

#[test]
fn uses_more_than_one_thread() {
    // With enough slow tasks a worker must pick some up.
    let ids = Mutex::new(std::collections::HashSet::new());
    parallel_for(64, 2, &|_| {
        std::thread::sleep(std::time::Duration::from_millis(1));
        if let Ok(mut s) = ids.lock() {
            s.insert(std::thread::current().id());
        }
    });
    // The pool may be busy with another test's job, in which case the call
    // runs inline; so only check the count is sane.
    let n = ids.lock().map(|s| s.len()).unwrap_or(0);
    assert!((1..=2).contains(&n));
}

#[test]
fn pinned_jobs_give_the_caller_the_last_task() {
    // Each thread starts with its own task (worker w task w, the caller the
    // last), so a product split one block per thread keeps its blocks on
    // the same cores from call to call. (Run inline, when another test
    // holds the pool, the caller takes every task, the last included.)
    let me = std::thread::current().id();
    for n in [2, 3] {
        for _ in 0..3 {
            let ran_on = Mutex::new(Vec::new());
            parallel_for_pinned(n, n, &|i| {
                std::thread::sleep(std::time::Duration::from_millis(5));
                if let Ok(mut v) = ran_on.lock() {
                    v.push((i, std::thread::current().id()));
                }
            });
            let v = ran_on.into_inner().unwrap_or_default();
            assert_eq!(v.len(), n);
            assert!(
                v.contains(&(n - 1, me)),
                "task {} ran elsewhere: {v:?}",
                n - 1
            );
        }
    }
}

#[test]
fn nested_calls_run_inline() {
    let total = AtomicUsize::new(0);
    parallel_for(4, 2, &|_| {
        parallel_for(5, 2, &|_| {
            total.fetch_add(1, Ordering::Relaxed);
        });
    });
    assert_eq!(total.load(Ordering::Relaxed), 20);
}

#[test]
fn panic_propagates_and_pool_survives() {
    for _ in 0..3 {
        let r = std::panic::catch_unwind(|| {
            parallel_for(8, 2, &|i| {
                if i == 5 {
                    panic!("task 5 failed");
                }
            });
        });
        assert!(r.is_err());
    }
    // Still usable afterwards.
    let total = AtomicUsize::new(0);
    parallel_for(100, 2, &|i| {
        total.fetch_add(i, Ordering::Relaxed);
    });
    assert_eq!(total.load(Ordering::Relaxed), 4950);
}

#[test]
fn concurrent_callers() {
    // Several user threads calling at once (as `cargo test` does): every
    // call must run each of its tasks exactly once, whether it got the pool
    // or ran inline. Varying task counts back to back also exercises a
    // worker finishing one job while the next caller publishes another.
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for round in 0..3000 {
                    let n = 2 + (round + t) % 9;
                    let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                    parallel_for(n, 2, &|i| {
                        hits[i].fetch_add(1, Ordering::Relaxed);
                    });
                    for h in &hits {
                        assert_eq!(h.load(Ordering::Relaxed), 1);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("caller thread panicked");
    }
}

#[test]
fn many_quick_calls() {
    // Exercises the spin/park hand-off both ways: back-to-back calls and
    // calls separated by more than the spin window.
    let total = AtomicUsize::new(0);
    for round in 0..2000 {
        parallel_for(2, 2, &|_| {
            total.fetch_add(1, Ordering::Relaxed);
        });
        if round % 500 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    assert_eq!(total.load(Ordering::Relaxed), 4000);
}

#[test]
fn num_threads_is_positive() {
    assert!(num_threads() >= 1);
}
