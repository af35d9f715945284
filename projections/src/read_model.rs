//! The typed side of [`Projection`]: a read model names its event type(s), tables and mode as
//! constants and handles one decoded event at a time; the decode-and-skip loop lives here once.

use crate::{Mode, Projection, ProjectionError};
use async_trait::async_trait;
use fleetstream_events::{DecodeError, DomainEvent, StoredEvent};
use sqlx::PgConnection;

/// Events a read model reads: one aggregate's enum, or [`Either`] of two.
pub trait LogEvents: Sized + Send + 'static {
    const CATEGORIES: &'static [&'static str];
    /// `None` when the row belongs to none of [`Self::CATEGORIES`].
    fn decode_stored(stored: &StoredEvent) -> Option<Result<Self, DecodeError>>;
}

impl<E: DomainEvent> LogEvents for E {
    const CATEGORIES: &'static [&'static str] = &[E::CATEGORY];
    fn decode_stored(stored: &StoredEvent) -> Option<Result<Self, DecodeError>> {
        stored.decode::<E>()
    }
}

/// The events of a read model fed by two aggregates.
#[derive(Debug, Clone)]
pub enum Either<A, B> {
    Left(A),
    Right(B),
}

impl<A: DomainEvent, B: DomainEvent> LogEvents for Either<A, B> {
    const CATEGORIES: &'static [&'static str] = &[A::CATEGORY, B::CATEGORY];
    fn decode_stored(stored: &StoredEvent) -> Option<Result<Self, DecodeError>> {
        if let Some(a) = stored.decode::<A>() {
            return Some(a.map(Either::Left));
        }
        stored.decode::<B>().map(|b| b.map(Either::Right))
    }
}

/// A read model over typed events. Every `ReadModel` is a [`Projection`].
#[async_trait]
pub trait ReadModel: Send + Sync + 'static {
    type Event: LogEvents;
    const NAME: &'static str;
    /// Tables it owns; a reset truncates them.
    const TABLES: &'static [&'static str];
    const MODE: Mode = Mode::Async;

    /// Whether to decode this row at all (large payloads the model ignores are skipped by
    /// `event_type` without a parse).
    fn wants(_stored: &StoredEvent) -> bool {
        true
    }

    /// Whether [`Self::apply_row`] handles this row instead of a decode.
    fn applies_row(_stored: &StoredEvent) -> bool {
        false
    }

    /// Applies a row without decoding it (e.g. set-based SQL over the log row itself).
    async fn apply_row(
        &self,
        _conn: &mut PgConnection,
        _stored: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        Ok(())
    }

    /// Applies one decoded event; `stored` is its log row (position, version, time).
    async fn apply_event(
        &self,
        conn: &mut PgConnection,
        event: Self::Event,
        stored: &StoredEvent,
    ) -> Result<(), ProjectionError>;

    /// Applies a batch of decoded events in log order. Read models that gain from set-based
    /// writes across a batch override this; the default applies one event at a time.
    async fn apply_events(
        &self,
        conn: &mut PgConnection,
        events: Vec<(Self::Event, &StoredEvent)>,
    ) -> Result<(), ProjectionError> {
        for (event, stored) in events {
            self.apply_event(conn, event, stored).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl<T: ReadModel> Projection for T {
    fn name(&self) -> &'static str {
        T::NAME
    }
    fn categories(&self) -> &'static [&'static str] {
        T::Event::CATEGORIES
    }
    fn tables(&self) -> &'static [&'static str] {
        T::TABLES
    }
    fn mode(&self) -> Mode {
        T::MODE
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let mut decoded = Vec::new();
        for stored in events {
            if !T::wants(stored) {
                continue;
            }
            // Rows applied without decoding keep their place in log order.
            if T::applies_row(stored) {
                self.apply_events(conn, std::mem::take(&mut decoded))
                    .await?;
                self.apply_row(conn, stored).await?;
                continue;
            }
            if let Some(event) = T::Event::decode_stored(stored) {
                decoded.push((event?, stored));
            }
        }
        self.apply_events(conn, decoded).await
    }
}
