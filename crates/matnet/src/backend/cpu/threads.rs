//! A tiny persistent thread pool with no dependencies.
//!
//! One global pool serves the whole process. A call to [`parallel_for`]
//! publishes a job, the calling thread works on it too, and the call returns
//! once every task has finished. Workers spin briefly on an atomic before
//! parking, so back-to-back calls (the common case inside a training step)
//! hand off in ~0.4 µs (measured), while a pool left idle stops using CPU
//! after ~50 µs.
//!
//! A parked worker takes 10-60 µs to wake on the 2-vCPU KVM guest this was
//! tuned on; the caller does not wait for it but claims any task the
//! worker has not taken yet. Occasionally the kernel wakes the worker on
//! the caller's own CPU, where it can sit behind the busy caller with a
//! claimed task; the call then costs about the serial time.
//!
//! Only one job runs at a time. A caller that finds the pool busy (another
//! user thread is using it, or the call is nested inside a task) runs its
//! tasks inline on its own thread instead of waiting; this keeps nested and
//! concurrent use deadlock-free.

use std::any::Any;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long an idle worker (or a caller waiting for the last task) spins
/// before parking. Parking and being unparked costs roughly 10-50 µs of
/// latency on Linux, so spinning a little longer than one typical hand-off
/// gap between consecutive GEMM calls keeps the pool hot during a training
/// loop without burning a core when the program does something else.
const SPIN: Duration = Duration::from_micros(50);

/// How long an idle *worker* keeps spinning for the next job before parking.
/// Inside a training step the gap between two GEMMs (the elementwise ops in
/// between) is often longer than 50 µs, and waking a parked worker costs
/// ~20 µs on this VM: on a batch-256 MLP step that was several percent. So
/// workers spin for 2 ms (OpenMP runtimes spin ~200 ms by default), then park
/// and cost nothing. `MATNET_SPIN_US` overrides it (0 parks at once).
fn worker_spin() -> Duration {
    static SPIN_US: OnceLock<u64> = OnceLock::new();
    let us = *SPIN_US.get_or_init(|| {
        std::env::var("MATNET_SPIN_US")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(2_000)
    });
    Duration::from_micros(us)
}

/// Upper bound on worker threads, whatever a caller asks for.
const MAX_WORKERS: usize = 255;

/// Pinned jobs ([`parallel_for_pinned`]) of at most this many tasks are
/// claimed through a bit set, each thread taking its own task first (worker
/// w task w, the caller the last one), then any task still free. A product
/// split into one block of C per thread thus keeps each block on the same
/// core from call to call, with its part of C and of the operands in that
/// core's cache. Handed out in order, the blocks changed cores whenever the
/// worker won the race for task 0, and 784×64·64×256 on two threads ran
/// 11% slower than two threads each looping on its own half. The caller
/// takes the last task because a worker starts a little after it, and the
/// first block of a split is the smaller one where they differ: pinned the
/// other way round (caller task 0), a ViT training step ran 3-7% slower
/// than unpinned; this way round, 4-6% faster.
const PINNED_MAX: usize = 32;

/// Number of threads to use for parallel work.
///
/// Read once from `MATNET_NUM_THREADS`; a missing, unparsable or zero value
/// falls back to `std::thread::available_parallelism()` (or 1 if unknown).
pub fn num_threads() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        // Every kernel that allocates large buffers asks for the thread
        // count first, so this is the one place the allocator is tuned.
        super::tune_allocator();
        let default = || thread::available_parallelism().map_or(1, |n| n.get());
        match std::env::var("MATNET_NUM_THREADS") {
            Ok(s) => match s.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => default(),
            },
            Err(_) => default(),
        }
    })
}

thread_local! {
    /// True while this thread executes a pool task (and always on workers):
    /// a nested `parallel_for` then runs inline.
    static IN_POOL: Cell<bool> = const { Cell::new(false) };
}

/// Per-worker state the caller needs to wake it.
struct WorkerSlot {
    /// Set by the worker right before it parks; the caller unparks only
    /// workers that announced they may be asleep, so a hot hand-off costs no
    /// syscall.
    sleeping: AtomicBool,
    thread: Thread,
}

type TaskFn<'a> = &'a (dyn Fn(usize) + Sync + 'a);

struct Pool {
    /// Held (true) by the single caller that owns the current job.
    busy: AtomicBool,
    /// High 32 bits: job generation; low 32 bits: next task index to claim,
    /// or, for a pinned job of at most [`PINNED_MAX`] tasks, the set of
    /// tasks claimed (bit i for task i). Claiming a task is a CAS that also
    /// checks the generation, so a worker that wakes up late can never
    /// claim a task of a job that has finished.
    counter: AtomicU64,
    /// Number of tasks of the current job.
    n_tasks: AtomicUsize,
    /// Whether the current job's tasks go to threads by index first (see
    /// [`parallel_for_pinned`]); written before `n_tasks` is published.
    pinned: AtomicBool,
    /// How many workers (lowest indices first) take part in the current job.
    active_workers: AtomicUsize,
    /// Points at the caller's `TaskFn` (which lives on the caller's stack);
    /// only dereferenced after a task was claimed, i.e. while the caller is
    /// still inside `parallel_for` waiting for that task.
    job: AtomicPtr<()>,
    /// Tasks of the current job not yet finished.
    remaining: AtomicUsize,
    /// The caller parked while waiting for the last task.
    waiter_parked: AtomicBool,
    waiter: Mutex<Option<Thread>>,
    panic: Mutex<Option<Box<dyn Any + Send + 'static>>>,
    workers: Mutex<Vec<Arc<WorkerSlot>>>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        busy: AtomicBool::new(false),
        counter: AtomicU64::new(0),
        n_tasks: AtomicUsize::new(0),
        pinned: AtomicBool::new(false),
        active_workers: AtomicUsize::new(0),
        job: AtomicPtr::new(std::ptr::null_mut()),
        remaining: AtomicUsize::new(0),
        waiter_parked: AtomicBool::new(false),
        waiter: Mutex::new(None),
        panic: Mutex::new(None),
        workers: Mutex::new(Vec::new()),
    })
}

impl Pool {
    /// Claims and runs tasks of generation `gen` until none are left; `me`
    /// is this thread's index among the job's threads (the caller is 0).
    fn work(&self, gen_: u64, me: usize) {
        loop {
            let v = self.counter.load(Ordering::Acquire);
            if v >> 32 != gen_ {
                return;
            }
            let low = v & 0xffff_ffff;
            let n = self.n_tasks.load(Ordering::Acquire);
            let (idx, claimed) = if n <= PINNED_MAX && self.pinned.load(Ordering::Relaxed) {
                // Own task first, then the lowest one still free. A closed
                // generation has every bit set, so nothing is free.
                let free = !low & ((1u64 << n) - 1);
                if free == 0 {
                    return;
                }
                // The caller takes the last task, worker w task w: a worker
                // starts a little after the caller, and the first of a
                // split's blocks is the smaller one when they differ.
                let own = if me == 0 { n - 1 } else { me - 1 };
                let idx = if free & (1 << own) != 0 {
                    own
                } else {
                    free.trailing_zeros() as usize
                };
                (idx, v | 1 << idx)
            } else {
                let idx = low as usize;
                if idx >= n {
                    return;
                }
                (idx, v + 1)
            };
            let job = self.job.load(Ordering::Acquire);
            if self
                .counter
                .compare_exchange_weak(v, claimed, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // SAFETY: the claim succeeded while the counter still carried
            // generation `gen_`, so the job of that generation is live: its
            // caller cannot return before `remaining` reaches zero, which
            // needs this task to finish. `job` and `n` were published before
            // that generation (release store of `counter`) and cannot be
            // overwritten before the job ends.
            let f: TaskFn<'_> = unsafe { *(job as *const TaskFn<'_>) };
            let was = IN_POOL.with(|c| c.replace(true));
            if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| f(idx)))
                && let Ok(mut slot) = self.panic.lock()
            {
                slot.get_or_insert(p);
            }
            IN_POOL.with(|c| c.set(was));
            if self.remaining.fetch_sub(1, Ordering::SeqCst) == 1
                && self.waiter_parked.load(Ordering::SeqCst)
            {
                // A stale unpark of a later caller is harmless: park loops
                // re-check their condition.
                if let Ok(w) = self.waiter.lock()
                    && let Some(t) = w.as_ref()
                {
                    t.unpark();
                }
            }
        }
    }
}

fn worker_main(index: usize, slot: Arc<WorkerSlot>, mut seen: u64) {
    IN_POOL.with(|c| c.set(true));
    let p = pool();
    let spin = worker_spin();
    loop {
        // Wait for a new generation: spin, then park.
        let start = Instant::now();
        let mut spins = 0u32;
        let gen_ = loop {
            let g = p.counter.load(Ordering::Acquire) >> 32;
            if g != seen {
                break g;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) && start.elapsed() > spin {
                slot.sleeping.store(true, Ordering::SeqCst);
                let g = p.counter.load(Ordering::SeqCst) >> 32;
                if g == seen {
                    thread::park();
                }
                slot.sleeping.store(false, Ordering::SeqCst);
            } else {
                std::hint::spin_loop();
            }
        };
        seen = gen_;
        if index < p.active_workers.load(Ordering::Acquire) {
            p.work(gen_, index + 1);
        }
    }
}

/// Runs `f(i)` for every `i` in `0..n_tasks` on up to `threads` threads,
/// counting the calling thread, and returns when all calls have finished.
///
/// Tasks are handed out dynamically (an atomic counter), in order, so
/// uneven tasks balance themselves. With `threads <= 1` or `n_tasks <= 1`
/// the tasks run inline in order with no synchronisation. A call made from inside a task,
/// or while another thread is using the pool, also runs inline.
///
/// If a task panics, the remaining tasks still run, and the first panic is
/// resumed on the calling thread once all have finished.
pub fn parallel_for(n_tasks: usize, threads: usize, f: &(dyn Fn(usize) + Sync)) {
    run_job(n_tasks, threads, f, false);
}

/// [`parallel_for`] where, in a job of at most [`PINNED_MAX`] tasks, each
/// thread first takes its own task: worker w task w, the caller the last
/// one (then any task still free, so a late worker costs no more than
/// before). For work split into one block per thread that touches the
/// same memory call after call, such as a matrix product into the same C:
/// each block then stays in one core's cache.
pub fn parallel_for_pinned(n_tasks: usize, threads: usize, f: &(dyn Fn(usize) + Sync)) {
    run_job(n_tasks, threads, f, true);
}

fn run_job(n_tasks: usize, threads: usize, f: &(dyn Fn(usize) + Sync), pinned: bool) {
    // Task indices live in the low 32 bits of the counter; u32::MAX marks a
    // closed generation.
    if threads <= 1 || n_tasks <= 1 || IN_POOL.with(|c| c.get()) || n_tasks >= u32::MAX as usize {
        (0..n_tasks).for_each(f);
        return;
    }
    let p = pool();
    if p.busy
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        (0..n_tasks).for_each(f);
        return;
    }
    // From here on we own the pool until `busy` is released.
    let want = (threads - 1).min(n_tasks - 1).min(MAX_WORKERS);
    let slots: Vec<Arc<WorkerSlot>> = {
        let mut workers = match p.workers.lock() {
            Ok(w) => w,
            Err(e) => e.into_inner(),
        };
        while workers.len() < want {
            let index = workers.len();
            // The slot needs the worker's `Thread`, which exists only once
            // it is spawned; the worker receives its slot through a channel.
            // It also gets the generation current before our job is
            // published, so it cannot miss that job if it starts late.
            let seen = p.counter.load(Ordering::Relaxed) >> 32;
            let (tx, rx) = std::sync::mpsc::channel::<Arc<WorkerSlot>>();
            let spawned = thread::Builder::new()
                .name(format!("matnet-worker-{index}"))
                .spawn(move || {
                    if let Ok(slot) = rx.recv() {
                        worker_main(index, slot, seen);
                    }
                });
            match spawned {
                Ok(h) => {
                    let slot = Arc::new(WorkerSlot {
                        sleeping: AtomicBool::new(false),
                        thread: h.thread().clone(),
                    });
                    if tx.send(slot.clone()).is_err() {
                        break;
                    }
                    workers.push(slot);
                }
                Err(_) => break,
            }
        }
        workers.iter().take(want).cloned().collect()
    };
    if slots.is_empty() {
        p.busy.store(false, Ordering::Release);
        (0..n_tasks).for_each(f);
        return;
    }

    if let Ok(mut w) = p.waiter.lock() {
        *w = Some(thread::current());
    }
    // Close the previous generation before touching the job fields: a
    // worker still inside `work` for it may have loaded the old counter
    // value and be about to read `n_tasks`/`job`; once the counter has
    // moved on, its claiming CAS fails whatever it read. (Without this, a
    // late worker could pair the old counter with the new `n_tasks` and
    // `job`, run a task of the new job early and decrement `remaining`
    // once too often — a hang found by the concurrent-callers test.) The
    // closing generation has no claimable index; the job opens under the
    // next one, so workers that woke for the closing one wake again.
    let closed = ((p.counter.load(Ordering::Relaxed) >> 32) + 1) & 0xffff_ffff;
    p.counter
        .store(closed << 32 | 0xffff_ffff, Ordering::SeqCst);
    p.waiter_parked.store(false, Ordering::SeqCst);
    p.remaining.store(n_tasks, Ordering::SeqCst);
    p.pinned.store(pinned, Ordering::Relaxed);
    p.n_tasks.store(n_tasks, Ordering::Release);
    p.active_workers.store(slots.len(), Ordering::Release);
    // Erase the lifetime: workers only dereference this while we wait below.
    let fref: TaskFn<'_> = f;
    p.job
        .store(&fref as *const TaskFn<'_> as *mut (), Ordering::Release);
    let gen_ = (closed + 1) & 0xffff_ffff;
    p.counter.store(gen_ << 32, Ordering::SeqCst);
    for s in &slots {
        if s.sleeping.load(Ordering::SeqCst) {
            s.thread.unpark();
        }
    }

    p.work(gen_, 0);

    // Wait for tasks still running on workers.
    let start = Instant::now();
    let mut spins = 0u32;
    while p.remaining.load(Ordering::Acquire) != 0 {
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(64) && start.elapsed() > SPIN {
            p.waiter_parked.store(true, Ordering::SeqCst);
            if p.remaining.load(Ordering::SeqCst) != 0 {
                thread::park();
            }
        } else {
            std::hint::spin_loop();
        }
    }
    p.waiter_parked.store(false, Ordering::SeqCst);
    let payload = match p.panic.lock() {
        Ok(mut s) => s.take(),
        Err(e) => e.into_inner().take(),
    };
    p.busy.store(false, Ordering::Release);
    if let Some(payload) = payload {
        panic::resume_unwind(payload);
    }
}
