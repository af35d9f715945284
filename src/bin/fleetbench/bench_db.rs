//! A fresh database per suite, next to `DATABASE_URL`'s, migrated; dropped at the end.

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use std::str::FromStr;

pub async fn drop(database_url: &str, name: &str) -> anyhow::Result<()> {
    let mut admin = PgConnectOptions::from_str(database_url)?.connect().await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    Ok(())
}

/// Drops and recreates `name` and migrates it; a pool of `connections` on it.
pub async fn fresh(database_url: &str, name: &str, connections: u32) -> anyhow::Result<PgPool> {
    drop(database_url, name).await.context("connecting")?;
    let admin_opts = PgConnectOptions::from_str(database_url)?;
    let mut admin = admin_opts.connect().await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .connect_with(admin_opts.database(name))
        .await?;
    fleetstream::db::MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// The URL of database `name` on `database_url`'s server.
pub fn url_of(database_url: &str, name: &str) -> String {
    match database_url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => database_url.to_owned(),
    }
}
