//! Therapy: patients ("real users"), pairing, treatment logs.

pub mod pairing;
pub mod patients;
pub mod treatment;
