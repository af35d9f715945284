//! Personal data in the log (ADR 0009): the one-time sealing of events written before
//! crypto-shredding existed. Sealing on append, opening on read and destroying keys live
//! with the log itself (`fleetstream_events::privacy`).

pub mod migrate;
