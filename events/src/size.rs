//! The bound on one event. A client can make a push, a batch or a payload large; the log, the
//! relay and every NATS subscriber only ever see events under [`MAX_EVENT_BYTES`] of JSON, so
//! one request can never produce a message NATS refuses (see docs/adr/0004).

use serde::Serialize;

/// The largest envelope (payload, metadata and the fixed fields) one event may have, in bytes
/// of JSON. Well under nats-server's default `max_payload` of 1 MiB.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// What the envelope adds around `data` and `metadata`: ids, type, stream, positions, times.
pub const ENVELOPE_OVERHEAD_BYTES: usize = 1024;

/// What a command may put into one event's `data`, leaving room for metadata and envelope.
pub const MAX_DATA_BYTES: usize = MAX_EVENT_BYTES - 8 * 1024;

/// Bytes of `value` encoded as JSON, counted without building the string.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Serializing into a counter fails only for types serde_json cannot encode at all (maps
    // with non-string keys), which none of our events use; count those as unbounded.
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

/// Splits `items` into consecutive chunks whose items' encoded sizes (plus one separator each)
/// add up to at most `budget` bytes. An item larger than `budget` on its own gets a chunk to
/// itself: callers refuse such items before they get here. Order is kept.
pub fn chunk_by_encoded_size<T: Serialize>(items: Vec<T>, budget: usize) -> Vec<Vec<T>> {
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    let mut used = 0usize;
    for item in items {
        let size = encoded_len(&item).saturating_add(1);
        if !current.is_empty() && used.saturating_add(size) > budget {
            chunks.push(std::mem::take(&mut current));
            used = 0;
        }
        used = used.saturating_add(size);
        current.push(item);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encoded_len_matches_the_encoding() {
        let value = json!({"a": [1, 2.5, "ü"], "b": null});
        assert_eq!(
            encoded_len(&value),
            serde_json::to_vec(&value).unwrap().len()
        );
    }

    #[test]
    fn chunks_stay_within_the_budget_and_keep_order() {
        let items: Vec<String> = (0..100).map(|i| "x".repeat(i % 17)).collect();
        let chunks = chunk_by_encoded_size(items.clone(), 64);
        assert!(chunks
            .iter()
            .all(|c| { c.iter().map(|s| encoded_len(s) + 1).sum::<usize>() <= 64 }));
        assert_eq!(chunks.concat(), items);
    }

    #[test]
    fn an_item_over_budget_travels_alone() {
        let items = vec!["a".to_owned(), "b".repeat(100), "c".to_owned()];
        let chunks = chunk_by_encoded_size(items, 10);
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[1].len(), 1);
    }
}
