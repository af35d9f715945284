//! Therapy: patients ("real users"), pairing, treatment logs.

pub mod http;
pub mod pairing;
pub mod patients;
pub mod service;
pub mod treatment;
pub use service::{withdraw_patients, TherapyError};
