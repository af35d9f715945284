//! Configuration from the environment (CONTRACT §6). A bad value is a one-line error that names
//! the variable; secrets are never printed.

use std::net::SocketAddr;
use std::time::Duration;

#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub nats_url: String,
    pub jwt_secret: String,
    pub http_addr: SocketAddr,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    pub login_failures_per_account: u32,
    pub login_failures_per_ip: u32,
    /// Health reports `degraded` when the relay or an async projection is further behind.
    pub health_max_lag: Duration,
    /// |slope| per hour from which a trend is `increasing`/`decreasing` (`FLEET_TREND_SLOPE`).
    pub trend_slope: rust_decimal::Decimal,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("http_addr", &self.http_addr)
            .field("nats_url", &self.nats_url)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("admin_email", &self.admin_email)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn required(name: &'static str) -> Result<String, ConfigError> {
    var(name).ok_or(ConfigError {
        variable: name,
        problem: "is not set".into(),
    })
}

fn parsed<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|_| ConfigError {
            variable: name,
            problem: format!("cannot parse {raw:?}"),
        }),
    }
}

/// Whether a command signs or verifies tokens: only then is `FLEET_JWT_SECRET` required (an
/// operator runs `migrate` or `projections rebuild` without handing the tool the secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokens {
    Signed,
    Unused,
}

impl Config {
    pub fn from_env(tokens: Tokens) -> Result<Self, ConfigError> {
        Ok(Self {
            database_url: required("DATABASE_URL")?,
            nats_url: var("NATS_URL").unwrap_or_else(|| "nats://127.0.0.1:4222".into()),
            jwt_secret: match tokens {
                Tokens::Signed => required("FLEET_JWT_SECRET")?,
                Tokens::Unused => var("FLEET_JWT_SECRET").unwrap_or_default(),
            },
            http_addr: parsed("FLEET_HTTP_ADDR", SocketAddr::from(([0, 0, 0, 0], 8000)))?,
            access_ttl: Duration::from_secs(parsed("FLEET_ACCESS_TTL_SECS", 900u64)?),
            refresh_ttl: Duration::from_secs(parsed("FLEET_REFRESH_TTL_SECS", 1_209_600u64)?),
            admin_email: var("FLEET_ADMIN_EMAIL"),
            admin_password: var("FLEET_ADMIN_PASSWORD"),
            login_failures_per_account: parsed("FLEET_LOGIN_FAILURES_PER_ACCOUNT", 5u32)?,
            login_failures_per_ip: parsed("FLEET_LOGIN_FAILURES_PER_IP", 30u32)?,
            health_max_lag: Duration::from_secs(parsed("FLEET_HEALTH_MAX_LAG_SECS", 30u64)?),
            trend_slope: parsed("FLEET_TREND_SLOPE", rust_decimal::Decimal::new(1, 2))?,
        })
    }

    /// A configuration for tests and benchmarks: everything default but the given URLs.
    pub fn for_tests(database_url: &str) -> Self {
        Self {
            database_url: database_url.to_owned(),
            nats_url: std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
            jwt_secret: "test-secret-that-is-long-enough-for-hs256".into(),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            access_ttl: Duration::from_secs(900),
            refresh_ttl: Duration::from_secs(1_209_600),
            admin_email: None,
            admin_password: None,
            login_failures_per_account: 5,
            login_failures_per_ip: 30,
            health_max_lag: Duration::from_secs(30),
            trend_slope: rust_decimal::Decimal::new(1, 2),
        }
    }
}
