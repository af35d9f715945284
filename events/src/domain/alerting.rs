//! Alert rules (`alertrule-<rule_id>`) and alerts. An alert stream is keyed by rule and device
//! (`alert-<rule_id>_<device_id>`), so "at most one unacknowledged alert per rule and device"
//! is a decision of one aggregate under one stream version.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
    Neq,
}

impl Condition {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "gt" => Self::Gt,
            "gte" => Self::Gte,
            "lt" => Self::Lt,
            "lte" => Self::Lte,
            "eq" => Self::Eq,
            "neq" => Self::Neq,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gt => "gt",
            Self::Gte => "gte",
            Self::Lt => "lt",
            Self::Lte => "lte",
            Self::Eq => "eq",
            Self::Neq => "neq",
        }
    }

    /// Whether `value` breaks a rule with this condition and `threshold` (exact comparison).
    pub fn holds(self, value: Decimal, threshold: Decimal) -> bool {
        match self {
            Self::Gt => value > threshold,
            Self::Gte => value >= threshold,
            Self::Lt => value < threshold,
            Self::Lte => value <= threshold,
            Self::Eq => value == threshold,
            Self::Neq => value != threshold,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Gte => ">=",
            Self::Lt => "<",
            Self::Lte => "<=",
            Self::Eq => "==",
            Self::Neq => "!=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "info" => Self::Info,
            "warning" => Self::Warning,
            "critical" => Self::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRuleSpec {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub metric: String,
    pub condition: Condition,
    pub threshold: Decimal,
    pub severity: Severity,
    #[serde(default)]
    pub device_group_id: Option<i64>,
    pub is_active: bool,
}

/// A partial update; `None` leaves a field as it is. `description` and `device_group_id` can
/// be cleared: `Some(None)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertRuleChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(
        default,
        deserialize_with = "sent_or_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub description: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(
        default,
        deserialize_with = "sent_or_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub device_group_id: Option<Option<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
}

/// A field that is present decodes to `Some`, also when it is `null` (= cleared); a missing one
/// stays `None` through `default`.
fn sent_or_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl AlertRuleChanges {
    pub fn apply_to(&self, spec: &mut AlertRuleSpec) {
        if let Some(v) = &self.name {
            spec.name = v.clone();
        }
        if let Some(v) = &self.description {
            spec.description = v.clone();
        }
        if let Some(v) = &self.metric {
            spec.metric = v.clone();
        }
        if let Some(v) = self.condition {
            spec.condition = v;
        }
        if let Some(v) = self.threshold {
            spec.threshold = v;
        }
        if let Some(v) = self.severity {
            spec.severity = v;
        }
        if let Some(v) = self.device_group_id {
            spec.device_group_id = v;
        }
        if let Some(v) = self.is_active {
            spec.is_active = v;
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum AlertRuleEvent {
    AlertRuleCreated {
        rule_id: i64,
        spec: AlertRuleSpec,
        created_at: DateTime<Utc>,
    },
    AlertRuleUpdated {
        rule_id: i64,
        changes: AlertRuleChanges,
        updated_at: DateTime<Utc>,
    },
    AlertRuleDeleted {
        rule_id: i64,
        deleted_at: DateTime<Utc>,
    },
}

crate::domain_event!(
    AlertRuleEvent,
    "alertrule",
    [AlertRuleCreated, AlertRuleUpdated, AlertRuleDeleted]
);

/// What the realtime layer pushes to the device owner's room and to managers and above.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub title: String,
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum AlertEvent {
    AlertRaised {
        alert_id: i64,
        rule_id: i64,
        device_id: i64,
        severity: Severity,
        metric: String,
        value: Decimal,
        message: String,
        /// The `TelemetryRecorded` event whose sample broke the rule.
        triggered_by: Uuid,
        /// Recipients of `notification` besides managers and above.
        #[serde(default)]
        owner_id: Option<i64>,
        notification: Notification,
        raised_at: DateTime<Utc>,
    },
    AlertAcknowledged {
        alert_id: i64,
        acknowledged_by: i64,
        acknowledged_at: DateTime<Utc>,
    },
}

crate::domain_event!(AlertEvent, "alert", [AlertRaised, AlertAcknowledged]);

/// The alert stream of one rule and device.
pub fn alert_stream_key(rule_id: i64, device_id: i64) -> String {
    format!("{rule_id}_{device_id}")
}
