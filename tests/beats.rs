//! The beats input against real Lumberjack clients nobody here wrote: Python's pylogbeat (v2,
//! compressed windows, seq counting on across windows, plain and TLS), npm lumberjack-client
//! (v2, seq 1 per window, TLS with a client certificate) and npm lumberjack-protocol (v1 over
//! TLS, one window per connection). Every event is numbered and must be committed exactly once
//! with the fields logstash-input-beats would give it, and the clients must see their acks.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use logport::event::{Event, Protocol};
use serde_json::{json, Value};

const BEATS_TCP: &str = "[[listener]]\nname = \"beats\"\nprotocol = \"beats\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:PORT\"\n";

fn beats_tls(client_auth: &str, extra: &str) -> String {
    format!(
        "[[listener]]\nname = \"beats-tls\"\nprotocol = \"beats\"\ntransport = \"tls\"\naddress = \"127.0.0.1:PORT\"\n{extra}\
         [listener.tls]\ncert = \"CERTS/server.crt\"\nkey = \"CERTS/server.key\"\nclient_ca = \"CERTS/ca.crt\"\nclient_auth = \"{client_auth}\"\n"
    )
}

fn client_script(name: &str) -> PathBuf {
    repo_path(&format!("tests/clients/{name}"))
}

fn cert(name: &str) -> String {
    repo_path(&format!("certs/{name}"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// python3 with pylogbeat, or a loud failure.
fn python() -> Command {
    let python = require_tool("python3");
    let probe = Command::new(&python)
        .args([
            "-c",
            "import pylogbeat; assert pylogbeat.__version__ == '2.1.0'",
        ])
        .output()
        .unwrap();
    assert!(
        probe.status.success(),
        "Python's pylogbeat 2.1.0 is not installed: run scripts/test.sh, which installs every client the tests use\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    Command::new(python)
}

/// node with NODE_PATH at the npm clients, or a loud failure.
fn node(module: &str) -> Command {
    let node = require_tool("node");
    let modules = std::env::var("LOGPORT_TEST_NODE_MODULES").unwrap_or_else(|_| {
        panic!("LOGPORT_TEST_NODE_MODULES is not set: run scripts/test.sh, which installs the npm clients the tests use")
    });
    assert!(
        PathBuf::from(&modules).join(module).exists(),
        "npm {module} is missing from {modules}: run scripts/test.sh"
    );
    let mut cmd = Command::new(node);
    cmd.env("NODE_PATH", modules);
    cmd
}

fn pylogbeat(port: u16, windows: usize, per_window: usize, extra: &[&str]) -> Command {
    let mut cmd = python();
    cmd.arg(client_script("beats_pylogbeat.py")).args([
        port.to_string(),
        windows.to_string(),
        per_window.to_string(),
    ]);
    cmd.args(extra);
    cmd
}

fn run_client(cmd: &mut Command) -> String {
    run_ok(cmd)
}

fn wait_child(child: Child, within: Duration) -> Output {
    let deadline = Instant::now() + within;
    let mut child = child;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "client did not finish within {within:?}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What logstash-input-beats makes of `beats_pylogbeat.py`'s event `n` (ECS v8 unless `legacy`).
fn expected_filebeat(n: u64, legacy: bool) -> Value {
    let message = format!("event {n} <b>");
    let mut v = json!({
        "@timestamp": format!("2024-05-01T10:00:00.{:03}Z", n % 1000),
        "@version": "1",
        "message": message,
        "log": {"offset": n * 100, "file": {"path": "/var/log/app.log"}},
        "input": {"type": "filestream"},
        "ecs": {"version": "8.0.0"},
        "host": {"name": "web-1"},
        "agent": {"type": "filebeat", "version": "8.13.4", "name": "web-1"},
        "fields": {"app": "billing", "n": n},
        "tags": ["t1", "beats_input_codec_plain_applied"],
    });
    if !legacy {
        v["event"] = json!({"original": message});
    }
    v
}

/// Events keyed by a number taken from each; fails on a duplicate.
fn by_number(events: &[Event], number: impl Fn(&Value) -> u64) -> BTreeMap<u64, (Value, &Event)> {
    let mut seen = BTreeMap::new();
    for e in events {
        let v = json(e);
        let n = number(&v);
        assert!(
            seen.insert(n, (v, e)).is_none(),
            "event {n} committed twice:\n{}",
            dump(events)
        );
    }
    seen
}

fn check_filebeat_events(events: &[Event], count: u64, legacy: bool) {
    assert_eq!(events.len() as u64, count, "{}", dump(events));
    let seen = by_number(events, |v| v["fields"]["n"].as_u64().expect("fields.n"));
    for n in 0..count {
        let (value, event) = seen
            .get(&n)
            .unwrap_or_else(|| panic!("event {n} is missing:\n{}", dump(events)));
        // `--pad` filler is random text; only its presence matters.
        let mut value = value.clone();
        if let Some(pad) = value.as_object_mut().unwrap().remove("pad") {
            assert!(pad.as_str().unwrap().len() >= 64, "event {n}");
        }
        assert_eq!(value, expected_filebeat(n, legacy), "event {n}");
        assert_eq!(&*event.app, "billing");
        assert_eq!(event.protocol, Protocol::Beats);
        assert!(event.peer.ip().is_loopback());
    }
}

/// The acks pylogbeat printed: it counts seq on across windows, so window w ends at (w+1)·n.
fn assert_acks(out: &str, windows: usize, per_window: usize) {
    let acks: Vec<usize> = out
        .lines()
        .filter_map(|l| l.strip_prefix("ack ")?.split(' ').next()?.parse().ok())
        .collect();
    let want: Vec<usize> = (1..=windows).map(|w| w * per_window).collect();
    assert_eq!(acks, want, "client output:\n{out}");
}

#[test]
fn pylogbeat_windows_are_committed_once_shaped_like_logstash_and_acked() {
    let gw = Gateway::start(BEATS_TCP, "");
    let port = gw.addr().port();
    let out = run_client(&mut pylogbeat(port, 5, 20, &[]));
    assert_acks(&out, 5, 20);
    // The acks came after commit, so every event is in the store already.
    check_filebeat_events(&gw.events(), 100, false);
    let metrics = gw.metrics();
    assert_eq!(
        metric(
            &metrics,
            "logport_beats_acks_total",
            &[("listener", "beats")]
        ),
        5.0
    );
    assert_eq!(
        metric(
            &metrics,
            "logport_events_received_total",
            &[("listener", "beats"), ("protocol", "beats")]
        ),
        100.0
    );
    // A second connection goes on counting where the first left (pylogbeat's seq is per client).
    let out = run_client(&mut pylogbeat(port, 2, 7, &["--first", "100"]));
    assert_acks(&out, 2, 7);
    check_filebeat_events(&gw.wait_for_events(114, Duration::from_secs(5)), 114, false);
}

#[test]
fn a_window_larger_than_the_budget_is_committed_in_parts_and_acked_once() {
    // 3000 events of ~2.5 KB: a compressed frame of several MB (far over max_message_bytes),
    // inflating to more than the whole 1 MiB in-flight budget.
    let gw = Gateway::start(BEATS_TCP, "in_flight_bytes = \"1MiB\"\n");
    let out = run_client(&mut pylogbeat(
        gw.addr().port(),
        1,
        3000,
        &["--pad", "2000", "--timeout", "20"],
    ));
    assert_acks(&out, 1, 3000);
    check_filebeat_events(&gw.events(), 3000, false);
    assert_eq!(
        metric(
            &gw.metrics(),
            "logport_beats_acks_total",
            &[("listener", "beats")]
        ),
        1.0
    );
}

#[test]
fn pylogbeat_over_mutual_tls_with_legacy_field_names() {
    let gw = Gateway::start(
        &beats_tls("required", "ecs_compatibility = \"disabled\"\n"),
        "",
    );
    let port = gw.addr().port();
    let out = run_client(&mut pylogbeat(
        port,
        3,
        10,
        &[
            "--tls",
            &cert("ca.crt"),
            &cert("client.crt"),
            &cert("client.key"),
        ],
    ));
    assert_acks(&out, 3, 10);
    check_filebeat_events(&gw.events(), 30, true);

    // Without a client certificate the handshake fails and nothing is committed.
    let out = pylogbeat(port, 1, 1, &["--tls", &cert("ca.crt")])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a client without a certificate got in"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(gw.events().len(), 30);
    assert!(
        metric(
            &gw.metrics(),
            "logport_tls_handshake_failures_total",
            &[("listener", "beats-tls")]
        ) >= 1.0
    );
}

#[test]
fn lumberjack_client_v2_over_tls_with_a_client_certificate() {
    let gw = Gateway::start(&beats_tls("required", ""), "");
    let port = gw.addr().port().to_string();
    let count = 40u64;
    let out = run_client(
        node("lumberjack-client")
            .arg(client_script("beats_lumberjack_client.js"))
            .args([
                port.as_str(),
                &count.to_string(),
                &cert("ca.crt"),
                &cert("client.crt"),
                &cert("client.key"),
            ]),
    );
    assert!(out.contains(&format!("acks {count}")), "{out}");
    let events = gw.wait_for_events(count as usize, Duration::from_secs(5));
    assert_eq!(events.len() as u64, count, "{}", dump(&events));
    let seen = by_number(&events, |v| v["fields"]["n"].as_u64().expect("fields.n"));
    for n in 0..count {
        let (value, event) = &seen[&n];
        let message = format!("node event {n}");
        assert_eq!(
            value,
            &json!({
                "@timestamp": format!("2024-05-01T10:00:00.{n:03}Z"),
                "@version": "1",
                "message": message,
                "event": {"original": message},
                "host": {"hostname": "node-1"},
                "fields": {"n": n},
                "tags": ["beats_input_codec_plain_applied"],
            })
        );
        // No `fields.app`, `container.name`, `service.name` nor `host.name`: the default app.
        assert_eq!(&*event.app, "unknown");
    }
}

#[test]
fn lumberjack_protocol_v1_client_gets_cumulative_acks() {
    let gw = Gateway::start(
        &beats_tls(
            "optional",
            "ecs_compatibility = \"disabled\"\napp_fields = [\"fields.app\", \"host\"]\n",
        ),
        "",
    );
    let port = gw.addr().port().to_string();
    let out = run_client(
        node("lumberjack-protocol")
            .arg(client_script("beats_lumberjack_protocol.js"))
            .args([
                port.as_str(),
                "30",
                "10",
                &cert("ca.crt"),
                &cert("client.crt"),
                &cert("client.key"),
            ]),
    );
    // One `1W 10` per connection: an ack every 10 events, carrying the last seq, never `2A`.
    assert!(out.contains("acks 10,20,30"), "{out}");
    let events = gw.events();
    let seen = by_number(&events, |v| {
        v["offset"].as_str().unwrap().parse::<u64>().unwrap() / 10
    });
    assert_eq!(seen.len(), 30);
    for n in 0..30u64 {
        let (value, event) = &seen[&n];
        let host = value["host"]
            .as_str()
            .expect("v1 host is the client's hostname");
        assert_eq!(
            value,
            &json!({
                "@timestamp": value["@timestamp"],
                "@version": "1",
                "message": format!("v1 event {n}"),
                "file": "/var/log/v1.log",
                "offset": (n * 10).to_string(),
                "host": host,
                "fields.app": "legacy",
                "tags": ["beats_input_codec_plain_applied"],
            })
        );
        assert_eq!(&*event.app, "legacy");
    }
}

/// A raw client that announces a window, sends one 100 KB event of it (about 200 KB shaped,
/// under the sub-batch size, so it is held, not sent) and goes quiet: its event holds that much
/// of the in-flight budget until the inactivity timeout closes it.
fn stall_with_budget(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    let doc = format!("{{\"message\":\"{}\"}}", "x".repeat(100_000));
    let mut wire = b"2W\x00\x00\x00\x0a2J\x00\x00\x00\x01".to_vec();
    wire.extend_from_slice(&(doc.len() as u32).to_be_bytes());
    wire.extend_from_slice(doc.as_bytes());
    s.write_all(&wire).unwrap();
    s
}

#[test]
fn keepalives_hold_a_client_through_backpressure_and_idle_clients_are_closed() {
    let gw = Gateway::start(
        &format!("{BEATS_TCP}[listener.beats]\nclient_inactivity_timeout = \"13s\"\n"),
        "in_flight_bytes = \"1MiB\"\n",
    );
    let addr = gw.addr();
    // Six of them want more than the whole budget.
    let mut stallers: Vec<TcpStream> = (0..6).map(|_| stall_with_budget(addr)).collect();
    std::thread::sleep(Duration::from_millis(500));
    // pylogbeat gives up when a read waits 8 s; its window waits ~13 s for budget, so only
    // keep-alives (2A 0 every 5 s) keep it connected.
    let started = Instant::now();
    let out = run_client(&mut pylogbeat(addr.port(), 1, 5, &["--timeout", "8"]));
    let took = started.elapsed();
    assert_acks(&out, 1, 5);
    assert!(
        took > Duration::from_secs(10),
        "the window should have waited for budget, took {took:?}"
    );
    // The stallers' half windows are never committed.
    check_filebeat_events(&gw.events(), 5, false);
    let metrics = gw.metrics();
    assert!(
        metric(
            &metrics,
            "logport_beats_keepalives_total",
            &[("listener", "beats")]
        ) >= 2.0,
        "{metrics}"
    );
    // The five stallers that hold budget all went quiet at the same time.
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(
        &gw.metrics(),
        "logport_beats_idle_closed_total",
        &[("listener", "beats")],
    ) < 5.0
    {
        assert!(Instant::now() < deadline, "{}", gw.metrics());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(gw.log().contains("closing an idle client"), "{}", gw.log());
    // A staller got nothing but keep-alives, then the gateway closed its socket.
    let staller = &mut stallers[0];
    staller
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut rest = Vec::new();
    staller
        .read_to_end(&mut rest)
        .expect("closed by the gateway");
    assert!(
        !rest.is_empty() && rest.chunks(6).all(|a| a == b"2A\x00\x00\x00\x00"),
        "the staller should have had keep-alives only: {rest:?}"
    );
}

#[test]
fn a_bad_client_is_closed_and_a_good_one_streaming_beside_it_loses_nothing() {
    let gw = Gateway::start(BEATS_TCP, "");
    let addr = gw.addr();
    let good = pylogbeat(addr.port(), 40, 10, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bad_inputs: [(&str, Vec<u8>); 4] = [
        (
            "unknown_version",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "message_too_large",
            b"2W\x00\x00\x00\x012J\x00\x00\x00\x01\x00\xa0\x00\x00".to_vec(),
        ),
        (
            "invalid_json",
            b"2W\x00\x00\x00\x012J\x00\x00\x00\x01\x00\x00\x00\x05hello".to_vec(),
        ),
        (
            "corrupt_zlib",
            b"2W\x00\x00\x00\x012C\x00\x00\x00\x08garbage!".to_vec(),
        ),
    ];
    for (reason, wire) in &bad_inputs {
        // A valid window first: it is committed and acked before the garbage closes the
        // connection.
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut ok = b"2W\x00\x00\x00\x012J\x00\x00\x00\x01".to_vec();
        let doc = format!("{{\"message\":\"before {reason}\",\"fields\":{{\"app\":\"bad\"}}}}");
        ok.extend_from_slice(&(doc.len() as u32).to_be_bytes());
        ok.extend_from_slice(doc.as_bytes());
        s.write_all(&ok).unwrap();
        let mut ack = [0u8; 6];
        s.read_exact(&mut ack).unwrap();
        assert_eq!(&ack, b"2A\x00\x00\x00\x01");
        s.write_all(wire).unwrap();
        // The gateway closes: EOF (or a reset) instead of an ack.
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{reason}: got {rest:?}");
    }
    let out = wait_child(good, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_acks(&stdout, 40, 10);
    let events = gw.wait_for_events(404, Duration::from_secs(5));
    let (good_events, bad_events): (Vec<Event>, Vec<Event>) =
        events.into_iter().partition(|e| &*e.app == "billing");
    check_filebeat_events(&good_events, 400, false);
    assert_eq!(bad_events.len(), 4, "{}", dump(&bad_events));
    let metrics = gw.metrics();
    let log = gw.log();
    for (reason, _) in &bad_inputs {
        assert_eq!(
            metric(
                &metrics,
                "logport_decode_errors_total",
                &[
                    ("listener", "beats"),
                    ("protocol", "beats"),
                    ("reason", reason)
                ]
            ),
            1.0,
            "{reason}"
        );
        let line = log
            .lines()
            .find(|l| {
                l.contains("closing connection") && l.contains(&format!("reason=\"{reason}\""))
            })
            .unwrap_or_else(|| panic!("no log line for {reason}:\n{log}"));
        for part in [
            "WARN",
            "listener=beats",
            "peer=127.0.0.1:",
            "offset=",
            "protocol=\"beats\"",
        ] {
            assert!(line.contains(part), "{part} missing from {line}");
        }
    }
}

#[test]
fn drain_commits_and_acks_a_window_in_flight() {
    let mut gw = Gateway::start(BEATS_TCP, "");
    let mut s = TcpStream::connect(gw.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Half a window, then the drain starts, then the rest: the window is finished, committed
    // and acked before the connection closes.
    let frame = |seq: u32| {
        let doc = format!("{{\"message\":\"drain {seq}\"}}");
        let mut f = b"2J".to_vec();
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&(doc.len() as u32).to_be_bytes());
        f.extend_from_slice(doc.as_bytes());
        f
    };
    let mut first = b"2W\x00\x00\x00\x02".to_vec();
    first.extend(frame(1));
    s.write_all(&first).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    gw.signal("TERM");
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(&frame(2)).unwrap();
    let mut ack = [0u8; 6];
    s.read_exact(&mut ack).unwrap();
    assert_eq!(&ack, b"2A\x00\x00\x00\x02");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let status = gw.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{}", gw.log());
    let events = gw.events();
    assert_eq!(events.len(), 2, "{}", dump(&events));
}
