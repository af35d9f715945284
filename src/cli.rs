//! The `fleetstream` command line.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "fleetstream",
    version,
    about = "Event-sourced backend for connected therapy devices and sensor fleets"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (with projection workers and the NATS relay unless --no-workers).
    Serve {
        #[arg(long)]
        no_workers: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Run projection workers only (scale-out beside `serve`).
    Project {
        #[arg(long)]
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
    /// NATS tooling.
    Nats {
        #[command(subcommand)]
        command: NatsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a superadmin; the password is read from standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print the newest events (and keep following with --follow).
    Tail {
        #[arg(long)]
        follow: bool,
        #[arg(long)]
        category: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Print every event of one stream.
    Show { stream: String },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Position and lag of every projection and of the relay.
    Status,
    /// Replay one projection from the start of the log.
    Rebuild { name: String },
    /// Empty one projection and rewind it (inline projections are rebuilt).
    Reset { name: String },
}

#[derive(Debug, Subcommand)]
pub enum NatsCommand {
    /// Publish every event from a global position on again.
    Republish {
        #[arg(long)]
        from: i64,
    },
}
