//! logport as a fleet behind a real layer-4 balancer: a private HAProxy (TCP mode,
//! `send-proxy-v2`, health checks on `/ready`) in front of three logport processes that commit to
//! one real Kafka-protocol broker; real shippers from their own loopback addresses; one node
//! drained with SIGTERM and another killed with -9 and restarted while they send. Also
//! `max_connection_age` and `drain_grace` on one node.

mod common;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::kafka::{consume, Broker, Record};
use common::{http_get, metric, repo_path, require_tool, Gateway, SYSLOG_TCP};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The fixed ports of one node: a node killed and restarted must come back where the balancer
/// expects it.
#[derive(Clone, Copy)]
struct Ports {
    beats: u16,
    forward: u16,
    syslog: u16,
    admin: u16,
}

impl Ports {
    fn new() -> Ports {
        Ports {
            beats: free_port(),
            forward: free_port(),
            syslog: free_port(),
            admin: free_port(),
        }
    }
}

fn start_node(ports: Ports, broker: &str) -> Gateway {
    let listener = |name: &str, port: u16, extra: &str| {
        format!(
            "[[listener]]\nname = \"{name}\"\nprotocol = \"{name}\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n\
             proxy_protocol = \"required\"\ntrusted_proxies = [\"127.0.0.1\"]\n{extra}"
        )
    };
    // Beats and forward connections are long-lived: max_connection_age spreads them again over
    // the nodes once one is back. Syslog has no acks, so it is not closed for age.
    let listeners = [
        listener("beats", ports.beats, "max_connection_age = \"3s\"\n"),
        listener("forward", ports.forward, "max_connection_age = \"3s\"\n"),
        listener("syslog", ports.syslog, ""),
    ]
    .concat();
    Gateway::start(
        &listeners,
        &format!(
            "drain_grace = \"1s\"\n[sink]\ntype = \"kafka\"\n[kafka]\nbrokers = \"{broker}\"\n[admin]\naddress = \"127.0.0.1:{}\"\n",
            ports.admin
        ),
    )
}

/// A private foreground HAProxy with its own config, pid file and log.
struct Haproxy {
    child: Child,
    dir: tempfile::TempDir,
    beats: u16,
    forward: u16,
    syslog: u16,
}

impl Haproxy {
    fn start(nodes: &[Ports]) -> Haproxy {
        let dir = tempfile::tempdir().unwrap();
        let (beats, forward, syslog) = (free_port(), free_port(), free_port());
        let mut config = String::from(
            "global\n  maxconn 1000\n\
             defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n\
             \x20 option redispatch\n  retries 3\n\
             \x20 default-server send-proxy-v2 check inter 200ms fall 1 rise 2\n",
        );
        let section = |config: &mut String, name: &str, port: u16, backend: fn(&Ports) -> u16| {
            config.push_str(&format!(
                "frontend {name}\n  bind 127.0.0.1:{port}\n  default_backend {name}\n\
                 backend {name}\n  balance first\n  option httpchk GET /ready\n"
            ));
            for (i, node) in nodes.iter().enumerate() {
                config.push_str(&format!(
                    "  server n{} 127.0.0.1:{} check port {}\n",
                    i + 1,
                    backend(node),
                    node.admin
                ));
            }
        };
        section(&mut config, "beats", beats, |n| n.beats);
        section(&mut config, "forward", forward, |n| n.forward);
        section(&mut config, "syslog", syslog, |n| n.syslog);
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, &config).unwrap();
        let child = Command::new(require_tool("haproxy"))
            .arg("-f")
            .arg(&path)
            .arg("-p")
            .arg(dir.path().join("haproxy.pid"))
            .arg("-db")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("haproxy.log")).unwrap())
            .spawn()
            .unwrap();
        let haproxy = Haproxy {
            child,
            dir,
            beats,
            forward,
            syslog,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while [beats, forward, syslog]
            .iter()
            .any(|p| TcpStream::connect(("127.0.0.1", *p)).is_err())
        {
            assert!(
                Instant::now() < deadline,
                "haproxy did not open its ports:\n{}",
                haproxy.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        // Every server starts "up, going down": let the first checks pass before sending.
        std::thread::sleep(Duration::from_millis(500));
        haproxy
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python(script: &str) -> Command {
    let mut cmd = Command::new(require_tool("python3"));
    cmd.arg(repo_path(&format!("tests/clients/{script}")));
    cmd
}

fn node_client(script: &str) -> Command {
    let modules = std::env::var("LOGPORT_TEST_NODE_MODULES").unwrap_or_else(|_| {
        panic!("LOGPORT_TEST_NODE_MODULES is not set: run scripts/test.sh (or source .tools/env.sh), which installs @fluent-org/logger")
    });
    let mut cmd = Command::new(require_tool("node"));
    cmd.env("NODE_PATH", modules)
        .arg(repo_path(&format!("tests/clients/{script}")));
    cmd
}

/// Waits for a client and returns its one-line JSON report.
fn report(child: Child, what: &str) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what} failed with {}:\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim().lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{what} printed no report ({e}):\n{stdout}"))
}

fn numbers(report: &serde_json::Value) -> Vec<u64> {
    report["acked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect()
}

/// The event number each record carries, by protocol.
fn number(r: &Record) -> u64 {
    let v = r.json();
    let n = match r.header("protocol") {
        Some("beats") => v["fields"]["n"].as_u64(),
        Some("forward") => v["n"].as_u64(),
        _ => v["message"]
            .as_str()
            .and_then(|m| m.rsplit(' ').next())
            .and_then(|n| n.parse().ok()),
    };
    n.unwrap_or_else(|| panic!("no event number in {v}"))
}

/// How many times each number is in Kafka, for one protocol.
fn counts(records: &[Record], protocol: &str) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for r in records
        .iter()
        .filter(|r| r.header("protocol") == Some(protocol))
    {
        *counts.entry(number(r)).or_insert(0) += 1;
    }
    counts
}

/// Asserts every acked number is in Kafka; returns the duplicates.
fn check_acked(what: &str, acked: &[u64], got: &BTreeMap<u64, usize>) -> usize {
    let missing: Vec<_> = acked.iter().filter(|n| !got.contains_key(n)).collect();
    assert!(
        missing.is_empty(),
        "{what}: {} acked events are not in Kafka, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    got.values().map(|c| c - 1).sum()
}

#[test]
fn a_fleet_behind_haproxy_loses_no_acked_event_when_nodes_drain_and_die() {
    let started = Instant::now();
    let broker = Broker::start();
    let ports = [Ports::new(), Ports::new(), Ports::new()];
    let mut n1 = start_node(ports[0], &broker.address());
    let n2 = start_node(ports[1], &broker.address());
    let n3 = start_node(ports[2], &broker.address());
    // `balance first`: every shipper starts on n1, the node to be drained; then n2, the node to
    // be killed, takes them all; then n3. Each shipper lives through both.
    let haproxy = Haproxy::start(&ports);

    // Each shipper from its own loopback address: HAProxy connects from 127.0.0.1, so only the
    // PROXY header can bring these into the events.
    let beats = python("fleet_beats.py")
        .args(["127.0.0.2", &haproxy.beats.to_string(), "70", "20", "0.15"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let forward = node_client("fleet_forward.js")
        .args(["127.0.0.3", &haproxy.forward.to_string(), "400", "25"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let syslog = python("fleet_syslog.py")
        .args(["127.0.0.4", &haproxy.syslog.to_string(), "400", "0.025"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    std::thread::sleep(Duration::from_millis(2500));
    let on_n1 = n1.metrics();
    n1.signal("TERM");
    // /ready turns 503 at once, before the listeners close (drain_grace), so HAProxy takes the
    // node out before any shipper is refused.
    let deadline = Instant::now() + Duration::from_millis(800);
    while http_get(n1.admin, "/ready")
        .expect("GET /ready while draining")
        .0
        != 503
    {
        assert!(
            Instant::now() < deadline,
            "a draining node must fail its health check"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1900));
    let n2 = n2.crash();
    std::thread::sleep(Duration::from_millis(700));
    let n2 = n2.restart();
    let drained = n1.wait_exit(Duration::from_secs(20));
    assert!(
        drained.success(),
        "the drained node exited with {drained}:\n{}",
        n1.log()
    );

    let beats = report(beats, "the beats shipper (pylogbeat)");
    let forward = report(forward, "the forward shipper (@fluent-org/logger)");
    let syslog = report(syslog, "the syslog shipper (SysLogHandler)");
    let beats_acked = numbers(&beats);
    let forward_acked = numbers(&forward);
    assert_eq!(beats_acked.len(), 1400, "pylogbeat gave up: {beats}");
    assert_eq!(
        forward_acked.len(),
        400,
        "forward emits not acked: {forward}"
    );

    let records = consume(
        &broker.address(),
        |t| t == "logs",
        beats_acked.len() + forward_acked.len(),
        Duration::from_secs(30),
    );
    let beats_got = counts(&records, "beats");
    let forward_got = counts(&records, "forward");
    let syslog_got = counts(&records, "syslog");
    let beats_dups = check_acked("beats", &beats_acked, &beats_got);
    let forward_dups = check_acked("forward", &forward_acked, &forward_got);
    let syslog_dups: usize = syslog_got.values().map(|c| c - 1).sum();

    // Every event carries its shipper's address, never the balancer's.
    for r in &records {
        let want = match r.header("protocol") {
            Some("beats") => "127.0.0.2:",
            Some("forward") => "127.0.0.3:",
            _ => "127.0.0.4:",
        };
        let peer = r.header("peer").unwrap_or_default();
        assert!(
            peer.starts_with(want),
            "event from {peer}, expected {want}*: {:?}",
            r.json()
        );
    }
    assert!(
        syslog_got.len() >= 300,
        "few syslog lines arrived: {} of 400 ({syslog})",
        syslog_got.len()
    );

    // The shippers really were moved: each was on n1 until its drain, on n3 after n2 died, and
    // beats and forward came back to the restarted n2 at their max_connection_age.
    let received = |text: &str, listener: &str| {
        metric(
            text,
            "logport_events_received_total",
            &[("listener", listener)],
        )
    };
    let (on_n2, on_n3) = (n2.metrics(), n3.metrics());
    let spread: Vec<String> = [("n1", &on_n1), ("n2 (restarted)", &on_n2), ("n3", &on_n3)]
        .iter()
        .map(|(node, text)| {
            format!(
                "{node}: beats {} forward {} syslog {}",
                received(text, "beats"),
                received(text, "forward"),
                received(text, "syslog")
            )
        })
        .collect();
    eprintln!("fleet: events received per node (n1 before its drain): {spread:?}");
    for listener in ["beats", "forward"] {
        assert!(
            received(&on_n1, listener) > 0.0,
            "{listener} never reached n1: {spread:?}"
        );
        assert!(
            received(&on_n3, listener) > 0.0,
            "{listener} never reached n3: {spread:?}"
        );
        assert!(
            received(&on_n2, listener) > 0.0,
            "{listener} did not come back to the restarted n2 (max_connection_age): {spread:?}"
        );
    }
    // Syslog is not closed for age, and its drain waits for a pause that this sender never
    // makes (2 s): where it goes next depends on when n2 is back. It must move on, somewhere.
    assert!(
        received(&on_n1, "syslog") > 0.0,
        "syslog never reached n1: {spread:?}"
    );
    assert!(
        received(&on_n2, "syslog") + received(&on_n3, "syslog") > 0.0,
        "syslog did not move on after n1's drain: {spread:?}"
    );
    let aged = metric(&on_n3, "logport_connections_aged_total", &[]);
    assert!(
        aged >= 2.0,
        "n3 closed {aged} connections for max_connection_age"
    );
    assert!(
        n1.log().contains("listeners close after drain_grace"),
        "{}",
        n1.log()
    );
    eprintln!(
        "fleet: beats {} acked, {} in Kafka ({beats_dups} duplicates), {} reconnects; \
         forward {} acked, {} in Kafka ({forward_dups} duplicates), {} client errors; \
         syslog 400 sent, {} in Kafka ({syslog_dups} duplicates, {} lost: no acks); \
         {aged} connections closed for age on n3; {:.1}s",
        beats_acked.len(),
        beats_got.len(),
        beats["reconnects"],
        forward_acked.len(),
        forward_got.len(),
        forward["error_count"],
        syslog_got.len(),
        400 - syslog_got.len(),
        started.elapsed().as_secs_f64()
    );
    drop(haproxy);
}

#[test]
fn max_connection_age_closes_beats_connections_between_windows_after_their_acks() {
    let gw = Gateway::start(
        "[[listener]]\nname = \"beats\"\nprotocol = \"beats\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:PORT\"\nmax_connection_age = \"1s\"\n",
        "",
    );
    let out = python("fleet_beats.py")
        .args([
            "127.0.0.5",
            &gw.addr().port().to_string(),
            "30",
            "10",
            "0.1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(numbers(&report).len(), 300, "{report}");
    // ~3.5 s of windows: closed at least twice, and each close cost the client a reconnect.
    let aged = metric(
        &gw.metrics(),
        "logport_connections_aged_total",
        &[("listener", "beats")],
    );
    assert!(aged >= 2.0, "closed for age {aged} times: {report}");
    assert!(report["reconnects"].as_u64().unwrap() >= 2, "{report}");
    // Closed between windows, after their acks: no window was sent twice.
    let events = gw.wait_for_events(300, Duration::from_secs(5));
    let mut seen: Vec<u64> = events
        .iter()
        .map(|e| common::json(e)["fields"]["n"].as_u64().unwrap())
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(
        events.len(),
        300,
        "duplicates: a connection was closed inside a window"
    );
    assert_eq!(seen.len(), 300);
}

#[test]
fn drain_grace_turns_ready_503_while_the_listeners_still_accept() {
    let mut gw = Gateway::start(SYSLOG_TCP, "drain_grace = \"1500ms\"\n");
    gw.signal("TERM");
    let t = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(http_get(gw.admin, "/ready").unwrap().0, 503);
    assert_eq!(http_get(gw.admin, "/health").unwrap().0, 200);
    // Inside the grace a shipper the balancer still sends here is served, not refused.
    let mut s = TcpStream::connect(gw.addr()).expect("listener open during drain_grace");
    std::io::Write::write_all(&mut s, b"<13>1 - - graceapp - - - during the grace\n").unwrap();
    drop(s);
    let status = gw.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status}:\n{}", gw.log());
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "exited before drain_grace: {:?}",
        t.elapsed()
    );
    let events = common::read_store(&gw.store_dir());
    assert_eq!(events.len(), 1, "{}", common::dump(&events));
}

#[test]
fn a_second_sigterm_skips_drain_grace() {
    let mut gw = Gateway::start(SYSLOG_TCP, "drain_grace = \"15s\"\n");
    gw.signal("TERM");
    let t = Instant::now();
    while !gw.log().contains("listeners close after drain_grace") {
        assert!(t.elapsed() < Duration::from_secs(5), "{}", gw.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    gw.signal("TERM");
    let status = gw.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status}:\n{}", gw.log());
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the second SIGTERM did not end the 15 s grace: {:?}",
        t.elapsed()
    );
    assert!(gw.log().contains("drain_grace skipped"), "{}", gw.log());
}
