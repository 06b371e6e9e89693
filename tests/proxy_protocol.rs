//! PROXY protocol v1 and v2 in front of the syslog TCP and TLS listeners, over real sockets:
//! the header's client address is what events carry, bad or untrusted headers close only their
//! own connection, and HAProxy (`send-proxy-v2`, not our code) is understood.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ppp::v2::{Builder, Command as PpCommand, Protocol, Type, Version};

/// A syslog listener named `name` taking PROXY headers from `trusted`.
fn listener(name: &str, transport: &str, mode: &str, trusted: &str, extra: &str) -> String {
    format!(
        "[[listener]]\nname = \"{name}\"\nprotocol = \"syslog\"\ntransport = \"{transport}\"\naddress = \"127.0.0.1:PORT\"\nproxy_protocol = \"{mode}\"\ntrusted_proxies = [{trusted}]\n{extra}"
    )
}

const TLS: &str = "[listener.tls]\ncert = \"CERTS/server.crt\"\nkey = \"CERTS/server.key\"\n";

fn v1(client: &str, server: &str) -> Vec<u8> {
    let (c, s): (SocketAddr, SocketAddr) = (client.parse().unwrap(), server.parse().unwrap());
    let family = if c.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        c.ip(),
        s.ip(),
        c.port(),
        s.port()
    )
    .into_bytes()
}

fn v2(client: &str, server: &str) -> Vec<u8> {
    let (c, s): (SocketAddr, SocketAddr) = (client.parse().unwrap(), server.parse().unwrap());
    Builder::with_addresses(Version::Two | PpCommand::Proxy, Protocol::Stream, (c, s))
        .write_tlv(Type::Authority, b"logs.example.com")
        .unwrap()
        .write_tlv(Type::UniqueId, b"conn-1")
        .unwrap()
        .build()
        .unwrap()
}

/// LF-framed RFC 5424 lines from app `app`.
fn lines(app: &str, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| format!("<13>1 - - {app} - - - line {i}\n"))
        .collect::<String>()
        .into_bytes()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Sends everything, then closes our side.
fn send(addr: SocketAddr, bytes: &[u8]) {
    let mut s = connect(addr);
    s.write_all(bytes).unwrap();
}

/// The gateway closes the connection within `within` (EOF or reset: it may close with our bytes
/// unread).
fn assert_closed(s: &mut TcpStream, within: Duration) {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("connection still open after {within:?}: {other:?}"),
    }
}

fn wait_for_metric(gw: &Gateway, name: &str, labels: &[(&str, &str)], n: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = metric(&gw.metrics(), name, labels);
        if got >= n {
            assert_eq!(got, n, "{name} {labels:?}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} {labels:?} is {got}, expected {n}:\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn ips_by_app(events: &[logport::event::Event]) -> Vec<(String, String, String)> {
    let mut got: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            let v = json(e);
            (
                e.app.to_string(),
                v["host"]["ip"].as_str().unwrap().to_owned(),
                e.peer.to_string(),
            )
        })
        .collect();
    got.sort();
    got.dedup();
    got
}

#[test]
fn v1_and_v2_headers_replace_the_peer_address() {
    let gw = Gateway::start(
        &listener("tcp", "tcp", "required", "\"127.0.0.1/32\"", ""),
        "",
    );
    let addr = gw.addr();
    // Header and frames in one write: the frames after the header must reach the decoder whole.
    send(
        addr,
        &[v1("192.0.2.10:56324", "198.51.100.1:5514"), lines("one", 3)].concat(),
    );
    // A v2 header in pieces, across reads, then frames.
    let header = v2("[2001:db8::7]:40000", "[2001:db8::1]:6514");
    let mut s = connect(addr);
    for piece in header.chunks(5) {
        s.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    s.write_all(&lines("two", 3)).unwrap();
    drop(s);

    let events = gw.wait_for_events(6, Duration::from_secs(10));
    assert_eq!(events.len(), 6);
    assert_eq!(
        ips_by_app(&events),
        [
            ("one".into(), "192.0.2.10".into(), "192.0.2.10:56324".into()),
            (
                "two".into(),
                "2001:db8::7".into(),
                "[2001:db8::7]:40000".into()
            ),
        ]
    );
    let messages: Vec<String> = events
        .iter()
        .filter(|e| &*e.app == "one")
        .map(|e| json(e)["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(messages, ["line 0", "line 1", "line 2"]);
    wait_for_metric(
        &gw,
        "logport_proxy_headers_total",
        &[("listener", "tcp"), ("version", "1")],
        1.0,
    );
    wait_for_metric(
        &gw,
        "logport_proxy_headers_total",
        &[("listener", "tcp"), ("version", "2")],
        1.0,
    );
}

#[test]
fn a_v2_header_before_the_tls_client_hello() {
    let gw = Gateway::start(
        &listener("tls", "tls", "required", "\"127.0.0.0/8\"", TLS),
        "",
    );
    let header = v2("198.51.100.23:50000", "10.0.0.1:6514");
    let certs = repo_path("certs");
    let script = format!(
        r#"
import socket, ssl, sys
header = bytes.fromhex(sys.argv[1])
ctx = ssl.create_default_context(cafile='{certs}/ca.crt')
payload = b''.join(b'%d %s' % (len(l), l) for l in (b'<13>1 - - tlsapp - - - over tls %d' % i for i in range(5)))
with socket.create_connection(('127.0.0.1', {port})) as raw:
    raw.sendall(header)
    with ctx.wrap_socket(raw, server_hostname='localhost') as s:
        s.sendall(payload)
"#,
        certs = certs.display(),
        port = gw.addr().port()
    );
    run_ok(
        Command::new(require_tool("python3"))
            .arg("-c")
            .arg(script)
            .arg(hex(&header)),
    );
    let events = gw.wait_for_events(5, Duration::from_secs(10));
    assert_eq!(
        ips_by_app(&events),
        [(
            "tlsapp".into(),
            "198.51.100.23".into(),
            "198.51.100.23:50000".into()
        )]
    );
    assert_eq!(json(&events[4])["message"], "over tls 4");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn untrusted_sources_are_closed_and_counted_while_trusted_ones_work() {
    let gw = Gateway::start(
        &[
            listener("untrusted", "tcp", "required", "\"10.0.0.0/8\"", ""),
            listener(
                "trusted",
                "tcp",
                "required",
                "\"10.0.0.0/8\", \"127.0.0.0/8\"",
                "",
            ),
            listener("optional", "tcp", "optional", "\"10.0.0.0/8\"", ""),
        ]
        .concat(),
        "",
    );
    let spoof = [v1("192.0.2.66:1", "127.0.0.1:2"), lines("spoofed", 1)].concat();
    for name in ["untrusted", "optional"] {
        let mut s = connect(gw.addr_of(name));
        s.write_all(&spoof).unwrap();
        assert_closed(&mut s, Duration::from_secs(5));
        wait_for_metric(
            &gw,
            "logport_proxy_header_errors_total",
            &[("listener", name), ("reason", "untrusted_source")],
            1.0,
        );
    }
    send(
        gw.addr_of("trusted"),
        &[v1("192.0.2.77:1", "127.0.0.1:2"), lines("proxied", 2)].concat(),
    );
    // Optional mode: a direct client without a header keeps its own address, even when it sends
    // less than a signature's length first and waits.
    let mut s = connect(gw.addr_of("optional"));
    s.write_all(b"<1").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(b"3>1 - - direct - - - not proxied\n").unwrap();
    drop(s);

    let events = gw.wait_for_events(3, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    let events_now = gw.events();
    assert_eq!(events_now.len(), 3, "{}", dump(&events_now));
    let got = ips_by_app(&events);
    assert_eq!(got[0].0, "direct");
    assert_eq!(got[0].1, "127.0.0.1");
    assert_eq!(
        got[1],
        ("proxied".into(), "192.0.2.77".into(), "192.0.2.77:1".into())
    );
    assert_eq!(
        json(events.iter().find(|e| &*e.app == "direct").unwrap())["message"],
        "not proxied"
    );
    let log = gw.log();
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("listener=untrusted"))
        .unwrap_or_else(|| panic!("no warning for the untrusted source:\n{log}"));
    assert!(warning.contains("peer=127.0.0.1:"), "{warning}");
    assert!(warning.contains("untrusted_source"), "{warning}");
}

#[test]
fn required_mode_closes_connections_without_a_valid_header() {
    let gw = Gateway::start(&listener("tcp", "tcp", "required", "\"127.0.0.1\"", ""), "");
    let mut bad_version = v2("192.0.2.1:1", "192.0.2.2:2");
    bad_version[12] = 0x31;
    let mut counts = std::collections::HashMap::new();
    for (bytes, reason) in [
        (lines("plain", 1), "missing"),
        (
            [
                &b"PROXY TCP4 garbage here 1 2\r\n"[..],
                &lines("garbage", 1),
            ]
            .concat(),
            "malformed",
        ),
        ([bad_version, lines("badv2", 1)].concat(), "malformed"),
        (
            [
                format!("PROXY TCP4 {}", "9".repeat(200)).into_bytes(),
                lines("long", 1),
            ]
            .concat(),
            "too_long",
        ),
    ] {
        let mut s = connect(gw.addr());
        s.write_all(&bytes).unwrap();
        assert_closed(&mut s, Duration::from_secs(5));
        drop(s);
        let count = counts.entry(reason).or_insert(0.0);
        *count += 1.0;
        wait_for_metric(
            &gw,
            "logport_proxy_header_errors_total",
            &[("listener", "tcp"), ("reason", reason)],
            *count,
        );
    }
    // A header cut short by the sender closing.
    send(gw.addr(), b"PROXY TCP4 192.0.2.1");
    wait_for_metric(
        &gw,
        "logport_proxy_header_errors_total",
        &[("listener", "tcp"), ("reason", "truncated")],
        1.0,
    );
    // A connect-only health check: closed quietly, not an error.
    let mut check = connect(gw.addr());
    check.shutdown(std::net::Shutdown::Write).unwrap();
    assert_closed(&mut check, Duration::from_secs(5));
    // The control: a valid header on the same listener gets through, and only it.
    send(
        gw.addr(),
        &[v2("192.0.2.5:5", "192.0.2.6:6"), lines("valid", 1)].concat(),
    );
    gw.wait_for_events(1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    let events = gw.events();
    assert_eq!(
        ips_by_app(&events),
        [("valid".into(), "192.0.2.5".into(), "192.0.2.5:5".into())]
    );
    assert_eq!(
        metric(
            &gw.metrics(),
            "logport_proxy_header_errors_total",
            &[("listener", "tcp")]
        ),
        5.0,
        "the health check must not count"
    );
}

#[test]
fn a_header_that_never_completes_is_closed_after_the_timeout_while_others_flow() {
    let gw = Gateway::start(
        &listener(
            "tcp",
            "tcp",
            "required",
            "\"127.0.0.1\"",
            "proxy_header_timeout = \"1500ms\"\n",
        ),
        "",
    );
    let opened = Instant::now();
    let mut stalled = connect(gw.addr());
    stalled.write_all(b"PROXY TCP4 192.0.2.1 ").unwrap();
    // Meanwhile, other connections are served in full.
    for c in 0..4 {
        send(
            gw.addr(),
            &[
                v1(&format!("192.0.2.{}:1000", 100 + c), "127.0.0.1:1"),
                lines(&format!("c{c}"), 100),
            ]
            .concat(),
        );
    }
    let events = gw.wait_for_events(400, Duration::from_secs(10));
    assert_eq!(events.len(), 400);
    assert_closed(&mut stalled, Duration::from_secs(10));
    assert!(
        opened.elapsed() >= Duration::from_millis(1400),
        "closed before the timeout: {:?}",
        opened.elapsed()
    );
    wait_for_metric(
        &gw,
        "logport_proxy_header_errors_total",
        &[("listener", "tcp"), ("reason", "timeout")],
        1.0,
    );
    assert_eq!(
        metric(
            &gw.metrics(),
            "logport_proxy_headers_total",
            &[("listener", "tcp")]
        ),
        4.0
    );
}

/// A free port for HAProxy's frontend (HAProxy cannot report a port 0 back).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private foreground HAProxy in TCP mode, `send-proxy-v2` to the gateway, with health checks
/// that send PROXY v2 LOCAL.
struct Haproxy {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Haproxy {
    fn start(target: SocketAddr) -> Haproxy {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = format!(
            "global\n  maxconn 100\n\
             defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
             frontend syslog\n  bind 127.0.0.1:{port}\n  default_backend logport\n\
             backend logport\n  server gw {target} send-proxy-v2 check inter 200ms check-send-proxy\n"
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let child = Command::new(require_tool("haproxy"))
            .arg("-f")
            .arg(&path)
            .arg("-db")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("haproxy.log")).unwrap())
            .spawn()
            .unwrap();
        let haproxy = Haproxy { child, port, dir };
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return haproxy;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("haproxy did not open its port:\n{}", haproxy.log());
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

#[test]
fn behind_haproxy_send_proxy_v2_events_carry_the_client_address() {
    let gw = Gateway::start(&listener("tcp", "tcp", "required", "\"127.0.0.1\"", ""), "");
    let haproxy = Haproxy::start(gw.addr());
    // From 127.0.0.2 (logger cannot choose its source address): HAProxy itself connects from
    // 127.0.0.1, so only the header can bring .2 into the events.
    let script = format!(
        r#"
import socket
s = socket.socket()
s.bind(('127.0.0.2', 0))
s.connect(('127.0.0.1', {port}))
s.sendall(b''.join(b'<13>1 - - viahaproxy - - - line %d\n' % i for i in range(50)))
s.close()
"#,
        port = haproxy.port
    );
    run_ok(Command::new(require_tool("python3")).arg("-c").arg(script));
    // And util-linux logger, a client nobody here wrote, from 127.0.0.1.
    run_ok(Command::new(require_tool("logger")).args([
        "--tcp",
        "-n",
        "127.0.0.1",
        "-P",
        &haproxy.port.to_string(),
        "--rfc5424",
        "-t",
        "loggerapp",
        "through haproxy",
    ]));
    let events = gw.wait_for_events(51, Duration::from_secs(10));
    let got = ips_by_app(&events);
    assert_eq!(got.len(), 2, "{got:?}\n{}", haproxy.log());
    assert_eq!(got[0].0, "loggerapp");
    assert_eq!(got[0].1, "127.0.0.1");
    assert_eq!(got[1].0, "viahaproxy");
    assert_eq!(got[1].1, "127.0.0.2");
    // HAProxy's own health checks arrive as v2 LOCAL headers: accepted, no events, no errors.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gw.log().contains("local=true") {
        assert!(
            Instant::now() < deadline,
            "no LOCAL health check seen:\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = gw.metrics();
    let v2_headers = metric(&text, "logport_proxy_headers_total", &[("version", "2")]);
    assert!(v2_headers >= 3.0, "{v2_headers} v2 headers");
    assert_eq!(
        metric(&text, "logport_proxy_header_errors_total", &[]),
        0.0,
        "{}",
        gw.log()
    );
    assert_eq!(gw.events().len(), 51);
}
