//! Sinks: where batches are committed.

pub mod kafka;
pub mod store;
