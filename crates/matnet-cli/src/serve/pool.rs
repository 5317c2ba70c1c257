//! The inference pool: a fixed set of worker threads, each holding its own
//! copy of every served model, fed through a bounded queue.
//!
//! Models are not `Send` (layers are `Box<dyn Module>`), so rather than
//! sharing one copy behind a lock, every worker loads the checkpoints
//! itself and owns them: no lock is taken per request, and a slow request
//! on one worker never blocks the others. The cost is one copy of the
//! weights per worker, a few MB for the models matnet trains.
//!
//! Memory stays bounded however many requests arrive: at most `workers`
//! requests hold a slot (the semaphore) and at most `workers` jobs wait in
//! the queue behind them; a request that cannot get a slot waits without
//! holding any model memory, and the per-request time limit ends the wait.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::Context;
use matnet::models::{self, Model};
use tokio::sync::{Semaphore, oneshot};

use super::ApiError;

/// The models a worker owns, by served name.
pub type Models = HashMap<String, Model>;

type Job = Box<dyn FnOnce(&Models) + Send>;

/// A fixed pool of inference threads.
pub struct Pool {
    queue: SyncSender<Job>,
    slots: Semaphore,
}

impl Pool {
    /// Starts `workers` threads, each loading every `(name, checkpoint)`;
    /// returns once all have loaded, or the first load error.
    pub fn start(checkpoints: &[(String, PathBuf)], workers: usize) -> anyhow::Result<Pool> {
        let workers = workers.max(1);
        let (queue, jobs) = sync_channel::<Job>(workers);
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..workers {
            let (ready, loaded) = sync_channel::<anyhow::Result<()>>(1);
            let (jobs, checkpoints) = (jobs.clone(), checkpoints.to_vec());
            thread::Builder::new()
                .name(format!("matnet-serve-{i}"))
                .spawn(move || match load_all(&checkpoints) {
                    Ok(models) => {
                        let _ = ready.send(Ok(()));
                        work(&jobs, &models);
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                    }
                })
                .context("cannot start an inference thread")?;
            loaded
                .recv()
                .context("an inference thread stopped while loading")??;
        }
        Ok(Pool {
            queue,
            slots: Semaphore::new(workers),
        })
    }

    /// Runs `f` on a worker with its models and returns what it returns.
    /// Waits (asynchronously) for a free worker; a panic inside `f` becomes
    /// a 500 and the worker carries on.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Models) -> Result<T, ApiError> + Send + 'static,
    {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))?;
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |models| {
            let _ = reply.send(f(models));
        });
        // The queue is full only when requests that timed out left their
        // jobs behind: refuse rather than let them pile up.
        self.queue.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => ApiError::unavailable("the server is busy; try again"),
            TrySendError::Disconnected(_) => ApiError::unavailable("no inference threads left"),
        })?;
        answer
            .await
            .map_err(|_| ApiError::internal("the model failed on this input"))?
    }
}

fn load_all(checkpoints: &[(String, PathBuf)]) -> anyhow::Result<Models> {
    checkpoints
        .iter()
        .map(|(name, path)| Ok((name.clone(), models::load(path)?)))
        .collect()
}

fn work(jobs: &Mutex<Receiver<Job>>, models: &Models) {
    loop {
        // The lock is held only while taking the next job, not while running it.
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        // The job's reply channel is dropped by the unwind, which the
        // waiting request reports as an error.
        let _ = catch_unwind(AssertUnwindSafe(|| job(models)));
    }
}
