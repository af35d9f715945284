//! The metadata of the work in progress, carried in a tokio task-local so that every command
//! path stamps its events without each handler passing it along: the HTTP middleware opens a
//! scope per request (request id, correlation id, door), authentication records the actor, and
//! process managers or ingest open one per triggering event or message (`caused_by`).
//! [`EventStore::begin`](super::EventStore::begin) fills what the caller's metadata leaves out.

use fleetstream_events::EventMetadata;
use std::future::Future;
use std::sync::{Arc, Mutex};

tokio::task_local! {
    static CONTEXT: Arc<Mutex<EventMetadata>>;
}

/// Runs `work` with `metadata` as the context of every unit of work it begins.
pub async fn scope<F: Future>(metadata: EventMetadata, work: F) -> F::Output {
    CONTEXT.scope(Arc::new(Mutex::new(metadata)), work).await
}

/// The current context, if `scope` opened one.
pub fn current() -> Option<EventMetadata> {
    CONTEXT
        .try_with(|ctx| ctx.lock().unwrap_or_else(|p| p.into_inner()).clone())
        .ok()
}

/// Records the authenticated account as the actor of the rest of this scope's work.
pub fn set_actor(account_id: i64) {
    let _ = CONTEXT.try_with(|ctx| {
        let mut ctx = ctx.lock().unwrap_or_else(|p| p.into_inner());
        ctx.actor = Some(account_id);
    });
}

/// Sets the causation of the rest of this scope's work (a NATS message, an event id).
pub fn set_causation(causation_id: impl Into<String>) {
    let _ = CONTEXT.try_with(|ctx| {
        let mut ctx = ctx.lock().unwrap_or_else(|p| p.into_inner());
        ctx.causation_id = Some(causation_id.into());
    });
}

/// `metadata` completed from the current context (unchanged outside any scope).
pub fn complete(metadata: EventMetadata) -> EventMetadata {
    match current() {
        Some(ctx) => metadata.or(&ctx),
        None => metadata,
    }
}

/// The same future, carrying the current context into a spawned task (task-locals do not
/// cross `tokio::spawn`).
pub fn carry<F: Future>(work: F) -> impl Future<Output = F::Output> {
    let ctx = current();
    async move {
        match ctx {
            Some(ctx) => scope(ctx, work).await,
            None => work.await,
        }
    }
}
