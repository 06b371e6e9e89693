//! logport: an edge log-ingest gateway.

pub mod admission;
pub mod batch;
pub mod event;
pub mod sink;
