//! Admission: what a batch must obtain before it enters the pipeline.

mod budget;

pub use budget::{Budget, Reservation};
