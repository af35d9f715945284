//! Suite `login-storm` (issue 17): an unrelated endpoint's latency while clients log in
//! continuously, against the same endpoint with no storm, alternating in one run on a fresh
//! database, served by the real server loop (`fleetstream::server`). Password hashing runs on
//! the bounded blocking pool (`FLEET_PASSWORD_HASH_CONCURRENCY`, `--hash-concurrency`); the
//! target is storm p95 ≤ max(3 × quiet p95, 20 ms).

use crate::bench_db::{drop as drop_database, fresh};
use crate::therapy::read_response;
use anyhow::bail;
use fleetstream::testing;
use fleetstream_events::Role;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const BENCH_DB: &str = "fleetbench_storm";
const PASSWORD: &str = "password123";

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Clients logging in continuously during the storm.
    #[arg(long, default_value_t = 6)]
    pub clients: usize,
    /// `GET /api/v1/users/me` requests measured per phase.
    #[arg(long, default_value_t = 400)]
    pub probes: usize,
    /// Quiet/storm phase pairs, alternating.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Password hashes at once (default: FLEET_PASSWORD_HASH_CONCURRENCY, else the cores).
    #[arg(long)]
    pub hash_concurrency: Option<usize>,
}

pub async fn run(database_url: &str, options: Options) -> anyhow::Result<()> {
    let pool = fresh(database_url, BENCH_DB, 24).await?;
    let mut config = fleetstream::config::Config::for_tests(database_url);
    if let Some(n) = options.hash_concurrency.or_else(|| {
        std::env::var("FLEET_PASSWORD_HASH_CONCURRENCY")
            .ok()
            .and_then(|v| v.parse().ok())
    }) {
        config.password_hash_concurrency = n;
    }
    // Failed-login throttling is not what is measured; every storm login is a right password.
    let state = fleetstream::state::AppState::new(pool.clone(), config, None);
    let slots = fleetstream::auth::password::configure(state.config.password_hash_concurrency);
    let probe = testing::account(&state, "probe@example.com", Role::User).await;
    let mut stormers = Vec::new();
    for i in 0..options.clients.max(1) {
        stormers
            .push(testing::account(&state, &format!("storm-{i}@example.com"), Role::User).await);
    }
    let stop = CancellationToken::new();
    let addr = fleetstream::server::spawn_local(
        fleetstream::app::router(state),
        Duration::from_secs(10),
        stop.clone(),
    )
    .await?;

    probes(addr, &probe.token, 50).await?; // warm-up
    let (mut quiet, mut storm) = (Vec::new(), Vec::new());
    let mut logins = 0u64;
    let mut storm_time = Duration::ZERO;
    for _ in 0..options.rounds.max(1) {
        quiet.extend(probes(addr, &probe.token, options.probes).await?);
        let running = Arc::new(AtomicBool::new(true));
        let count = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for account in &stormers {
            tasks.push(tokio::spawn(login_loop(
                addr,
                account.email.clone(),
                running.clone(),
                count.clone(),
            )));
        }
        tokio::time::sleep(Duration::from_millis(300)).await; // the storm is on
        let started = Instant::now();
        let before = count.load(Ordering::Relaxed);
        storm.extend(probes(addr, &probe.token, options.probes).await?);
        storm_time += started.elapsed();
        logins += count.load(Ordering::Relaxed) - before;
        running.store(false, Ordering::Relaxed);
        for task in tasks {
            task.await??;
        }
    }
    stop.cancel();

    let (q50, q95, q99) = (pct(&quiet, 50.0), pct(&quiet, 95.0), pct(&quiet, 99.0));
    let (s50, s95, s99) = (pct(&storm, 50.0), pct(&storm, 95.0), pct(&storm, 99.0));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "login storm: {} clients logging in, {slots} hashing slots, {} cores; GET /api/v1/users/me, {} probes per side",
        options.clients,
        fleetstream::auth::password::default_concurrency(),
        quiet.len()
    );
    println!(
        "  quiet  p50 {:>7.2} ms  p95 {:>7.2} ms  p99 {:>7.2} ms",
        ms(q50),
        ms(q95),
        ms(q99)
    );
    println!(
        "  storm  p50 {:>7.2} ms  p95 {:>7.2} ms  p99 {:>7.2} ms  ({:.1} logins/s)",
        ms(s50),
        ms(s95),
        ms(s99),
        logins as f64 / storm_time.as_secs_f64()
    );
    let target = (q95 * 3).max(Duration::from_millis(20));
    println!(
        "  ratio storm/quiet: p50 {:.2}x, p95 {:.2}x; target p95 ≤ {:.2} ms: {}",
        s50.as_secs_f64() / q50.as_secs_f64(),
        s95.as_secs_f64() / q95.as_secs_f64(),
        ms(target),
        if s95 <= target { "met" } else { "MISSED" }
    );
    pool.close().await;
    drop_database(database_url, BENCH_DB).await
}

fn pct(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `count` sequential `GET /api/v1/users/me` on one keep-alive connection, 2 ms apart (a
/// dashboard's pace, not a second storm).
async fn probes(addr: SocketAddr, token: &str, count: usize) -> anyhow::Result<Vec<Duration>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut conn = BufReader::new(stream);
    let request = format!(
        "GET /api/v1/users/me HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\r\n"
    );
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let sent = Instant::now();
        conn.get_mut().write_all(request.as_bytes()).await?;
        read_response(&mut conn).await?;
        latencies.push(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(latencies)
}

/// Logs in as fast as the server answers until `running` turns false.
async fn login_loop(
    addr: SocketAddr,
    email: String,
    running: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut conn = BufReader::new(stream);
    let body = serde_json::json!({"email": email, "password": PASSWORD}).to_string();
    let request = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    while running.load(Ordering::Relaxed) {
        conn.get_mut().write_all(request.as_bytes()).await?;
        let reply = read_response(&mut conn).await?;
        if !reply.starts_with(b"{") {
            bail!("unexpected login reply");
        }
        count.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}
