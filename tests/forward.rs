//! The forward source with real clients nobody here wrote: Python's fluent-logger (Message mode,
//! integer and EventTime times) and npm's @fluent-org/logger (all four modes, acks, the shared-key
//! handshake with users, TLS). Every numbered event must be committed exactly once with the
//! fields Logstash's tcp input + fluent codec would give it; where the client asks for acks, it
//! must have seen them, and only after the events were committed. Plus the UDP heartbeat, bad
//! input and drain, with hand-made bytes from the protocol crate's client encoders.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use common::*;
use logport::event::{Event, Protocol};
use logport_forward::rmpv::Value;
use logport_forward::{encode_message, ClientOptions, Time};
use serde_json::json;

const BASE: i64 = 1_714_564_800; // 2024-05-01T12:00:00Z

fn listener(name: &str, extra: &str) -> String {
    format!("[[listener]]\nname = \"{name}\"\nprotocol = \"forward\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:PORT\"\n{extra}\n")
}

fn node_modules() -> String {
    let dir = std::env::var("LOGPORT_TEST_NODE_MODULES").unwrap_or_else(|_| {
        panic!("LOGPORT_TEST_NODE_MODULES is not set: run scripts/test.sh (or source .tools/env.sh), which installs @fluent-org/logger")
    });
    assert!(
        std::path::Path::new(&dir)
            .join("@fluent-org/logger")
            .exists(),
        "@fluent-org/logger is missing under {dir}: run scripts/test.sh"
    );
    dir
}

/// What the node client reported: emits that resolved (after their ack, when acks are on) and
/// the errors it saw.
struct NodeRun {
    resolved: u64,
    errors: Vec<String>,
}

fn node_client(port: u16, options: serde_json::Value) -> NodeRun {
    require_tool("node");
    let mut o = json!({"port": port, "base": BASE, "nanos": 0, "eventTime": false});
    for (k, v) in options.as_object().unwrap() {
        o[k] = v.clone();
    }
    let out = run_ok(
        Command::new("node")
            .env("NODE_PATH", node_modules())
            .arg(repo_path("tests/clients/forward_node.js"))
            .arg(o.to_string()),
    );
    let report: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("node client printed {out:?}: {e}"));
    NodeRun {
        resolved: report["resolved"].as_u64().unwrap(),
        errors: report["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap_or_default().to_owned())
            .collect(),
    }
}

/// The events whose first tag is `tag`, by their `seq` field; fails on a duplicate.
fn by_seq(events: &[Event], tag: &str) -> BTreeMap<u64, (serde_json::Value, String)> {
    let mut out = BTreeMap::new();
    for e in events {
        let v = json(e);
        if v["tags"][0] != tag {
            continue;
        }
        assert_eq!(e.protocol, Protocol::Forward);
        let seq = v["seq"].as_u64().unwrap_or_else(|| panic!("no seq: {v}"));
        let app = e.app.to_string();
        assert!(
            out.insert(seq, (v, app)).is_none(),
            "event {seq} of {tag} committed twice:\n{}",
            dump(events)
        );
    }
    out
}

fn timestamp(secs: i64, nanos: u32) -> String {
    let mut out = bytes::BytesMut::new();
    logport::event::write_rfc3339_utc(&mut out, secs, nanos);
    String::from_utf8(out.to_vec()).unwrap()
}

/// What Logstash (tcp input, fluent codec, json output) makes of the node client's event `i`.
fn node_event(tag: &str, i: u64, nanos: u32) -> serde_json::Value {
    json!({"seq": i, "message": format!("event {i}"), "container_name": "/web",
           "nested": {"level": "info"}, "@timestamp": timestamp(BASE + i as i64, nanos),
           "@version": "1", "tags": [tag]})
}

fn assert_node_events(events: &[Event], tag: &str, count: u64, nanos: u32) {
    let got = by_seq(events, tag);
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        (0..count).collect::<Vec<_>>(),
        "every event of {tag} exactly once:\n{}",
        dump(events)
    );
    for (i, (v, app)) in got {
        assert_eq!(v, node_event(tag, i, nanos), "event {i} of {tag}");
        assert_eq!(app, "web", "the app is the container name without its /");
    }
}

#[test]
fn every_mode_of_the_node_client_is_committed_and_acked_after_commit() {
    let gw = Gateway::start(&listener("fwd", ""), "");
    let port = gw.addr().port();
    for (mode, event_time) in [
        ("Message", false),
        ("Forward", true),
        ("PackedForward", false),
        ("CompressedPackedForward", true),
    ] {
        let tag = format!("{mode}.n");
        let nanos = if event_time { 123_456_789 } else { 0 };
        let run = node_client(
            port,
            json!({"mode": mode, "count": 200, "ack": true, "tag": mode, "eventTime": event_time, "nanos": nanos}),
        );
        assert_eq!(
            (run.resolved, run.errors.as_slice()),
            (200, &[][..]),
            "{mode}: every emit acked"
        );
        // Read at once, without waiting: an ack the client saw means the events were committed.
        let events = gw.events();
        assert_node_events(&events, &tag, 200, nanos);
    }
    let m = gw.metrics();
    assert_eq!(
        metric(&m, "logport_events_received_total", &[("listener", "fwd")]),
        800.0
    );
    assert!(metric(&m, "logport_forward_acks_total", &[("listener", "fwd")]) >= 4.0);
    assert_eq!(metric(&m, "logport_decode_errors_total", &[]), 0.0);
}

#[test]
fn without_acks_and_in_legacy_mode_the_sender_address_is_added() {
    let gw = Gateway::start(&listener("legacy", "ecs_compatibility = \"disabled\""), "");
    let run = node_client(
        gw.addr().port(),
        json!({"mode": "PackedForward", "count": 100, "ack": false, "tag": "legacy"}),
    );
    assert_eq!(
        (run.resolved, run.errors.len()),
        (100, 0),
        "{:?}",
        run.errors
    );
    let events = gw.wait_for_events(100, Duration::from_secs(10));
    let got = by_seq(&events, "legacy.n");
    assert_eq!(got.len(), 100);
    for (i, (mut v, _)) in got {
        let port = v.as_object_mut().unwrap().remove("port").expect("port");
        assert!(port.as_u64().unwrap() > 0);
        let mut want = node_event("legacy.n", i, 0);
        want["host"] = json!("127.0.0.1");
        assert_eq!(v, want, "event {i}");
    }
}

/// Python's fluent-logger sends Message mode (3 elements, no option): integer seconds, or
/// EventTime with `nanosecond_precision`.
fn python_sender(port: u16, tag: &str, nanosecond: bool, count: u64) {
    require_tool("python3");
    let script = format!(
        r#"
import sys
try:
    from fluent import sender
except ImportError:
    sys.exit("fluent-logger is not installed: run scripts/test.sh")
s = sender.FluentSender("{tag}", host="127.0.0.1", port={port}, nanosecond_precision={ns})
for i in range({count}):
    rec = {{"container_id": "3f2a" * 16, "container_name": "/web", "source": "stdout", "log": "line %d" % i, "seq": i}}
    if {ns}:
        rec["MARATHON_APP_ID"] = "/billing/api"
    if not s.emit_with_time("d", {base} + i + 0.5 if {ns} else {base} + i, rec):
        sys.exit("emit %d failed: %r" % (i, s.last_error))
s.close()
"#,
        ns = if nanosecond { "True" } else { "False" },
        base = BASE,
    );
    run_ok(Command::new("python3").arg("-c").arg(script));
}

#[test]
fn python_fluent_logger_message_mode_with_and_without_nanoseconds() {
    let gw = Gateway::start(&listener("fwd", ""), "");
    python_sender(gw.addr().port(), "docker", false, 50);
    python_sender(gw.addr().port(), "precise", true, 50);
    let events = gw.wait_for_events(100, Duration::from_secs(10));
    for (tag, nanos, app) in [
        ("docker.d", 0, "web"),
        ("precise.d", 500_000_000, "/billing/api"),
    ] {
        let got = by_seq(&events, tag);
        assert_eq!(
            got.keys().copied().collect::<Vec<_>>(),
            (0..50).collect::<Vec<_>>()
        );
        for (i, (v, got_app)) in got {
            let mut want = json!({"container_id": "3f2a".repeat(16), "container_name": "/web",
                "source": "stdout", "message": format!("line {i}"), "seq": i,
                "@timestamp": timestamp(BASE + i as i64, nanos), "@version": "1", "tags": [tag]});
            if nanos > 0 {
                want["MARATHON_APP_ID"] = json!("/billing/api");
            }
            assert_eq!(v, want, "{tag} event {i}");
            assert_eq!(got_app, app);
        }
    }
}

const SECURE: &str = "[listener.forward]\nshared_key = \"s3cret\"\nself_hostname = \"gateway.test\"\nusers = [{ username = \"alice\", password = \"pw\" }]\n";

fn security(key: &str, user: &str, password: &str) -> serde_json::Value {
    json!({"clientHostname": "client.test", "sharedKey": key, "username": user, "password": password})
}

#[test]
fn the_shared_key_handshake_lets_the_right_client_in_and_names_the_reason_to_the_others() {
    let gw = Gateway::start(&listener("secure", SECURE), "");
    let port = gw.addr().port();
    let run = node_client(
        port,
        json!({"mode": "Forward", "count": 20, "ack": true, "tag": "good", "security": security("s3cret", "alice", "pw")}),
    );
    assert_eq!(
        (run.resolved, run.errors.len()),
        (20, 0),
        "{:?}",
        run.errors
    );
    assert_node_events(&gw.events(), "good.n", 20, 0);

    for (tag, sec, reason, label) in [
        (
            "badkey",
            security("wrong", "alice", "pw"),
            "shared_key mismatch",
            "shared_key_mismatch",
        ),
        (
            "badpass",
            security("s3cret", "alice", "nope"),
            "username/password mismatch",
            "user_mismatch",
        ),
        (
            "nouser",
            security("s3cret", "mallory", "pw"),
            "username/password mismatch",
            "user_mismatch",
        ),
    ] {
        let run = node_client(
            port,
            json!({"mode": "Message", "count": 3, "ack": true, "tag": tag, "security": sec, "noReconnect": true, "waitMs": 3000}),
        );
        assert_eq!(run.resolved, 0, "{tag}: nothing may be accepted");
        assert!(
            run.errors.iter().any(|e| e.contains(reason)),
            "{tag}: the client must be told `{reason}`: {:?}",
            run.errors
        );
        let m = gw.metrics();
        assert!(
            metric(
                &m,
                "logport_forward_auth_failures_total",
                &[("listener", "secure"), ("reason", label)]
            ) >= 1.0,
            "{tag}: {m}"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let events = gw.events();
    assert_eq!(
        events.len(),
        20,
        "only the good client's events:\n{}",
        dump(&events)
    );
    assert!(gw.log().contains("handshake failed: shared_key mismatch"));
}

#[test]
fn tls_with_the_handshake_and_acks() {
    let gw = Gateway::start(
        &format!(
            "{}[listener.tls]\ncert = \"CERTS/server.crt\"\nkey = \"CERTS/server.key\"\n",
            listener("tls", SECURE).replace("\"tcp\"", "\"tls\"")
        ),
        "",
    );
    let run = node_client(
        gw.addr().port(),
        json!({"mode": "CompressedPackedForward", "count": 100, "ack": true, "tag": "tls",
               "security": security("s3cret", "alice", "pw"), "ca": repo_path("certs/ca.crt")}),
    );
    assert_eq!(
        (run.resolved, run.errors.len()),
        (100, 0),
        "{:?}",
        run.errors
    );
    assert_node_events(&gw.events(), "tls.n", 100, 0);
}

#[test]
fn the_udp_heartbeat_is_answered_on_the_same_port() {
    let gw = Gateway::start(&listener("fwd", ""), "");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for _ in 0..2 {
        socket.send_to(b"\x00", gw.addr()).unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = socket.recv_from(&mut buf).expect("a heartbeat reply");
        assert_eq!((&buf[..n], from), (&b"\x00"[..], gw.addr()));
    }
    assert_eq!(
        metric(&gw.metrics(), "logport_forward_heartbeats_total", &[]),
        2.0
    );
}

fn message(tag: &str, seq: u64, chunk: Option<&str>) -> Vec<u8> {
    let record = Value::Map(vec![
        ("seq".into(), seq.into()),
        ("message".into(), format!("raw {seq}").into()),
    ]);
    let mut out = Vec::new();
    let opts = ClientOptions {
        chunk: chunk.map(|c| c.as_bytes().to_vec()),
        size: None,
    };
    encode_message(&mut out, tag, Time::Int(BASE), &record, Some(&opts));
    out
}

fn read_ack(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = vec![0u8; 64];
    let n = s.read(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// Reads until the peer closes; true if it did within the timeout.
fn closed(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn bad_input_closes_only_its_connection_and_keeps_what_came_before() {
    let gw = Gateway::start(
        &listener("fwd", "[listener.forward]\nchunk_size_limit = \"1MiB\"\n"),
        "",
    );
    let mut neighbour = TcpStream::connect(gw.addr()).unwrap();
    neighbour.write_all(&message("ok", 0, Some("n0"))).unwrap();
    assert_eq!(read_ack(&mut neighbour), b"\x81\xa3ack\xa2n0");

    // A good message with an ack, then a byte that is no msgpack at all.
    let mut bad = TcpStream::connect(gw.addr()).unwrap();
    let mut bytes = message("bad", 0, Some("b0"));
    bytes.push(0xc1);
    bad.write_all(&bytes).unwrap();
    assert_eq!(
        read_ack(&mut bad),
        b"\x81\xa3ack\xa2b0",
        "what came before is acked"
    );
    assert!(closed(&mut bad), "the bad connection is closed");

    // A message announcing more than chunk_size_limit.
    let mut big = TcpStream::connect(gw.addr()).unwrap();
    big.write_all(&[0x93, 0xa1, b't', 0xc6, 0x10, 0, 0, 0])
        .unwrap();
    assert!(closed(&mut big));

    // A gzip bomb: entries inflating past max(chunk_size_limit, 16MiB).
    let mut bomb = TcpStream::connect(gw.addr()).unwrap();
    let zeros = vec![0u8; 80 << 20];
    let gz = logport_forward::encode::gzip(&zeros);
    let mut packed = vec![0x93, 0xa4];
    packed.extend_from_slice(b"bomb");
    packed.push(0xc6);
    packed.extend_from_slice(&(gz.len() as u32).to_be_bytes());
    packed.extend_from_slice(&gz);
    packed.extend_from_slice(b"\x81\xaacompressed\xa4gzip");
    assert!(packed.len() < 1 << 20, "the bomb fits under the wire limit");
    bomb.write_all(&packed).unwrap();
    assert!(closed(&mut bomb));

    // The neighbour goes on.
    neighbour.write_all(&message("ok", 1, Some("n1"))).unwrap();
    assert_eq!(read_ack(&mut neighbour), b"\x81\xa3ack\xa2n1");
    let events = gw.events();
    assert_eq!(by_seq(&events, "ok").len(), 2);
    assert_eq!(by_seq(&events, "bad").len(), 1);
    assert_eq!(events.len(), 3, "{}", dump(&events));
    let m = gw.metrics();
    for reason in ["not_an_array", "chunk_too_large", "decompressed_too_large"] {
        assert_eq!(
            metric(
                &m,
                "logport_decode_errors_total",
                &[("protocol", "forward"), ("reason", reason)]
            ),
            1.0,
            "{reason}: {m}"
        );
    }
    let log = gw.log();
    assert!(
        log.contains("closing connection: forward message is not an array: first byte 0xc1 (stream offset 40)")
            && log.contains("offset=40"),
        "{log}"
    );
}

#[test]
fn drain_commits_and_acks_what_was_read_then_exits() {
    let gw = Gateway::start(&listener("fwd", ""), "");
    let mut s = TcpStream::connect(gw.addr()).unwrap();
    let mut all = Vec::new();
    for i in 0..100 {
        all.extend(message("drain", i, Some(&format!("c{i}"))));
    }
    s.write_all(&all).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    gw.signal("TERM");
    // Every chunk is acked before the connection closes.
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut acks = Vec::new();
    s.read_to_end(&mut acks).unwrap();
    let mut want = Vec::new();
    for i in 0..100 {
        want.extend(logport_forward::encode_ack(
            format!("c{i}").as_bytes(),
            logport_forward::Format::MessagePack,
        ));
    }
    assert_eq!(acks, want);
    let dir = gw.stop();
    let events = read_store(&dir.path().join("data/store"));
    assert_eq!(by_seq(&events, "drain").len(), 100);
}
