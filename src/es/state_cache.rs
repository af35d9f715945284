//! Folded states of recently commanded streams, so a command on a stream this process has
//! seen folds only the events written since, not the whole stream again (issue 16, ADR 0001).
//!
//! The log is still asked every time (events after the remembered version), so another
//! writer's events — another process, a unit of work — are folded in before deciding; the
//! cache only saves reading and decoding what was folded already. Safe because the log only
//! grows and a stream's events never change. Bounded by entry count, least recently used
//! first out.

use hashlink::LruCache;
use std::any::Any;
use std::sync::{Arc, Mutex};

/// Streams remembered per store. Aggregate states are small (a device, an alert rule: well
/// under a kilobyte), so this holds a busy fleet's working set in a few megabytes.
pub const CAPACITY: usize = 16_384;

struct Entry {
    version: i64,
    state: Box<dyn Any + Send + Sync>,
}

/// A state to remember later, with its stream and version.
pub struct Remembered {
    stream_id: String,
    entry: Entry,
}

impl Remembered {
    pub fn new<A: Send + Sync + 'static>(stream_id: &str, state: A, version: i64) -> Self {
        Self {
            stream_id: stream_id.to_owned(),
            entry: Entry {
                version,
                state: Box::new(state),
            },
        }
    }
}

#[derive(Clone)]
pub struct StateCache {
    entries: Arc<Mutex<LruCache<String, Entry>>>,
}

impl Default for StateCache {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl StateCache {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Arc::new(Mutex::new(LruCache::new(capacity))),
        }
    }

    /// The state of `stream_id` and the version it was folded at, if remembered as an `A`.
    pub fn get<A: Clone + 'static>(&self, stream_id: &str) -> Option<(A, i64)> {
        let mut entries = self.lock();
        let entry = entries.get(stream_id)?;
        let state = entry.state.downcast_ref::<A>()?.clone();
        metrics::counter!("fleet_state_cache_hits_total").increment(1);
        Some((state, entry.version))
    }

    /// Remembers `state` as `stream_id` at `version`, unless a later version is remembered.
    pub fn put<A: Send + Sync + 'static>(&self, stream_id: &str, state: A, version: i64) {
        self.keep(Remembered::new(stream_id, state, version));
    }

    /// Remembers a state set aside earlier (e.g. by a unit of work until it commits).
    pub fn keep(&self, remembered: Remembered) {
        let mut entries = self.lock();
        if entries
            .peek(&remembered.stream_id)
            .is_some_and(|known| known.version > remembered.entry.version)
        {
            return;
        }
        entries.insert(remembered.stream_id, remembered.entry);
    }

    pub fn forget(&self, stream_id: &str) {
        self.lock().remove(stream_id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, Entry>> {
        // A panic while holding the lock leaves only whole entries behind: keep using them.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_latest_version_and_drops_the_least_recently_used() {
        let cache = StateCache::with_capacity(2);
        cache.put("device-a", 1u32, 1);
        cache.put("device-b", 2u32, 1);
        assert_eq!(cache.get::<u32>("device-a"), Some((1, 1)));
        cache.put("device-c", 3u32, 1);
        assert_eq!(
            cache.get::<u32>("device-b"),
            None,
            "b was least recently used"
        );
        assert_eq!(cache.get::<u32>("device-a"), Some((1, 1)));

        cache.put("device-a", 10u32, 5);
        cache.put("device-a", 9u32, 4);
        assert_eq!(
            cache.get::<u32>("device-a"),
            Some((10, 5)),
            "an older fold never wins"
        );
        assert_eq!(
            cache.get::<String>("device-a"),
            None,
            "another type is a miss"
        );
        cache.forget("device-a");
        assert_eq!(cache.get::<u32>("device-a"), None);
        assert_eq!(cache.len(), 1);
    }
}
