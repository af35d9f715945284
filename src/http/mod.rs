//! HTTP plumbing shared by every namespace: error shapes, extractors, middleware.

mod error;
mod extract;
pub mod guard;
pub mod middleware;
pub mod time;

pub use error::{ApiError, Namespace};
pub use extract::{Form, Json, Path, Query, RawBody};
