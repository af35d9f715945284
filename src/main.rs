use anyhow::Context;
use clap::Parser;
use fleetstream::cli::{
    AdminCommand, Cli, Command, EventsCommand, NatsCommand, PrivacyCommand, ProjectionsCommand,
};
use fleetstream::config::{Config, Tokens};
use fleetstream::state::AppState;
use fleetstream::workers::{self, WorkerSet};
use fleetstream::{db, relay, telemetry};
use fleetstream_events::store::{read_all, Checkpoint};
use fleetstream_events::{EventEnvelope, EventMetadata, Role};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Read;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() {
    telemetry::init_tracing();
    let cli = Cli::parse();
    if let Err(err) = run(cli).await {
        eprintln!("fleetstream: {err:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let tokens = match cli.command {
        Command::Serve { .. } => Tokens::Signed,
        _ => Tokens::Unused,
    };
    let config = Config::from_env(tokens)?;
    // Tools that write personal data seal it: they need the master key.
    if matches!(cli.command, Command::Admin { .. } | Command::Privacy { .. }) {
        config.require_master_key()?;
    }
    let pool = db::connect(&config.database_url, config.db_pool_size).await?;
    match cli.command {
        Command::Migrate => {
            db::migrate(&pool).await?;
            println!("migrations applied");
        }
        Command::Serve { no_workers } => {
            db::migrate(&pool).await?;
            let nats = connect_nats(&config).await;
            let state = AppState::new(pool, config.clone(), nats);
            system_work("start-up", ensure_first_superadmin(&state)).await?;
            fleetstream::server::serve(state, !no_workers).await?;
        }
        Command::Project { only } => {
            let state = AppState::new(pool, config.clone(), None);
            if let Some(name) = only
                .as_deref()
                .filter(|n| *n != fleetstream::alerts::manager::NAME)
            {
                find_projection(&state, name)?;
            }
            let shutdown = CancellationToken::new();
            let handles = workers::spawn(
                &state,
                WorkerSet {
                    projections: true,
                    only,
                    relay: false,
                    ingest: false,
                },
                shutdown.clone(),
            )
            .await?;
            tracing::info!("projection workers running; Ctrl-C or SIGTERM to stop");
            fleetstream::server::shutdown_signal().await;
            shutdown.cancel();
            futures::future::join_all(handles).await;
        }
        Command::Ingest => {
            let nats = connect_nats(&config).await;
            anyhow::ensure!(nats.is_some(), "NATS_URL: the ingest needs NATS");
            let state = AppState::new(pool, config.clone(), nats);
            let shutdown = CancellationToken::new();
            let handles = workers::spawn(
                &state,
                WorkerSet {
                    projections: false,
                    only: None,
                    relay: false,
                    ingest: true,
                },
                shutdown.clone(),
            )
            .await?;
            tracing::info!("ingest worker running; Ctrl-C or SIGTERM to stop");
            fleetstream::server::shutdown_signal().await;
            shutdown.cancel();
            futures::future::join_all(handles).await;
        }
        Command::Admin {
            command:
                AdminCommand::Create {
                    email,
                    password_stdin,
                },
        } => {
            anyhow::ensure!(
                password_stdin,
                "pass the password on standard input with --password-stdin"
            );
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.trim_end_matches(['\n', '\r']);
            anyhow::ensure!(
                password.chars().count() >= 8,
                "the password must be at least 8 characters"
            );
            let state = AppState::new(pool, config, None);
            let id = system_work(
                "cli admin create",
                create_superadmin(&state, &email, password),
            )
            .await?;
            println!("superadmin {email} created with id {id}");
        }
        Command::Events { command } => events(&pool, &config, command).await?,
        Command::Projections { command } => {
            projections(AppState::new(pool, config, None), command).await?
        }
        Command::Privacy {
            command: PrivacyCommand::Migrate { batch },
        } => {
            let state = AppState::new(pool, config.clone(), None);
            let bar = progress_bar(0);
            let report = fleetstream::privacy::migrate::migrate(&state, batch, |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })
            .await?;
            bar.finish();
            println!(
                "sealed {} of {} events of personal data; destroyed {} keys of ended subjects; \
                 rebuilt accounts, patients, outbound_messages",
                report.sealed, report.scanned, report.shredded
            );
            // What the relay published before redaction existed still holds clear values.
            let reachable = async {
                let addrs = fleetstream::nats::server_addrs(&config.nats_url).ok()?;
                let connect = async_nats::ConnectOptions::new().connect(addrs);
                tokio::time::timeout(Duration::from_secs(3), connect)
                    .await
                    .ok()?
                    .ok()
            };
            match reachable.await {
                Some(client) => {
                    let purged = relay::purge_categories(
                        client,
                        fleetstream_events::privacy::PERSONAL_CATEGORIES,
                    )
                    .await?;
                    println!("purged {purged} older messages of personal categories from NATS");
                }
                None => eprintln!(
                    "NATS unreachable: purge fleet.account.>, fleet.patient.> and fleet.message.> \
                     from {} yourself",
                    relay::STREAM_NAME
                ),
            }
        }
        Command::Nats {
            command: NatsCommand::Republish { from },
        } => {
            let client = async_nats::ConnectOptions::new()
                .connect(fleetstream::nats::server_addrs(&config.nats_url)?)
                .await
                .with_context(|| format!("NATS_URL: cannot connect to {}", config.nats_url))?;
            let bar = progress_bar(0);
            let done = relay::republish(&pool, client, from, |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })
            .await?;
            bar.finish();
            println!("republished {done} events from position {from}");
        }
    }
    Ok(())
}

async fn connect_nats(config: &Config) -> Option<async_nats::Client> {
    // Connects in the background and keeps retrying, so the API starts even while NATS is down.
    match fleetstream::nats::connect(&config.nats_url, "fleetstream").await {
        Ok(client) => Some(client),
        Err(err) => {
            tracing::warn!(error = %err, "NATS_URL unusable; events stay in the log until restart");
            None
        }
    }
}

/// Runs work that no request caused with a context naming where it came from, so its events
/// still say so (`door`) and share one correlation id.
async fn system_work<T>(door: &str, work: impl std::future::Future<Output = T>) -> T {
    let correlation = uuid::Uuid::now_v7().to_string();
    let metadata = EventMetadata {
        door: Some(door.to_owned()),
        correlation_id: Some(correlation),
        ..EventMetadata::default()
    };
    fleetstream::es::context::scope(metadata, work).await
}

async fn create_superadmin(state: &AppState, email: &str, password: &str) -> anyhow::Result<i64> {
    let profile = fleetstream_events::AccountProfile {
        email: email.to_owned(),
        ..Default::default()
    };
    fleetstream::accounts::register(
        &state.store,
        EventMetadata::default(),
        profile,
        password,
        Role::Superadmin,
    )
    .await
    .map_err(|err| {
        if fleetstream::accounts::email_taken(&err) {
            anyhow::anyhow!("an account with email {email} exists already")
        } else {
            anyhow::anyhow!("cannot create the superadmin: {err}")
        }
    })
}

/// CONTRACT §1: the first superadmin comes from FLEET_ADMIN_EMAIL / FLEET_ADMIN_PASSWORD. When
/// there is none and nothing says how to make one, say so once: without it every admin-only
/// request answers 403 and a newcomer cannot tell why.
async fn ensure_first_superadmin(state: &AppState) -> anyhow::Result<()> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM accounts WHERE role = 'superadmin')")
            .fetch_one(state.pool())
            .await?;
    if exists {
        return Ok(());
    }
    let (Some(email), Some(password)) = (&state.config.admin_email, &state.config.admin_password)
    else {
        tracing::warn!(
            "no superadmin exists yet, so admin-only requests answer 403. Create one by starting \
             with FLEET_ADMIN_EMAIL and FLEET_ADMIN_PASSWORD set, or with \
             `fleetstream admin create --email <email> --password-stdin`"
        );
        return Ok(());
    };
    anyhow::ensure!(
        password.chars().count() >= 8,
        "FLEET_ADMIN_PASSWORD: must be at least 8 characters"
    );
    let id = create_superadmin(state, email, password).await?;
    tracing::info!(id, "first superadmin created from FLEET_ADMIN_EMAIL");
    Ok(())
}

fn find_projection(
    state: &AppState,
    name: &str,
) -> anyhow::Result<std::sync::Arc<dyn fleetstream_projections::Projection>> {
    anyhow::ensure!(
        name != relay::RELAY_NAME,
        "{name} is the NATS relay, not a projection: it has no read model to rebuild or reset. \
         To publish events again, run `fleetstream nats republish --from <position>`"
    );
    state
        .store
        .projections()
        .iter()
        .find(|p| p.name() == name)
        .cloned()
        .ok_or_else(|| {
            let known: Vec<&str> = state.store.projections().iter().map(|p| p.name()).collect();
            anyhow::anyhow!("no projection named {name:?}; known: {}", known.join(", "))
        })
}

fn progress_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

async fn projections(state: AppState, command: ProjectionsCommand) -> anyhow::Result<()> {
    let pool = state.pool().clone();
    match command {
        ProjectionsCommand::Status => {
            let mut conn = pool.acquire().await?;
            println!(
                "{:<24} {:<7} {:>10} {:>10} {:>9}  last error",
                "name", "mode", "position", "lag", "lag s"
            );
            for p in state.store.projections() {
                let s = fleetstream_projections::projection_status(&mut conn, p.as_ref()).await?;
                let mode = format!("{:?}", p.mode()).to_lowercase();
                println!(
                    "{:<24} {:<7} {:>10} {:>10} {:>9.1}  {}",
                    s.name,
                    mode,
                    s.position,
                    s.lag_events,
                    s.lag_seconds,
                    s.last_error.unwrap_or_default()
                );
            }
            let telemetry = vec!["telemetry".to_owned()];
            let s = fleetstream_projections::status(
                &mut conn,
                fleetstream::alerts::manager::NAME,
                Some(&telemetry),
            )
            .await?;
            println!(
                "{:<24} {:<7} {:>10} {:>10} {:>9.1}  {}",
                s.name,
                "manager",
                s.position,
                s.lag_events,
                s.lag_seconds,
                s.last_error.unwrap_or_default()
            );
            let s = fleetstream_projections::status(&mut conn, relay::RELAY_NAME, None).await?;
            println!(
                "{:<24} {:<7} {:>10} {:>10} {:>9.1}  {}",
                s.name,
                "relay",
                s.position,
                s.lag_events,
                s.lag_seconds,
                s.last_error.unwrap_or_default()
            );
        }
        ProjectionsCommand::Rebuild { name } => {
            let projection = find_projection(&state, &name)?;
            let categories: Vec<String> = projection
                .categories()
                .iter()
                .map(|c| c.to_string())
                .collect();
            let total: i64 =
                sqlx::query_scalar("SELECT count(*) FROM events WHERE category = ANY($1)")
                    .bind(&categories)
                    .fetch_one(&pool)
                    .await?;
            let bar = progress_bar(total as u64);
            let applied = fleetstream_projections::rebuild(
                &pool,
                projection.as_ref(),
                state.store.keyring(),
                2000,
                |n| bar.inc(n),
            )
            .await?;
            bar.finish();
            println!("rebuilt {name} from {applied} events");
        }
        ProjectionsCommand::Reset { name } => {
            let projection = find_projection(&state, &name)?;
            fleetstream_projections::reset(&pool, projection.as_ref(), state.store.keyring())
                .await?;
            println!("reset {name}");
        }
    }
    Ok(())
}

/// The categories present in the log, by skipping through the category index.
async fn categories(pool: &sqlx::PgPool) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "WITH RECURSIVE c(category) AS (
             (SELECT category FROM events ORDER BY category LIMIT 1)
             UNION ALL
             SELECT (SELECT e.category FROM events e WHERE e.category > c.category
                     ORDER BY e.category LIMIT 1)
             FROM c WHERE c.category IS NOT NULL)
         SELECT category FROM c WHERE category IS NOT NULL",
    )
    .fetch_all(pool)
    .await?)
}

async fn events(
    pool: &sqlx::PgPool,
    config: &Config,
    command: EventsCommand,
) -> anyhow::Result<()> {
    let print = |e: &fleetstream_events::StoredEvent| {
        println!(
            "{}",
            serde_json::to_string(&EventEnvelope::from(e)).unwrap_or_default()
        );
    };
    match command {
        EventsCommand::Show {
            stream,
            audit: true,
            from,
            to,
        } => audit_trail(pool, config, &stream, from, to).await?,
        EventsCommand::Show { stream, .. } => {
            let mut conn = pool.acquire().await?;
            let events = fleetstream_events::store::read_stream(&mut conn, &stream, 1).await?;
            anyhow::ensure!(!events.is_empty(), "stream {stream} has no events");
            events.iter().for_each(print);
        }
        EventsCommand::Trace { correlation_id } => {
            let mut conn = pool.acquire().await?;
            let events =
                fleetstream_events::store::read_correlation(&mut conn, &correlation_id).await?;
            anyhow::ensure!(
                !events.is_empty(),
                "no events carry correlation id {correlation_id:?} (a request's x-correlation-id, \
                 else its x-request-id)"
            );
            events.iter().for_each(print);
        }
        EventsCommand::Tail {
            follow,
            category,
            limit,
        } => {
            if let Some(category) = &category {
                let known = categories(pool).await?;
                if !known.contains(category) {
                    let known = if known.is_empty() {
                        "the log is empty".to_owned()
                    } else {
                        format!("categories with events: {}", known.join(", "))
                    };
                    anyhow::ensure!(follow, "category {category:?} has no events; {known}");
                    eprintln!("category {category:?} has no events yet ({known}); following");
                }
            }
            // The newest `limit` events everyone can see now; --follow then reads on with the
            // never-skipping reader. (That reader alone would hold back every event newer than
            // the cluster's oldest open transaction, and a one-off tail would print nothing.)
            let mut newest: Vec<fleetstream_events::StoredEvent> = sqlx::query_as(
                "SELECT * FROM (
                     SELECT global_position, transaction_id::text::bigint AS transaction_id,
                            stream_id, stream_version, event_id, event_type, schema_version,
                            data, metadata, recorded_at
                     FROM events WHERE ($1::text IS NULL OR category = $1)
                     ORDER BY events.transaction_id DESC, global_position DESC LIMIT $2) AS newest
                 ORDER BY transaction_id, global_position",
            )
            .bind(&category)
            .bind(limit.max(0))
            .fetch_all(pool)
            .await?;
            newest.iter().for_each(print);
            let mut at = newest
                .pop()
                .map(|e| Checkpoint::after(&e))
                .unwrap_or_default();
            let categories = category.map(|c| vec![c]);
            let mut conn = pool.acquire().await?;
            if !follow {
                return Ok(());
            }
            loop {
                let events = read_all(&mut conn, at, 500, categories.as_deref()).await?;
                events.iter().for_each(print);
                if let Some(last) = events.last() {
                    at = Checkpoint::after(last);
                    continue;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    Ok(())
}

/// `events show <stream> --audit`: the stream's audit trail as JSON lines, personal fields
/// opened with FLEET_MASTER_KEY.
async fn audit_trail(
    pool: &sqlx::PgPool,
    config: &Config,
    stream: &str,
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<()> {
    use fleetstream::audit::{self, AuditError};
    use fleetstream_events::privacy::{Keyring, PrivacyError};
    let keyring = config
        .master_key
        .as_ref()
        .map(|key| Keyring::from_secret(key.as_bytes()));
    let window = audit::Window { after: 0, from, to };
    let mut conn = pool.acquire().await?;
    let found = audit::scan(&mut conn, keyring.as_ref(), stream, &window, |entry| {
        println!("{}", serde_json::to_string(&entry).unwrap_or_default());
        std::ops::ControlFlow::Continue(())
    })
    .await
    .map_err(|err| match err {
        AuditError::Privacy(PrivacyError::NoKeyring) => anyhow::anyhow!(
            "stream {stream} holds sealed personal data: set FLEET_MASTER_KEY to open it"
        ),
        other => other.into(),
    })?;
    anyhow::ensure!(found, "stream {stream} has no events");
    Ok(())
}
