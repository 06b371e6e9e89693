//! Fairness: each app may hold at most a share of the in-flight budget, so that one app flooding
//! one connection cannot take the whole budget and starve the apps on other connections.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Shares are counted in KiB, like the budget.
const UNIT: usize = 1024;
/// Beyond this many apps, apps holding nothing are forgotten.
const SWEEP_AT: usize = 4096;

pub struct Shares {
    units: usize,
    apps: Mutex<HashMap<Arc<str>, Arc<Semaphore>>>,
}

impl Shares {
    /// Each app may hold `share` of `budget_bytes` (at least one unit).
    pub fn new(budget_bytes: u64, share: f64) -> Shares {
        let units = ((budget_bytes as f64 * share) as usize / UNIT).max(1);
        Shares {
            units,
            apps: Mutex::new(HashMap::new()),
        }
    }

    fn semaphore(&self, app: &Arc<str>) -> Arc<Semaphore> {
        let mut apps = self.apps.lock().expect("not poisoned");
        if let Some(s) = apps.get(app) {
            return s.clone();
        }
        if apps.len() >= SWEEP_AT {
            apps.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < self.units);
        }
        let s = Arc::new(Semaphore::new(self.units));
        apps.insert(app.clone(), s.clone());
        s
    }

    fn units_of(&self, bytes: usize) -> u32 {
        // A batch larger than a whole share may still pass alone rather than wait forever.
        bytes.div_ceil(UNIT).clamp(1, self.units) as u32
    }

    /// Waits until `app` may hold `bytes` more.
    pub async fn acquire(&self, app: &Arc<str>, bytes: usize) -> OwnedSemaphorePermit {
        self.semaphore(app)
            .acquire_many_owned(self.units_of(bytes))
            .await
            .expect("share semaphores are never closed")
    }

    /// `bytes` more for `app` if its share has room now (UDP: no waiting).
    pub fn try_acquire(&self, app: &Arc<str>, bytes: usize) -> Option<OwnedSemaphorePermit> {
        self.semaphore(app)
            .try_acquire_many_owned(self.units_of(bytes))
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_app_cannot_hold_more_than_its_share_while_others_still_can() {
        let shares = Shares::new(1 << 20, 0.25);
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let held = shares.acquire(&a, 200 << 10).await;
        assert!(
            shares.try_acquire(&a, 100 << 10).is_none(),
            "a is at its 256 KiB share"
        );
        let other = shares.try_acquire(&b, 200 << 10);
        assert!(other.is_some(), "b is not held back by a");
        drop(held);
        assert!(
            shares.try_acquire(&a, 100 << 10).is_some(),
            "a's share comes back after commit"
        );
        // A batch larger than a share passes alone.
        assert!(shares.try_acquire(&Arc::from("c"), 10 << 20).is_some());
    }

    #[test]
    fn idle_apps_are_forgotten() {
        let shares = Shares::new(1 << 20, 0.5);
        let kept = shares.try_acquire(&Arc::from("busy"), 1024).unwrap();
        for i in 0..(SWEEP_AT + 10) {
            drop(shares.try_acquire(&Arc::from(format!("app-{i}")), 1024));
        }
        let apps = shares.apps.lock().unwrap();
        assert!(apps.len() < SWEEP_AT, "{}", apps.len());
        assert!(apps.contains_key("busy"), "an app holding bytes is kept");
        drop(apps);
        drop(kept);
    }
}
