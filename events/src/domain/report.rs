//! Stored analyses (`report-<result_id>`): a report, a status analysis or a trend analysis,
//! recorded when requested so `/analytics/results` lists them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnalysisType {
    Report,
    Status,
    Trend,
}

impl AnalysisType {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "report" => Self::Report,
            "status" => Self::Status,
            "trend" => Self::Trend,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Report => "report",
            Self::Status => "status",
            Self::Trend => "trend",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ReportEvent {
    AnalysisRecorded {
        result_id: i64,
        analysis_type: AnalysisType,
        device_id: i64,
        device_uid: String,
        params: Value,
        /// The analysis reply as it was sent.
        result: Value,
        created_at: DateTime<Utc>,
    },
}

crate::domain_event!(ReportEvent, "report", [AnalysisRecorded]);
