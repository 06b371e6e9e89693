//! Per-app counters with a cap on distinct `app` labels: a million app names must not blow up
//! the metrics endpoint, so apps beyond the cap share the label `_other`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use metrics::Counter;

/// The label of every app past the cap.
pub const OTHER: &str = "_other";

pub struct AppCounters {
    pub events: Counter,
    pub bytes: Counter,
    pub dropped_rate: Counter,
    pub dropped_share: Counter,
    pub throttled_ms: Counter,
}

impl AppCounters {
    fn new(app: &str) -> AppCounters {
        let app = app.to_owned();
        AppCounters {
            events: metrics::counter!("logport_app_events_total", "app" => app.clone()),
            bytes: metrics::counter!("logport_app_bytes_total", "app" => app.clone()),
            dropped_rate: metrics::counter!("logport_app_events_dropped_total", "app" => app.clone(), "reason" => "rate_limit"),
            dropped_share: metrics::counter!("logport_app_events_dropped_total", "app" => app.clone(), "reason" => "app_share"),
            throttled_ms: metrics::counter!("logport_app_throttled_milliseconds_total", "app" => app),
        }
    }
}

pub struct AppMetrics {
    max: usize,
    apps: Mutex<HashMap<Arc<str>, Arc<AppCounters>>>,
    other: Arc<AppCounters>,
}

impl AppMetrics {
    pub fn new(max_labels: usize) -> AppMetrics {
        AppMetrics {
            max: max_labels,
            apps: Mutex::new(HashMap::new()),
            other: Arc::new(AppCounters::new(OTHER)),
        }
    }

    /// The counters of `app`: its own while fewer than the cap have been seen, else `_other`'s.
    pub fn of(&self, app: &Arc<str>) -> Arc<AppCounters> {
        let mut apps = self.apps.lock().expect("not poisoned");
        if let Some(c) = apps.get(app) {
            return c.clone();
        }
        if apps.len() >= self.max {
            return self.other.clone();
        }
        let c = Arc::new(AppCounters::new(app));
        apps.insert(app.clone(), c.clone());
        c
    }

    /// Apps with a label of their own.
    pub fn labelled(&self) -> usize {
        self.apps.lock().expect("not poisoned").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_capped() {
        let m = AppMetrics::new(3);
        for i in 0..100 {
            m.of(&Arc::from(format!("app-{i}")));
        }
        assert_eq!(m.labelled(), 3);
        assert!(Arc::ptr_eq(&m.of(&Arc::from("app-50")), &m.other));
        assert!(
            !Arc::ptr_eq(&m.of(&Arc::from("app-1")), &m.other),
            "the first apps keep theirs"
        );
    }
}
