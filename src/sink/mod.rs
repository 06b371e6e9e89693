//! Sinks: where batches are committed.

pub mod store;
