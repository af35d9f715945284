//! The `fleetstream` binary's configuration errors and the commands that need no token secret.

use sqlx::PgPool;
use std::process::{Command, Output};

fn fleetstream(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fleetstream"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("FLEET_JWT_SECRET")
        .env_remove("FLEET_HTTP_ADDR")
        .env("RUST_LOG", "off")
        .env("NATS_URL", "nats://127.0.0.1:1");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the fleetstream binary runs")
}

/// The URL of this test's own database (sqlx::test made it from DATABASE_URL).
async fn url_of(pool: &PgPool) -> String {
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for the tests");
    let (without_query, query) = match base.split_once('?') {
        Some((url, query)) => (url, format!("?{query}")),
        None => (base.as_str(), String::new()),
    };
    let (server, _) = without_query.rsplit_once('/').expect("a URL with a path");
    format!("{server}/{database}{query}")
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_missing_or_invalid_variable_is_one_line_naming_it() {
    let missing_db = fleetstream(&["migrate"], &[]);
    assert_eq!(missing_db.status.code(), Some(1));
    assert_eq!(
        stderr_of(&missing_db),
        "fleetstream: DATABASE_URL: is not set\n"
    );

    let url = "postgres://127.0.0.1:1/none";
    let missing_secret = fleetstream(&["serve"], &[("DATABASE_URL", url)]);
    assert_eq!(missing_secret.status.code(), Some(1));
    assert_eq!(
        stderr_of(&missing_secret),
        "fleetstream: FLEET_JWT_SECRET: is not set\n"
    );

    let bad_addr = fleetstream(
        &["serve"],
        &[
            ("DATABASE_URL", url),
            ("FLEET_JWT_SECRET", "a-secret-for-this-test"),
            ("FLEET_HTTP_ADDR", "port-eighty"),
        ],
    );
    assert_eq!(bad_addr.status.code(), Some(1));
    assert_eq!(
        stderr_of(&bad_addr),
        "fleetstream: FLEET_HTTP_ADDR: cannot parse \"port-eighty\"\n"
    );
}

/// Operators migrate and inspect without handing the tool the token secret.
#[sqlx::test(migrations = false)]
async fn migrate_and_status_need_no_token_secret(pool: PgPool) {
    let url = url_of(&pool).await;
    let migrated = fleetstream(&["migrate"], &[("DATABASE_URL", &url)]);
    assert!(migrated.status.success(), "{}", stderr_of(&migrated));
    assert_eq!(
        String::from_utf8_lossy(&migrated.stdout),
        "migrations applied\n"
    );
    let has_log: bool = sqlx::query_scalar("SELECT to_regclass('events') IS NOT NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(has_log);

    let status = fleetstream(&["projections", "status"], &[("DATABASE_URL", &url)]);
    assert!(status.status.success(), "{}", stderr_of(&status));
    assert!(String::from_utf8_lossy(&status.stdout).contains("nats_relay"));
}
