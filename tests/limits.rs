//! Per-app rate limits and fairness over real sockets: a flooding app is dropped or slowed while
//! an app within its limit on another connection gets every event through; limits reload on
//! SIGHUP without dropping connections; per-app metric labels are capped.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use logport::event::Event;

fn frame(app: &str, i: u64) -> Vec<u8> {
    let line = format!("<14>1 2026-11-25T04:00:00.000Z host {app} - - - event {i:08}");
    format!("{} {line}", line.len()).into_bytes()
}

/// Sends `n` events of `app` at once, in chunks, on a new connection.
fn flood(addr: SocketAddr, app: &'static str, n: u64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|&i| frame(app, i)).collect();
            s.write_all(&bytes).unwrap();
        }
    })
}

/// Sends `n` events of `app` at `per_second` on a new connection.
fn trickle(
    addr: SocketAddr,
    app: &'static str,
    n: u64,
    per_second: u64,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        for i in 0..n {
            s.write_all(&frame(app, i)).unwrap();
            std::thread::sleep(Duration::from_millis(1000 / per_second));
        }
    })
}

fn count(events: &[Event], app: &str) -> usize {
    events.iter().filter(|e| &*e.app == app).count()
}

fn committed(gw: &Gateway, app: &str) -> usize {
    count(&gw.events(), app)
}

#[test]
fn drop_mode_keeps_a_flooding_app_to_its_limit_and_lets_the_others_through() {
    let gw = Gateway::start(
        SYSLOG_TCP,
        "[limits]\nevents_per_second = 50\non_excess = \"drop\"\n",
    );
    let started = Instant::now();
    let f = flood(gw.addr(), "flood", 20_000);
    let c = trickle(gw.addr(), "calm", 40, 20);
    f.join().unwrap();
    c.join().unwrap();
    let events = gw.wait_for_events(40, Duration::from_secs(20));
    let elapsed = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    let events_now = gw.events();
    assert_eq!(
        count(&events_now, "calm"),
        40,
        "every event of the app within its limit is committed"
    );
    let flooded = count(&events_now, "flood");
    // One second's burst plus the rate over the time it sent.
    let allowed = 50.0 + 50.0 * (elapsed + 1.0);
    assert!(
        flooded >= 40 && (flooded as f64) <= allowed,
        "flood: {flooded} committed, at most {allowed} allowed"
    );
    let m = gw.metrics();
    let dropped = metric(
        &m,
        "logport_app_events_dropped_total",
        &[("app", "flood"), ("reason", "rate_limit")],
    );
    assert_eq!(
        dropped as usize + flooded,
        20_000,
        "every flood event is committed or counted as dropped"
    );
    assert_eq!(
        metric(&m, "logport_app_events_dropped_total", &[("app", "calm")]),
        0.0
    );
    assert_eq!(
        metric(&m, "logport_app_events_total", &[("app", "calm")]),
        40.0
    );
    assert!(
        gw.log().contains("over its rate limit"),
        "a warning names the app"
    );
    drop(events);
}

#[test]
fn throttle_mode_slows_the_flooding_connection_only_and_loses_nothing() {
    let gw = Gateway::start(SYSLOG_TCP, "[limits]\nevents_per_second = 500\n");
    let started = Instant::now();
    let f = flood(gw.addr(), "flood", 3_000);
    std::thread::sleep(Duration::from_millis(200));
    let c = trickle(gw.addr(), "calm", 20, 20);
    c.join().unwrap();
    // The calm app's events arrive while the flood is still being held back.
    let deadline = Instant::now() + Duration::from_secs(5);
    while committed(&gw, "calm") < 20 {
        assert!(
            Instant::now() < deadline,
            "calm events are stuck behind the flooding app"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let at = started.elapsed().as_secs_f64();
    let flood_so_far = committed(&gw, "flood");
    let allowed = 500.0 + 500.0 * (at + 0.5);
    assert!(
        (flood_so_far as f64) <= allowed,
        "flood: {flood_so_far} committed after {at:.1} s, at most {allowed}"
    );
    assert!(flood_so_far < 3_000, "the flood was not slowed at all");
    f.join().unwrap();
    let events = gw.wait_for_events(3_020, Duration::from_secs(30));
    assert_eq!(
        count(&events, "flood"),
        3_000,
        "throttling delays, it never drops"
    );
    let took = started.elapsed().as_secs_f64();
    assert!(
        took >= 4.0,
        "3000 events at 500/s (500 burst) cannot all pass in {took:.1} s"
    );
    let m = gw.metrics();
    assert!(
        metric(
            &m,
            "logport_app_throttled_milliseconds_total",
            &[("app", "flood")]
        ) > 1000.0
    );
    assert_eq!(
        metric(
            &m,
            "logport_app_throttled_milliseconds_total",
            &[("app", "calm")]
        ),
        0.0
    );
    assert_eq!(metric(&m, "logport_app_events_dropped_total", &[]), 0.0);
}

#[test]
fn limits_reload_on_sighup_and_a_bad_reload_keeps_the_old_ones() {
    let gw = Gateway::start(
        SYSLOG_TCP,
        "[limits]\nevents_per_second = 10\non_excess = \"drop\"\n",
    );
    let file = gw.dir.path().join("logport.toml");
    let original = std::fs::read_to_string(&file).unwrap();
    // One connection for the whole test: reloads must not close it.
    let mut s = TcpStream::connect(gw.addr()).unwrap();
    let send = |s: &mut TcpStream, from: u64, n: u64| {
        let bytes: Vec<u8> = (from..from + n).flat_map(|i| frame("app", i)).collect();
        s.write_all(&bytes).unwrap();
    };
    send(&mut s, 0, 100);
    let first = gw.wait_for_events(10, Duration::from_secs(10)).len();
    assert!(first <= 12, "{first} committed at 10/s");

    std::fs::write(
        &file,
        original.replace("events_per_second = 10", "events_per_second = \"lots\""),
    )
    .unwrap();
    gw.signal("HUP");
    wait_for_log(&gw, "reload rejected");
    assert!(
        gw.log().contains("events_per_second"),
        "the rejection names the key:\n{}",
        gw.log()
    );
    std::thread::sleep(Duration::from_millis(1100));
    send(&mut s, 100, 100);
    std::thread::sleep(Duration::from_millis(500));
    let second = gw.events().len() - first;
    assert!(
        second <= 12,
        "the old limit stays after a bad reload: {second} committed"
    );

    std::fs::write(
        &file,
        original.replace("events_per_second = 10", "events_per_second = 10000"),
    )
    .unwrap();
    gw.signal("HUP");
    wait_for_log(&gw, "[limits] reloaded");
    send(&mut s, 200, 1000);
    let before = gw.events().len();
    let events = gw.wait_for_events(before + 1000, Duration::from_secs(10));
    assert_eq!(
        events.len(),
        before + 1000,
        "the new limit applies on the same connection"
    );
}

fn wait_for_log(gw: &Gateway, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gw.log().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no `{needle}` in the log:\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn per_app_metric_labels_are_capped() {
    let gw = Gateway::start(SYSLOG_TCP, "[limits]\nmax_app_labels = 3\n");
    let mut s = TcpStream::connect(gw.addr()).unwrap();
    let apps = ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"];
    for (i, app) in apps.iter().enumerate() {
        s.write_all(&frame(app, i as u64)).unwrap();
        gw.wait_for_events(i + 1, Duration::from_secs(10));
    }
    let m = gw.metrics();
    let labelled: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("logport_app_events_total{"))
        .collect();
    assert_eq!(labelled.len(), 4, "three apps and `_other`: {labelled:?}");
    assert_eq!(
        metric(&m, "logport_app_events_total", &[("app", "_other")]),
        5.0
    );
    assert_eq!(
        metric(&m, "logport_app_events_total", &[("app", "a1")]),
        1.0
    );
}
