//! Read models, one module each. `all()` lists every projection the server runs.
use crate::Projection;
use std::sync::Arc;

pub mod accounts;
pub mod alert_rules;
pub mod alerts;
pub mod analysis_results;
pub mod device_status;
pub mod devices;
pub mod measurements;
pub mod outbound_messages;
pub mod patients;
pub mod recordings;
pub mod sync_logs;
pub mod treatment_logs;

/// Every projection fleetstream maintains, inline and async.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(accounts::Accounts),
        Arc::new(outbound_messages::OutboundMessages),
        Arc::new(devices::Devices),
        Arc::new(patients::Patients),
        Arc::new(treatment_logs::TreatmentLogs),
        Arc::new(recordings::Recordings),
        Arc::new(sync_logs::SyncLogs),
        Arc::new(measurements::Measurements),
        Arc::new(device_status::DeviceStatus),
        Arc::new(alert_rules::AlertRules),
        Arc::new(alerts::Alerts),
        Arc::new(analysis_results::AnalysisResults),
    ]
}
