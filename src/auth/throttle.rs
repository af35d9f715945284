//! Failed-login throttling per account and per client IP (CONTRACT §7), counted by `governor`.
//! Only wrong passwords count; once a key has used up its failures, every attempt on it —
//! the right password included — is refused with 429 until a failure cell replenishes.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

type FailureLimiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

pub struct LoginThrottle {
    per_account: FailureLimiter,
    per_ip: FailureLimiter,
    /// Keys whose failure budget is spent, and until when. governor cannot be asked "would the
    /// next failure be refused" without spending a cell, so the verdict is remembered here.
    blocked: Mutex<HashMap<String, Instant>>,
}

fn limiter(failures_per_minute: u32) -> FailureLimiter {
    let burst = NonZeroU32::new(failures_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    RateLimiter::keyed(Quota::per_minute(burst)).with_middleware::<StateInformationMiddleware>()
}

impl LoginThrottle {
    pub fn new(failures_per_account: u32, failures_per_ip: u32) -> Self {
        Self {
            per_account: limiter(failures_per_account),
            per_ip: limiter(failures_per_ip),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    fn account_key(account: &str) -> String {
        format!("account:{}", account.to_lowercase())
    }

    fn ip_key(ip: &str) -> String {
        format!("ip:{ip}")
    }

    /// Seconds to wait when either key is throttled.
    pub fn retry_after(&self, account: Option<&str>, ip: &str) -> Option<u64> {
        let now = Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        blocked.retain(|_, until| *until > now);
        [account.map(Self::account_key), Some(Self::ip_key(ip))]
            .into_iter()
            .flatten()
            .filter_map(|key| blocked.get(&key).map(|until| *until - now))
            .max()
            .map(|wait| wait.as_secs().max(1))
    }

    /// Counts one wrong password against the account (when known) and the IP.
    pub fn record_failure(&self, account: Option<&str>, ip: &str) {
        if let Some(account) = account {
            self.spend(&self.per_account, Self::account_key(account));
        }
        self.spend(&self.per_ip, Self::ip_key(ip));
    }

    fn spend(&self, limiter: &FailureLimiter, key: String) {
        let wait = match limiter.check_key(&key) {
            Ok(snapshot) if snapshot.remaining_burst_capacity() == 0 => {
                Some(snapshot.quota().replenish_interval())
            }
            Ok(_) => None,
            Err(not_until) => Some(not_until.wait_time_from(limiter.clock().now())),
        };
        if let Some(wait) = wait {
            let until = Instant::now() + wait.max(Duration::from_secs(1));
            self.blocked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, until);
        }
    }
}

/// The client's IP: the first `X-Forwarded-For` hop, else the socket peer, else "unknown".
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        let peer = || {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip().to_string())
        };
        Ok(ClientIp(
            forwarded
                .or_else(peer)
                .unwrap_or_else(|| "unknown".to_owned()),
        ))
    }
}
