//! fleetstream: one event-sourced backend for five client contracts.

pub mod accounts;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod devices;
pub mod docs;
pub mod es;
pub mod http;
pub mod openapi;
pub mod relay;
pub mod routes;
pub mod state;
pub mod sync;
pub mod telemetry;
pub mod testing;
pub mod therapy;
pub mod workers;
