//! argon2id password hashing, off the async executor. Each hash or verification costs tens of
//! milliseconds of CPU; run inline on tokio's workers, a login storm stalls every other request
//! (issue 17). They run on a small pool of their own threads instead,
//! `FLEET_PASSWORD_HASH_CONCURRENCY` of them (default: the number of cores), at a lower CPU
//! priority than the executor: a storm queues logins behind each other and the cores go to the
//! rest of the API first.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tokio::sync::{oneshot, Semaphore};

pub const MIN_PASSWORD_LEN: usize = 8;

/// Niceness of the hashing threads (Linux): the scheduler prefers the executor's threads, so
/// other requests keep their latency while hashes take what CPU is left.
const HASHING_NICENESS: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    /// One permit per thread, so a job never waits in the channel and the wait is measured.
    permits: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
}

impl Pool {
    fn start(threads: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(err) = spawned {
                tracing::error!(error = %err, "cannot start a password hashing thread");
            }
        }
        Self {
            permits: Arc::new(Semaphore::new(threads)),
            jobs,
        }
    }
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // On Linux a thread is its own scheduling entity: `who = 0` is the calling thread only.
    // SAFETY: setpriority has no memory-safety preconditions.
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, HASHING_NICENESS) };
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {
    let _ = HASHING_NICENESS;
}

/// Process-wide, because every door, the CLI and start-up hash through the same cores; set
/// once from the configuration before the first hash (later calls keep the first size).
static POOL: OnceLock<Pool> = OnceLock::new();

/// The default bound: one hash per core.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Sizes the pool; returns the size in force (the first configured one wins).
pub fn configure(concurrency: usize) -> usize {
    let pool = POOL.get_or_init(|| Pool::start(concurrency));
    pool.permits.available_permits()
}

fn pool() -> &'static Pool {
    POOL.get_or_init(|| Pool::start(default_concurrency()))
}

async fn bounded<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let pool = pool();
    let queued = Instant::now();
    let _permit = pool
        .permits
        .clone()
        .acquire_owned()
        .await
        .expect("the password semaphore is never closed");
    metrics::histogram!("fleet_password_hash_wait_seconds").record(queued.elapsed().as_secs_f64());
    let (done, result) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(work());
    });
    if let Err(mpsc::SendError(job)) = pool.jobs.send(job) {
        // No hashing thread could be started: hash on the blocking pool rather than fail.
        let _ = tokio::task::spawn_blocking(job).await;
    }
    result.await.expect("every hashing job answers")
}

fn hash_now(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters and a fresh salt cannot fail")
        .to_string()
}

fn verify_now(password: &str, stored_hash: &str) -> bool {
    PasswordHash::new(stored_hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// argon2id (the crate's defaults: m=19456 KiB, t=2, p=1) with a fresh salt.
pub async fn hash(password: &str) -> String {
    let password = password.to_owned();
    bounded(move || hash_now(&password)).await
}

pub async fn verify(password: &str, stored_hash: &str) -> bool {
    let (password, stored_hash) = (password.to_owned(), stored_hash.to_owned());
    bounded(move || verify_now(&password, &stored_hash)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_keep_argon2id_parameters() {
        let hashed = hash("correct horse").await;
        assert!(
            hashed.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hashed}"
        );
        assert!(verify("correct horse", &hashed).await);
        assert!(!verify("wrong horse", &hashed).await);
        assert!(!verify("correct horse", "not a hash").await);
    }

    /// Hashing leaves a current-thread runtime free: a timer keeps ticking while hashes run.
    #[tokio::test(flavor = "current_thread")]
    async fn hashing_does_not_block_the_executor() {
        let hashes = tokio::spawn(async {
            for _ in 0..4 {
                hash("password123").await;
            }
        });
        let mut ticks = 0;
        while !hashes.is_finished() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            ticks += 1;
        }
        // Inline hashing would let the ticker run only between hashes (at most ~4 times).
        assert!(ticks > 8, "the executor ticked only {ticks} times");
    }
}
