//! What several integration test files share: private NATS servers and a Socket.IO client.
#![allow(dead_code)]

pub mod nats;
