//! Sealing on append, opening on read, destroying keys: the database half of crypto-shredding.

use super::fields::{
    at_path, at_path_mut, blind_indexes, normalized_email, normalized_phone, personal_paths,
    subject_of, Subject,
};
use super::keyring::{DataKey, Keyring};
use super::{is_sealed, ERASED, SEALED_TAG};
use crate::store::StreamAppend;
use crate::{category_of, StoredEvent};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Value};
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("the log holds sealed personal data and no FLEET_MASTER_KEY was given to open it")]
    NoKeyring,
    #[error("data key {0} does not open with this FLEET_MASTER_KEY (a different master key?)")]
    WrongMasterKey(Uuid),
    #[error("a sealed field under key {0} does not open: the log was altered")]
    Tampered(Uuid),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Data keys met within one unit of work or one read (never across them: a key destroyed
/// by another process must not stay usable here).
#[derive(Default)]
pub struct KeyCache {
    live: HashMap<String, (Uuid, DataKey)>,
    by_id: HashMap<Uuid, Option<DataKey>>,
}

impl KeyCache {
    fn remember(&mut self, subject: String, key_id: Uuid, key: Option<DataKey>) {
        if let Some(key) = &key {
            self.live.insert(subject, (key_id, key.clone()));
        }
        self.by_id.insert(key_id, key);
    }

    /// Forgets the subjects' keys (they were just destroyed in this transaction).
    pub fn forget(&mut self, subjects: &[String]) {
        for subject in subjects {
            if let Some((key_id, _)) = self.live.remove(subject) {
                self.by_id.insert(key_id, None);
            }
        }
    }
}

/// One stream's events as a fold reads them, its subject's live key opened into `cache` (one
/// statement for both); personal fields are still sealed (see [`open_values`]).
pub async fn load_rows_keyed(
    conn: &mut PgConnection,
    keyring: Option<&Keyring>,
    cache: &mut KeyCache,
    stream_id: &str,
) -> Result<Vec<crate::store::LoadedRow>, PrivacyError> {
    type KeyedRow = (i64, String, i32, Value, Option<Uuid>, Option<Vec<u8>>);
    let rows: Vec<KeyedRow> = sqlx::query_as(include_str!("../../sql/load_stream_keyed.sql"))
        .bind(stream_id)
        .fetch_all(&mut *conn)
        .await?;
    let mut loaded = Vec::with_capacity(rows.len());
    for (version, event_type, schema_version, data, key_id, wrapped_key) in rows {
        if let (Some(keyring), Some(key_id), Some(wrapped)) = (keyring, key_id, wrapped_key) {
            if !cache.by_id.contains_key(&key_id) {
                let key = keyring
                    .unwrap_key(stream_id, &wrapped)
                    .ok_or(PrivacyError::WrongMasterKey(key_id))?;
                cache.remember(stream_id.to_owned(), key_id, Some(key));
            }
        }
        loaded.push((version, event_type, schema_version, data));
    }
    Ok(loaded)
}

/// The plaintext payloads of the events [`seal`] sealed, by event id: inline projections of
/// the same transaction read them instead of the sealed form.
#[derive(Default)]
pub struct SealedPlaintext(HashMap<Uuid, Value>);

impl SealedPlaintext {
    /// Whether the event with this id had personal fields sealed.
    pub fn contains(&self, event_id: &Uuid) -> bool {
        self.0.contains_key(event_id)
    }

    pub fn restore(mut self, events: &mut [StoredEvent]) {
        if self.0.is_empty() {
            return;
        }
        for event in events {
            if let Some(data) = self.0.remove(&event.event_id) {
                event.data = data;
            }
        }
    }
}

/// The subject key name of a phone number (its SMS): a keyed hash, never the number.
pub fn phone_subject(keyring: &Keyring, phone: &str) -> String {
    format!(
        "phone-{}",
        keyring.blind_index("phone", &normalized_phone(phone))
    )
}

fn subject_name(keyring: &Keyring, category: &str, stream_id: &str, data: &Value) -> String {
    match subject_of(category, stream_id, data) {
        Subject::Stream(stream) => stream.to_owned(),
        Subject::Phone(phone) => phone_subject(keyring, phone),
    }
}

fn has_clear_personal_value(paths: &[&str], data: &Value) -> bool {
    paths
        .iter()
        .any(|path| at_path(data, path).is_some_and(|v| !v.is_null() && !is_sealed(v)))
}

fn aad(key_id: Uuid, path: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + path.len());
    aad.extend_from_slice(key_id.as_bytes());
    aad.extend_from_slice(path.as_bytes());
    aad
}

/// Whether any of the appends carries a personal value in clear (that only [`seal`] may write).
pub fn holds_personal_data(streams: &[StreamAppend]) -> bool {
    streams.iter().any(|stream| {
        let category = category_of(&stream.stream_id);
        stream.events.iter().any(|event| {
            let paths = personal_paths(category, &event.event_type);
            !paths.is_empty() && has_clear_personal_value(paths, &event.data)
        })
    })
}

/// Seals the personal fields of the appends in place (creating subjects' keys in the caller's
/// transaction) and returns their plaintext payloads. A subject whose key was destroyed gets a
/// new one (a phone number's next owner): it opens only what is sealed from now on.
pub async fn seal(
    conn: &mut PgConnection,
    keyring: &Keyring,
    cache: &mut KeyCache,
    streams: &mut [StreamAppend],
) -> Result<SealedPlaintext, PrivacyError> {
    let mut targets: Vec<(usize, usize, String)> = Vec::new();
    for (s, stream) in streams.iter_mut().enumerate() {
        let category = category_of(&stream.stream_id);
        for (e, event) in stream.events.iter_mut().enumerate() {
            let paths = personal_paths(category, &event.event_type);
            if paths.is_empty() || !has_clear_personal_value(paths, &event.data) {
                continue;
            }
            add_blind_indexes(keyring, category, &event.event_type, &mut event.data);
            let subject = subject_name(keyring, category, &stream.stream_id, &event.data);
            targets.push((s, e, subject));
        }
    }
    if targets.is_empty() {
        return Ok(SealedPlaintext::default());
    }
    let mut missing: Vec<String> = targets
        .iter()
        .map(|(_, _, subject)| subject.clone())
        .filter(|subject| !cache.live.contains_key(subject))
        .collect();
    missing.sort();
    missing.dedup();
    ensure_keys(conn, keyring, cache, missing).await?;

    let mut plaintext = HashMap::with_capacity(targets.len());
    for (s, e, subject) in targets {
        let stream = &mut streams[s];
        let category = category_of(&stream.stream_id);
        let event = &mut stream.events[e];
        plaintext.insert(event.event_id, event.data.clone());
        // `ensure_keys` left a live key for every subject, or failed.
        let key = cache.live.get(&subject);
        for path in personal_paths(category, &event.event_type) {
            let Some(value) = at_path_mut(&mut event.data, path) else {
                continue;
            };
            if value.is_null() || is_sealed(value) {
                continue;
            }
            *value = match key {
                Some((key_id, key)) => sealed_value(key, *key_id, path, value),
                None => Value::String(ERASED.to_owned()),
            };
        }
    }
    Ok(SealedPlaintext(plaintext))
}

/// Writes the keyed hash of each indexed field beside it (plaintext and sealed payloads both
/// carry it).
fn add_blind_indexes(keyring: &Keyring, category: &str, event_type: &str, data: &mut Value) {
    for (field, key_field) in blind_indexes(category, event_type) {
        let Some(email) = at_path(data, field).and_then(|v| v.as_str().map(str::to_owned)) else {
            continue;
        };
        let (parent, leaf) = key_field.rsplit_once('.').unwrap_or(("", key_field));
        let target = if parent.is_empty() {
            Some(&mut *data)
        } else {
            at_path_mut(data, parent)
        };
        if let Some(Value::Object(map)) = target {
            map.insert(leaf.to_owned(), Value::String(email_key(keyring, &email)));
        }
    }
}

/// The blind index of an e-mail address (see [`blind_indexes`]).
pub fn email_key(keyring: &Keyring, email: &str) -> String {
    keyring.blind_index("email", &normalized_email(email))
}

fn sealed_value(key: &DataKey, key_id: Uuid, path: &str, value: &Value) -> Value {
    let plaintext = serde_json::to_vec(value).expect("a JSON value serializes");
    let sealed = key.encrypt(&plaintext, &aad(key_id, path));
    json!({ SEALED_TAG: { "k": key_id, "c": BASE64.encode(sealed) } })
}

type KeyRow = (String, Uuid, Option<Vec<u8>>);

/// Loads (or creates) the live key of each subject. A row written by a concurrent transaction
/// after this statement's snapshot is found on the next try.
async fn ensure_keys(
    conn: &mut PgConnection,
    keyring: &Keyring,
    cache: &mut KeyCache,
    mut missing: Vec<String>,
) -> Result<(), PrivacyError> {
    for _ in 0..3 {
        if missing.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(missing.len());
        let mut wrapped = Vec::with_capacity(missing.len());
        let mut fresh = HashMap::with_capacity(missing.len());
        for subject in &missing {
            let (key, wrapped_key) = keyring.new_data_key(subject);
            let key_id = Uuid::now_v7();
            ids.push(key_id);
            wrapped.push(wrapped_key);
            fresh.insert(key_id, key);
        }
        let rows: Vec<KeyRow> = sqlx::query_as(include_str!("../../sql/subject_keys_ensure.sql"))
            .bind(&missing)
            .bind(&ids)
            .bind(&wrapped)
            .fetch_all(&mut *conn)
            .await?;
        for (subject, key_id, wrapped_key) in rows {
            let key = match fresh.remove(&key_id) {
                Some(key) => key,
                None => {
                    let wrapped_key = wrapped_key.unwrap_or_default();
                    keyring
                        .unwrap_key(&subject, &wrapped_key)
                        .ok_or(PrivacyError::WrongMasterKey(key_id))?
                }
            };
            cache.remember(subject, key_id, Some(key));
        }
        missing.retain(|subject| !cache.live.contains_key(subject));
    }
    Err(PrivacyError::Database(sqlx::Error::Protocol(format!(
        "no data key could be created for {missing:?}"
    ))))
}

/// Opens the sealed personal fields of stored events in place; fields whose key was destroyed
/// read as [`ERASED`]. Plaintext fields of events written before sealing are left as they are.
pub async fn open_events(
    conn: &mut PgConnection,
    keyring: Option<&Keyring>,
    cache: &mut KeyCache,
    events: &mut [StoredEvent],
) -> Result<(), PrivacyError> {
    let items = events.iter_mut().filter_map(|e| {
        let paths = personal_paths(category_of(&e.stream_id), &e.event_type);
        (!paths.is_empty()).then_some((paths, &mut e.data))
    });
    open_values(conn, keyring, cache, items).await
}

/// [`open_events`] over bare payloads, each with the personal paths of its event type.
pub async fn open_values<'v>(
    conn: &mut PgConnection,
    keyring: Option<&Keyring>,
    cache: &mut KeyCache,
    items: impl IntoIterator<Item = (&'static [&'static str], &'v mut Value)>,
) -> Result<(), PrivacyError> {
    let mut sealed: Vec<(&'static str, &'v mut Value)> = Vec::new();
    for (paths, data) in items {
        let data: &'v mut Value = data;
        // Split the payload's personal fields into disjoint borrows, one per path.
        let mut fields = split_paths(data, paths);
        sealed.append(&mut fields);
    }
    if sealed.is_empty() {
        return Ok(());
    }
    let unknown: Vec<Uuid> = {
        let mut ids: Vec<Uuid> = sealed
            .iter()
            .filter_map(|(_, v)| sealed_parts(v).map(|(id, _)| id))
            .filter(|id| !cache.by_id.contains_key(id))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    if !unknown.is_empty() {
        let keyring = keyring.ok_or(PrivacyError::NoKeyring)?;
        let rows: Vec<KeyRow> = sqlx::query_as(include_str!("../../sql/subject_keys_fetch.sql"))
            .bind(&unknown)
            .fetch_all(&mut *conn)
            .await?;
        for (subject, key_id, wrapped_key) in rows {
            let key = match wrapped_key {
                Some(wrapped) => Some(
                    keyring
                        .unwrap_key(&subject, &wrapped)
                        .ok_or(PrivacyError::WrongMasterKey(key_id))?,
                ),
                None => None,
            };
            cache.remember(subject, key_id, key);
        }
        for id in unknown {
            cache.by_id.entry(id).or_insert(None);
        }
    }
    for (path, value) in sealed {
        let (key_id, ciphertext) =
            sealed_parts(value).ok_or(PrivacyError::Tampered(Uuid::nil()))?;
        let opened = match cache.by_id.get(&key_id).and_then(Option::as_ref) {
            None => Value::String(ERASED.to_owned()),
            Some(key) => key
                .decrypt(&ciphertext, &aad(key_id, path))
                .and_then(|plain| serde_json::from_slice(&plain).ok())
                .ok_or(PrivacyError::Tampered(key_id))?,
        };
        *value = opened;
    }
    Ok(())
}

/// The sealed values at `paths` of one payload, as separate mutable borrows.
fn split_paths<'v>(
    data: &'v mut Value,
    paths: &'static [&'static str],
) -> Vec<(&'static str, &'v mut Value)> {
    // Paths are at most two keys deep and distinct, so each leaf is reached once: walk the
    // payload's own tree and pick the leaves whose dotted name is listed.
    let mut out = Vec::new();
    let Value::Object(top) = data else {
        return out;
    };
    for (key, value) in top.iter_mut() {
        if let Some(path) = paths.iter().find(|p| **p == key.as_str()) {
            if is_sealed(value) {
                out.push((*path, value));
            }
            continue;
        }
        if let Value::Object(inner) = value {
            for (leaf, value) in inner.iter_mut() {
                let listed = paths.iter().find(|p| {
                    p.split_once('.')
                        .is_some_and(|(outer, inner)| outer == key && inner == leaf)
                });
                if let Some(path) = listed {
                    if is_sealed(value) {
                        out.push((*path, value));
                    }
                }
            }
        }
    }
    out
}

fn sealed_parts(value: &Value) -> Option<(Uuid, Vec<u8>)> {
    let inner = value.get(SEALED_TAG)?;
    let key_id = inner.get("k")?.as_str()?.parse().ok()?;
    let ciphertext = BASE64.decode(inner.get("c")?.as_str()?).ok()?;
    Some((key_id, ciphertext))
}

/// Destroys the live keys of `subjects` in the caller's transaction; returns those destroyed.
pub async fn shred(
    conn: &mut PgConnection,
    subjects: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    if subjects.is_empty() {
        return Ok(Vec::new());
    }
    let shredded: Vec<String> =
        sqlx::query_scalar(include_str!("../../sql/subject_keys_shred.sql"))
            .bind(subjects)
            .fetch_all(conn)
            .await?;
    metrics::counter!("fleet_privacy_keys_shredded_total").increment(shredded.len() as u64);
    Ok(shredded)
}

/// Whether `subject` has a live data key.
pub async fn subject_key_exists(
    conn: &mut PgConnection,
    subject: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(include_str!("../../sql/subject_keys_exists.sql"))
        .bind(subject)
        .fetch_one(conn)
        .await
}
