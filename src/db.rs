//! Connecting to Postgres, applying the embedded migrations, and telling an outage apart from a
//! failure of the request itself.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use std::str::FromStr;
use std::time::Duration;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a request waits for a connection. Short, so that while Postgres is down requests
/// answer 503 within a few seconds instead of piling up behind the pool; longer than any wait
/// a healthy, busy pool of 32 connections shows.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

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
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|err| anyhow::anyhow!("DATABASE_URL: cannot connect to {target}: {err}"))?;
    Ok(pool)
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// True when `err` says the database cannot be reached (no connection within the acquire
/// timeout, a broken socket, a server shutting down or starting up), not that the statement
/// failed: such a request may succeed as it is once Postgres is back, so it deserves a 503.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // Class 08: connection exception; 57P01–57P03: admin/crash shutdown, cannot connect
            // now (starting up, shutting down, in recovery); 53300: too many connections.
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// The same test for an error only known by its text: handlers hand `ApiError::internal` any
/// `Display` (often a command error wrapping the `sqlx::Error` transparently), so the outage is
/// recognised by the messages sqlx and Postgres give those cases (Postgres with English
/// `lc_messages`, its default).
pub fn is_unavailable_message(text: &str) -> bool {
    const MARKERS: [&str; 7] = [
        // sqlx::Error::PoolTimedOut, PoolClosed, Io and Tls
        "pool timed out while waiting for an open connection",
        "attempted to acquire a connection on a closed pool",
        "error communicating with database",
        "error occurred while attempting to establish a TLS connection",
        // Postgres 57P01, 57P02, 57P03
        "terminating connection due to administrator command",
        "terminating connection because of crash of another server process",
        "the database system is ",
    ];
    MARKERS.iter().any(|marker| text.contains(marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_told_apart_from_failed_statements() {
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(is_unavailable(&sqlx::Error::Io(refused)));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));

        for err in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
        ] {
            assert!(is_unavailable_message(&err.to_string()), "{err}");
        }
        assert!(is_unavailable_message(
            "error returned from database: the database system is shutting down"
        ));
        assert!(!is_unavailable_message(
            &sqlx::Error::RowNotFound.to_string()
        ));
        assert!(!is_unavailable_message(
            "error returned from database: duplicate key value violates unique constraint"
        ));
    }
}
