//! The threads password hashing runs on: a few (about one per core), fed from a bounded queue.
//! Each scrypt holds 16 MiB for tens of milliseconds, so hashing on tokio's blocking pool (up to
//! 512 threads, shared with file I/O) lets a burst of logins take gigabytes and starve blob
//! reads; here a burst past the queue is refused at once instead.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

/// The pool is full: the caller should answer "try again later".
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the server is busy hashing passwords; try again shortly")]
pub struct Busy;

impl From<Busy> for aurora_xrpc::XrpcError {
    fn from(_: Busy) -> Self {
        aurora_xrpc::XrpcError::new(
            poem::http::StatusCode::SERVICE_UNAVAILABLE,
            "NotEnoughResources",
            Some(Busy.to_string()),
        )
        .with_header("retry-after", "1")
    }
}

pub struct HashPool {
    jobs: SyncSender<Job>,
}

static POOL: OnceLock<HashPool> = OnceLock::new();

impl HashPool {
    /// `threads` workers and room for `queue` waiting jobs.
    fn start(threads: usize, queue: usize) -> HashPool {
        let (jobs, incoming) = sync_channel::<Job>(queue);
        let incoming = Arc::new(Mutex::new(incoming));
        for n in 0..threads.max(1) {
            let incoming = incoming.clone();
            let spawned = std::thread::Builder::new().name(format!("password-hash-{n}")).spawn(move || work(&incoming));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-hashing thread");
            }
        }
        HashPool { jobs }
    }

    /// Sets the pool's size; only the first call (before any hashing) has an effect.
    pub fn configure(threads: usize, queue: usize) {
        let _ = POOL.set(HashPool::start(threads, queue));
    }

    fn get() -> &'static HashPool {
        POOL.get_or_init(|| {
            let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
            HashPool::start(cores, DEFAULT_QUEUE)
        })
    }

    /// Runs `job` on the pool, or refuses at once when the queue is full.
    pub async fn run<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        HashPool::get().submit(job).await
    }

    async fn submit<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(job());
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => return Err(Busy),
        }
        result.await.map_err(|_| Busy)
    }
}

/// Jobs waiting at most, by default: at ~60 ms a hash on two cores, a second and a half of work.
pub const DEFAULT_QUEUE: usize = 48;

fn work(incoming: &Mutex<Receiver<Job>>) {
    loop {
        let job = match incoming.lock() {
            Ok(receiver) => receiver.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        match job {
            // A panicking job must not take its worker with it.
            Ok(job) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_its_threads_and_queue_the_pool_refuses_at_once() {
        let pool: &'static HashPool = Box::leak(Box::new(HashPool::start(1, 1)));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        let blocker = |hold: Arc<Mutex<std::sync::mpsc::Receiver<()>>>| {
            move || {
                let _ = hold.lock().map(|h| h.recv());
            }
        };
        let running = pool.submit(blocker(hold.clone()));
        let running = tokio::spawn(running);
        // Wait until the worker has taken the first job, so the queue is empty again.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let queued = pool.submit(blocker(hold.clone()));
        let queued = tokio::spawn(queued);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(pool.submit(|| ()).await, Err(Busy), "one running, one waiting: the third is refused");
        release.send(()).expect("release");
        release.send(()).expect("release");
        assert_eq!(running.await.expect("join"), Ok(()));
        assert_eq!(queued.await.expect("join"), Ok(()));
        assert_eq!(pool.submit(|| 7).await, Ok(7), "free again");
    }
}
