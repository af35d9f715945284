//! The device registry (aggregate `device`).

pub mod domain;
