//! Read models, one module each. `all()` lists every projection the server runs.
use crate::Projection;
use std::sync::Arc;

pub mod accounts;
pub mod outbound_messages;

/// Every projection fleetstream maintains, inline and async.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(accounts::Accounts),
        Arc::new(outbound_messages::OutboundMessages),
    ]
}
