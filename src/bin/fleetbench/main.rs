//! fleetbench: measurements against the real Postgres (and NATS), each reported as a ratio of a
//! baseline measured in the same run. `cargo run --release --bin fleetbench -- <suite>`.
//! Each suite lives in its own module below and adds one subcommand.

mod append;
mod bench_db;
mod closed_loop;
mod ingest;
#[cfg(feature = "peers")]
mod peers;
mod privacy;
mod storm;
mod sync;
mod telemetry;
mod therapy;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "fleetbench",
    about = "Benchmarks of fleetstream against baselines measured in the same run",
    after_help = "Environment:\n  DATABASE_URL  Postgres URL; each suite creates (and drops) its own database beside it"
)]
struct Args {
    #[command(subcommand)]
    suite: Suite,
    /// Postgres server to benchmark on (a suite's database is created beside this one's).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Suite {
    /// Event-log appends, projection lag and rebuild against raw Postgres baselines.
    Append,
    /// KooDTX sample pushes against a keyed COPY baseline.
    Sync,
    /// get-all-device under 16 clients against the same SQL in a bare handler.
    Therapy,
    /// An unrelated endpoint's latency during a login storm against its quiet latency.
    LoginStorm(storm::Options),
    /// Measurements, aggregated data, analytics and roll-up rebuilds against raw baselines.
    Telemetry,
    /// 1,000 devices publishing telemetry through JetStream at steady rates: what keeps up,
    /// publish→visible and publish→socket latency, raw JetStream and UNNEST baselines.
    Ingest,
    /// fleetstream's commands against cqrs-es + postgres-es on the same Postgres (build with
    /// `--features peers`).
    #[cfg(feature = "peers")]
    Peers(peers::Options),
    /// Crypto-shredding (issue 15): account and patient commands, rebuilds and a sync control
    /// through a sealing store against a plaintext one, with round trips counted on the wire.
    Privacy(privacy::Options),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let database_url = args
        .database_url
        .ok_or_else(|| anyhow::anyhow!("DATABASE_URL: is not set (or pass --database-url)"))?;
    match args.suite {
        Suite::Append => append::run(&database_url).await,
        Suite::Sync => sync::run(&database_url).await,
        Suite::Therapy => therapy::run(&database_url).await,
        Suite::LoginStorm(options) => storm::run(&database_url, options).await,
        Suite::Telemetry => telemetry::run(&database_url).await,
        Suite::Ingest => ingest::run(&database_url).await,
        #[cfg(feature = "peers")]
        Suite::Peers(options) => peers::run(&database_url, options).await,
        Suite::Privacy(options) => privacy::run(&database_url, options).await,
    }
}
