//! HTTP plumbing shared by every namespace: error shapes, extractors, middleware.

mod error;
mod extract;
pub mod middleware;

pub use error::{ApiError, Namespace};
pub use extract::{Form, Json, Path, Query, RawBody};
