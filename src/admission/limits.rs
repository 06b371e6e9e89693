//! Per-app rate limits: token buckets (governor's GCRA) for events/s and bytes/s, one default
//! for every app and overrides by app key. The clock is a parameter so that tests can drive it.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::config::{Excess, LimitsConfig};

type Keyed<C> =
    RateLimiter<Arc<str>, DashMapStateStore<Arc<str>>, C, NoOpMiddleware<<C as Clock>::Instant>>;
type Direct<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// A rate and its burst, as governor wants them; `None` when the rate is 0 (no limit).
fn quota(per_second: u64, burst: u64) -> Option<Quota> {
    let rate = NonZeroU32::new(per_second.min(u64::from(u32::MAX)) as u32)?;
    let burst = NonZeroU32::new(burst.min(u64::from(u32::MAX)) as u32).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

/// What an app's events must wait for, or be dropped for.
enum Bucket<C: Clock> {
    /// Apps without an override share one keyed limiter per dimension.
    Shared(Arc<Keyed<C>>),
    Own(Arc<Direct<C>>),
}

impl<C: Clock> Bucket<C> {
    /// Takes `n` cells now, or says how long until they conform. `n` above the burst can never
    /// conform at once: the caller splits.
    fn take(&self, app: &Arc<str>, n: NonZeroU32, clock: &C) -> Result<(), Duration> {
        let outcome = match self {
            Bucket::Shared(l) => l.check_key_n(app, n),
            Bucket::Own(l) => l.check_n(n),
        };
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until
                .wait_time_from(clock.now())
                .max(Duration::from_micros(100))),
            // Only reachable when n exceeds the burst, which `burst()` prevents.
            Err(_) => Err(Duration::from_millis(1)),
        }
    }
}

/// One dimension (events or bytes) of one app's limit.
struct Dimension<C: Clock> {
    bucket: Bucket<C>,
    burst: u32,
}

/// The limits of one app, found once per batch.
pub struct AppRule<C: Clock = DefaultClock> {
    events: Option<Arc<Dimension<C>>>,
    bytes: Option<Arc<Dimension<C>>>,
    pub excess: Excess,
}

impl<C: Clock> Clone for AppRule<C> {
    fn clone(&self) -> Self {
        AppRule {
            events: self.events.clone(),
            bytes: self.bytes.clone(),
            excess: self.excess,
        }
    }
}

impl<C: Clock> AppRule<C> {
    pub fn is_unlimited(&self) -> bool {
        self.events.is_none() && self.bytes.is_none()
    }

    /// Takes one event of `size` bytes now, or says how long until it could pass.
    pub fn take_one(&self, app: &Arc<str>, size: usize, clock: &C) -> Result<(), Duration> {
        if let Some(d) = &self.events {
            d.bucket.take(app, NonZeroU32::MIN, clock)?;
        }
        if let Some(d) = &self.bytes {
            let n = (size.clamp(1, d.burst as usize)) as u32;
            d.bucket
                .take(app, NonZeroU32::new(n).expect("at least 1"), clock)?;
        }
        Ok(())
    }

    /// The largest piece of (events, bytes) that can ever pass at once.
    pub fn burst(&self) -> (u32, u32) {
        (
            self.events.as_ref().map_or(u32::MAX, |d| d.burst),
            self.bytes.as_ref().map_or(u32::MAX, |d| d.burst),
        )
    }

    /// Takes `events` events of `bytes` bytes (each at most the bursts), or says how long to
    /// wait. The events are taken first: a wait for bytes then repeats with `events = 0`.
    pub fn take(
        &self,
        app: &Arc<str>,
        events: u32,
        bytes: u32,
        clock: &C,
    ) -> Result<(), (Duration, bool)> {
        if let (Some(d), Some(n)) = (&self.events, NonZeroU32::new(events)) {
            d.bucket.take(app, n, clock).map_err(|wait| (wait, false))?;
        }
        if let (Some(d), Some(n)) = (&self.bytes, NonZeroU32::new(bytes)) {
            d.bucket.take(app, n, clock).map_err(|wait| (wait, true))?;
        }
        Ok(())
    }
}

/// Every app's rule, built from `[limits]`; replaced whole on reload.
pub struct Limits<C: Clock = DefaultClock> {
    default: AppRule<C>,
    overrides: HashMap<Arc<str>, AppRule<C>>,
    shared: Vec<Arc<Keyed<C>>>,
    pub clock: C,
}

impl<C: Clock + Clone> Limits<C> {
    pub fn new(config: &LimitsConfig, clock: C) -> Limits<C> {
        let shared_dim = |per_second: u64, burst: u64, shared: &mut Vec<Arc<Keyed<C>>>| {
            quota(per_second, burst).map(|q| {
                let limiter = Arc::new(Keyed::dashmap_with_clock(q, clock.clone()));
                shared.push(limiter.clone());
                Arc::new(Dimension {
                    bucket: Bucket::Shared(limiter),
                    burst: q.burst_size().get(),
                })
            })
        };
        let own_dim = |per_second: u64, burst: u64| {
            quota(per_second, burst).map(|q| {
                Arc::new(Dimension {
                    bucket: Bucket::Own(Arc::new(Direct::direct_with_clock(q, clock.clone()))),
                    burst: q.burst_size().get(),
                })
            })
        };
        let mut shared = Vec::new();
        let default = AppRule {
            events: shared_dim(
                u64::from(config.events_per_second),
                u64::from(config.events_burst),
                &mut shared,
            ),
            bytes: shared_dim(config.bytes_per_second.0, config.bytes_burst.0, &mut shared),
            excess: config.on_excess,
        };
        let overrides = config
            .apps
            .iter()
            .map(|(app, o)| {
                let rule = AppRule {
                    events: own_dim(
                        u64::from(o.events_per_second.unwrap_or(config.events_per_second)),
                        u64::from(o.events_burst.unwrap_or(config.events_burst)),
                    ),
                    bytes: own_dim(
                        o.bytes_per_second.unwrap_or(config.bytes_per_second).0,
                        o.bytes_burst.unwrap_or(config.bytes_burst).0,
                    ),
                    excess: o.on_excess.unwrap_or(config.on_excess),
                };
                (Arc::from(app.as_str()), rule)
            })
            .collect();
        Limits {
            default,
            overrides,
            shared,
            clock,
        }
    }

    pub fn rule(&self, app: &str) -> &AppRule<C> {
        self.overrides.get(app).unwrap_or(&self.default)
    }

    /// Forgets apps whose buckets are full again, so that a stream of one-off app names does
    /// not grow the limiters without bound.
    pub fn forget_idle(&self) {
        for limiter in &self.shared {
            limiter.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;
    use crate::config::{AppLimits, ByteSize};

    fn limits(config: LimitsConfig) -> (Limits<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (Limits::new(&config, clock.clone()), clock)
    }

    /// How many of `n` single events of `size` bytes pass now.
    fn passed(l: &Limits<FakeRelativeClock>, app: &str, n: usize, size: usize) -> usize {
        let app: Arc<str> = Arc::from(app);
        (0..n)
            .filter(|_| l.rule(&app).take_one(&app, size, &l.clock).is_ok())
            .count()
    }

    #[test]
    fn rates_bursts_and_refill() {
        let (l, clock) = limits(LimitsConfig {
            events_per_second: 100,
            events_burst: 20,
            ..Default::default()
        });
        assert_eq!(passed(&l, "a", 50, 10), 20, "the burst passes at once");
        assert_eq!(passed(&l, "b", 50, 10), 20, "each app has its own bucket");
        clock.advance(Duration::from_millis(100));
        assert_eq!(passed(&l, "a", 50, 10), 10, "100/s refills 10 in 100 ms");
        clock.advance(Duration::from_secs(10));
        assert_eq!(passed(&l, "a", 50, 10), 20, "never more than the burst");
    }

    #[test]
    fn a_zero_burst_is_one_seconds_worth_and_zero_rates_are_unlimited() {
        let (l, _) = limits(LimitsConfig {
            events_per_second: 30,
            ..Default::default()
        });
        assert_eq!(passed(&l, "a", 100, 10), 30);
        let (l, _) = limits(LimitsConfig::default());
        assert!(l.rule("a").is_unlimited());
        assert_eq!(passed(&l, "a", 10_000, 10_000), 10_000);
    }

    #[test]
    fn bytes_are_limited_too() {
        let (l, clock) = limits(LimitsConfig {
            bytes_per_second: ByteSize(1000),
            ..Default::default()
        });
        assert_eq!(passed(&l, "a", 100, 100), 10);
        clock.advance(Duration::from_millis(500));
        assert_eq!(passed(&l, "a", 100, 100), 5);
    }

    #[test]
    fn overrides_replace_what_they_name_and_inherit_the_rest() {
        let mut apps = std::collections::BTreeMap::new();
        apps.insert(
            "billing".to_owned(),
            AppLimits {
                events_per_second: Some(5),
                on_excess: Some(Excess::Drop),
                ..Default::default()
            },
        );
        let (l, _) = limits(LimitsConfig {
            events_per_second: 50,
            bytes_per_second: ByteSize(120),
            apps,
            ..Default::default()
        });
        assert_eq!(l.rule("billing").excess, Excess::Drop);
        assert_eq!(l.rule("web").excess, Excess::Throttle);
        assert_eq!(passed(&l, "billing", 100, 1), 5);
        assert_eq!(passed(&l, "web", 100, 1), 50);
        let (l2, _) = limits(LimitsConfig {
            bytes_per_second: ByteSize(30),
            apps: [(
                "x".to_owned(),
                AppLimits {
                    events_per_second: Some(100),
                    ..Default::default()
                },
            )]
            .into(),
            ..Default::default()
        });
        assert_eq!(
            passed(&l2, "x", 100, 10),
            3,
            "the inherited byte limit binds"
        );
    }

    #[test]
    fn a_wait_is_reported_when_cells_do_not_conform() {
        let (l, clock) = limits(LimitsConfig {
            events_per_second: 10,
            events_burst: 10,
            ..Default::default()
        });
        let app: Arc<str> = Arc::from("a");
        let rule = l.rule(&app);
        assert_eq!(rule.burst().0, 10);
        assert!(rule.take(&app, 10, 0, &clock).is_ok());
        let (wait, bytes) = rule.take(&app, 5, 0, &clock).unwrap_err();
        assert!(!bytes);
        assert_eq!(wait, Duration::from_millis(500), "5 events at 10/s");
        clock.advance(wait);
        assert!(rule.take(&app, 5, 0, &clock).is_ok());
    }

    #[test]
    fn idle_apps_are_forgotten() {
        let (l, clock) = limits(LimitsConfig {
            events_per_second: 10,
            ..Default::default()
        });
        for i in 0..1000 {
            passed(&l, &format!("app-{i}"), 1, 1);
        }
        clock.advance(Duration::from_secs(5));
        l.forget_idle();
        let Bucket::Shared(shared) = &l.default.events.as_ref().unwrap().bucket else {
            panic!()
        };
        assert_eq!(shared.len(), 0);
    }
}
