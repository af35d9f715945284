//! Connecting to Postgres and applying the embedded migrations.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use std::str::FromStr;
use std::time::Duration;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long the first connection may take before the tool gives up naming the host (the pool's
/// own acquire timeout, for busy servers, is longer).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Connects with `max_connections` pooled connections. One connection is opened first, within
/// [`CONNECT_TIMEOUT`], so an unreachable or misnamed server fails at once with where it was.
pub async fn connect(database_url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(database_url)
        .map_err(|err| anyhow::anyhow!("DATABASE_URL: cannot parse it: {err}"))?;
    let target = format!(
        "{}:{} (database {:?})",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("postgres")
    );
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Err(_) => anyhow::bail!(
            "DATABASE_URL: cannot connect to {target}: no answer within {}s",
            CONNECT_TIMEOUT.as_secs()
        ),
        Ok(Err(err)) => anyhow::bail!("DATABASE_URL: cannot connect to {target}: {err}"),
        Ok(Ok(probe)) => {
            let _ = sqlx::Connection::close(probe).await;
        }
    }
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|err| anyhow::anyhow!("DATABASE_URL: cannot connect to {target}: {err}"))?;
    Ok(pool)
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}
