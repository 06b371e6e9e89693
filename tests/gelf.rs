//! GELF over UDP, TCP and TLS with real clients: Python's graypy and pygelf, Node's gelf-pro,
//! and a Docker-style gzip sender; chunk floods, refused chunks, bad frames and drain.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use common::*;
use logport::event::Event;
use serde_json::{json, Value};

fn listener(name: &str, transport: &str, extra: &str) -> String {
    let tls = if transport == "tls" {
        "[listener.tls]\ncert = \"CERTS/server.crt\"\nkey = \"CERTS/server.key\"\n"
    } else {
        ""
    };
    format!("[[listener]]\nname = \"{name}\"\nprotocol = \"gelf\"\ntransport = \"{transport}\"\naddress = \"127.0.0.1:PORT\"\n{extra}\n{tls}")
}

fn python() -> Command {
    let probe = Command::new("python3")
        .args(["-c", "import graypy, pygelf"])
        .output()
        .unwrap_or_else(|e| panic!("python3 is missing ({e}): run scripts/test.sh"));
    assert!(
        probe.status.success(),
        "graypy or pygelf is not importable: run scripts/test.sh, which installs them\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    Command::new("python3")
}

/// Runs tests/clients/gelf_py.py: `count` records through `lib` over `transport`.
fn python_client(
    lib: &str,
    transport: &str,
    addr: SocketAddr,
    count: usize,
    pad: usize,
    opts: &[&str],
) {
    let host = if transport == "tls" {
        "localhost".to_string()
    } else {
        addr.ip().to_string()
    };
    run_ok(
        python()
            .arg(repo_path("tests/clients/gelf_py.py"))
            .args([lib, transport, &host])
            .arg(addr.port().to_string())
            .arg(count.to_string())
            .arg(pad.to_string())
            .args(opts),
    );
}

/// Runs tests/clients/gelf_pro.js through Node with the installed gelf-pro.
fn gelf_pro(adapter: &str, addr: SocketAddr, count: usize, pad: usize, ca: bool) {
    let modules = std::env::var("LOGPORT_TEST_NODE_MODULES").unwrap_or_else(|_| {
        panic!("LOGPORT_TEST_NODE_MODULES is not set: run scripts/test.sh (or source .tools/env.sh), which installs gelf-pro")
    });
    assert!(
        std::path::Path::new(&modules).join("gelf-pro").exists(),
        "gelf-pro is not installed under {modules}: run scripts/test.sh"
    );
    let host = if ca {
        "localhost".into()
    } else {
        addr.ip().to_string()
    };
    let mut cmd = Command::new(require_tool("node"));
    cmd.env("NODE_PATH", &modules)
        .arg(repo_path("tests/clients/gelf_pro.js"))
        .args([adapter, &host])
        .arg(addr.port().to_string())
        .arg(count.to_string())
        .arg(pad.to_string());
    if ca {
        cmd.arg(repo_path("certs/ca.crt"));
    }
    run_ok(&mut cmd);
}

/// The events of one client (by `container_name`), checked to hold every `seq` in `0..count`
/// exactly once; returned in `seq` order.
fn numbered(events: &[Event], source: &str, count: usize) -> Vec<(Value, String)> {
    let mut by_seq: BTreeMap<u64, Vec<(Value, String)>> = BTreeMap::new();
    for e in events {
        let v = json(e);
        if v["container_name"] == source {
            let seq = v["seq"]
                .as_u64()
                .unwrap_or_else(|| panic!("no numeric seq: {v}"));
            by_seq.entry(seq).or_default().push((v, e.app.to_string()));
        }
    }
    for (seq, got) in &by_seq {
        assert_eq!(
            got.len(),
            1,
            "{source}: seq {seq} committed {} times",
            got.len()
        );
    }
    let seqs: Vec<u64> = by_seq.keys().copied().collect();
    assert_eq!(
        seqs,
        (0..count as u64).collect::<Vec<_>>(),
        "{source}: every seq exactly once"
    );
    by_seq.into_values().map(|mut v| v.remove(0)).collect()
}

/// Waits until `count` events of `source` are committed.
fn wait_numbered(gw: &Gateway, source: &str, count: usize) -> Vec<(Value, String)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let events = gw.events();
        let n = events
            .iter()
            .filter(|e| json(e)["container_name"] == source)
            .count();
        if n >= count || std::time::Instant::now() > deadline {
            // Settle: a duplicate would arrive right behind.
            std::thread::sleep(Duration::from_millis(200));
            return numbered(&gw.events(), source, count);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The message text the clients send for record `i`: "event i " and `pad` letters (checked
/// by length and prefix; the letters come from a seeded generator).
fn check_message(v: &Value, i: usize, pad: usize) {
    let m = v["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {v}"));
    let prefix = format!("event {i} ");
    assert!(m.starts_with(&prefix), "{m:.60}");
    assert_eq!(m.len(), prefix.len() + pad, "message {i} length");
}

/// What Logstash's gelf input makes of a graypy record (graypy: version 1.0, facility = the
/// logger's name, extras with `_`), field by field.
fn check_graypy(events: &[(Value, String)], source: &str, pad: usize) {
    for (i, (v, app)) in events.iter().enumerate() {
        check_message(v, i, pad);
        let mut want = json!({
            "@timestamp": format!("2023-11-14T{}.250Z", clock(1_700_000_000 + i as i64)),
            "@version": "1",
            "version": "1.0",
            "host": "client-host",
            "level": 6,
            "facility": source,
            "seq": i,
            "container_name": source,
            "source_host": "127.0.0.1",
        });
        want["message"] = v["message"].clone();
        python_record_extras(v, &mut want);
        assert_eq!(v, &want, "graypy event {i}");
        assert_eq!(app, source, "app key from container_name");
    }
}

/// Both Python clients send the LogRecord attributes they do not know as extras:
/// `_stack_info` (null here) and, from Python 3.12, `_taskName`.
fn python_record_extras(v: &Value, want: &mut Value) {
    if let Some(x) = v.get("stack_info") {
        assert_eq!(x, &Value::Null);
        want["stack_info"] = Value::Null;
    }
    if let Some(x) = v.get("taskName") {
        want["taskName"] = x.clone();
    }
}

/// pygelf with include_extra_fields: version 1.1, no facility, extras with `_`.
fn check_pygelf(events: &[(Value, String)], source: &str, pad: usize) {
    for (i, (v, app)) in events.iter().enumerate() {
        check_message(v, i, pad);
        let mut want = json!({
            "@timestamp": format!("2023-11-14T{}.250Z", clock(1_700_000_000 + i as i64)),
            "@version": "1",
            "version": "1.1",
            "host": "client-host",
            "level": 6,
            "seq": i,
            "container_name": source,
            "source_host": "127.0.0.1",
        });
        want["message"] = v["message"].clone();
        python_record_extras(v, &mut want);
        assert_eq!(v, &want, "pygelf event {i}");
        assert_eq!(app, source);
    }
}

/// gelf-pro: version 1.1, host = this machine, timestamp = now in milliseconds.
fn check_gelf_pro(events: &[(Value, String)], source: &str, pad: usize, since: i64) {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    for (i, (v, app)) in events.iter().enumerate() {
        check_message(v, i, pad);
        let ts = v["@timestamp"].as_str().unwrap();
        let parsed: jiff::Timestamp = ts.parse().unwrap();
        assert!(
            parsed.as_second() >= since - 1 && parsed.as_second() <= since + 120,
            "gelf-pro @timestamp {ts} from its `timestamp`"
        );
        assert_eq!(
            ts.len(),
            "2024-05-01T12:00:00.000Z".len(),
            "milliseconds: {ts}"
        );
        let mut want = json!({
            "@timestamp": ts,
            "@version": "1",
            "version": "1.1",
            "host": host,
            "level": 6,
            "seq": i,
            "container_name": source,
            "source_host": "127.0.0.1",
        });
        want["message"] = v["message"].clone();
        assert_eq!(v, &want, "gelf-pro event {i}");
        assert_eq!(app, source);
    }
}

/// HH:MM:SS of a Unix time on 2023-11-14/15 (the clients' fixed times).
fn clock(secs: i64) -> String {
    let s = secs.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn udp_graypy_zlib_plain_and_chunked() {
    let gw = Gateway::start(&listener("udp", "udp", ""), "");
    let addr = gw.addr();
    // zlib (78 9c), small messages in one datagram.
    python_client("graypy", "udp", addr, 200, 50, &[]);
    // Tens of KB of incompressible text: 20+ chunks of 1420 bytes each.
    python_client(
        "graypy",
        "udp",
        addr,
        20,
        30_000,
        &["chunk_size=1420", "start=200"],
    );
    let small = wait_numbered(&gw, "graypy-udp", 220);
    check_graypy(&small[..200], "graypy-udp", 50);
    for (i, (v, _)) in small[200..].iter().enumerate() {
        check_message(v, 200 + i, 30_000);
    }
    let m = gw.metrics();
    assert_eq!(
        metric(&m, "logport_udp_datagrams_dropped_total", &[]),
        0.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "logport_events_received_total", &[("protocol", "gelf")]),
        220.0
    );
}

#[test]
fn udp_pygelf_plain_and_zlib_chunked() {
    let gw = Gateway::start(&listener("udp", "udp", ""), "");
    let addr = gw.addr();
    // Uncompressed JSON datagrams, then zlib chunked at pygelf's 1300-byte chunks.
    python_client("pygelf", "udp", addr, 100, 40, &["compress=0"]);
    python_client(
        "pygelf",
        "udp",
        addr,
        15,
        40_000,
        &["compress=1", "chunk_size=1300", "start=100"],
    );
    let events = wait_numbered(&gw, "pygelf-udp", 115);
    check_pygelf(&events[..100], "pygelf-udp", 40);
    for (i, (v, _)) in events[100..].iter().enumerate() {
        check_message(v, 100 + i, 40_000);
    }
}

#[test]
fn udp_gelf_pro_deflate_chunked() {
    let gw = Gateway::start(&listener("udp", "udp", ""), "");
    let since = now_secs();
    gelf_pro("udp", gw.addr(), 100, 30, false);
    // 20 KB each: chunks of 1388 bytes, deflated first.
    let source = "gelf-pro-udp";
    let events = wait_numbered(&gw, source, 100);
    check_gelf_pro(&events, source, 30, since);
    let gw2 = Gateway::start(&listener("udp", "udp", ""), "");
    gelf_pro("udp", gw2.addr(), 10, 20_000, false);
    let big = wait_numbered(&gw2, source, 10);
    check_gelf_pro(&big, source, 20_000, since);
}

/// What Docker's gelf driver (go-gelf) sends: gzip level 1, chunks of 1408 data bytes; here
/// they arrive out of order, one twice, and one message with go-gelf's empty trailing chunk.
#[test]
fn udp_gzip_docker_style_chunks_out_of_order() {
    let gw = Gateway::start(&listener("udp", "udp", ""), "");
    let addr = gw.addr();
    let script = r#"
import gzip, json, random, socket, struct, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rng = random.Random(3)
letters = "abcdefghijklmnopqrstuvwxyz0123456789"
for i in range(60):
    pad = "".join(rng.choice(letters) for _ in range(40 if i < 40 else 20000))
    msg = {"version": "1.1", "host": "dockerhost", "short_message": "event %d %s" % (i, pad),
           "timestamp": 1700000000.123 if i == 0 else 1700000000 + i + 0.5, "level": 6 if i % 2 else 3,
           "_command": "sh -c echo", "_container_id": "4f1c" * 16, "_container_name": "docker-gzip",
           "_created": "2024-05-01T12:00:00.123456789Z", "_image_id": "sha256:ab", "_image_name": "busybox",
           "_tag": "4f1c4f1c4f1c", "_MARATHON_APP_ID": "/shop/cart", "_seq": i}
    payload = gzip.compress(json.dumps(msg, separators=(",", ":")).encode(), compresslevel=1)
    if len(payload) <= 1420:
        s.sendto(payload, ("127.0.0.1", port)); continue
    data = [payload[k:k + 1408] for k in range(0, len(payload), 1408)]
    if i == 41:
        data.append(b"")  # go-gelf's count = len/1408 + 1 on an exact multiple
    mid = rng.getrandbits(64)
    chunks = [b"\x1e\x0f" + struct.pack(">QBB", mid, k, len(data)) + d for k, d in enumerate(data)]
    rng.shuffle(chunks)
    chunks.insert(1, chunks[0])  # a duplicate, ignored
    for c in chunks:
        s.sendto(c, ("127.0.0.1", port))
"#;
    run_ok(python().args(["-c", script]).arg(addr.port().to_string()));
    let events = wait_numbered(&gw, "docker-gzip", 60);
    for (i, (v, app)) in events.iter().enumerate() {
        assert_eq!(app, "/shop/cart", "app from _MARATHON_APP_ID");
        let mut want = json!({
            "@timestamp": if i == 0 { "2023-11-14T22:13:20.123Z".to_string() } else { format!("2023-11-14T{}.500Z", clock(1_700_000_000 + i as i64)) },
            "@version": "1", "version": "1.1", "host": "dockerhost",
            "level": if i % 2 == 1 { 6 } else { 3 },
            "command": "sh -c echo", "container_id": "4f1c".repeat(16), "container_name": "docker-gzip",
            "created": "2024-05-01T12:00:00.123456789Z", "image_id": "sha256:ab", "image_name": "busybox",
            "tag": "4f1c4f1c4f1c", "MARATHON_APP_ID": "/shop/cart", "seq": i, "source_host": "127.0.0.1",
        });
        want["message"] = v["message"].clone();
        check_message(v, i, if i < 40 { 40 } else { 20_000 });
        assert_eq!(v, &want, "docker event {i}");
    }
    let m = gw.metrics();
    assert_eq!(
        metric(
            &m,
            "logport_udp_datagrams_dropped_total",
            &[("reason", "duplicate_chunk")]
        ),
        20.0,
        "one duplicate per chunked message"
    );
}

/// A message announcing 129 chunks is refused chunk by chunk; the listener goes on.
#[test]
fn udp_more_than_128_chunks_is_refused() {
    let gw = Gateway::start(&listener("udp", "udp", ""), "");
    let script = r#"
import sys, socket, graypy.handler as h
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
# graypy refuses to send such a message itself; its own chunk encoder forges one.
for seq in range(129):
    s.sendto(h.BaseGELFChunker._encode(42, seq, 129, b"x" * 100), ("127.0.0.1", port))
s.sendto(h.BaseGELFChunker._encode(43, 0, 0, b"{}"), ("127.0.0.1", port))
"#;
    run_ok(
        python()
            .args(["-c", script])
            .arg(gw.addr().port().to_string()),
    );
    python_client("graypy", "udp", gw.addr(), 3, 5000, &["chunk_size=1000"]);
    let events = wait_numbered(&gw, "graypy-udp", 3);
    assert_eq!(gw.events().len(), 3, "nothing from the refused chunks");
    check_message(&events[2].0, 2, 5000);
    let m = gw.metrics();
    assert_eq!(
        metric(
            &m,
            "logport_udp_datagrams_dropped_total",
            &[("reason", "invalid_chunk")]
        ),
        130.0
    );
    assert_eq!(
        metric(
            &m,
            "logport_decode_errors_total",
            &[("reason", "invalid_chunk")]
        ),
        130.0
    );
    assert!(
        gw.log().contains("not within 1..=128"),
        "a warning names the problem"
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// 160 MB of first chunks that never complete: the pending bytes stay under the cap, the
/// oldest are evicted, the rest expire on the timer with no datagram arriving, and a real
/// message still gets through.
#[test]
fn udp_chunk_flood_stays_bounded() {
    let gw = Gateway::start(
        &listener(
            "udp",
            "udp",
            "[listener.gelf]\nmax_reassembly_bytes = \"1MiB\"\nchunk_timeout = \"500ms\"\n",
        ),
        "",
    );
    let before = rss_kib(gw.child.id());
    let script = r#"
import socket, struct, sys, time
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
data = b"y" * 8000
for k in range(20000):
    s.sendto(b"\x1e\x0f" + struct.pack(">QBB", k, 0, 2) + data, ("127.0.0.1", port))
    if k % 500 == 499:
        time.sleep(0.002)
"#;
    run_ok(
        python()
            .args(["-c", script])
            .arg(gw.addr().port().to_string()),
    );
    std::thread::sleep(Duration::from_millis(100));
    let m = gw.metrics();
    let pending = metric(&m, "logport_gelf_pending_bytes", &[]);
    assert!(
        pending <= (1 << 20) as f64,
        "pending bytes {pending} over the cap"
    );
    let evicted = metric(
        &m,
        "logport_udp_datagrams_dropped_total",
        &[("reason", "evicted")],
    );
    assert!(evicted > 1000.0, "evicted {evicted}:\n{m}");
    let grown = rss_kib(gw.child.id()).saturating_sub(before);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
    // The timer expires what is left though nothing more arrives.
    std::thread::sleep(Duration::from_millis(1800));
    let m = gw.metrics();
    assert_eq!(metric(&m, "logport_gelf_pending_messages", &[]), 0.0, "{m}");
    assert_eq!(metric(&m, "logport_gelf_pending_bytes", &[]), 0.0);
    assert!(
        metric(
            &m,
            "logport_udp_datagrams_dropped_total",
            &[("reason", "expired")]
        ) > 0.0
    );
    python_client("pygelf", "udp", gw.addr(), 2, 10_000, &["chunk_size=1300"]);
    wait_numbered(&gw, "pygelf-udp", 2);
}

#[test]
fn tcp_graypy_pygelf_and_gelf_pro() {
    let gw = Gateway::start(&listener("tcp", "tcp", ""), "");
    let addr = gw.addr();
    let since = now_secs();
    python_client("graypy", "tcp", addr, 300, 60, &[]);
    python_client("pygelf", "tcp", addr, 300, 60, &[]);
    gelf_pro("tcp", addr, 50, 60, false);
    check_graypy(&wait_numbered(&gw, "graypy-tcp", 300), "graypy-tcp", 60);
    check_pygelf(&wait_numbered(&gw, "pygelf-tcp", 300), "pygelf-tcp", 60);
    check_gelf_pro(
        &wait_numbered(&gw, "gelf-pro-tcp", 50),
        "gelf-pro-tcp",
        60,
        since,
    );
    // One message of 200 KB (under max_message_bytes) on its own connection.
    python_client("pygelf", "tcp", addr, 1, 200_000, &["start=300"]);
    let all = wait_numbered(&gw, "pygelf-tcp", 301);
    check_message(&all[300].0, 300, 200_000);
    let m = gw.metrics();
    assert_eq!(metric(&m, "logport_decode_errors_total", &[]), 0.0, "{m}");
}

#[test]
fn tls_graypy_pygelf_and_gelf_pro() {
    let gw = Gateway::start(&listener("tls", "tls", ""), "");
    let addr = gw.addr();
    let since = now_secs();
    let ca = format!("ca={}", repo_path("certs/ca.crt").display());
    python_client("graypy", "tls", addr, 200, 60, &[&ca]);
    python_client("pygelf", "tls", addr, 200, 60, &[&ca]);
    gelf_pro("tcp-tls", addr, 30, 60, true);
    check_graypy(&wait_numbered(&gw, "graypy-tls", 200), "graypy-tls", 60);
    check_pygelf(&wait_numbered(&gw, "pygelf-tls", 200), "pygelf-tls", 60);
    check_gelf_pro(
        &wait_numbered(&gw, "gelf-pro-tcp-tls", 30),
        "gelf-pro-tcp-tls",
        60,
        since,
    );
}

fn frame(seq: usize, source: &str) -> Vec<u8> {
    let mut f = serde_json::to_vec(&json!({"version": "1.1", "host": "raw", "short_message": format!("event {seq} "), "_seq": seq, "_container_name": source})).unwrap();
    f.push(0);
    f
}

/// Reads until the server closes the connection (or fails the test after 5 s).
fn expect_closed(s: &mut TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 16];
    match s.read(&mut b) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("connection not closed: {other:?}"),
    }
}

/// A frame over `max_message_bytes` and a corrupt gzip frame each close their own connection
/// (after committing what came before); text that is not JSON is kept, tagged, as Logstash
/// does; another connection is untouched.
#[test]
fn tcp_bad_input_closes_only_that_connection() {
    let gw = Gateway::start(
        &listener("tcp", "tcp", "max_message_bytes = \"64KiB\"\n"),
        "",
    );
    let addr = gw.addr();
    let mut good = TcpStream::connect(addr).unwrap();
    good.write_all(&frame(0, "good")).unwrap();

    let mut long = TcpStream::connect(addr).unwrap();
    for i in 0..3 {
        long.write_all(&frame(i, "long")).unwrap();
    }
    long.write_all(&vec![b'{'; 100_000]).unwrap();
    expect_closed(&mut long);

    let mut zipped = TcpStream::connect(addr).unwrap();
    zipped.write_all(&frame(0, "zipped")).unwrap();
    zipped.write_all(b"not json\0").unwrap();
    zipped.write_all(&[0x1f, 0x8b, 8, 0, 1, 2, 3, 0]).unwrap();
    expect_closed(&mut zipped);

    good.write_all(&frame(1, "good")).unwrap();
    drop(good);
    wait_numbered(&gw, "good", 2);
    wait_numbered(&gw, "long", 3);
    wait_numbered(&gw, "zipped", 1);
    let events = gw.events();
    let failed: Vec<Value> = events
        .iter()
        .map(json)
        .filter(|v| v.get("tags").is_some())
        .collect();
    assert_eq!(failed.len(), 1, "{}", dump(&events));
    assert_eq!(failed[0]["message"], "not json");
    assert_eq!(failed[0]["tags"], json!(["_jsonparsefailure"]));
    assert_eq!(failed[0]["source_host"], "127.0.0.1");
    assert_eq!(events.len(), 7);
    let m = gw.metrics();
    assert_eq!(
        metric(
            &m,
            "logport_decode_errors_total",
            &[("reason", "frame_too_long")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "logport_decode_errors_total",
            &[("reason", "invalid_compression")]
        ),
        1.0
    );
    assert_eq!(
        metric(&m, "logport_decode_errors_total", &[("reason", "not_json")]),
        1.0
    );
    let log = gw.log();
    assert!(
        log.contains("closing connection")
            && log.contains("protocol=\"gelf\"")
            && log.contains("offset="),
        "{log}"
    );
}

/// SIGTERM while a sender is mid-stream: everything read is committed before exit.
#[test]
fn drain_commits_what_was_read() {
    let gw = Gateway::start(&listener("tcp", "tcp", ""), "");
    let mut s = TcpStream::connect(gw.addr()).unwrap();
    let mut all = Vec::new();
    for i in 0..2000 {
        all.extend_from_slice(&frame(i, "drain"));
    }
    s.write_all(&all).unwrap();
    // Everything is in the gateway's socket buffer or read; the connection stays open.
    std::thread::sleep(Duration::from_millis(300));
    let dir = gw.stop();
    let events = read_store(&dir.path().join("data").join("store"));
    numbered(&events, "drain", 2000);
    drop(s);
}

/// The UDP socket is a plain one: a single datagram from std works as well (sanity for the
/// field shape of a minimal message, with underscores kept by option).
#[test]
fn udp_keep_underscores_and_no_remap() {
    let gw = Gateway::start(
        &listener(
            "udp",
            "udp",
            "[listener.gelf]\nstrip_leading_underscore = false\nremap = false\n",
        ),
        "",
    );
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(
        br#"{"version":"1.1","host":"h","short_message":"m","full_message":"f","timestamp":1700000000,"_container_name":"c","_seq":0}"#,
        gw.addr(),
    )
    .unwrap();
    let events = gw.wait_for_events(1, Duration::from_secs(10));
    assert_eq!(
        json(&events[0]),
        json!({"@timestamp": "2023-11-14T22:13:20.000Z", "@version": "1", "version": "1.1", "host": "h",
               "short_message": "m", "full_message": "f", "_container_name": "c", "_seq": 0, "source_host": "127.0.0.1"})
    );
    assert_eq!(&*events[0].app, "c");
}
