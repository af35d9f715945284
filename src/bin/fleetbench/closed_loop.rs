//! Writers in closed loops for one phase: each starts its next command as soon as the last
//! returned, so the rate is what the system sustains, not what a client offers.

use std::future::Future;
use std::time::{Duration, Instant};

pub struct Loops {
    pub commands: usize,
    pub per_sec: f64,
    pub p99: Duration,
}

/// Runs `op(writer, i)` in `writers` loops until `phase` is over or it returns `false`.
pub async fn run<F, Fut>(writers: usize, phase: Duration, op: F) -> anyhow::Result<Loops>
where
    F: Fn(usize, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<bool>> + Send,
{
    let started = Instant::now();
    let deadline = started + phase;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let began = Instant::now();
                    if !op(w, i).await? {
                        break;
                    }
                    latencies.push(began.elapsed());
                    i += 1;
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let per_sec = latencies.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    let p99 = latencies
        .get(latencies.len() * 99 / 100)
        .copied()
        .unwrap_or_default();
    Ok(Loops {
        commands: latencies.len(),
        per_sec,
        p99,
    })
}
