//! Admission: what a batch must obtain before it enters the pipeline — its bytes of the global
//! in-flight budget (reserved by the source before it builds the events), then, per app, the
//! rate limits and the app's share of that budget.

mod app_metrics;
mod budget;
mod limits;
mod share;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use tokio::sync::OwnedSemaphorePermit;

pub use app_metrics::{AppMetrics, OTHER};
pub use budget::{Budget, Reservation};
pub use limits::Limits;
pub use share::Shares;

use crate::config::{Excess, LimitsConfig};
use crate::event::Event;
use crate::warn_limit::WarnLimiter;

type Sleep = Arc<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The rules in force; replaced whole on reload (SIGHUP).
struct Rules<C: Clock> {
    limits: Limits<C>,
    shares: Arc<Shares>,
    share: f64,
}

/// Per-app limits and shares, applied to every batch on its way to the sink.
pub struct Admission<C: Clock = DefaultClock> {
    rules: RwLock<Arc<Rules<C>>>,
    budget_bytes: u64,
    clock: C,
    sleep: Sleep,
    metrics: AppMetrics,
    drop_warning: std::sync::Mutex<WarnLimiter>,
}

/// What passed admission: the events left (in their order) and the app shares they hold until
/// they are committed.
pub struct Admitted {
    pub events: Vec<Event>,
    pub shares: Vec<OwnedSemaphorePermit>,
}

impl Admission<DefaultClock> {
    pub fn new(config: &LimitsConfig, budget_bytes: u64) -> Admission {
        Admission::with_clock(
            config,
            budget_bytes,
            DefaultClock::default(),
            Arc::new(|d| Box::pin(tokio::time::sleep(d))),
        )
    }
}

impl<C: Clock + Clone + Send + Sync> Admission<C> {
    fn with_clock(
        config: &LimitsConfig,
        budget_bytes: u64,
        clock: C,
        sleep: Sleep,
    ) -> Admission<C> {
        Admission {
            rules: RwLock::new(Arc::new(Rules {
                limits: Limits::new(config, clock.clone()),
                shares: Arc::new(Shares::new(budget_bytes, config.app_share)),
                share: config.app_share,
            })),
            budget_bytes,
            clock,
            sleep,
            metrics: AppMetrics::new(config.max_app_labels),
            drop_warning: std::sync::Mutex::new(WarnLimiter::new(Duration::from_secs(10))),
        }
    }

    /// New limits from a reloaded configuration. Batches already admitted keep what they hold;
    /// the buckets start full. (`max_app_labels` keeps its value from startup.)
    pub fn reload(&self, config: &LimitsConfig) {
        let old = self.current();
        // The shares in use stay counted unless their size changes.
        let shares = if old.share == config.app_share {
            old.shares.clone()
        } else {
            Arc::new(Shares::new(self.budget_bytes, config.app_share))
        };
        let rules = Rules {
            limits: Limits::new(config, self.clock.clone()),
            shares,
            share: config.app_share,
        };
        *self.rules.write().expect("not poisoned") = Arc::new(rules);
    }

    /// Lets the limiters forget apps that have been quiet (called now and then).
    pub fn forget_idle(&self) {
        self.current().limits.forget_idle();
    }

    fn current(&self) -> Arc<Rules<C>> {
        self.rules.read().expect("not poisoned").clone()
    }

    /// Applies each app's limits and share to `events`. A stream source (`can_wait`) waits
    /// where an app is over its rate in `throttle` mode, or over its share: that connection
    /// slows down, nobody else. A datagram source cannot wait: such events are dropped and
    /// counted, as are events over their rate in `drop` mode.
    ///
    /// Before it waits, it drops `held` (the batch's global reservation), so that a batch
    /// waiting on its own app holds nothing the other apps need; the caller reserves again.
    pub async fn admit<T>(
        &self,
        mut events: Vec<Event>,
        can_wait: bool,
        held: &mut Option<T>,
    ) -> Admitted {
        let rules = self.current();
        let mut shares = Vec::new();
        // The apps of this batch with their event counts and bytes; almost always one.
        let mut apps: Vec<(Arc<str>, u32, usize)> = Vec::new();
        for e in &events {
            match apps
                .iter_mut()
                .find(|(a, _, _)| Arc::ptr_eq(a, &e.app) || **a == *e.app)
            {
                Some(entry) => {
                    entry.1 += 1;
                    entry.2 += e.value.len();
                }
                None => apps.push((e.app.clone(), 1, e.value.len())),
            }
        }
        // Shares are taken in one order for every batch: a batch holding a's share while it
        // waits for b's, and another holding b's while it waits for a's, would wait forever.
        apps.sort_unstable_by(|x, y| x.0.cmp(&y.0));
        let mut dropped_apps: Vec<Arc<str>> = Vec::new();
        let mut keep: Option<Vec<bool>> = None;
        for (app, count, bytes) in &apps {
            let counters = self.metrics.of(app);
            counters.events.increment(u64::from(*count));
            counters.bytes.increment(*bytes as u64);
            let rule = rules.limits.rule(app);
            let mut kept_bytes = *bytes;
            if !rule.is_unlimited() {
                if can_wait && rule.excess == Excess::Throttle {
                    let waited = self.throttle(rule, app, *count, *bytes, held).await;
                    if !waited.is_zero() {
                        counters.throttled_ms.increment(waited.as_millis() as u64);
                    }
                } else {
                    let flags = keep.get_or_insert_with(|| vec![true; events.len()]);
                    let mut dropped = 0;
                    for (e, flag) in events.iter().zip(flags.iter_mut()) {
                        if *flag
                            && e.app == *app
                            && rule.take_one(app, e.value.len(), &self.clock).is_err()
                        {
                            *flag = false;
                            dropped += 1;
                            kept_bytes -= e.value.len();
                        }
                    }
                    if dropped > 0 {
                        counters.dropped_rate.increment(dropped);
                        self.warn_dropped(app, dropped, "over its rate limit");
                    }
                }
            }
            if kept_bytes == 0 && rule.excess == Excess::Drop {
                continue;
            }
            if can_wait {
                match rules.shares.try_acquire(app, kept_bytes) {
                    Some(p) => shares.push(p),
                    None => {
                        held.take();
                        shares.push(rules.shares.acquire(app, kept_bytes).await);
                    }
                }
            } else {
                match rules.shares.try_acquire(app, kept_bytes) {
                    Some(p) => shares.push(p),
                    None => dropped_apps.push(app.clone()),
                }
            }
        }
        for app in &dropped_apps {
            let flags = keep.get_or_insert_with(|| vec![true; events.len()]);
            let mut dropped = 0;
            for (e, flag) in events.iter().zip(flags.iter_mut()) {
                if *flag && e.app == *app {
                    *flag = false;
                    dropped += 1;
                }
            }
            self.metrics.of(app).dropped_share.increment(dropped);
            self.warn_dropped(
                app,
                dropped,
                "holding its whole share of the in-flight budget",
            );
        }
        if let Some(flags) = keep {
            let mut flags = flags.into_iter();
            events.retain(|_| flags.next().unwrap_or(true));
        }
        Admitted { events, shares }
    }

    /// Waits until `count` events of `bytes` bytes conform to the app's rates, in pieces no
    /// larger than its bursts. Returns how long it waited.
    async fn throttle<T>(
        &self,
        rule: &limits::AppRule<C>,
        app: &Arc<str>,
        count: u32,
        bytes: usize,
        held: &mut Option<T>,
    ) -> Duration {
        let (burst_events, burst_bytes) = rule.burst();
        let mut waited = Duration::ZERO;
        let (mut events_left, mut bytes_left) = (count, bytes.min(u32::MAX as usize) as u32);
        while events_left > 0 || bytes_left > 0 {
            let mut e = events_left.min(burst_events);
            let b = bytes_left.min(burst_bytes);
            loop {
                match rule.take(app, e, b, &self.clock) {
                    Ok(()) => break,
                    Err((wait, bytes_only)) => {
                        if bytes_only {
                            // The events were taken; only the bytes are still owed.
                            events_left -= e;
                            e = 0;
                        }
                        held.take();
                        (self.sleep)(wait).await;
                        waited += wait;
                    }
                }
            }
            events_left -= e;
            bytes_left -= b;
        }
        waited
    }

    fn warn_dropped(&self, app: &str, dropped: u64, why: &str) {
        if let Some(suppressed) = self.drop_warning.lock().expect("not poisoned").allow() {
            tracing::warn!(
                app,
                dropped,
                earlier_warnings_suppressed = suppressed,
                "app {why}: events dropped (see logport_app_events_dropped_total)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Mutex;

    use bytes::Bytes;
    use governor::clock::FakeRelativeClock;

    use super::*;
    use crate::config::{AppLimits, ByteSize};
    use crate::event::Protocol;

    fn event(app: &str, i: usize, size: usize) -> Event {
        let mut value = format!("{i:08}").into_bytes();
        value.resize(size.max(8), b'x');
        Event {
            app: Arc::from(app),
            protocol: Protocol::Syslog,
            peer: SocketAddr::from(([127, 0, 0, 1], 1)),
            received_ns: 0,
            value: Bytes::from(value),
        }
    }

    impl Admission<FakeRelativeClock> {
        async fn admit_now(&self, events: Vec<Event>, can_wait: bool) -> Admitted {
            let mut held = Some(());
            self.admit(events, can_wait, &mut held).await
        }
    }

    /// An admission on a fake clock whose "sleep" advances that clock at once and records it.
    fn admission(config: LimitsConfig) -> (Admission<FakeRelativeClock>, Arc<Mutex<Duration>>) {
        let clock = FakeRelativeClock::default();
        let slept = Arc::new(Mutex::new(Duration::ZERO));
        let (c, s) = (clock.clone(), slept.clone());
        let sleep: Sleep = Arc::new(move |d| {
            c.advance(d);
            *s.lock().unwrap() += d;
            Box::pin(async {})
        });
        (
            Admission::with_clock(&config, 64 << 20, clock, sleep),
            slept,
        )
    }

    #[tokio::test]
    async fn throttle_mode_delays_and_keeps_every_event() {
        let (a, slept) = admission(LimitsConfig {
            events_per_second: 10,
            events_burst: 10,
            ..Default::default()
        });
        let got = a
            .admit_now((0..100).map(|i| event("a", i, 10)).collect(), true)
            .await;
        assert_eq!(got.events.len(), 100);
        assert_eq!(
            *slept.lock().unwrap(),
            Duration::from_secs(9),
            "90 events beyond the burst at 10/s"
        );
        // A stream of another app is not delayed by a's debt.
        *slept.lock().unwrap() = Duration::ZERO;
        let got = a
            .admit_now((0..10).map(|i| event("b", i, 10)).collect(), true)
            .await;
        assert_eq!(
            (got.events.len(), *slept.lock().unwrap()),
            (10, Duration::ZERO)
        );
    }

    #[tokio::test]
    async fn a_batch_gives_its_budget_back_while_it_waits_for_its_app() {
        let (a, _) = admission(LimitsConfig {
            events_per_second: 10,
            ..Default::default()
        });
        let mut held = Some(());
        a.admit((0..5).map(|i| event("a", i, 10)).collect(), true, &mut held)
            .await;
        assert!(held.is_some(), "within its rate: the reservation is kept");
        a.admit(
            (0..50).map(|i| event("a", i, 10)).collect(),
            true,
            &mut held,
        )
        .await;
        assert!(
            held.is_none(),
            "a throttled batch must not hold the global budget while it sleeps"
        );
    }

    #[tokio::test]
    async fn throttling_by_bytes_counts_bytes() {
        let (a, slept) = admission(LimitsConfig {
            bytes_per_second: ByteSize(1000),
            ..Default::default()
        });
        let got = a
            .admit_now((0..30).map(|i| event("a", i, 100)).collect(), true)
            .await;
        assert_eq!(got.events.len(), 30);
        assert_eq!(
            *slept.lock().unwrap(),
            Duration::from_secs(2),
            "3000 bytes at 1000/s with a 1000 burst"
        );
    }

    #[tokio::test]
    async fn drop_mode_and_datagrams_drop_what_exceeds_and_keep_order() {
        let (a, slept) = admission(LimitsConfig {
            events_per_second: 5,
            on_excess: Excess::Drop,
            ..Default::default()
        });
        let batch: Vec<Event> = (0..20)
            .map(|i| event(if i % 2 == 0 { "a" } else { "b" }, i, 10))
            .collect();
        let got = a.admit_now(batch, true).await;
        let kept: Vec<(String, String)> = got
            .events
            .iter()
            .map(|e| {
                (
                    e.app.to_string(),
                    String::from_utf8_lossy(&e.value[..8]).into_owned(),
                )
            })
            .collect();
        assert_eq!(kept.len(), 10, "5 of a, 5 of b");
        assert_eq!(kept[0], ("a".into(), "00000000".into()));
        assert_eq!(
            kept[1],
            ("b".into(), "00000001".into()),
            "order kept across apps"
        );
        assert_eq!(
            *slept.lock().unwrap(),
            Duration::ZERO,
            "drop mode never waits"
        );

        // Throttle mode, but a datagram source cannot wait: it drops.
        let (a, slept) = admission(LimitsConfig {
            events_per_second: 5,
            ..Default::default()
        });
        let got = a
            .admit_now((0..20).map(|i| event("a", i, 10)).collect(), false)
            .await;
        assert_eq!(
            (got.events.len(), *slept.lock().unwrap()),
            (5, Duration::ZERO)
        );
    }

    #[tokio::test]
    async fn overrides_apply_per_app() {
        let apps = [(
            "noisy".to_owned(),
            AppLimits {
                events_per_second: Some(2),
                on_excess: Some(Excess::Drop),
                ..Default::default()
            },
        )]
        .into();
        let (a, _) = admission(LimitsConfig {
            events_per_second: 100,
            apps,
            ..Default::default()
        });
        assert_eq!(
            a.admit_now((0..50).map(|i| event("noisy", i, 10)).collect(), true)
                .await
                .events
                .len(),
            2
        );
        assert_eq!(
            a.admit_now((0..50).map(|i| event("quiet", i, 10)).collect(), true)
                .await
                .events
                .len(),
            50
        );
    }

    #[tokio::test]
    async fn reload_replaces_the_limits() {
        let (a, _) = admission(LimitsConfig {
            events_per_second: 2,
            on_excess: Excess::Drop,
            ..Default::default()
        });
        assert_eq!(
            a.admit_now((0..10).map(|i| event("a", i, 10)).collect(), true)
                .await
                .events
                .len(),
            2
        );
        a.reload(&LimitsConfig {
            events_per_second: 8,
            on_excess: Excess::Drop,
            ..Default::default()
        });
        assert_eq!(
            a.admit_now((0..10).map(|i| event("a", i, 10)).collect(), true)
                .await
                .events
                .len(),
            8
        );
        a.reload(&LimitsConfig::default());
        assert_eq!(
            a.admit_now((0..1000).map(|i| event("a", i, 10)).collect(), true)
                .await
                .events
                .len(),
            1000
        );
    }

    #[tokio::test]
    async fn batches_of_several_apps_never_wait_for_each_other_s_shares() {
        // 64 MiB budget, 1/64 each: 1 MiB per app; each batch wants all of a's and b's.
        let a = Arc::new(
            admission(LimitsConfig {
                app_share: 1.0 / 64.0,
                ..Default::default()
            })
            .0,
        );
        let batch = |first: &str, second: &str| -> Vec<Event> {
            (0..8)
                .map(|i| event(first, i, 128 << 10))
                .chain((0..8).map(|i| event(second, i, 128 << 10)))
                .collect()
        };
        // Something of b is in flight: the [b, a] batch queues for b first...
        let b_in_flight = a.admit_now(vec![event("b", 0, 1000)], true).await;
        let ba = tokio::spawn({
            let a = a.clone();
            let events = batch("b", "a");
            async move { a.admit_now(events, true).await.shares.len() }
        });
        tokio::task::yield_now().await;
        // ...then the [a, b] batch, which in event order would take a's whole share and
        // queue for b behind it; once b is free, [b, a] would hold b and wait for a.
        let ab = tokio::spawn({
            let a = a.clone();
            let events = batch("a", "b");
            async move {
                let admitted = a.admit_now(events, true).await;
                let n = admitted.shares.len();
                drop(admitted); // committed: its shares come back
                n
            }
        });
        tokio::task::yield_now().await;
        drop(b_in_flight);
        let both = tokio::time::timeout(Duration::from_secs(5), async {
            (ab.await.unwrap(), ba.await.unwrap())
        })
        .await
        .expect("the two batches deadlocked on each other's app shares");
        assert_eq!(both, (2, 2));
    }

    #[tokio::test]
    async fn an_app_over_its_share_waits_or_drops_without_touching_others() {
        // 64 MiB budget, 1/64 each: 1 MiB per app.
        let (a, _) = admission(LimitsConfig {
            app_share: 1.0 / 64.0,
            ..Default::default()
        });
        let held = a
            .admit_now(
                (0..10).map(|i| event("flood", i, 120 << 10)).collect(),
                true,
            )
            .await;
        assert_eq!(
            held.events.len(),
            10,
            "a batch larger than a share passes alone"
        );
        // Datagrams of the flooding app are dropped while it holds its share; others pass.
        assert!(a
            .admit_now(vec![event("flood", 99, 1000)], false)
            .await
            .events
            .is_empty());
        assert_eq!(
            a.admit_now(vec![event("calm", 0, 1000)], false)
                .await
                .events
                .len(),
            1
        );
        // A stream of the flooding app waits until its earlier batch is committed.
        let waiting = a.admit_now(vec![event("flood", 100, 1000)], true);
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut waiting)
                .await
                .is_err(),
            "must wait for its share"
        );
        drop(held);
        assert_eq!(waiting.await.events.len(), 1);
    }
}
