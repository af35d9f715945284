//! One timestamp format per namespace, as its seed shows it (issue 14: `/api/v1` users and
//! devices disagreed).

use super::Namespace;
use chrono::{DateTime, SecondsFormat, Utc};

/// `at` in the namespace's format:
/// - core `/api/v1` (seed 002): `2025-01-01T00:00:00` — UTC, whole seconds, no offset;
/// - Addnox/Lux (seeds 000, 001): `2024-11-28T02:15:53.610Z` — milliseconds, `Z`;
/// - devices `/api/devices`, `/api/token` (seed 004): `2025-11-02T00:00:00Z`;
/// - KooDTX (seed 003): `2025-11-13T00:00:00Z`, with a fraction only when there is one
///   (its sync clients send stored times back as `last_sync_time`).
pub fn format(ns: Namespace, at: DateTime<Utc>) -> String {
    match ns {
        Namespace::Core => at.format("%Y-%m-%dT%H:%M:%S").to_string(),
        Namespace::Nueyne => at.to_rfc3339_opts(SecondsFormat::Millis, true),
        Namespace::Drf => at.to_rfc3339_opts(SecondsFormat::Secs, true),
        Namespace::KooDtx => at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_namespace_has_its_seeds_format() {
        let at = DateTime::parse_from_rfc3339("2026-11-30T08:33:44.524817Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format(Namespace::Core, at), "2026-11-30T08:33:44");
        assert_eq!(format(Namespace::Nueyne, at), "2026-11-30T08:33:44.524Z");
        assert_eq!(format(Namespace::Drf, at), "2026-11-30T08:33:44Z");
        assert_eq!(format(Namespace::KooDtx, at), "2026-11-30T08:33:44.524817Z");
        let whole = DateTime::parse_from_rfc3339("2025-11-13T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format(Namespace::KooDtx, whole), "2025-11-13T00:00:00Z");
    }
}
