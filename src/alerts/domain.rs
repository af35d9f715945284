//! Pure decisions of alert rules (aggregate `alertrule`) and alerts (aggregate `alert`, one
//! stream per rule and device, so at most one unacknowledged alert per pair is the aggregate's
//! own invariant), and the rule check the process manager runs on every sample.

use crate::es::Aggregate;
use crate::measurements::domain::check_decimal;
use chrono::{DateTime, Utc};
use fleetstream_events::{
    AlertEvent, AlertRuleChanges, AlertRuleEvent, AlertRuleSpec, Condition, Notification, Severity,
};
use rust_decimal::Decimal;
use uuid::Uuid;

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 500;
pub const MAX_METRIC_CHARS: usize = crate::measurements::domain::MAX_METRIC_CHARS;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertError {
    RuleNotFound,
    AlertNotFound,
    /// (field, message, pydantic error type)
    Invalid(&'static str, String, &'static str),
}

fn invalid(field: &'static str, msg: impl Into<String>, kind: &'static str) -> AlertError {
    AlertError::Invalid(field, msg.into(), kind)
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertRule {
    pub id: Option<i64>,
    pub spec: Option<AlertRuleSpec>,
    pub deleted: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl AlertRule {
    fn live(&self) -> Result<(i64, &AlertRuleSpec), AlertError> {
        match (self.id, &self.spec, self.deleted) {
            (Some(id), Some(spec), false) => Ok((id, spec)),
            _ => Err(AlertError::RuleNotFound),
        }
    }
}

impl Aggregate for AlertRule {
    type Event = AlertRuleEvent;

    fn evolve(&mut self, event: &AlertRuleEvent) {
        match event {
            AlertRuleEvent::AlertRuleCreated {
                rule_id,
                spec,
                created_at,
            } => {
                self.id = Some(*rule_id);
                self.spec = Some(spec.clone());
                self.created_at = Some(*created_at);
                self.updated_at = Some(*created_at);
            }
            AlertRuleEvent::AlertRuleUpdated {
                changes,
                updated_at,
                ..
            } => {
                if let Some(spec) = &mut self.spec {
                    changes.apply_to(spec);
                }
                self.updated_at = Some(*updated_at);
            }
            AlertRuleEvent::AlertRuleDeleted { .. } => self.deleted = true,
        }
    }
}

fn text(
    field: &'static str,
    raw: &str,
    max: usize,
    required: bool,
) -> Result<Option<String>, AlertError> {
    let value = raw.trim();
    if value.is_empty() {
        return if required {
            Err(invalid(
                field,
                "String should have at least 1 character",
                "string_too_short",
            ))
        } else {
            Ok(None)
        };
    }
    if value.chars().count() > max {
        return Err(invalid(
            field,
            format!("String should have at most {max} characters"),
            "string_too_long",
        ));
    }
    Ok(Some(value.to_owned()))
}

fn threshold(value: Decimal) -> Result<Decimal, AlertError> {
    check_decimal(value).map_err(|m| invalid("threshold", m, "decimal_type"))
}

/// Trims and bounds a rule's fields.
pub fn validate_spec(mut spec: AlertRuleSpec) -> Result<AlertRuleSpec, AlertError> {
    spec.name = text("name", &spec.name, MAX_NAME_CHARS, true)?.unwrap_or_default();
    spec.metric = text("metric", &spec.metric, MAX_METRIC_CHARS, true)?.unwrap_or_default();
    spec.description = match spec.description.as_deref() {
        Some(d) => text("description", d, MAX_DESCRIPTION_CHARS, false)?,
        None => None,
    };
    spec.threshold = threshold(spec.threshold)?;
    Ok(spec)
}

pub fn decide_create_rule(
    state: &AlertRule,
    rule_id: i64,
    spec: AlertRuleSpec,
    now: DateTime<Utc>,
) -> Result<Vec<AlertRuleEvent>, AlertError> {
    if state.id.is_some() {
        return Ok(vec![]);
    }
    Ok(vec![AlertRuleEvent::AlertRuleCreated {
        rule_id,
        spec: validate_spec(spec)?,
        created_at: now,
    }])
}

pub fn decide_update_rule(
    state: &AlertRule,
    mut changes: AlertRuleChanges,
    now: DateTime<Utc>,
) -> Result<Vec<AlertRuleEvent>, AlertError> {
    let (rule_id, _) = state.live()?;
    if let Some(name) = &changes.name {
        changes.name = text("name", name, MAX_NAME_CHARS, true)?;
    }
    if let Some(metric) = &changes.metric {
        changes.metric = text("metric", metric, MAX_METRIC_CHARS, true)?;
    }
    if let Some(Some(d)) = &changes.description {
        changes.description = Some(text("description", d, MAX_DESCRIPTION_CHARS, false)?);
    }
    if let Some(t) = changes.threshold {
        changes.threshold = Some(threshold(t)?);
    }
    if changes == AlertRuleChanges::default() {
        return Ok(vec![]);
    }
    Ok(vec![AlertRuleEvent::AlertRuleUpdated {
        rule_id,
        changes,
        updated_at: now,
    }])
}

pub fn decide_delete_rule(
    state: &AlertRule,
    now: DateTime<Utc>,
) -> Result<Vec<AlertRuleEvent>, AlertError> {
    let (rule_id, _) = state.live()?;
    Ok(vec![AlertRuleEvent::AlertRuleDeleted {
        rule_id,
        deleted_at: now,
    }])
}

/// One alert as the alert stream knows it (also the acknowledge reply).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertState {
    pub id: i64,
    pub rule_id: i64,
    pub device_id: i64,
    pub severity: Severity,
    pub message: String,
    pub acknowledged_by: Option<i64>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// The alerts of one rule and device, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertStream {
    pub alerts: Vec<AlertState>,
}

impl AlertStream {
    pub fn open(&self) -> Option<&AlertState> {
        self.alerts.iter().find(|a| a.acknowledged_by.is_none())
    }

    pub fn get(&self, alert_id: i64) -> Option<&AlertState> {
        self.alerts.iter().find(|a| a.id == alert_id)
    }
}

impl Aggregate for AlertStream {
    type Event = AlertEvent;

    fn evolve(&mut self, event: &AlertEvent) {
        match event {
            AlertEvent::AlertRaised {
                alert_id,
                rule_id,
                device_id,
                severity,
                message,
                raised_at,
                ..
            } => self.alerts.push(AlertState {
                id: *alert_id,
                rule_id: *rule_id,
                device_id: *device_id,
                severity: *severity,
                message: message.clone(),
                acknowledged_by: None,
                acknowledged_at: None,
                created_at: *raised_at,
            }),
            AlertEvent::AlertAcknowledged {
                alert_id,
                acknowledged_by,
                acknowledged_at,
            } => {
                if let Some(a) = self.alerts.iter_mut().find(|a| a.id == *alert_id) {
                    a.acknowledged_by = Some(*acknowledged_by);
                    a.acknowledged_at = Some(*acknowledged_at);
                }
            }
        }
    }
}

/// An active rule as the process manager evaluates it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ActiveRule {
    pub id: i64,
    pub name: String,
    pub metric: String,
    pub condition: String,
    pub threshold: Decimal,
    pub severity: String,
    pub device_group_id: Option<i64>,
}

impl ActiveRule {
    /// Whether a sample of `metric` = `value` from a device in `group` breaks the rule.
    pub fn breached_by(&self, metric: &str, value: Decimal, group: Option<i64>) -> bool {
        let in_scope = self.device_group_id.is_none() || self.device_group_id == group;
        in_scope
            && self.metric == metric
            && Condition::parse(&self.condition).is_some_and(|c| c.holds(value, self.threshold))
    }
}

/// RaiseAlert, as the process manager issues it for one breaching sample.
#[derive(Debug, Clone)]
pub struct RaiseAlert {
    pub alert_id: i64,
    pub rule: ActiveRule,
    pub device_id: i64,
    pub owner_id: Option<i64>,
    pub value: Decimal,
    pub triggered_by: Uuid,
    pub now: DateTime<Utc>,
}

/// Raises an alert unless one is open for this rule and device (then nothing happens: the
/// open alert already says it).
pub fn decide_raise(state: &AlertStream, cmd: RaiseAlert) -> Result<Vec<AlertEvent>, AlertError> {
    if state.open().is_some() {
        return Ok(vec![]);
    }
    let rule = &cmd.rule;
    let condition = Condition::parse(&rule.condition).unwrap_or(Condition::Gt);
    let severity = Severity::parse(&rule.severity).unwrap_or(Severity::Warning);
    let message = format!(
        "{} {} {} {} ({})",
        rule.metric,
        cmd.value.normalize(),
        condition.symbol(),
        rule.threshold.normalize(),
        rule.name
    );
    Ok(vec![AlertEvent::AlertRaised {
        alert_id: cmd.alert_id,
        rule_id: rule.id,
        device_id: cmd.device_id,
        severity,
        metric: rule.metric.clone(),
        value: cmd.value,
        notification: Notification {
            title: format!("Alert: {}", rule.name),
            message: message.clone(),
            kind: severity.as_str().to_owned(),
        },
        message,
        triggered_by: cmd.triggered_by,
        owner_id: cmd.owner_id,
        raised_at: cmd.now,
    }])
}

/// AcknowledgeAlert: records who and when; acknowledging twice changes nothing.
pub fn decide_acknowledge(
    state: &AlertStream,
    alert_id: i64,
    by: i64,
    now: DateTime<Utc>,
) -> Result<Vec<AlertEvent>, AlertError> {
    let alert = state.get(alert_id).ok_or(AlertError::AlertNotFound)?;
    if alert.acknowledged_by.is_some() {
        return Ok(vec![]);
    }
    Ok(vec![AlertEvent::AlertAcknowledged {
        alert_id,
        acknowledged_by: by,
        acknowledged_at: now,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use insta::assert_json_snapshot;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 15, 10, 30, 0).unwrap()
    }

    fn spec() -> AlertRuleSpec {
        AlertRuleSpec {
            name: " 고온 경고 ".into(),
            description: Some("온도가 40도를 초과하면 알림".into()),
            metric: "temperature".into(),
            condition: Condition::Gt,
            threshold: Decimal::new(400, 1),
            severity: Severity::Warning,
            device_group_id: Some(1),
            is_active: true,
        }
    }

    fn created() -> AlertRule {
        AlertRule::fold(&decide_create_rule(&AlertRule::default(), 3, spec(), now()).unwrap())
    }

    fn rule() -> ActiveRule {
        ActiveRule {
            id: 3,
            name: "고온 경고".into(),
            metric: "temperature".into(),
            condition: "gt".into(),
            threshold: Decimal::new(400, 1),
            severity: "warning".into(),
            device_group_id: Some(1),
        }
    }

    fn raise(alert_id: i64) -> RaiseAlert {
        RaiseAlert {
            alert_id,
            rule: rule(),
            device_id: 5,
            owner_id: Some(2),
            value: Decimal::new(4525, 2),
            triggered_by: Uuid::nil(),
            now: now(),
        }
    }

    #[test]
    fn given_nothing_when_creating_a_rule_then_created_trimmed() {
        assert_json_snapshot!(decide_create_rule(&AlertRule::default(), 3, spec(), now()).unwrap());
    }

    #[test]
    fn given_nothing_when_creating_an_invalid_rule_then_refused() {
        let blank = AlertRuleSpec {
            name: "  ".into(),
            ..spec()
        };
        assert_eq!(
            decide_create_rule(&AlertRule::default(), 3, blank, now()),
            Err(invalid(
                "name",
                "String should have at least 1 character",
                "string_too_short"
            ))
        );
        let long_metric = AlertRuleSpec {
            metric: "m".repeat(51),
            ..spec()
        };
        assert_eq!(
            decide_create_rule(&AlertRule::default(), 3, long_metric, now()),
            Err(invalid(
                "metric",
                "String should have at most 50 characters",
                "string_too_long"
            ))
        );
        let huge = AlertRuleSpec {
            threshold: Decimal::new(1, 0) * Decimal::from(100_000_000_000_i64),
            ..spec()
        };
        assert_eq!(
            decide_create_rule(&AlertRule::default(), 3, huge, now()),
            Err(invalid(
                "threshold",
                "Ensure that there are no more than 10 digits before the decimal point.",
                "decimal_type"
            ))
        );
    }

    #[test]
    fn given_a_rule_when_updating_then_changes_recorded_and_empty_changes_emit_nothing() {
        let changes = AlertRuleChanges {
            threshold: Some(Decimal::new(355, 1)),
            device_group_id: Some(None),
            is_active: Some(false),
            ..Default::default()
        };
        let events = decide_update_rule(&created(), changes, now()).unwrap();
        assert_json_snapshot!(events);
        // A cleared group survives the log: `null` is "cleared", not "unchanged".
        let stored = serde_json::to_value(&events).unwrap();
        let replayed: Vec<AlertRuleEvent> = serde_json::from_value(stored).unwrap();
        assert_eq!(replayed, events);
        let mut after = created();
        after.evolve(&events[0]);
        let spec = after.spec.unwrap();
        assert_eq!(spec.threshold, Decimal::new(355, 1));
        assert_eq!(spec.device_group_id, None);
        assert!(!spec.is_active);
        assert_eq!(
            decide_update_rule(&created(), AlertRuleChanges::default(), now()),
            Ok(vec![])
        );
    }

    #[test]
    fn given_missing_or_deleted_rule_when_updating_or_deleting_then_not_found() {
        assert_eq!(
            decide_update_rule(&AlertRule::default(), AlertRuleChanges::default(), now()),
            Err(AlertError::RuleNotFound)
        );
        let mut deleted = created();
        let events = decide_delete_rule(&created(), now()).unwrap();
        assert_json_snapshot!(events);
        deleted.evolve(&events[0]);
        assert_eq!(
            decide_delete_rule(&deleted, now()),
            Err(AlertError::RuleNotFound)
        );
        let blank = AlertRuleChanges {
            name: Some(" ".into()),
            ..Default::default()
        };
        assert_eq!(
            decide_update_rule(&created(), blank, now()),
            Err(invalid(
                "name",
                "String should have at least 1 character",
                "string_too_short"
            ))
        );
    }

    #[test]
    fn given_no_open_alert_when_raising_then_raised_with_a_notification() {
        assert_json_snapshot!(decide_raise(&AlertStream::default(), raise(11)).unwrap());
    }

    #[test]
    fn given_an_open_alert_when_raising_again_then_nothing_until_acknowledged() {
        let open = AlertStream::fold(&decide_raise(&AlertStream::default(), raise(11)).unwrap());
        assert_eq!(decide_raise(&open, raise(12)), Ok(vec![]));
        let ack = decide_acknowledge(&open, 11, 9, now()).unwrap();
        assert_json_snapshot!(ack);
        let mut closed = open.clone();
        closed.evolve(&ack[0]);
        assert_eq!(decide_raise(&closed, raise(12)).unwrap().len(), 1);
        // Acknowledging twice changes nothing; an unknown id is not found.
        assert_eq!(decide_acknowledge(&closed, 11, 9, now()), Ok(vec![]));
        assert_eq!(
            decide_acknowledge(&closed, 99, 9, now()),
            Err(AlertError::AlertNotFound)
        );
    }

    #[test]
    fn rules_check_every_condition_the_metric_and_the_group() {
        let with = |condition: &str| ActiveRule {
            condition: condition.into(),
            ..rule()
        };
        let t = Decimal::new(400, 1);
        let above = t + Decimal::new(1, 10);
        let cases = [
            ("gt", above, true),
            ("gt", t, false),
            ("gte", t, true),
            ("lt", t, false),
            ("lte", t, true),
            ("eq", t, true),
            ("eq", above, false),
            ("neq", above, true),
            ("neq", t, false),
        ];
        for (condition, value, breached) in cases {
            assert_eq!(
                with(condition).breached_by("temperature", value, Some(1)),
                breached,
                "{condition} {value}"
            );
        }
        assert!(!rule().breached_by("humidity", above, Some(1)));
        assert!(!rule().breached_by("temperature", above, Some(2)));
        assert!(!rule().breached_by("temperature", above, None));
        let any_group = ActiveRule {
            device_group_id: None,
            ..rule()
        };
        assert!(any_group.breached_by("temperature", above, None));
    }
}
