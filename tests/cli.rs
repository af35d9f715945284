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
        .env("FLEET_MASTER_KEY", MASTER_KEY)
        .env("RUST_LOG", "off")
        .env("NATS_URL", "nats://127.0.0.1:1");
    for (name, value) in env {
        // An empty value leaves the variable unset.
        if value.is_empty() {
            command.env_remove(name);
        } else {
            command.env(name, value);
        }
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

const LONG_SECRET: &str = "a-secret-for-this-test-that-has-32-bytes-or-more";
const MASTER_KEY: &str = "a-master-key-for-this-test-of-32-bytes-or-more";

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

    let missing_master_key = fleetstream(
        &["serve"],
        &[
            ("DATABASE_URL", url),
            ("FLEET_JWT_SECRET", LONG_SECRET),
            ("FLEET_MASTER_KEY", ""),
        ],
    );
    assert_eq!(missing_master_key.status.code(), Some(1));
    assert_eq!(
        stderr_of(&missing_master_key),
        "fleetstream: FLEET_MASTER_KEY: is not set\n"
    );
    let short_master_key = fleetstream(
        &["serve"],
        &[
            ("DATABASE_URL", url),
            ("FLEET_JWT_SECRET", LONG_SECRET),
            ("FLEET_MASTER_KEY", "short"),
        ],
    );
    assert_eq!(
        stderr_of(&short_master_key),
        "fleetstream: FLEET_MASTER_KEY: must be at least 32 bytes (it is 5); generate one with `openssl rand -base64 48`\n"
    );

    let bad_addr = fleetstream(
        &["serve"],
        &[
            ("DATABASE_URL", url),
            ("FLEET_JWT_SECRET", LONG_SECRET),
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

/// Issue 15: `privacy migrate` needs the master key, seals once, and refuses a second run.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn privacy_migrate_runs_once_and_needs_the_master_key(pool: PgPool) {
    let url = url_of(&pool).await;
    let keyless = fleetstream(
        &["privacy", "migrate"],
        &[("DATABASE_URL", &url), ("FLEET_MASTER_KEY", "")],
    );
    assert_eq!(keyless.status.code(), Some(1));
    assert_eq!(
        stderr_of(&keyless),
        "fleetstream: FLEET_MASTER_KEY: is required to read or write personal data (see ADR 0009)\n"
    );
    let first = fleetstream(&["privacy", "migrate"], &[("DATABASE_URL", &url)]);
    assert!(first.status.success(), "{}", stderr_of(&first));
    assert!(
        String::from_utf8_lossy(&first.stdout).starts_with("sealed 0 of 0 events of personal data"),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    let second = fleetstream(&["privacy", "migrate"], &[("DATABASE_URL", &url)]);
    assert_eq!(second.status.code(), Some(1));
    assert!(
        stderr_of(&second).contains("was sealed already")
            && stderr_of(&second).contains("it runs once"),
        "{}",
        stderr_of(&second)
    );
}

/// Issue 17: an HS256 key under 32 bytes can be brute-forced from one token; refuse to start.
#[test]
fn a_short_token_secret_refuses_to_start_naming_the_variable() {
    let url = "postgres://127.0.0.1:1/none";
    for secret in ["x", "31-bytes-is-one-byte-too-short!"] {
        assert!(secret.len() < 32);
        let out = fleetstream(
            &["serve"],
            &[("DATABASE_URL", url), ("FLEET_JWT_SECRET", secret)],
        );
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            stderr_of(&out),
            format!(
                "fleetstream: FLEET_JWT_SECRET: must be at least 32 bytes (it is {}); generate one with `openssl rand -base64 48`\n",
                secret.len()
            )
        );
    }
    // 32 bytes pass the check (and the tool goes on to the database, which is not there).
    let out = fleetstream(
        &["serve"],
        &[("DATABASE_URL", url), ("FLEET_JWT_SECRET", &"k".repeat(32))],
    );
    assert!(stderr_of(&out).starts_with("fleetstream: DATABASE_URL: cannot connect to 127.0.0.1:1"));
}

/// An unreachable database fails fast (the 2 s connect bound, not the pool's 10 s) and names
/// the host it tried.
#[test]
fn an_unreachable_database_fails_quickly_naming_the_host() {
    // A listener that never accepts: the connection opens (kernel backlog) and no server ever
    // answers, so only the connect bound can end the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/fleet");
    let started = std::time::Instant::now();
    let out = fleetstream(&["migrate"], &[("DATABASE_URL", &url)]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_of(&out),
        format!(
            "fleetstream: DATABASE_URL: cannot connect to 127.0.0.1:{port} (database \"fleet\"): no answer within 2s\n"
        )
    );
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");

    let refused = fleetstream(
        &["migrate"],
        &[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/fleet")],
    );
    let err = stderr_of(&refused);
    assert!(
        err.starts_with(
            "fleetstream: DATABASE_URL: cannot connect to 127.0.0.1:1 (database \"fleet\"): "
        ),
        "{err}"
    );
}

#[test]
fn help_describes_every_flag_and_names_the_environment() {
    let cases: &[&[&str]] = &[
        &["--help"],
        &["serve", "--help"],
        &["project", "--help"],
        &["admin", "create", "--help"],
        &["events", "tail", "--help"],
        &["events", "show", "--help"],
        &["events", "trace", "--help"],
        &["projections", "rebuild", "--help"],
        &["nats", "republish", "--help"],
    ];
    for args in cases {
        let out = fleetstream(args, &[]);
        assert!(out.status.success(), "{args:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("DATABASE_URL"), "{args:?}: {help}");
        assert!(help.contains("NATS_URL"), "{args:?}: {help}");
        // Every option line (`--flag`) carries a description after it.
        for line in help.lines().filter(|l| l.trim_start().starts_with("--")) {
            let described = line
                .trim_start()
                .split_once("  ")
                .is_some_and(|(_, d)| !d.trim().is_empty());
            assert!(described, "{args:?}: undocumented option: {line}");
        }
        for line in help.lines().filter(|l| l.trim_start().starts_with('<')) {
            let described = line
                .trim_start()
                .split_once("  ")
                .is_some_and(|(_, d)| !d.trim().is_empty());
            assert!(described, "{args:?}: undocumented argument: {line}");
        }
    }
}

#[sqlx::test(migrations = false)]
async fn tail_of_an_unknown_category_says_so_and_relay_is_not_rebuilt(pool: PgPool) {
    let url = url_of(&pool).await;
    let migrated = fleetstream(&["migrate"], &[("DATABASE_URL", &url)]);
    assert!(migrated.status.success(), "{}", stderr_of(&migrated));
    let state = fleetstream::testing::state(pool.clone());
    fleetstream::testing::account(&state, "tail@example.com", fleetstream_events::Role::User).await;

    let bogus = fleetstream(
        &["events", "tail", "--category", "bogus"],
        &[("DATABASE_URL", &url)],
    );
    assert_eq!(bogus.status.code(), Some(1));
    assert_eq!(
        stderr_of(&bogus),
        "fleetstream: category \"bogus\" has no events; categories with events: account\n"
    );
    let account = fleetstream(
        &["events", "tail", "--category", "account"],
        &[("DATABASE_URL", &url)],
    );
    assert!(account.status.success());
    assert_eq!(String::from_utf8_lossy(&account.stdout).lines().count(), 1);

    let relay = fleetstream(
        &["projections", "rebuild", "nats_relay"],
        &[("DATABASE_URL", &url)],
    );
    assert_eq!(relay.status.code(), Some(1));
    assert_eq!(
        stderr_of(&relay),
        "fleetstream: nats_relay is the NATS relay, not a projection: it has no read model to rebuild or reset. To publish events again, run `fleetstream nats republish --from <position>`\n"
    );
}

/// Inline projections are current by construction: status shows the newest event of their
/// categories and no lag, not the 0 of a checkpoint that only a rebuild moves.
#[sqlx::test(migrations = false)]
async fn status_shows_inline_projections_at_their_real_position(pool: PgPool) {
    let url = url_of(&pool).await;
    let migrated = fleetstream(&["migrate"], &[("DATABASE_URL", &url)]);
    assert!(migrated.status.success(), "{}", stderr_of(&migrated));
    let state = fleetstream::testing::state(pool.clone());
    fleetstream::testing::account(&state, "a@example.com", fleetstream_events::Role::User).await;
    fleetstream::testing::account(&state, "b@example.com", fleetstream_events::Role::User).await;
    let newest: i64 =
        sqlx::query_scalar("SELECT max(global_position) FROM events WHERE category = 'account'")
            .fetch_one(&pool)
            .await
            .unwrap();

    let status = fleetstream(&["projections", "status"], &[("DATABASE_URL", &url)]);
    assert!(status.status.success(), "{}", stderr_of(&status));
    let out = String::from_utf8_lossy(&status.stdout);
    let accounts: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("accounts "))
        .expect("an accounts row")
        .split_whitespace()
        .collect();
    assert_eq!(accounts[1], "inline", "{out}");
    assert_eq!(accounts[2], newest.to_string(), "{out}");
    assert_eq!(accounts[3], "0", "{out}");
}

#[test]
fn cors_origins_must_be_origins() {
    let out = fleetstream(
        &["serve"],
        &[
            ("DATABASE_URL", "postgres://127.0.0.1:1/none"),
            ("FLEET_JWT_SECRET", LONG_SECRET),
            ("FLEET_CORS_ORIGINS", "https://ok.example.com, *"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_of(&out),
        "fleetstream: FLEET_CORS_ORIGINS: \"*\" is not an origin like https://dashboard.example.com\n"
    );
}

#[test]
fn fleetbench_takes_its_suite_and_options_through_the_parser() {
    let bench = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_fleetbench"))
            .args(args)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    };
    let help = bench(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for suite in ["append", "sync", "therapy", "login-storm", "DATABASE_URL"] {
        assert!(text.contains(suite), "{suite}: {text}");
    }
    let storm = bench(&["login-storm", "--help"]);
    let text = String::from_utf8_lossy(&storm.stdout);
    for option in ["--clients", "--probes", "--rounds", "--hash-concurrency"] {
        assert!(text.contains(option), "{option}: {text}");
    }
    let unknown = bench(&["bogus"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unrecognized subcommand 'bogus'"));
    let no_db = bench(&["login-storm", "--clients", "2"]);
    assert_eq!(no_db.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_db.stderr).contains("DATABASE_URL: is not set"));
}

/// Issue 15: `events show --audit` prints the audit trail as JSON lines, opening personal fields
/// with FLEET_MASTER_KEY (without it, one line naming the variable); `events show` alone still
/// prints the events with personal fields hidden.
#[sqlx::test(migrations = false)]
async fn events_show_audit_prints_the_trail_and_needs_the_master_key(pool: PgPool) {
    let url = url_of(&pool).await;
    let migrated = fleetstream(&["migrate"], &[("DATABASE_URL", &url)]);
    assert!(migrated.status.success(), "{}", stderr_of(&migrated));
    let state = fleetstream::testing::state(pool.clone());
    let kim =
        fleetstream::testing::account(&state, "kim@example.com", fleetstream_events::Role::User)
            .await;
    let c = fleetstream::testing::TestClient::new(state);
    let patched = c
        .request(
            "PATCH",
            "/api/v1/users/me",
            Some(&kim.token),
            serde_json::json!({"full_name": "Kim"}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let stream = format!("account-{}", kim.id);
    // The key `testing::state` sealed with.
    let key = fleetstream::config::Config::for_tests("postgres://unused")
        .master_key
        .unwrap();
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("FLEET_MASTER_KEY", key.as_str()),
    ];

    let audit = fleetstream(&["events", "show", &stream, "--audit"], &env);
    assert!(audit.status.success(), "{}", stderr_of(&audit));
    let entries: Vec<serde_json::Value> = String::from_utf8_lossy(&audit.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["event_type"], "AccountRegistered");
    assert_eq!(entries[1]["event_type"], "ProfileChanged");
    assert_eq!(entries[1]["actor"], kim.id);
    assert!(entries[1]["request_id"].is_string());
    let changes = |entry: &serde_json::Value| entry["changes"].to_string();
    assert!(
        changes(&entries[0]).contains("kim@example.com"),
        "{}",
        entries[0]
    );
    assert!(
        changes(&entries[0]).contains("[redacted]"),
        "{}",
        entries[0]
    );
    assert_eq!(
        entries[1]["changes"],
        serde_json::json!([{"field": "full_name", "old": null, "new": "Kim"}])
    );

    let second = entries[1]["recorded_at"].as_str().unwrap();
    let from = fleetstream(
        &["events", "show", &stream, "--audit", "--from", second],
        &env,
    );
    assert!(from.status.success(), "{}", stderr_of(&from));
    let lines: Vec<String> = String::from_utf8_lossy(&from.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("ProfileChanged"));
    let first = entries[0]["recorded_at"].as_str().unwrap();
    let to = fleetstream(&["events", "show", &stream, "--audit", "--to", first], &env);
    assert_eq!(String::from_utf8_lossy(&to.stdout).lines().count(), 1);

    let keyless = fleetstream(
        &["events", "show", &stream, "--audit"],
        &[("DATABASE_URL", &url), ("FLEET_MASTER_KEY", "")],
    );
    assert_eq!(keyless.status.code(), Some(1));
    assert_eq!(
        stderr_of(&keyless),
        format!(
            "fleetstream: stream {stream} holds sealed personal data: set FLEET_MASTER_KEY to open it\n"
        )
    );
    assert!(keyless.stdout.is_empty());

    // Without --audit: the events as before, personal fields never shown (no key needed).
    let plain = fleetstream(
        &["events", "show", &stream],
        &[("DATABASE_URL", &url), ("FLEET_MASTER_KEY", "")],
    );
    assert!(plain.status.success(), "{}", stderr_of(&plain));
    let out = String::from_utf8_lossy(&plain.stdout);
    assert_eq!(out.lines().count(), 2);
    assert!(
        out.contains("[personal]") && !out.contains("kim@example.com"),
        "{out}"
    );
    let unknown = fleetstream(&["events", "show", "account-999999", "--audit"], &env);
    assert_eq!(
        stderr_of(&unknown),
        "fleetstream: stream account-999999 has no events\n"
    );
    let bad_time = fleetstream(
        &["events", "show", &stream, "--audit", "--from", "yesterday"],
        &env,
    );
    assert_eq!(bad_time.status.code(), Some(2), "clap refuses it");
    let without_audit = fleetstream(&["events", "show", &stream, "--from", first], &env);
    assert_eq!(without_audit.status.code(), Some(2), "--from needs --audit");
}
