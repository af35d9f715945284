//! Limits on verification SMS (issue 17): each one costs money and can be aimed at a stranger's
//! phone, so at most N per window per phone number, per account (when the request carries a
//! token) and per client IP. Sliding windows, exact: a refused request spends nothing, so an
//! attacker hammering one key does not lock out the others.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmsLimit {
    Phone,
    Account,
    Ip,
}

impl SmsLimit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::Account => "account",
            Self::Ip => "ip",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub limit: SmsLimit,
    pub retry_after_secs: u64,
}

pub struct SmsLimits {
    per_phone: usize,
    per_account: usize,
    per_ip: usize,
    window: Duration,
    sent: Mutex<HashMap<(SmsLimit, String), VecDeque<Instant>>>,
}

impl SmsLimits {
    pub fn new(per_phone: u32, per_account: u32, per_ip: u32, window: Duration) -> Self {
        Self {
            per_phone: per_phone as usize,
            per_account: per_account as usize,
            per_ip: per_ip as usize,
            window,
            sent: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one send for every key, or refuses (spending nothing) naming the limit with the
    /// longest wait.
    pub fn try_send(&self, phone: &str, account: Option<i64>, ip: &str) -> Result<(), Refused> {
        let now = Instant::now();
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        if sent.len() > 10_000 {
            // Forget keys whose window has passed, so the map stays as small as the traffic.
            sent.retain(|_, times| times.back().is_some_and(|t| now - *t < self.window));
        }
        let mut keys = vec![
            ((SmsLimit::Phone, phone.to_owned()), self.per_phone),
            ((SmsLimit::Ip, ip.to_owned()), self.per_ip),
        ];
        if let Some(account) = account {
            keys.push(((SmsLimit::Account, account.to_string()), self.per_account));
        }
        let mut refused: Option<Refused> = None;
        for (key, max) in &keys {
            let times = sent.entry(key.clone()).or_default();
            while times.front().is_some_and(|t| now - *t >= self.window) {
                times.pop_front();
            }
            if times.len() >= *max {
                let oldest = times.front().copied().unwrap_or(now);
                let wait = (oldest + self.window).saturating_duration_since(now);
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                if refused.is_none_or(|r| r.retry_after_secs < secs) {
                    refused = Some(Refused {
                        limit: key.0,
                        retry_after_secs: secs.max(1),
                    });
                }
            }
        }
        if let Some(refused) = refused {
            return Err(refused);
        }
        for (key, _) in keys {
            sent.entry(key).or_default().push_back(now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_has_its_own_budget_and_refusals_spend_nothing() {
        let limits = SmsLimits::new(2, 3, 4, Duration::from_secs(60));
        assert!(limits
            .try_send("+821000000001", Some(1), "10.0.0.1")
            .is_ok());
        assert!(limits
            .try_send("+821000000001", Some(1), "10.0.0.1")
            .is_ok());
        let refused = limits
            .try_send("+821000000001", Some(1), "10.0.0.1")
            .unwrap_err();
        assert_eq!(refused.limit, SmsLimit::Phone);
        assert!((59..=60).contains(&refused.retry_after_secs));
        // The refusal did not spend the account's or the IP's budget.
        assert!(limits
            .try_send("+821000000002", Some(1), "10.0.0.1")
            .is_ok());
        assert_eq!(
            limits
                .try_send("+821000000003", Some(1), "10.0.0.1")
                .unwrap_err()
                .limit,
            SmsLimit::Account
        );
        assert!(limits.try_send("+821000000003", None, "10.0.0.1").is_ok());
        assert_eq!(
            limits
                .try_send("+821000000004", None, "10.0.0.1")
                .unwrap_err()
                .limit,
            SmsLimit::Ip
        );
        assert!(limits.try_send("+821000000004", None, "10.0.0.2").is_ok());
    }

    #[test]
    fn the_window_slides() {
        let limits = SmsLimits::new(1, 1, 1, Duration::from_millis(30));
        assert!(limits.try_send("+821000000001", None, "ip").is_ok());
        assert!(limits.try_send("+821000000001", None, "ip").is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(limits.try_send("+821000000001", None, "ip").is_ok());
    }
}
