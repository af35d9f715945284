//! Pure decisions of the recording aggregate (a KooDTX session and its samples).

use crate::es::Aggregate;
use chrono::{DateTime, Utc};
use fleetstream_events::{
    chunk_by_encoded_size, RecordingEvent, SensorSample, SyncLogEntry, SyncLogEvent,
    MAX_DATA_BYTES, MAX_LOGGED_SENSOR_TYPES,
};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// What the decisions need to know about a session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recording {
    pub owner_id: Option<i64>,
    pub end_time: Option<DateTime<Utc>>,
    pub is_active: bool,
    pub notes: Option<String>,
}

impl Aggregate for Recording {
    type Event = RecordingEvent;

    fn evolve(&mut self, event: &RecordingEvent) {
        match event {
            RecordingEvent::SessionStarted {
                owner_id,
                end_time,
                is_active,
                notes,
                ..
            } => {
                self.owner_id = Some(*owner_id);
                self.end_time = *end_time;
                self.is_active = *is_active;
                self.notes = notes.clone();
            }
            RecordingEvent::SessionUpdated {
                end_time,
                is_active,
                notes,
                ..
            } => {
                self.end_time = *end_time;
                self.is_active = *is_active;
                self.notes = notes.clone();
            }
            RecordingEvent::SamplesPushed { .. } | RecordingEvent::SyncLogged { .. } => {}
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncError {
    /// The session belongs to another account.
    Forbidden,
}

/// The session part of a push, already parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInput {
    pub session_id: String,
    pub start_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    pub is_active: Option<bool>,
    pub enabled_sensors: Option<Vec<String>>,
    pub sample_rate: Option<i64>,
    pub notes: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PushRecording {
    pub account_id: i64,
    pub session: SessionInput,
    /// The well-formed samples, in the order sent.
    pub samples: Vec<SensorSample>,
    /// Items of `sensor_data` that were not samples (counted as `errors`).
    pub rejected: i64,
    pub bytes: i64,
    pub sync_log_id: i64,
    pub now: DateTime<Utc>,
}

/// Stored data of the pushed keys that already exist, keyed `(sensor_type, timestamp)`.
pub type StoredSamples = HashMap<(String, i64), Value>;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PushCounts {
    pub total_records: i64,
    pub inserted: i64,
    pub updated: i64,
    pub duplicates: i64,
    pub errors: i64,
}

#[derive(Debug, Clone)]
pub struct PushDecision {
    pub events: Vec<RecordingEvent>,
    pub counts: PushCounts,
}

/// Owner check, session start or update, sample classification (as if the samples were
/// applied one by one: new key → inserted, same data → duplicate, other data → updated, last
/// write wins), then the sync log. Only new or changed samples go into the events.
pub fn decide_push(
    state: &Recording,
    stored: &StoredSamples,
    cmd: PushRecording,
) -> Result<PushDecision, SyncError> {
    let mut events = Vec::new();
    let s = cmd.session;
    match state.owner_id {
        Some(owner) if owner != cmd.account_id => return Err(SyncError::Forbidden),
        Some(_) => {
            let end_time = s.end_time.or(state.end_time);
            let is_active = s.is_active.unwrap_or(state.is_active);
            let notes = s.notes.clone().or_else(|| state.notes.clone());
            if end_time != state.end_time || is_active != state.is_active || notes != state.notes {
                events.push(RecordingEvent::SessionUpdated {
                    session_id: s.session_id.clone(),
                    owner_id: cmd.account_id,
                    end_time,
                    is_active,
                    notes,
                    updated_at: cmd.now,
                });
            }
        }
        None => events.push(RecordingEvent::SessionStarted {
            session_id: s.session_id.clone(),
            owner_id: cmd.account_id,
            start_time: s.start_time,
            end_time: s.end_time,
            // A session sent without an end is still recording.
            is_active: s.is_active.unwrap_or(s.end_time.is_none()),
            enabled_sensors: s.enabled_sensors.clone().unwrap_or_default(),
            sample_rate: s.sample_rate,
            notes: s.notes.clone(),
            started_at: cmd.now,
        }),
    }

    let mut counts = PushCounts {
        total_records: cmd.samples.len() as i64 + cmd.rejected,
        errors: cmd.rejected,
        ..Default::default()
    };
    let mut sensor_types = BTreeSet::new();
    // Per key: its latest data in this push and, when it must be written, its slot.
    let mut seen: HashMap<(String, i64), Option<usize>> = HashMap::new();
    // Samples to write, each flagged new (the session holds no such key) or not.
    let mut changed: Vec<(SensorSample, bool)> = Vec::new();
    for sample in cmd.samples {
        if !sensor_types.contains(&sample.sensor_type) {
            sensor_types.insert(sample.sensor_type.clone());
        }
        let key = (sample.sensor_type.clone(), sample.timestamp);
        let slot = match seen.get(&key) {
            Some(Some(slot)) => {
                if changed[*slot].0.data == sample.data {
                    counts.duplicates += 1;
                } else {
                    counts.updated += 1;
                    changed[*slot].0.data = sample.data;
                }
                Some(*slot)
            }
            Some(None) | None => {
                // Not yet written by this push: compare with what the server holds.
                match stored.get(&key) {
                    Some(data) if *data == sample.data => {
                        counts.duplicates += 1;
                        None
                    }
                    Some(_) => {
                        counts.updated += 1;
                        changed.push((sample, false));
                        Some(changed.len() - 1)
                    }
                    None => {
                        counts.inserted += 1;
                        changed.push((sample, true));
                        Some(changed.len() - 1)
                    }
                }
            }
        };
        seen.insert(key, slot);
    }
    // Split by encoded size, not by count: a few large samples or many small ones alike make
    // events under the log's bound. The session id travels in every event; leave room for it.
    let budget = MAX_DATA_BYTES.saturating_sub(s.session_id.len() + 256);
    for chunk in chunk_by_encoded_size(changed, budget) {
        let (mut inserted, mut updated) = (Vec::new(), Vec::new());
        for (sample, is_new) in chunk {
            if is_new {
                inserted.push(sample)
            } else {
                updated.push(sample)
            }
        }
        events.push(RecordingEvent::SamplesPushed {
            session_id: s.session_id.clone(),
            inserted,
            updated,
            pushed_at: cmd.now,
        });
    }
    events.push(RecordingEvent::SyncLogged {
        log: SyncLogEntry {
            sync_log_id: cmd.sync_log_id,
            account_id: cmd.account_id,
            session_id: Some(s.session_id),
            sync_type: "push".into(),
            status: "success".into(),
            total_records: counts.total_records,
            inserted: counts.inserted,
            updated: counts.updated,
            duplicates: counts.duplicates,
            errors: counts.errors,
            sensor_types: sensor_types
                .into_iter()
                .take(MAX_LOGGED_SENSOR_TYPES)
                .collect(),
            bytes: cmd.bytes,
            logged_at: cmd.now,
        },
    });
    Ok(PushDecision { events, counts })
}

#[derive(Debug, Clone)]
pub struct LogPull {
    pub account_id: i64,
    pub sync_log_id: i64,
    pub sessions: i64,
    pub samples: i64,
    pub sensor_types: Vec<String>,
    pub bytes: i64,
    pub now: DateTime<Utc>,
}

/// A pull changes nothing but its own log entry.
pub fn decide_log_pull(cmd: LogPull) -> Vec<SyncLogEvent> {
    vec![SyncLogEvent::SyncLogged {
        log: SyncLogEntry {
            sync_log_id: cmd.sync_log_id,
            account_id: cmd.account_id,
            session_id: None,
            sync_type: "pull".into(),
            status: "success".into(),
            total_records: cmd.sessions + cmd.samples,
            inserted: 0,
            updated: 0,
            duplicates: 0,
            errors: 0,
            sensor_types: cmd.sensor_types,
            bytes: cmd.bytes,
            logged_at: cmd.now,
        },
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use fleetstream_events::DomainEvent;
    use serde_json::json;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 11, 13, h, 0, 0).unwrap()
    }

    fn session(end: Option<DateTime<Utc>>, notes: Option<&str>) -> SessionInput {
        SessionInput {
            session_id: "s-1".into(),
            start_time: at(0),
            end_time: end,
            is_active: None,
            enabled_sensors: Some(vec!["accelerometer".into()]),
            sample_rate: Some(100),
            notes: notes.map(str::to_owned),
        }
    }

    fn sample(sensor: &str, ts: i64, x: f64) -> SensorSample {
        SensorSample {
            sensor_type: sensor.into(),
            timestamp: ts,
            data: json!({ "x": x }),
        }
    }

    fn push(account_id: i64, session: SessionInput, samples: Vec<SensorSample>) -> PushRecording {
        PushRecording {
            account_id,
            session,
            samples,
            rejected: 0,
            bytes: 512,
            sync_log_id: 7,
            now: at(2),
        }
    }

    fn started_by(owner: i64) -> Recording {
        let started = decide_push(
            &Recording::default(),
            &StoredSamples::new(),
            push(owner, session(None, None), vec![]),
        )
        .unwrap();
        Recording::fold(&started.events)
    }

    #[test]
    fn a_first_push_starts_the_session_and_inserts_every_new_sample() {
        // given no session, when account 1 pushes two samples
        let decision = decide_push(
            &Recording::default(),
            &StoredSamples::new(),
            push(
                1,
                session(Some(at(1)), Some("morning")),
                vec![
                    sample("accelerometer", 10, 0.1),
                    sample("gyroscope", 10, 0.2),
                ],
            ),
        )
        .unwrap();
        // then
        insta::assert_json_snapshot!((decision.counts, &decision.events));
    }

    #[test]
    fn identical_samples_are_duplicates_and_changed_ones_are_updates_last_write_wins() {
        // given a session of account 1 holding two samples
        let state = started_by(1);
        let stored: StoredSamples = [
            (("accelerometer".to_owned(), 10), json!({"x": 0.1})),
            (("accelerometer".to_owned(), 20), json!({"x": 0.2})),
        ]
        .into_iter()
        .collect();
        // when the same keys come again (one changed), plus a key sent twice in the push
        let decision = decide_push(
            &state,
            &stored,
            push(
                1,
                session(None, None),
                vec![
                    sample("accelerometer", 10, 0.1),
                    sample("accelerometer", 20, 9.9),
                    sample("accelerometer", 30, 0.3),
                    sample("accelerometer", 30, 0.4),
                    sample("accelerometer", 30, 0.4),
                ],
            ),
        )
        .unwrap();
        // then only the changed and new samples are recorded, with their last values
        insta::assert_json_snapshot!((decision.counts, &decision.events));
    }

    #[test]
    fn a_session_of_another_account_is_forbidden() {
        let state = started_by(1);
        let refused = decide_push(
            &state,
            &StoredSamples::new(),
            push(2, session(None, None), vec![sample("gps", 1, 1.0)]),
        );
        assert_eq!(refused.unwrap_err(), SyncError::Forbidden);
    }

    #[test]
    fn ending_a_session_updates_it_once() {
        let state = started_by(1);
        let decision = decide_push(
            &state,
            &StoredSamples::new(),
            push(1, session(Some(at(1)), Some("done")), vec![]),
        )
        .unwrap();
        insta::assert_json_snapshot!(&decision.events);
        // the same push again changes nothing but the log
        let mut state = state;
        decision.events.iter().for_each(|e| state.evolve(e));
        let again = decide_push(
            &state,
            &StoredSamples::new(),
            push(1, session(Some(at(1)), Some("done")), vec![]),
        )
        .unwrap();
        assert_eq!(again.events.len(), 1);
    }

    #[test]
    fn large_pushes_are_split_by_encoded_size_into_bounded_events() {
        // given no session, when a push carries 2,000 samples of ~1 KB each (~2 MB)
        let samples: Vec<SensorSample> = (0..2_000)
            .map(|t| SensorSample {
                sensor_type: "accelerometer".into(),
                timestamp: t,
                data: json!({ "raw": "x".repeat(1_000), "t": t }),
            })
            .collect();
        let decision = decide_push(
            &Recording::default(),
            &StoredSamples::new(),
            push(1, session(None, None), samples.clone()),
        )
        .unwrap();
        // then every event is under the bound, and together they hold every sample in order
        let mut carried = Vec::new();
        for event in &decision.events {
            let envelope = fleetstream_events::encoded_len(&event.to_data())
                + fleetstream_events::ENVELOPE_OVERHEAD_BYTES;
            assert!(
                envelope <= fleetstream_events::MAX_EVENT_BYTES,
                "{envelope} bytes"
            );
            if let RecordingEvent::SamplesPushed { inserted, .. } = event {
                carried.extend(inserted.iter().cloned());
            }
        }
        assert!(
            decision.events.len() > 8,
            "the old 2,000-sample split made one 2 MB event"
        );
        assert_eq!(carried, samples);
        assert_eq!(decision.counts.inserted, 2_000);
    }

    #[test]
    fn a_sync_log_lists_a_bounded_number_of_sensor_types() {
        let samples = (0..1_000)
            .map(|t| sample(&format!("s{t:04}"), t, 1.0))
            .collect();
        let decision = decide_push(
            &Recording::default(),
            &StoredSamples::new(),
            push(1, session(None, None), samples),
        )
        .unwrap();
        let Some(RecordingEvent::SyncLogged { log }) = decision.events.last() else {
            panic!("a push ends with its sync log");
        };
        assert_eq!(log.sensor_types.len(), MAX_LOGGED_SENSOR_TYPES);
        assert_eq!(log.inserted, 1_000);
    }

    #[test]
    fn a_pull_logs_itself() {
        insta::assert_json_snapshot!(decide_log_pull(LogPull {
            account_id: 1,
            sync_log_id: 9,
            sessions: 2,
            samples: 30,
            sensor_types: vec!["gps".into()],
            bytes: 40,
            now: at(3),
        }));
    }
}
