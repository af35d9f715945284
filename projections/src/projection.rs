use async_trait::async_trait;
use fleetstream_events::StoredEvent;
use sqlx::PgConnection;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Updated inside the append transaction, for replies that must see their own write.
    Inline,
    /// Updated by the runner after commit.
    Async,
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Decode(#[from] fleetstream_events::DecodeError),
    #[error("{0}")]
    Other(String),
    /// Applying the events at these log positions failed; the checkpoint did not move.
    #[error("{}: {source}", positions(*.first, *.last))]
    InBatch {
        first: i64,
        last: i64,
        source: Box<ProjectionError>,
    },
}

impl ProjectionError {
    /// Whether trying the same event again may succeed: the database was unreachable, busy or
    /// rolled the transaction back (serialization, deadlock). Any other failure is the event's
    /// own and repeats.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::InBatch { source, .. } => source.is_transient(),
            Self::Database(sqlx::Error::Database(db)) => db.code().is_some_and(|code| {
                ["08", "40", "53", "57", "58"]
                    .iter()
                    .any(|class| code.starts_with(class))
            }),
            Self::Database(_) => true,
            Self::Decode(_) | Self::Other(_) => false,
        }
    }

    /// The log position of the event a one-event batch failed on.
    pub fn position(&self) -> Option<i64> {
        match self {
            Self::InBatch { first, last, .. } if first == last => Some(*first),
            _ => None,
        }
    }
}

fn positions(first: i64, last: i64) -> String {
    if first == last {
        format!("at position {first}")
    } else {
        format!("at positions {first}..={last}")
    }
}

/// A read model fed by the log. `apply` runs inside a transaction the runtime owns; the read
/// model change and the checkpoint commit together.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Stream categories it reads; the reader filters in SQL.
    fn categories(&self) -> &'static [&'static str];
    /// Tables it owns; a reset truncates them.
    fn tables(&self) -> &'static [&'static str];
    fn mode(&self) -> Mode {
        Mode::Async
    }
    /// Applies a batch in log order. Implementations skip events they do not use: an inline
    /// projection is handed a whole append, other categories included.
    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError>;
}

/// Runs the inline projections over freshly appended events, in the append's transaction.
/// Every projection gets the whole batch (they skip other categories without decoding), so
/// large payloads are never copied per projection.
pub async fn apply_inline(
    conn: &mut PgConnection,
    projections: &[Arc<dyn Projection>],
    events: &[StoredEvent],
) -> Result<(), ProjectionError> {
    for projection in projections.iter().filter(|p| p.mode() == Mode::Inline) {
        if events
            .iter()
            .any(|e| projection.categories().contains(&e.category()))
        {
            projection.apply(conn, events).await?;
        }
    }
    Ok(())
}
