//! Audit trail (issue 15, in the style of 21 CFR Part 11 §11.10(e)): every event of one stream
//! with who did it, when, under which request, and the fields it changed from what to what.
//! [`trail`] is the pure part; this module reads a stream in chunks, opens its personal fields
//! (erased ones read as `[erased]`) and decides who may read which stream.

pub mod http;
mod trail;

pub use trail::{entries, Change, Entry, Trail, REDACTED};

use crate::auth::Caller;
use chrono::{DateTime, Utc};
use fleetstream_events::privacy::{self, KeyCache, Keyring, PrivacyError};
use fleetstream_events::{Role, StoredEvent};
use sqlx::PgConnection;
use std::ops::ControlFlow;

/// Events read (and opened) at a time: a long stream is walked, never held whole.
const CHUNK: i64 = 500;

/// Which entries of a trail a read wants.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Window {
    /// Only entries of stream versions after this one (0: from the first).
    pub after: i64,
    /// Only entries recorded at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only entries recorded at or before this time.
    pub to: Option<DateTime<Utc>>,
}

impl Window {
    pub fn admits(&self, entry: &Entry) -> bool {
        entry.version > self.after
            && self.from.is_none_or(|from| entry.recorded_at >= from)
            && self.to.is_none_or(|to| entry.recorded_at <= to)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("not enough permissions to read this stream")]
    Forbidden,
    #[error("the stream has no events")]
    NotFound,
    #[error(transparent)]
    Privacy(#[from] PrivacyError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// One page of a trail; `next_after` is the `after` of the next page, `None` on the last.
#[derive(Debug)]
pub struct Page {
    pub entries: Vec<Entry>,
    pub next_after: Option<i64>,
}

/// Up to `limit` entries of `stream_id`'s trail in `window`, if `caller` may read the stream.
/// Whether a stream exists is only told to those who may read it.
pub async fn read_page(
    conn: &mut PgConnection,
    keyring: Option<&Keyring>,
    caller: &Caller,
    stream_id: &str,
    window: &Window,
    limit: usize,
) -> Result<Page, AuditError> {
    if !may_read(conn, caller, stream_id).await? {
        return Err(AuditError::Forbidden);
    }
    let mut entries = Vec::new();
    let found = scan(conn, keyring, stream_id, window, |entry| {
        entries.push(entry);
        // One more than asked for tells whether another page follows.
        if entries.len() > limit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .await?;
    if !found {
        return Err(AuditError::NotFound);
    }
    let next_after = if entries.len() > limit {
        entries.truncate(limit);
        entries.last().map(|e| e.version)
    } else {
        None
    };
    Ok(Page {
        entries,
        next_after,
    })
}

/// A superadmin reads any stream; anyone else their own account's and those of the patients
/// they created. A patient's parent is the `root_user_id` of its `PatientCreated`, read from
/// the stream itself: a deleted patient's stream stays its parent's.
pub async fn may_read(
    conn: &mut PgConnection,
    caller: &Caller,
    stream_id: &str,
) -> Result<bool, sqlx::Error> {
    if caller.role == Role::Superadmin {
        return Ok(true);
    }
    if stream_id == format!("account-{}", caller.account_id) {
        return Ok(true);
    }
    let is_patient = stream_id
        .strip_prefix("patient-")
        .is_some_and(|id| id.parse::<i64>().is_ok());
    if !is_patient {
        return Ok(false);
    }
    let first = read_chunk(conn, stream_id, 0, 1).await?;
    Ok(first.first().is_some_and(|created| {
        created.event_type == "PatientCreated"
            && created.data.get("root_user_id").and_then(|v| v.as_i64()) == Some(caller.account_id)
    }))
}

/// Walks `stream_id`'s trail oldest first, handing `on_entry` each entry `window` admits until
/// it breaks. `false` when the stream has no events. Personal fields sealed under a key the
/// log still holds need `keyring` ([`PrivacyError::NoKeyring`] without it).
pub async fn scan(
    conn: &mut PgConnection,
    keyring: Option<&Keyring>,
    stream_id: &str,
    window: &Window,
    mut on_entry: impl FnMut(Entry) -> ControlFlow<()>,
) -> Result<bool, AuditError> {
    let mut trail = Trail::new(stream_id);
    let mut keys = KeyCache::default();
    let mut at = 0;
    loop {
        let mut events = read_chunk(conn, stream_id, at, CHUNK).await?;
        let Some(last) = events.last() else {
            return Ok(at > 0);
        };
        at = last.stream_version;
        let more = events.len() as i64 == CHUNK;
        privacy::open_events(conn, keyring, &mut keys, &mut events).await?;
        for event in &events {
            let entry = trail.entry(event);
            if window.admits(&entry) && on_entry(entry).is_break() {
                return Ok(true);
            }
        }
        if !more {
            return Ok(true);
        }
    }
}

/// Up to `limit` events of a stream after version `after`, oldest first.
async fn read_chunk(
    conn: &mut PgConnection,
    stream_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    sqlx::query_as(include_str!("read_stream_chunk.sql"))
        .bind(stream_id)
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await
}
