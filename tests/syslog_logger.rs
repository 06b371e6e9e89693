//! util-linux `logger` (a client nobody here wrote) sends to a real gateway over TCP (octet
//! counting and LF framing) and UDP, in RFC 5424 and RFC 3164; every event is read back from
//! the store and compared field by field.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::json;

/// Runs `logger` at the gateway: `-d` goes to the listener named `udp`, the rest to the first.
/// `TZ=UTC`: RFC 3164 stamps carry no zone and the listeners read them as UTC.
fn logger(gw: &Gateway, args: &[&str]) {
    let logger = require_tool("logger");
    let addr = if args.contains(&"-d") {
        gw.addr_of("udp")
    } else {
        gw.addr()
    };
    run_ok(
        Command::new(logger)
            .env("TZ", "UTC")
            .args(["-n", "127.0.0.1", "-P", &addr.port().to_string()])
            .args(args),
    );
}

/// The event with the fields that depend on the moment (`@timestamp`, a pid, the raw line)
/// checked by the caller and taken out, so the rest can be compared whole.
fn without_moment(mut v: serde_json::Value) -> serde_json::Value {
    let o = v.as_object_mut().unwrap();
    o.remove("@timestamp");
    if let Some(e) = o.get_mut("event").and_then(|e| e.as_object_mut()) {
        e.remove("original");
    }
    if let Some(p) = o.get_mut("process").and_then(|p| p.as_object_mut()) {
        p.remove("pid");
    }
    v
}

fn hostname() -> String {
    run_ok(&mut Command::new("hostname")).trim().to_owned()
}

/// `@timestamp` is the sender's time: within a few seconds of ours, in UTC.
fn assert_recent(ts: &serde_json::Value, fraction_digits: usize) {
    let ts = ts.as_str().expect("@timestamp is a string");
    let parsed: jiff::Timestamp = ts.parse().unwrap_or_else(|e| panic!("{ts}: {e}"));
    let age = jiff::Timestamp::now()
        .duration_since(parsed)
        .as_secs_f64()
        .abs();
    assert!(age < 30.0, "{ts} is {age}s from now");
    let fraction = ts
        .split('.')
        .nth(1)
        .expect("fraction")
        .trim_end_matches('Z');
    assert_eq!(fraction.len(), fraction_digits, "{ts}");
}

#[test]
fn rfc5424_octet_counted_over_tcp_keeps_every_field() {
    let gw = Gateway::start(SYSLOG_TCP, "");
    logger(
        &gw,
        &[
            "-T",
            "--octet-count",
            "--rfc5424",
            "-t",
            "billing",
            "--id=4242",
            "--msgid",
            "ORDER",
            "-p",
            "local4.err",
            "--sd-id",
            "zoo@123",
            "--sd-param",
            "tiger=\"hungry\"",
            "--sd-param",
            "lion=\"sle\\\"epy\"",
            "payment failed",
        ],
    );
    let events = gw.wait_for_events(1, Duration::from_secs(10));
    let v = json(&events[0]);
    assert_recent(&v["@timestamp"], 6);
    assert_eq!(v["@version"], "1");
    assert_eq!(v["message"], "payment failed");
    assert_eq!(
        v["host"],
        json!({"hostname": hostname(), "ip": "127.0.0.1"})
    );
    assert_eq!(v["process"], json!({"name": "billing", "pid": 4242}));
    let sd = &v["log"]["syslog"]["structured_data"];
    assert_eq!(
        sd["zoo@123"],
        json!({"tiger": "hungry", "lion": "sle\"epy"})
    );
    assert_eq!(sd["timeQuality"]["tzKnown"], "1");
    assert_eq!(v["log"]["syslog"]["priority"], 163);
    assert_eq!(
        v["log"]["syslog"]["facility"],
        json!({"code": 20, "name": "local4"})
    );
    assert_eq!(
        v["log"]["syslog"]["severity"],
        json!({"code": 3, "name": "Error"})
    );
    assert_eq!(v["log"]["syslog"]["msgid"], "ORDER");
    assert_eq!(v["log"]["syslog"]["version"], 1);
    assert_eq!(v["service"], json!({"type": "system"}));
    let original = v["event"]["original"].as_str().unwrap();
    assert!(
        original.starts_with("<163>1 ") && original.ends_with(" payment failed"),
        "{original}"
    );
    assert_eq!(&*events[0].app, "billing");
    assert_eq!(events[0].peer.ip().to_string(), "127.0.0.1");
}

#[test]
fn rfc5424_lf_framed_over_tcp() {
    let gw = Gateway::start(SYSLOG_TCP, "");
    logger(&gw, &["-T", "--rfc5424=notq", "-t", "web", "hello lf"]);
    let v = json(&gw.wait_for_events(1, Duration::from_secs(10))[0]);
    assert_recent(&v["@timestamp"], 6);
    let original = v["event"]["original"].as_str().unwrap().to_owned();
    assert!(
        original.starts_with("<13>1 ")
            && original.ends_with(&format!(" {} web - - - hello lf", hostname())),
        "{original}"
    );
    assert_eq!(
        without_moment(v),
        json!({
            "@version": "1",
            "message": "hello lf",
            "host": {"hostname": hostname(), "ip": "127.0.0.1"},
            "process": {"name": "web"},
            "log": {"syslog": {"priority": 13, "facility": {"code": 1, "name": "user-level"}, "severity": {"code": 5, "name": "Notice"}, "version": 1}},
            "event": {},
            "service": {"type": "system"}
        })
    );
}

#[test]
fn rfc3164_over_tcp_and_udp() {
    let gw = Gateway::start(&format!("{SYSLOG_TCP}\n{SYSLOG_UDP}"), "");
    logger(
        &gw,
        &[
            "-T",
            "--rfc3164",
            "-t",
            "app1",
            "-p",
            "local3.warning",
            "hello over tcp",
        ],
    );
    let events = gw.wait_for_events(1, Duration::from_secs(10));
    logger(
        &gw,
        &["-d", "--rfc3164", "-t", "app2", "-i", "hello over udp"],
    );
    let events = gw.wait_for_events(events.len() + 1, Duration::from_secs(10));
    let (tcp, udp) = (json(&events[0]), json(&events[1]));
    assert_recent(&tcp["@timestamp"], 3);
    assert_recent(&udp["@timestamp"], 3);
    assert!(udp["process"]["pid"].as_u64().unwrap() > 0, "{udp}");
    let host = json!({"hostname": hostname(), "ip": "127.0.0.1"});
    assert_eq!(
        without_moment(tcp),
        json!({
            "@version": "1",
            "message": "hello over tcp",
            "host": host,
            "process": {"name": "app1"},
            "log": {"syslog": {"priority": 156, "facility": {"code": 19, "name": "local3"}, "severity": {"code": 4, "name": "Warning"}}},
            "event": {},
            "service": {"type": "system"}
        })
    );
    assert_eq!(
        without_moment(udp),
        json!({
            "@version": "1",
            "message": "hello over udp",
            "host": host,
            "process": {"name": "app2"},
            "log": {"syslog": {"priority": 13, "facility": {"code": 1, "name": "user-level"}, "severity": {"code": 5, "name": "Notice"}}},
            "event": {},
            "service": {"type": "system"}
        })
    );
    assert_eq!(&*events[1].app, "app2");
}

#[test]
fn rfc5424_over_udp() {
    let gw = Gateway::start(SYSLOG_UDP, "");
    logger(
        &gw,
        &[
            "-d",
            "--rfc5424",
            "-t",
            "udpapp",
            "--msgid",
            "M9",
            "--id=77",
            "datagram",
        ],
    );
    let v = json(&gw.wait_for_events(1, Duration::from_secs(10))[0]);
    assert_recent(&v["@timestamp"], 6);
    assert_eq!(v["process"]["pid"], 77);
    assert_eq!(
        v["log"]["syslog"]["structured_data"]["timeQuality"]["tzKnown"],
        "1"
    );
    let mut v = without_moment(v);
    v["log"]["syslog"]
        .as_object_mut()
        .unwrap()
        .remove("structured_data");
    assert_eq!(
        v,
        json!({
            "@version": "1",
            "message": "datagram",
            "host": {"hostname": hostname(), "ip": "127.0.0.1"},
            "process": {"name": "udpapp"},
            "log": {"syslog": {"priority": 13, "facility": {"code": 1, "name": "user-level"}, "severity": {"code": 5, "name": "Notice"}, "version": 1, "msgid": "M9"}},
            "event": {},
            "service": {"type": "system"}
        })
    );
}

#[test]
fn a_thousand_lines_arrive_in_order_with_both_framings() {
    let gw = Gateway::start(SYSLOG_TCP, "");
    let file = gw.dir.path().join("lines.txt");
    let lines: Vec<String> = (0..1000)
        .map(|i| format!("line {i:04} {}", "x".repeat(i % 300)))
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    logger(
        &gw,
        &[
            "-T",
            "--octet-count",
            "-t",
            "counted",
            "-f",
            file.to_str().unwrap(),
        ],
    );
    logger(
        &gw,
        &["-T", "--rfc3164", "-t", "lf", "-f", file.to_str().unwrap()],
    );
    let events = gw.wait_for_events(2000, Duration::from_secs(20));
    assert_eq!(events.len(), 2000);
    // The two connections may interleave; each keeps its own order.
    for app in ["counted", "lf"] {
        let messages: Vec<String> = events
            .iter()
            .filter(|e| &*e.app == app)
            .map(|e| json(e)["message"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(messages, lines, "{app}");
    }
    // Every event is whole, not only its message.
    for e in &events {
        let v = without_moment(json(e));
        assert_eq!(
            v["host"],
            json!({"hostname": hostname(), "ip": "127.0.0.1"})
        );
        assert_eq!(v["process"], json!({"name": &*e.app}));
        assert_eq!(v["log"]["syslog"]["priority"], 13);
    }
}

#[test]
fn an_octet_counted_message_may_contain_newlines() {
    let gw = Gateway::start(SYSLOG_TCP, "");
    logger(
        &gw,
        &[
            "-T",
            "--octet-count",
            "-t",
            "trace",
            "panic: boom\n\tat main.rs:1\n\tat lib.rs:2",
        ],
    );
    let v = json(&gw.wait_for_events(1, Duration::from_secs(10))[0]);
    assert_eq!(v["message"], "panic: boom\n\tat main.rs:1\n\tat lib.rs:2");
}

#[test]
fn the_readme_quick_start_works() {
    // `logport` with no config, `logger` at it, `logport read` shows the event. Only the
    // addresses differ from the built-in defaults (port 0: parallel tests cannot collide).
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("quick.toml");
    std::fs::write(&config, "[admin]\naddress = \"127.0.0.1:0\"\n[[listener]]\nprotocol = \"syslog\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:0\"\n[[listener]]\nname = \"udp\"\nprotocol = \"syslog\"\ntransport = \"udp\"\naddress = \"127.0.0.1:0\"\n").unwrap();
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_logport"))
        .arg("--config")
        .arg(&config)
        .current_dir(dir.path())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let listeners = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some((admin, listeners)) = bound_addresses(&text) {
            if http_get(admin, "/ready").ok().map(|r| r.0) == Some(200) {
                break listeners;
            }
        }
        assert!(std::time::Instant::now() < deadline, "not ready:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let udp = listeners.iter().find(|(n, _)| n == "udp").unwrap().1;
    run_ok(Command::new(require_tool("logger")).args([
        "-n",
        "127.0.0.1",
        "-P",
        &udp.port().to_string(),
        "-d",
        "hello from the quick start",
    ]));
    let mut out = String::new();
    for _ in 0..200 {
        out = run_ok(
            Command::new(env!("CARGO_BIN_EXE_logport"))
                .arg("read")
                .current_dir(dir.path()),
        );
        if !out.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["message"], "hello from the quick start");
}
