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
    /// Password hashes running at once (`FLEET_PASSWORD_HASH_CONCURRENCY`, default: cores).
    pub password_hash_concurrency: usize,
    /// Verification SMS per window, per phone / account / client IP (`FLEET_SMS_PER_*`).
    pub sms_per_phone: u32,
    pub sms_per_account: u32,
    pub sms_per_ip: u32,
    pub sms_window: Duration,
    /// Time a client has to send its request headers (`FLEET_HEADER_TIMEOUT_SECS`).
    pub header_timeout: Duration,
    /// Time a client has to send its whole request body (`FLEET_BODY_TIMEOUT_SECS`).
    pub body_timeout: Duration,
    /// Time a handler has before the reply is 503 (`FLEET_HANDLER_TIMEOUT_SECS`).
    pub handler_timeout: Duration,
    /// Requests handled at once; past it, new ones wait `queue_wait` and are shed with 503.
    pub max_in_flight: usize,
    pub queue_wait: Duration,
    /// Postgres connections in the pool (`FLEET_DB_POOL_SIZE`).
    pub db_pool_size: u32,
    /// Browser origins allowed by CORS (`FLEET_CORS_ORIGINS`, comma-separated; none by default).
    pub cors_origins: Vec<String>,
    /// `FLEET_MASTER_KEY`: wraps every data subject's key (ADR 0009). Required wherever
    /// tokens are, and by the tools that read personal fields (rebuild, events, privacy).
    pub master_key: Option<String>,
}

/// Pooled connections left to background work when `FLEET_MAX_IN_FLIGHT` is not set.
pub const RESERVED_CONNECTIONS: usize = 4;

/// HS256 keys shorter than this can be brute-forced from one token (issue 17).
pub const MIN_SECRET_BYTES: usize = 32;

/// A secret of at least [`MIN_SECRET_BYTES`], else an error naming its variable (every key
/// the server is handed goes through this, e.g. a data-protection master key).
pub fn secret(name: &'static str, value: String) -> Result<String, ConfigError> {
    if value.len() < MIN_SECRET_BYTES {
        return Err(ConfigError {
            variable: name,
            problem: format!(
                "must be at least {MIN_SECRET_BYTES} bytes (it is {}); generate one with `openssl rand -base64 48`",
                value.len()
            ),
        });
    }
    Ok(value)
}

fn origins(name: &'static str) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = var(name) else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let ok = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin
                    .trim_end_matches('/')
                    .contains(|c: char| c.is_whitespace())
                && origin != "*";
            if ok {
                Ok(origin.trim_end_matches('/').to_owned())
            } else {
                Err(ConfigError {
                    variable: name,
                    problem: format!(
                        "{origin:?} is not an origin like https://dashboard.example.com"
                    ),
                })
            }
        })
        .collect()
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("http_addr", &self.http_addr)
            .field("nats_url", &self.nats_url)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("admin_email", &self.admin_email)
            .field("cors_origins", &self.cors_origins)
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "[redacted]"),
            )
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
        let db_pool_size = parsed("FLEET_DB_POOL_SIZE", 32u32)?.max(1);
        Ok(Self {
            database_url: required("DATABASE_URL")?,
            nats_url: var("NATS_URL").unwrap_or_else(|| "nats://127.0.0.1:4222".into()),
            jwt_secret: match tokens {
                Tokens::Signed => secret("FLEET_JWT_SECRET", required("FLEET_JWT_SECRET")?)?,
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
            password_hash_concurrency: parsed(
                "FLEET_PASSWORD_HASH_CONCURRENCY",
                crate::auth::password::default_concurrency(),
            )?,
            sms_per_phone: parsed("FLEET_SMS_PER_PHONE", 5u32)?,
            sms_per_account: parsed("FLEET_SMS_PER_ACCOUNT", 10u32)?,
            sms_per_ip: parsed("FLEET_SMS_PER_IP", 20u32)?,
            sms_window: Duration::from_secs(parsed("FLEET_SMS_WINDOW_SECS", 3600u64)?),
            header_timeout: Duration::from_secs(parsed("FLEET_HEADER_TIMEOUT_SECS", 10u64)?),
            body_timeout: Duration::from_secs(parsed("FLEET_BODY_TIMEOUT_SECS", 30u64)?),
            handler_timeout: Duration::from_secs(parsed("FLEET_HANDLER_TIMEOUT_SECS", 30u64)?),
            // Shed before every pooled connection is taken (a few stay for the projection
            // workers, the relay and health), so overload answers 503 at once instead of
            // queueing on the pool.
            max_in_flight: parsed(
                "FLEET_MAX_IN_FLIGHT",
                (db_pool_size as usize)
                    .saturating_sub(RESERVED_CONNECTIONS)
                    .max(1),
            )?
            .max(1),
            queue_wait: Duration::from_millis(parsed("FLEET_QUEUE_WAIT_MS", 500u64)?),
            db_pool_size,
            cors_origins: origins("FLEET_CORS_ORIGINS")?,
            master_key: match tokens {
                Tokens::Signed => Some(secret("FLEET_MASTER_KEY", required("FLEET_MASTER_KEY")?)?),
                Tokens::Unused => var("FLEET_MASTER_KEY")
                    .map(|key| secret("FLEET_MASTER_KEY", key))
                    .transpose()?,
            },
        })
    }

    /// The master key, for a tool that reads or writes personal fields.
    pub fn require_master_key(&self) -> Result<&str, ConfigError> {
        self.master_key.as_deref().ok_or(ConfigError {
            variable: "FLEET_MASTER_KEY",
            problem: "is required to read or write personal data (see ADR 0009)".into(),
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
            password_hash_concurrency: crate::auth::password::default_concurrency(),
            sms_per_phone: 5,
            sms_per_account: 10,
            sms_per_ip: 20,
            sms_window: Duration::from_secs(3600),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            handler_timeout: Duration::from_secs(30),
            max_in_flight: 28,
            queue_wait: Duration::from_millis(500),
            db_pool_size: 32,
            cors_origins: Vec::new(),
            master_key: Some("test-master-key-long-enough-for-xchacha20".into()),
        }
    }
}
