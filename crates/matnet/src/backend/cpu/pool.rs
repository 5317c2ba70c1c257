//! Temporary serial stand-in; replaced by the persistent pool.
pub fn num_threads() -> usize {
    1
}
pub fn parallel_for(n_tasks: usize, _threads: usize, f: &(dyn Fn(usize) + Sync)) {
    for i in 0..n_tasks {
        f(i)
    }
}
