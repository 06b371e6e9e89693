//! Rate-limited warnings.

/// Lets a warning through at most once per interval, counting what it held back, so that a
/// flood of bad input cannot flood the log as well.
pub struct WarnLimiter {
    interval: std::time::Duration,
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl WarnLimiter {
    pub fn new(interval: std::time::Duration) -> WarnLimiter {
        WarnLimiter {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// Some(number of warnings suppressed since the last one) when this one may be logged.
    pub fn allow(&mut self) -> Option<u64> {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.interval)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}
