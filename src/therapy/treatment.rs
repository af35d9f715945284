//! Pure state and decisions of a device's treatment stream: the temporary-record lifecycle
//! (CONTRACT §3) and completed logs.

use crate::es::Aggregate;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use fleetstream_events::{MovementSample, TreatmentEvent, TreatmentRecord};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Treatments {
    pub records: i64,
    /// `record_no` of the open temporary record.
    pub open_temp: Option<i64>,
    pub log_file_ids: BTreeSet<i64>,
}

impl Aggregate for Treatments {
    type Event = TreatmentEvent;

    fn evolve(&mut self, event: &TreatmentEvent) {
        match event {
            TreatmentEvent::TempTreatmentStarted { record_no, .. } => {
                self.records = self.records.max(*record_no);
                self.open_temp = Some(*record_no);
            }
            TreatmentEvent::TempTreatmentUpdated { .. } => {}
            TreatmentEvent::TreatmentCompleted {
                record_no,
                completes_temp,
                record,
                ..
            } => {
                self.records = self.records.max(*record_no);
                if *completes_temp {
                    self.open_temp = None;
                }
                if let Some(id) = record.log_file_id {
                    self.log_file_ids.insert(id);
                }
            }
            TreatmentEvent::MovementRecorded { .. } => {}
        }
    }
}

/// The temporary record is created 30 s after the treatment started.
pub const TEMP_RECORD_DELAY_SECS: i64 = 30;

/// Decides one upload (v1 array or v2 `log_arrays`) for one device, record by record:
/// `finish_flag: None` starts or updates the open temporary record; a finished record
/// completes the open temporary record if there is one, else it is a new log. A finished
/// record whose `log_file_id` the device already has is skipped.
pub fn decide_upload(
    state: &Treatments,
    device_id: i64,
    records: Vec<TreatmentRecord>,
    now: DateTime<Utc>,
) -> Vec<TreatmentEvent> {
    let mut state = state.clone();
    let mut events = Vec::new();
    for mut record in records {
        let event = match (record.finish_flag, state.open_temp) {
            (None, None) => {
                record.treatment_date -= Duration::seconds(TEMP_RECORD_DELAY_SECS);
                TreatmentEvent::TempTreatmentStarted {
                    device_id,
                    record_no: state.records + 1,
                    record,
                    at: now,
                }
            }
            (None, Some(record_no)) => TreatmentEvent::TempTreatmentUpdated {
                device_id,
                record_no,
                last_intensity: record.last_intensity,
                treatment_time: record.treatment_time,
                at: now,
            },
            (Some(_), open) => {
                if record
                    .log_file_id
                    .is_some_and(|id| state.log_file_ids.contains(&id))
                {
                    continue;
                }
                TreatmentEvent::TreatmentCompleted {
                    device_id,
                    record_no: open.unwrap_or(state.records + 1),
                    completes_temp: open.is_some(),
                    record,
                    at: now,
                }
            }
        };
        state.evolve(&event);
        events.push(event);
    }
    events
}

pub fn decide_movement(
    device_id: i64,
    real_user_id: i64,
    samples: Vec<MovementSample>,
    now: DateTime<Utc>,
) -> Vec<TreatmentEvent> {
    // Split by encoded size: a long upload becomes several events, each under the log's bound.
    fleetstream_events::chunk_by_encoded_size(samples, fleetstream_events::MAX_DATA_BYTES - 256)
        .into_iter()
        .map(|samples| TreatmentEvent::MovementRecorded {
            device_id,
            real_user_id,
            samples,
            at: now,
        })
        .collect()
}

/// Parses `treatment_date` as sent: ISO 8601 with or without an offset (an offset is
/// converted to UTC wall time), or `YYYY-MM-DD HH:MM:SS`.
pub fn parse_treatment_date(raw: &str) -> Option<NaiveDateTime> {
    let raw = raw.trim();
    if let Ok(with_offset) = DateTime::parse_from_rfc3339(raw) {
        return Some(with_offset.naive_utc());
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use insta::assert_json_snapshot;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 2, 21, 12, 0, 0).unwrap()
    }

    fn rec(
        date: &str,
        flag: Option<i64>,
        log_file_id: Option<i64>,
        intensity: i64,
    ) -> TreatmentRecord {
        TreatmentRecord {
            real_user_id: 5,
            treatment_date: parse_treatment_date(date).unwrap(),
            last_intensity: intensity,
            treatment_time: 100 * intensity,
            movement: 0,
            finish_flag: flag,
            log_file_id,
            log_data: None,
        }
    }

    fn after(events: &[TreatmentEvent]) -> Treatments {
        Treatments::fold(events)
    }

    #[test]
    fn given_no_temp_when_unfinished_record_then_temp_started_30s_earlier() {
        let events = decide_upload(
            &Treatments::default(),
            2,
            vec![rec("2025-02-21T15:48:49", None, None, 2)],
            now(),
        );
        assert_json_snapshot!(events);
    }

    #[test]
    fn given_open_temp_when_unfinished_record_then_temp_updated_keeping_start() {
        let state = after(&decide_upload(
            &Treatments::default(),
            2,
            vec![rec("2025-02-21T15:48:49", None, None, 2)],
            now(),
        ));
        assert_json_snapshot!(decide_upload(
            &state,
            2,
            vec![rec("2025-02-21T15:58:49", None, None, 3)],
            now()
        ));
    }

    #[test]
    fn given_open_temp_when_finished_records_then_first_completes_temp_rest_are_new() {
        let state = after(&decide_upload(
            &Treatments::default(),
            2,
            vec![rec("2025-02-21T15:48:49", None, None, 2)],
            now(),
        ));
        let events = decide_upload(
            &state,
            2,
            vec![
                rec("2025-02-14T15:48:49", Some(2), Some(1), 25),
                rec("2025-02-15T15:48:49", Some(2), Some(2), 25),
            ],
            now(),
        );
        assert_json_snapshot!(events);
        assert_eq!(after(&events).open_temp, None);
    }

    #[test]
    fn given_known_log_file_id_when_uploading_again_then_skipped() {
        let state = after(&decide_upload(
            &Treatments::default(),
            2,
            vec![rec("2025-02-14T15:48:49", Some(1), Some(7), 2)],
            now(),
        ));
        let events = decide_upload(
            &state,
            2,
            vec![
                rec("2025-02-14T15:48:49", Some(1), Some(7), 2),
                rec("2025-02-16T15:48:49", Some(1), Some(8), 2),
                rec("2025-02-16T15:48:49", Some(1), Some(8), 2),
            ],
            now(),
        );
        assert_json_snapshot!(events);
    }

    #[test]
    fn given_samples_when_recording_movement_then_recorded_and_empty_is_nothing() {
        let samples = vec![MovementSample {
            val: 10,
            timestamp: 1736411840,
        }];
        assert_json_snapshot!(decide_movement(2, 5, samples, now()));
        assert!(decide_movement(2, 5, vec![], now()).is_empty());
    }

    #[test]
    fn given_a_long_movement_upload_when_recording_then_split_into_bounded_events() {
        let samples: Vec<MovementSample> = (0..40_000)
            .map(|t| MovementSample {
                val: t % 100,
                timestamp: 1_736_411_840 + t,
            })
            .collect();
        let events = decide_movement(2, 5, samples.clone(), now());
        assert!(events.len() > 1);
        let mut carried = Vec::new();
        for event in &events {
            use fleetstream_events::DomainEvent;
            assert!(
                fleetstream_events::encoded_len(&event.to_data())
                    <= fleetstream_events::MAX_DATA_BYTES
            );
            let TreatmentEvent::MovementRecorded { samples, .. } = event else {
                panic!("only movement events");
            };
            carried.extend(samples.iter().copied());
        }
        assert_eq!(carried, samples);
    }

    #[test]
    fn treatment_dates_parse_with_and_without_offset() {
        assert!(parse_treatment_date("2024-12-05T14:06:47").is_some());
        assert!(parse_treatment_date("2024-12-05T14:06:47.123Z").is_some());
        assert!(parse_treatment_date("yesterday").is_none());
    }
}
