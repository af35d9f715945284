use super::state_cache::{Remembered, StateCache};
use super::{Aggregate, MAX_CONFLICT_RETRIES};
use fleetstream_events::group::GroupAppender;
use fleetstream_events::group_load::GroupLoader;
use fleetstream_events::notify::AppendNotifier;
use fleetstream_events::privacy::{self, KeyCache, Keyring, PrivacyError};
use fleetstream_events::store::{
    self, AppendError, ExpectedVersion, LoadError, NewEvent, StreamAppend,
};
use fleetstream_events::{DomainEvent, EventMetadata, StoredEvent};
use fleetstream_projections::{apply_inline, Mode, Projection, ProjectionError};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use std::sync::Arc;
use tracing::Instrument;

/// The log plus the inline projections every append must feed.
#[derive(Clone)]
pub struct EventStore {
    pub pool: PgPool,
    projections: Arc<Vec<Arc<dyn Projection>>>,
    notifier: AppendNotifier,
    group: GroupAppender,
    /// Seals personal fields on append and opens them on load (ADR 0009). Without one,
    /// appending personal data fails, unless `plaintext` says a benchmark measures the cost
    /// of sealing against writing it clear.
    keyring: Option<Arc<Keyring>>,
    plaintext: bool,
    /// States of the non-personal streams its commands and units of work folded lately, and
    /// the loads that bring them up to date; shared by clones.
    states: StateCache,
    loader: GroupLoader,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError<E> {
    #[error("domain: {0:?}")]
    Domain(E),
    #[error("concurrency conflict on {0}")]
    Conflict(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error(transparent)]
    Decode(#[from] fleetstream_events::DecodeError),
    /// A dependent command staged in the same unit of work (e.g. a withdrawal's cascade) failed.
    #[error("cascade: {0}")]
    Cascade(String),
    /// The command would write an event over the log's size bound; nothing was written.
    #[error("event too large: {0}")]
    TooLarge(String),
    /// Personal fields could not be sealed or opened (no or a wrong master key).
    #[error(transparent)]
    Privacy(PrivacyError),
}

impl<E> CommandError<E> {
    /// True when the command broke the named unique constraint of a read model or table.
    pub fn is_unique_violation(&self, constraint: &str) -> bool {
        match self {
            Self::Database(err) | Self::Projection(ProjectionError::Database(err)) => {
                store::is_unique_violation(err, constraint)
            }
            _ => false,
        }
    }

    pub fn map_domain<F>(self, f: impl FnOnce(E) -> F) -> CommandError<F> {
        match self {
            Self::Domain(e) => CommandError::Domain(f(e)),
            Self::Conflict(s) => CommandError::Conflict(s),
            Self::Database(e) => CommandError::Database(e),
            Self::Projection(e) => CommandError::Projection(e),
            Self::Decode(e) => CommandError::Decode(e),
            Self::Cascade(s) => CommandError::Cascade(s),
            Self::TooLarge(s) => CommandError::TooLarge(s),
            Self::Privacy(e) => CommandError::Privacy(e),
        }
    }
}

impl<E> From<AppendError> for CommandError<E> {
    fn from(err: AppendError) -> Self {
        match err {
            AppendError::Conflict { stream_id, .. } => Self::Conflict(stream_id),
            AppendError::PartialDuplicate(stream_id) => Self::Conflict(stream_id),
            err @ AppendError::TooLarge { .. } => Self::TooLarge(err.to_string()),
            AppendError::Database(e)
                if store::is_unique_violation(&e, "events_stream_version_key") =>
            {
                Self::Conflict("events".into())
            }
            AppendError::Database(e) => Self::Database(e),
        }
    }
}

impl<E> From<LoadError> for CommandError<E> {
    fn from(err: LoadError) -> Self {
        match err {
            LoadError::Database(e) => Self::Database(e),
            LoadError::Decode(e) => Self::Decode(e),
            LoadError::Privacy(e) => e.into(),
        }
    }
}

impl<E> From<PrivacyError> for CommandError<E> {
    fn from(err: PrivacyError) -> Self {
        match err {
            PrivacyError::Database(e) => Self::Database(e),
            other => Self::Privacy(other),
        }
    }
}

impl EventStore {
    pub fn new(pool: PgPool, projections: Vec<Arc<dyn Projection>>) -> Self {
        Self {
            notifier: AppendNotifier::new(pool.clone()),
            group: GroupAppender::new(pool.clone()),
            loader: GroupLoader::new(pool.clone()),
            pool,
            projections: Arc::new(projections),
            keyring: None,
            plaintext: false,
            states: StateCache::default(),
        }
    }

    /// A store writing personal fields in clear: the baseline of the sealing benchmark, never
    /// a server or tool.
    pub fn without_sealing(mut self) -> Self {
        self.plaintext = true;
        self
    }

    /// The store sealing personal fields under `keyring` (every server and tool; only a
    /// benchmark's baseline runs without).
    pub fn with_keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(Arc::new(keyring));
        self
    }

    pub fn keyring(&self) -> Option<&Keyring> {
        self.keyring.as_deref()
    }

    pub fn projections(&self) -> &[Arc<dyn Projection>] {
        &self.projections
    }

    /// Opens a unit of work; `metadata` is completed from the current request or flow context
    /// (see [`super::context`]), so callers name at most what they know better.
    pub async fn begin(&self, metadata: EventMetadata) -> Result<UnitOfWork, sqlx::Error> {
        Ok(UnitOfWork {
            tx: self.pool.begin().await?,
            staged: Vec::new(),
            written: Vec::new(),
            metadata: super::context::complete(metadata),
            projections: self.projections.clone(),
            notifier: self.notifier.clone(),
            keyring: self.keyring.clone(),
            plaintext: self.plaintext,
            keys: KeyCache::default(),
            states: self.states.clone(),
            remember: Vec::new(),
        })
    }

    /// Runs a single-aggregate command: load → decide → append at the loaded version, retried
    /// against fresh state when another writer got there first. Returns the state after the
    /// command and the stored events.
    pub async fn execute<A, E>(
        &self,
        id: impl std::fmt::Display,
        metadata: EventMetadata,
        decide: impl Fn(&A) -> Result<Vec<A::Event>, E>,
    ) -> Result<(A, Vec<StoredEvent>), CommandError<E>>
    where
        A: Aggregate,
    {
        let stream_id = A::Event::stream_id(id);
        let span = tracing::info_span!("command", stream = %stream_id);
        let inline = self
            .projections
            .iter()
            .any(|p| p.mode() == Mode::Inline && p.categories().contains(&A::Event::CATEGORY));
        // Personal data is sealed and opened inside a unit of work, with its keys.
        if !inline && !privacy::is_personal_category(A::Event::CATEGORY) {
            return self
                .execute_alone(stream_id, metadata, decide)
                .instrument(span)
                .await;
        }
        async {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let mut uow = self.begin(metadata.clone()).await?;
                let (mut state, version) = uow.load::<A>(&stream_id).await?;
                let events = decide(&state).map_err(CommandError::Domain)?;
                for event in &events {
                    state.evolve(event);
                }
                uow.stage(&stream_id, ExpectedVersion::from_loaded(version), &events);
                match uow.commit().await {
                    Err(CommandError::Conflict(_)) if attempt <= MAX_CONFLICT_RETRIES => {
                        tracing::debug!(attempt, "version conflict; deciding again");
                        // Spread the retries of writers that keep meeting each other.
                        let jitter = rand::random::<u64>() % (2 << attempt);
                        tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
                        continue;
                    }
                    Err(err) => return Err(err),
                    Ok(stored) => return Ok((state, stored)),
                }
            }
        }
        .instrument(span)
        .await
    }
}

impl EventStore {
    /// [`EventStore::execute`] for a stream no inline projection reads. The state starts from
    /// the [`StateCache`] (or the default) and folds only the events after it, read outside
    /// any transaction with concurrent commands' loads (`GroupLoader`); the append names the
    /// version that load saw, so a writer in between is a conflict and the command is decided
    /// again. The append is group-committed with concurrent commands' (`GroupAppender`; alone
    /// it is one self-committing statement). `decide` runs in the caller's task: its error or
    /// panic never reaches a neighbour.
    async fn execute_alone<A, E>(
        &self,
        stream_id: String,
        metadata: EventMetadata,
        decide: impl Fn(&A) -> Result<Vec<A::Event>, E>,
    ) -> Result<(A, Vec<StoredEvent>), CommandError<E>>
    where
        A: Aggregate,
    {
        let metadata = super::context::complete(metadata);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (known, known_version) = self.states.get::<A>(&stream_id).unwrap_or_default();
            let rows = self.loader.load_after(&stream_id, known_version).await?;
            let (mut state, version) =
                store::fold_rows_onto(&rows, known, known_version, A::evolve)?;
            drop(rows);
            let events = decide(&state).map_err(CommandError::Domain)?;
            if events.is_empty() {
                if version > known_version {
                    self.states.put(&stream_id, state.clone(), version);
                }
                return Ok((state, Vec::new()));
            }
            for event in &events {
                state.evolve(event);
            }
            let append = StreamAppend {
                stream_id: stream_id.clone(),
                expected: ExpectedVersion::from_loaded(version),
                events: events
                    .iter()
                    .map(|e| NewEvent::from_domain(e, &metadata))
                    .collect(),
            };
            match self.group.append(append).await {
                Err(AppendError::Conflict { .. }) if attempt <= MAX_CONFLICT_RETRIES => {
                    tracing::debug!(attempt, "version conflict; deciding again");
                }
                Err(err) => return Err(err.into()),
                Ok(stored) => {
                    if let Some(last) = stored.last() {
                        self.states
                            .put(&stream_id, state.clone(), last.stream_version);
                        self.notifier.appended();
                        log_commit(&stored);
                    }
                    return Ok((state, stored));
                }
            }
        }
    }
}

/// One transaction spanning any number of streams: load, stage, commit all or nothing.
pub struct UnitOfWork {
    tx: Transaction<'static, Postgres>,
    staged: Vec<StreamAppend>,
    /// Appended by [`UnitOfWork::flush`], not yet committed.
    written: Vec<StoredEvent>,
    metadata: EventMetadata,
    projections: Arc<Vec<Arc<dyn Projection>>>,
    notifier: AppendNotifier,
    keyring: Option<Arc<Keyring>>,
    plaintext: bool,
    /// Data keys met in this transaction (loads fill it, so an append to a loaded stream
    /// seals without asking for its key again).
    keys: KeyCache,
    /// The store's remembered states: a load folds only what was appended since.
    states: StateCache,
    /// States this unit of work loaded, remembered when it commits.
    remember: Vec<Remembered>,
}

impl UnitOfWork {
    /// Folds a stream into `A`, personal fields opened; returns the state and its version
    /// (0 when new).
    pub async fn load<A: Aggregate>(&mut self, stream_id: &str) -> Result<(A, i64), LoadError> {
        if !privacy::is_personal_category(A::Event::CATEGORY) {
            // Personal streams are never remembered: an erasure must not leave their fields
            // in memory.
            let (known, known_version) = self.states.get::<A>(stream_id).unwrap_or_default();
            let rows = store::load_rows_after(&mut *self.tx, stream_id, known_version).await?;
            let (state, version) = store::fold_rows_onto(&rows, known, known_version, A::evolve)?;
            if version > known_version {
                // Remembered once committed: what this transaction wrote itself must not
                // outlive a rollback.
                self.remember
                    .push(Remembered::new(stream_id, state.clone(), version));
            }
            return Ok((state, version));
        }
        let mut rows = privacy::load_rows_keyed(
            &mut self.tx,
            self.keyring.as_deref(),
            &mut self.keys,
            stream_id,
        )
        .await?;
        let category = A::Event::CATEGORY;
        let payloads = rows
            .iter_mut()
            .map(|(_, event_type, _, data)| (privacy::personal_paths(category, event_type), data));
        privacy::open_values(
            &mut self.tx,
            self.keyring.as_deref(),
            &mut self.keys,
            payloads,
        )
        .await?;
        Ok(store::fold_rows(&rows, A::default(), A::evolve)?)
    }

    /// Destroys the data keys of `subjects` in this transaction (crypto-shredding): committed
    /// together with the events that end the subjects, e.g. a withdrawal.
    pub async fn shred(&mut self, subjects: &[String]) -> Result<(), sqlx::Error> {
        privacy::shred(&mut self.tx, subjects).await?;
        self.keys.forget(subjects);
        Ok(())
    }

    /// The keyring sealing this unit of work's personal fields.
    pub fn keyring(&self) -> Option<&Keyring> {
        self.keyring.as_deref()
    }

    /// Queues events for `stream_id`; nothing is written before `commit`.
    pub fn stage<E: DomainEvent>(
        &mut self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: &[E],
    ) {
        if events.is_empty() {
            return;
        }
        self.staged.push(StreamAppend {
            stream_id: stream_id.to_owned(),
            expected,
            events: events
                .iter()
                .map(|e| NewEvent::from_domain(e, &self.metadata))
                .collect(),
        });
    }

    /// Queues events built elsewhere (each with its own metadata, e.g. a group commit of
    /// several commands); nothing is written before `commit`.
    pub fn stage_appends(&mut self, appends: impl IntoIterator<Item = StreamAppend>) {
        self.staged
            .extend(appends.into_iter().filter(|a| !a.events.is_empty()));
    }

    /// The transaction, for lookups and sequence values that must share it.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Appends everything staged and feeds the inline projections, without committing: the
    /// transaction now holds its transaction id and its writes. On error it is rolled back.
    pub async fn flush<E>(mut self) -> Result<Self, CommandError<E>> {
        let written: Result<Vec<StoredEvent>, CommandError<E>> = async {
            let mut staged = std::mem::take(&mut self.staged);
            let plaintext = match self.keyring.as_deref() {
                Some(keyring) => {
                    privacy::seal(&mut self.tx, keyring, &mut self.keys, &mut staged).await?
                }
                None if !self.plaintext && privacy::holds_personal_data(&staged) => {
                    return Err(PrivacyError::NoKeyring.into());
                }
                None => Default::default(),
            };
            let mut stored = store::append_owned(&mut self.tx, staged).await?;
            // The log holds the sealed form; this transaction's read models and the caller
            // get the plaintext.
            plaintext.restore(&mut stored);
            apply_inline(&mut self.tx, &self.projections, &stored).await?;
            Ok(stored)
        }
        .await;
        match written {
            Ok(stored) => {
                self.written.extend(stored);
                Ok(self)
            }
            Err(err) => {
                // Roll back now rather than on drop: the stream locks must be free before a
                // retry (or anyone else) asks for them again.
                let _ = self.tx.rollback().await;
                Err(err)
            }
        }
    }

    /// Appends everything staged, feeds the inline projections and commits; returns every
    /// event this unit of work wrote.
    pub async fn commit<E>(self) -> Result<Vec<StoredEvent>, CommandError<E>> {
        let uow = self.flush().await?;
        uow.tx.commit().await?;
        for remembered in uow.remember {
            uow.states.keep(remembered);
        }
        if !uow.written.is_empty() {
            uow.notifier.appended();
            log_commit(&uow.written);
        }
        Ok(uow.written)
    }
}

/// One info line per committed command: what it appended, to which streams.
fn log_commit(stored: &[StoredEvent]) {
    let mut streams: Vec<&str> = stored.iter().map(|e| e.stream_id.as_str()).collect();
    streams.dedup();
    let mut types: Vec<&str> = stored.iter().map(|e| e.event_type.as_str()).collect();
    types.dedup();
    tracing::info!(
        command = types.first().copied().unwrap_or_default(),
        events = stored.len(),
        stream = streams.first().copied().unwrap_or_default(),
        streams = streams.len(),
        event_types = %types.join(","),
        "command committed"
    );
}

/// Next value of a Postgres sequence (integer ids are taken at command time).
pub async fn next_id(conn: &mut PgConnection, sequence: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT nextval($1::regclass)")
        .bind(sequence)
        .fetch_one(conn)
        .await
}
