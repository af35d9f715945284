//! One router per client namespace (CONTRACT table). Handlers live with their feature.

pub mod core;
pub mod drf;
pub mod koodtx;
pub mod nueyne;
pub mod system;
