//! The seed 003 wire shapes, for the OpenAPI document. The handlers read bodies as JSON values
//! and check each part themselves (so each gets the seed's own message); these types describe
//! what they accept and answer.
#![allow(dead_code)]

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// A string, or an integer taken as its decimal string.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum StringOrInteger {
    String(String),
    Integer(i64),
}

#[derive(ToSchema)]
pub struct PushSession {
    session_id: StringOrInteger,
    /// ISO 8601; without an offset it is UTC.
    start_time: String,
    end_time: Option<String>,
    is_active: Option<bool>,
    enabled_sensors: Option<Vec<String>>,
    sample_rate: Option<i64>,
    notes: Option<String>,
}

#[derive(ToSchema)]
pub struct PushBody {
    session: PushSession,
    /// Samples `{sensor_type, timestamp (ms), data}`; an item that is not one is counted in
    /// `errors`, not refused.
    sensor_data: Vec<Value>,
}

#[derive(ToSchema)]
pub struct PushReply {
    message: String,
    session_id: String,
    total_records: i64,
    inserted: i64,
    updated: i64,
    duplicates: i64,
    errors: i64,
    sync_log_id: i64,
    session_data_count: i64,
}

#[derive(ToSchema)]
pub struct PullBody {
    /// Changes after this time (ISO 8601).
    last_sync_time: Option<String>,
    /// The previous reply's `next_cursor`; wins over `last_sync_time`.
    cursor: Option<String>,
    session_ids: Option<Vec<StringOrInteger>>,
    /// From 1.
    page: Option<StringOrInteger>,
    /// 1 to 100 (default 50).
    page_size: Option<StringOrInteger>,
    include_data: Option<bool>,
}

#[derive(ToSchema)]
pub struct PulledSample {
    sensor_type: String,
    timestamp: i64,
    data: Value,
}

#[derive(ToSchema)]
pub struct PulledSession {
    session_id: String,
    start_time: String,
    end_time: Option<String>,
    is_active: bool,
    /// The list as pushed (null when never sent).
    enabled_sensors: Value,
    sample_rate: Option<i64>,
    data_count: i64,
    notes: Option<String>,
    is_uploaded: bool,
    created_at: String,
    updated_at: String,
    sensor_data: Vec<PulledSample>,
}

#[derive(ToSchema)]
pub struct PullReply {
    sessions: Vec<PulledSession>,
    server_timestamp: String,
    page: i64,
    page_size: i64,
    total: i64,
    has_more: bool,
    sync_log_id: i64,
    /// Opaque; send it back as `cursor` to resume after this result.
    next_cursor: String,
}

#[derive(ToSchema)]
pub struct RecentSync {
    id: i64,
    #[schema(pattern = "^(push|pull)$")]
    sync_type: String,
    #[schema(pattern = "^(success|failed)$")]
    status: String,
    total_records: i64,
    inserted: i64,
    updated: i64,
    duplicates: i64,
    created_at: String,
}

#[derive(ToSchema)]
pub struct StatusReply {
    total_sessions: i64,
    active_sessions: i64,
    uploaded_sessions: i64,
    recent_syncs: Vec<RecentSync>,
}
