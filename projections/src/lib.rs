//! The projection runtime — a checkpointed, never-skipping reader of the event log — and the
//! read models built with it.

mod checkpoint;
mod projection;
mod read_model;
pub mod read_models;
mod rebuild;
mod runner;

pub use checkpoint::{
    ensure_checkpoint, load_checkpoint, projection_status, record_error, save_checkpoint,
    skip_event, status, ProjectionStatus,
};
pub use projection::{apply_inline, Mode, Projection, ProjectionError};
pub use read_model::{Either, LogEvents, ReadModel};
pub use rebuild::{rebuild, reset};
pub use runner::{run_until_caught_up, step, Runner, RunnerConfig, Step, Wakeup};
