//! The gateway as a process: drain on SIGTERM, crash recovery after kill -9, one bad
//! connection among good ones, connection limits, the admin API.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

fn octet(line: &str) -> Vec<u8> {
    format!("{} {line}", line.len()).into_bytes()
}

fn numbered(app: &str, i: u64) -> String {
    format!("<14>1 2026-11-25T04:00:00.000Z host {app} - - - event {i:08}")
}

fn message_number(v: &serde_json::Value) -> u64 {
    v["message"]
        .as_str()
        .unwrap()
        .strip_prefix("event ")
        .unwrap()
        .parse()
        .unwrap()
}

/// Streams numbered events on one connection until `stop`; returns how many were written.
fn stream_until(
    addr: std::net::SocketAddr,
    app: &'static str,
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            let mut chunk = Vec::new();
            for _ in 0..100 {
                chunk.extend(octet(&numbered(app, i)));
                i += 1;
            }
            if s.write_all(&chunk).is_err() {
                break;
            }
            written.store(i, Ordering::Relaxed);
        }
    })
}

#[test]
fn sigterm_drains_everything_already_sent() {
    let gw = Gateway::start(SYSLOG_TCP, "");
    let mut s = TcpStream::connect(gw.addr()).unwrap();
    let mut all = Vec::new();
    for i in 0..20_000 {
        all.extend(octet(&numbered("drain", i)));
    }
    s.write_all(&all).unwrap();
    // The connection stays open: the gateway must read what it was sent before closing it.
    let dir = gw.stop();
    let events = read_store(&dir.path().join("data/store"));
    assert_eq!(events.len(), 20_000);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(message_number(&json(e)), i as u64);
    }
}

#[test]
fn readiness_turns_503_while_draining_and_the_stream_survives_as_a_prefix() {
    let gw = Gateway::start(SYSLOG_TCP, "");
    assert_eq!(http_get(gw.admin, "/ready").unwrap().0, 200);
    assert_eq!(http_get(gw.admin, "/health").unwrap().0, 200);
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let sender = stream_until(gw.addr(), "busy", stop.clone(), written.clone());
    while written.load(Ordering::Relaxed) < 5_000 {
        std::thread::sleep(Duration::from_millis(5));
    }
    gw.signal("TERM");
    let mut saw_503 = false;
    for _ in 0..100 {
        match http_get(gw.admin, "/ready") {
            Ok((503, body)) => {
                assert_eq!(body.trim(), "draining");
                saw_503 = true;
                break;
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => break,
        }
    }
    assert!(saw_503, "/ready never said draining");
    let mut gw = gw;
    let status = gw.wait_exit(Duration::from_secs(30));
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    assert!(status.success(), "exit {status}:\n{}", gw.log());
    let events = gw.events();
    assert!(events.len() >= 5_000, "only {} events", events.len());
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            message_number(&json(e)),
            i as u64,
            "events must be a gap-free prefix of what was sent"
        );
    }
}

#[test]
fn kill_9_loses_no_committed_event_and_a_torn_tail_is_cut() {
    let gw = Gateway::start(SYSLOG_TCP, "[store]\nsegment_bytes = \"16KiB\"\n");
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let sender = stream_until(gw.addr(), "crash", stop.clone(), written.clone());
    // Let several segments fill, then note what is committed, then crash mid-stream.
    let before = gw.wait_for_events(30_000, Duration::from_secs(60));
    let gw = gw.crash();
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();

    // A write torn by a crash leaves a partial block at the tail: fake one on top.
    let store = gw.store_dir();
    let mut segments: Vec<_> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    assert!(
        segments.len() > 2,
        "expected several segments, got {segments:?}"
    );
    // A crash during a write leaves a block cut short: its header and the start of its payload.
    // Copy the first 40 bytes of the first block (32-byte header, 8 bytes of payload).
    let torn = &std::fs::read(&segments[0]).unwrap()[..40];
    let last = segments.last().unwrap();
    let mut f = std::fs::OpenOptions::new().append(true).open(last).unwrap();
    f.write_all(torn).unwrap();
    drop(f);

    let gw = gw.restart();
    let after = gw.events();
    assert!(
        after.len() >= before.len(),
        "{} events after restart, {} before the crash",
        after.len(),
        before.len()
    );
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "committed events changed across the crash"
    );
    for (i, e) in after.iter().enumerate() {
        assert_eq!(
            message_number(&json(e)),
            i as u64,
            "event {i} is missing or corrupt"
        );
    }
    assert!(
        gw.log().contains("bytes_dropped=40"),
        "recovery not reported:\n{}",
        gw.log()
    );

    // And it goes on: new events follow the recovered ones.
    let mut s = TcpStream::connect(gw.addr()).unwrap();
    s.write_all(&octet(&numbered("crash", 99_999_999))).unwrap();
    drop(s);
    let events = gw.wait_for_events(after.len() + 1, Duration::from_secs(10));
    assert_eq!(message_number(&json(events.last().unwrap())), 99_999_999);
}

#[test]
fn a_malformed_frame_closes_only_its_own_connection() {
    let gw = Gateway::start(SYSLOG_TCP, "");
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let good = stream_until(gw.addr(), "good", stop.clone(), written.clone());
    while written.load(Ordering::Relaxed) < 1_000 {
        std::thread::sleep(Duration::from_millis(5));
    }
    for (attack, reason) in [
        (
            &b"99999999999 <13>1 - - evil - - - x"[..],
            "octet_count_too_large",
        ),
        (b"12a <13>1 - - evil - - - x", "invalid_octet_count"),
    ] {
        let mut bad = TcpStream::connect(gw.addr()).unwrap();
        bad.write_all(&octet(&numbered("evil-ok", 1))).unwrap();
        bad.write_all(attack).unwrap();
        bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 16];
        let closed = matches!(bad.read(&mut buf), Ok(0) | Err(_));
        assert!(closed, "the bad connection must be closed");
        assert_eq!(
            metric(
                &gw.metrics(),
                "logport_decode_errors_total",
                &[("reason", reason)]
            ),
            1.0
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    good.join().unwrap();
    let sent = written.load(Ordering::Relaxed);
    let events = gw.wait_for_events(sent as usize + 2, Duration::from_secs(20));
    let good_events: Vec<u64> = events
        .iter()
        .filter(|e| &*e.app == "good")
        .map(|e| message_number(&json(e)))
        .collect();
    assert_eq!(
        good_events,
        (0..sent).collect::<Vec<_>>(),
        "the good connection lost events"
    );
    // What the bad connection sent before its bad frame was accepted and is kept.
    assert_eq!(events.iter().filter(|e| &*e.app == "evil-ok").count(), 2);
    let log = gw.log();
    assert!(
        log.contains("exceeds the maximum frame size")
            && log.contains("peer=127.0.0.1")
            && log.contains("syslog")
            && log.contains("offset="),
        "{log}"
    );
}

#[test]
fn lines_that_are_not_syslog_or_too_long_are_kept_and_tagged() {
    let gw = Gateway::start(
        &SYSLOG_TCP.replace(
            "transport = \"tcp\"",
            "transport = \"tcp\"\nmax_message_bytes = \"1KiB\"",
        ),
        "",
    );
    let mut s = TcpStream::connect(gw.addr()).unwrap();
    let long = format!("<13>Nov 25 04:00:00 host long: {}", "z".repeat(5000));
    s.write_all(
        format!("just some text\n{long}\n<13>Nov 25 04:00:00 host app: caf\u{e9} after\n")
            .as_bytes(),
    )
    .unwrap();
    s.write_all(b"<13>Nov 25 04:00:00 host app: bytes \xff\xfe end\n")
        .unwrap();
    // An LF-framed connection stays LF-framed: lines led by digits are lines, not counts.
    s.write_all(
        b"3 retries left\n2024-05-01 12:00 ERROR boom\n<13>Nov 25 04:00:00 host app: still here\n",
    )
    .unwrap();
    drop(s);
    let events = gw.wait_for_events(7, Duration::from_secs(10));
    assert_eq!(events.len(), 7);
    let v: Vec<_> = events.iter().map(json).collect();
    assert_eq!(v[0]["message"], "just some text");
    assert_eq!(
        v[0]["tags"],
        serde_json::json!(["_grokparsefailure_sysloginput"])
    );
    assert_eq!(v[1]["tags"], serde_json::json!(["_message_truncated"]));
    assert_eq!(v[1]["event"]["original"].as_str().unwrap().len(), 1024);
    assert_eq!(v[2]["message"], "café after");
    assert_eq!(v[3]["message"], "bytes \u{fffd}\u{fffd} end");
    assert_eq!(v[4]["message"], "3 retries left");
    assert_eq!(v[5]["message"], "2024-05-01 12:00 ERROR boom");
    assert_eq!(v[6]["message"], "still here");
    assert_eq!(
        metric(&gw.metrics(), "logport_messages_truncated_total", &[]),
        1.0
    );
}

#[test]
fn connections_past_the_limit_are_refused_and_counted() {
    let gw = Gateway::start(
        &SYSLOG_TCP.replace(
            "transport = \"tcp\"",
            "transport = \"tcp\"\nmax_connections = 2",
        ),
        "",
    );
    let a = TcpStream::connect(gw.addr()).unwrap();
    let mut b = TcpStream::connect(gw.addr()).unwrap();
    b.write_all(&octet(&numbered("b", 0))).unwrap();
    gw.wait_for_events(1, Duration::from_secs(10));
    let mut c = TcpStream::connect(gw.addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 1];
    assert!(
        matches!(c.read(&mut buf), Ok(0) | Err(_)),
        "the third connection must be closed"
    );
    assert_eq!(
        metric(
            &gw.metrics(),
            "logport_connections_rejected_total",
            &[("reason", "limit")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &gw.metrics(),
            "logport_connections_open",
            &[("listener", "tcp")]
        ),
        2.0
    );
    drop(a);
    // A slot is free again once a connection ends.
    let mut d = None;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(20));
        if metric(
            &gw.metrics(),
            "logport_connections_open",
            &[("listener", "tcp")],
        ) < 2.0
        {
            let mut s = TcpStream::connect(gw.addr()).unwrap();
            s.write_all(&octet(&numbered("d", 0))).unwrap();
            d = Some(s);
            break;
        }
    }
    assert!(d.is_some());
    let events = gw.wait_for_events(2, Duration::from_secs(10));
    assert_eq!(&*events[1].app, "d");
}

#[test]
fn metrics_count_what_came_in_and_what_was_committed() {
    let gw = Gateway::start(&format!("{SYSLOG_TCP}\n{SYSLOG_UDP}"), "");
    let mut s = TcpStream::connect(gw.addr()).unwrap();
    let mut bytes = Vec::new();
    for i in 0..50 {
        bytes.extend(octet(&numbered("m", i)));
    }
    s.write_all(&bytes).unwrap();
    drop(s);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..5 {
        udp.send_to(numbered("u", i).as_bytes(), gw.addr_of("udp"))
            .unwrap();
    }
    gw.wait_for_events(55, Duration::from_secs(10));
    // The commit counter moves right after the fsync that makes events readable: poll it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let m = loop {
        let m = gw.metrics();
        if metric(&m, "logport_events_committed_total", &[("sink", "store")]) >= 55.0
            || std::time::Instant::now() > deadline
        {
            break m;
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    assert_eq!(
        metric(
            &m,
            "logport_events_received_total",
            &[("listener", "tcp"), ("protocol", "syslog")]
        ),
        50.0
    );
    assert_eq!(
        metric(&m, "logport_bytes_received_total", &[("listener", "tcp")]),
        bytes.len() as f64
    );
    assert_eq!(
        metric(&m, "logport_events_received_total", &[("listener", "udp")]),
        5.0
    );
    assert_eq!(
        metric(&m, "logport_events_committed_total", &[("sink", "store")]),
        55.0
    );
    assert!(
        metric(
            &m,
            "logport_commit_latency_seconds_count",
            &[("sink", "store")]
        ) > 0.0,
        "{m}"
    );
    assert!(metric(&m, "logport_store_bytes", &[]) > 0.0);
    assert_eq!(
        metric(
            &m,
            "logport_connections_accepted_total",
            &[("listener", "tcp")]
        ),
        1.0
    );
}
