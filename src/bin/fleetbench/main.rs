//! fleetbench: measurements against the real Postgres (and NATS), each reported as a ratio of a
//! baseline measured in the same run. `cargo run --release --bin fleetbench -- <suite>`.
//! Each suite lives in its own module below and adds one match arm.

mod append;
#[cfg(feature = "peers")]
mod peers;
mod sync;
mod therapy;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let suite = std::env::args().nth(1).unwrap_or_default();
    let database_url =
        std::env::var("DATABASE_URL").map_err(|_| anyhow::anyhow!("DATABASE_URL: is not set"))?;
    match suite.as_str() {
        "append" => append::run(&database_url).await,
        "sync" => sync::run(&database_url).await,
        "therapy" => therapy::run(&database_url).await,
        #[cfg(feature = "peers")]
        "peers" => peers::run(&database_url).await,
        other => anyhow::bail!("unknown suite {other:?}; suites: append, sync, therapy"),
    }
}
