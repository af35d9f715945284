//! Commands: load an aggregate by folding its stream, decide (pure), append with the loaded
//! version, apply inline projections — all in one transaction.

pub mod context;
pub mod state_cache;
mod unit_of_work;

pub use unit_of_work::{next_id, CommandError, EventStore, UnitOfWork};

use fleetstream_events::DomainEvent;

/// State folded from one stream. `evolve` is pure; decisions live beside each aggregate as
/// plain functions `fn decide(&State, Command) -> Result<Vec<Event>, DomainError>`.
/// `Clone + 'static` so a folded state can be remembered between commands
/// ([`state_cache::StateCache`]).
pub trait Aggregate: Default + Clone + Send + Sync + 'static {
    type Event: DomainEvent;
    fn evolve(&mut self, event: &Self::Event);

    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self {
        let mut state = Self::default();
        for event in events {
            state.evolve(event);
        }
        state
    }
}

/// How many times a command is re-decided after losing a race on its stream version.
pub const MAX_CONFLICT_RETRIES: usize = 5;
