//! Telemetry (aggregate `telemetry`, one stream per device): RecordTelemetry and
//! ReportDeviceStatus through the group-committing [`ingest::TelemetryWriter`], and the seed 004
//! views (`measurements`, `aggregated-data`).

pub mod domain;
pub mod http;
pub mod ingest;

use domain::{Actor, DeviceFacts, SampleInput, TelemetryError, ValidSample};
use fleetstream_events::{Connectivity, EventMetadata};
use ingest::{IngestError, IngestItem, IngestKind, Ingested, TelemetryWriter};

/// Why a recording was refused.
#[derive(Debug)]
pub enum RecordError {
    Domain(TelemetryError),
    Failed(String),
}

impl From<IngestError> for RecordError {
    fn from(err: IngestError) -> Self {
        match err {
            IngestError::Invalid(e) => Self::Domain(e),
            IngestError::Failed(m) => Self::Failed(m),
        }
    }
}

/// RecordTelemetry for one device the caller can see: authorize, validate every sample, then
/// append through the group commit.
pub async fn record(
    writer: &TelemetryWriter,
    metadata: EventMetadata,
    device: Option<DeviceFacts>,
    actor: Actor,
    samples: Vec<SampleInput>,
) -> Result<Ingested, RecordError> {
    let device_id = domain::authorize_record(device, actor).map_err(RecordError::Domain)?;
    let now = chrono::Utc::now();
    let valid: Vec<ValidSample> = samples
        .into_iter()
        .map(|s| domain::validate_sample(s, now))
        .collect::<Result<_, _>>()
        .map_err(RecordError::Domain)?;
    Ok(writer
        .append_one(IngestItem {
            device_id,
            metadata,
            kind: IngestKind::Samples(valid),
            source: None,
        })
        .await?)
}

/// ReportDeviceStatus for a known device (devices report for themselves: MQTT ingest and
/// tests call this).
pub async fn report_status(
    writer: &TelemetryWriter,
    metadata: EventMetadata,
    device_id: i64,
    status: &str,
) -> Result<Ingested, RecordError> {
    let status = Connectivity::parse(status.trim()).ok_or_else(|| {
        RecordError::Domain(TelemetryError::Invalid(
            "status",
            "Status must be one of: online, offline".into(),
        ))
    })?;
    Ok(writer
        .append_one(IngestItem {
            device_id,
            metadata,
            kind: IngestKind::Status(status),
            source: None,
        })
        .await?)
}
