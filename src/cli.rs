//! The `fleetstream` command line.

use clap::{Parser, Subcommand};

/// Environment every command reads; shown at the end of `--help`.
const ENVIRONMENT: &str = "\
Environment:
  DATABASE_URL        Postgres URL (required), e.g. postgres://postgres@127.0.0.1:5432/fleetstream
  NATS_URL            NATS URL [default: nats://127.0.0.1:4222]
  FLEET_JWT_SECRET    token signing secret, at least 32 bytes (serve only)
  FLEET_MASTER_KEY    wraps the keys of personal data, at least 32 bytes (serve; tools that
                      open personal fields, e.g. `events show --audit`)
  FLEET_HTTP_ADDR     listen address [default: 0.0.0.0:8000]
  FLEET_ADMIN_EMAIL, FLEET_ADMIN_PASSWORD
                      first superadmin, created at start-up when none exists
  FLEET_CORS_ORIGINS  comma-separated browser origins allowed to call the API [default: none]
  FLEET_LOG_FORMAT    `json` for JSON logs, else text (coloured only on a terminal)
  RUST_LOG            log filter [default: info,sqlx=warn]
See README.md for the tuning variables (FLEET_*_TIMEOUT_SECS, FLEET_MAX_*, FLEET_SMS_*).";

#[derive(Debug, Parser)]
#[command(
    name = "fleetstream",
    version,
    about = "Event-sourced backend for connected therapy devices and sensor fleets",
    after_help = ENVIRONMENT
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (with projection workers and the NATS relay unless --no-workers).
    #[command(after_help = ENVIRONMENT)]
    Serve {
        /// Serve HTTP only; run projections with `fleetstream project` elsewhere.
        #[arg(long)]
        no_workers: bool,
    },
    /// Apply database migrations and exit.
    #[command(after_help = ENVIRONMENT)]
    Migrate,
    /// Run projection workers only (scale-out beside `serve`).
    #[command(after_help = ENVIRONMENT)]
    Project {
        /// Run only this projection (see `projections status` for the names).
        #[arg(long, value_name = "NAME")]
        only: Option<String>,
    },
    /// Run the device ingress worker only (scale-out: instances share the JetStream consumer).
    Ingest,
    /// Account administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Read the event log.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Inspect and rebuild read models.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Personal data in the log (crypto-shredding, ADR 0009).
    Privacy {
        #[command(subcommand)]
        command: PrivacyCommand,
    },
    /// NATS tooling.
    Nats {
        #[command(subcommand)]
        command: NatsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a superadmin; the password is read from standard input.
    #[command(after_help = ENVIRONMENT)]
    Create {
        /// Email address of the new superadmin.
        #[arg(long)]
        email: String,
        /// Read the password (at least 8 characters) from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print the newest events as JSON lines (and keep following with --follow).
    #[command(after_help = ENVIRONMENT)]
    Tail {
        /// Keep printing new events as they are committed (Ctrl-C stops).
        #[arg(long)]
        follow: bool,
        /// Only events of this stream category (e.g. `account`, `device`).
        #[arg(long)]
        category: Option<String>,
        /// How many of the newest events to print first.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Print every event of one stream (e.g. `device-12`), or its audit trail with --audit.
    #[command(after_help = ENVIRONMENT)]
    Show {
        /// Stream id: `<category>-<id>`.
        stream: String,
        /// Print the audit trail instead (JSON lines: who, when, which request, fields changed
        /// old → new); personal fields are opened with FLEET_MASTER_KEY.
        #[arg(long)]
        audit: bool,
        /// With --audit: only entries recorded at or after this time (RFC 3339).
        #[arg(long, requires = "audit", value_name = "TIME", value_parser = parse_time)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// With --audit: only entries recorded at or before this time (RFC 3339).
        #[arg(long, requires = "audit", value_name = "TIME", value_parser = parse_time)]
        to: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Print every event of one request or flow, in commit order.
    #[command(after_help = ENVIRONMENT)]
    Trace {
        /// The correlation id: a request's `x-correlation-id`, else its `x-request-id`.
        correlation_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Position and lag of every projection and of the relay.
    #[command(after_help = ENVIRONMENT)]
    Status,
    /// Replay one projection from the start of the log.
    #[command(after_help = ENVIRONMENT)]
    Rebuild {
        /// Projection name (see `projections status`).
        name: String,
    },
    /// Empty one projection and rewind it (inline projections are rebuilt).
    #[command(after_help = ENVIRONMENT)]
    Reset {
        /// Projection name (see `projections status`).
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PrivacyCommand {
    /// Seal the personal fields of events written before sealing existed (once; resumable),
    /// destroy the keys of subjects that had already ended, rebuild the personal read models.
    /// Needs FLEET_MASTER_KEY.
    #[command(after_help = ENVIRONMENT)]
    Migrate {
        /// Events per transaction.
        #[arg(long, default_value_t = 1000)]
        batch: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum NatsCommand {
    /// Publish every event from a global position on again.
    #[command(after_help = ENVIRONMENT)]
    Republish {
        /// First global position to publish (1 = the whole log).
        #[arg(long)]
        from: i64,
    },
}

/// An RFC 3339 time (`2026-01-31T09:00:00Z`, any offset).
fn parse_time(raw: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("not an RFC 3339 time ({e}), e.g. 2026-01-31T09:00:00Z"))
}
