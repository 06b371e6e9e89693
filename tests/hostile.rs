//! Hostile clients against one real gateway, over real sockets, while a well-behaved Beats
//! client (the neighbour: pylogbeat, tests/clients/beats_neighbour.py) streams numbered events
//! on its own listener and times each ack.
//!
//! The attacks run one after another (the TLS stall runs beside them, since the handshake
//! timeout is 10 s). After each: the gateway is alive, the attacker was closed or its datagrams
//! dropped with a log line and a metric, the gateway's peak RSS (VmHWM from /proc, reset before
//! each attack through clear_refs) stayed within the in-flight budget plus a fixed overhead, and
//! the neighbour's p99 ack latency during the attack stayed within a small factor of its p99 in
//! the first seconds of the same run, before any attacker. At the end every event the neighbour
//! had acked is in the store. The table RELIABILITY.md shows is printed and written to
//! `$HOSTILE_REPORT` (default: target/hostile-report.md).
//!
//! The attackers are hand-made on purpose: no real client sends these bytes.
//! Takes about 40 s: `cargo test --test hostile -- --nocapture` prints the table.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::*;
use logport_forward::rmpv::Value;
use logport_lumberjack::{encode_batch, Payload, Version};

const MIB: usize = 1 << 20;
/// The gateway's in-flight byte budget in this suite.
const IN_FLIGHT: usize = 16 * MIB;
/// The most one reader may hold that the budget does not cover yet: forward's decoded cap
/// (max_decoded_bytes, 64 MiB here); Beats `C` frames inflate to 4 MiB, GELF payloads to 1 MiB.
const LARGEST_CAP: usize = 64 * MIB;
/// Forward bombs sent at once, on as many connections.
const FORWARD_BOMBS: usize = 16;
/// How many readers the gateway lets inflate at once (its inflation gate: CPUs - 1, at least 1).
fn inflation_gate() -> usize {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    cpus.saturating_sub(1).max(1)
}
/// The RSS bound: the budget, a capped decompression per place in the inflation gate, and
/// the fixed overhead.
fn rss_bound() -> usize {
    IN_FLIGHT + inflation_gate() * LARGEST_CAP + FIXED_OVERHEAD
}
/// What the process holds beside its budget and its capped decompressions: code, runtime,
/// rdkafka's and tokio's threads, the store's buffers, measured at about 20 MiB idle.
const FIXED_OVERHEAD: usize = 48 * MIB;
/// The neighbour's p99 during an attack may be this many times its p99 without attackers (the
/// larger of the first 2 s and the control window just before the attack), or up to FLOOR
/// above it (on 2 cores shared with other builds, scheduling jitter is noise, not starvation).
const FACTOR: f64 = 5.0;
const FLOOR: Duration = Duration::from_millis(150);
/// The neighbour alone just before each attack (see the loop).
const CONTROL: Duration = Duration::from_millis(1500);

const CONFIG: &str = r#"
[[listener]]
name = "neighbour"
protocol = "beats"
transport = "tcp"
address = "127.0.0.1:PORT"

[[listener]]
name = "syslog"
protocol = "syslog"
transport = "tcp"
address = "127.0.0.1:PORT"
max_connections = 1000
frame_timeout = "3s"

[[listener]]
name = "syslog-udp"
protocol = "syslog"
transport = "udp"
address = "127.0.0.1:PORT"

[[listener]]
name = "syslog-tls"
protocol = "syslog"
transport = "tls"
address = "127.0.0.1:PORT"
[listener.tls]
cert = "CERTS/server.crt"
key = "CERTS/server.key"
handshake_timeout = "4s"

[[listener]]
name = "beats"
protocol = "beats"
transport = "tcp"
address = "127.0.0.1:PORT"
frame_timeout = "3s"
[listener.beats]
client_inactivity_timeout = "2s"
max_inflated_bytes = "4MiB"

[[listener]]
name = "gelf-udp"
protocol = "gelf"
transport = "udp"
address = "127.0.0.1:PORT"
[listener.gelf]
chunk_timeout = "2s"
max_reassembly_bytes = "4MiB"
max_pending_messages = 1000
max_decompressed_bytes = "1MiB"

[[listener]]
name = "gelf-tcp"
protocol = "gelf"
transport = "tcp"
address = "127.0.0.1:PORT"
max_message_bytes = "1MiB"
frame_timeout = "3s"
[listener.gelf]
max_decompressed_bytes = "1MiB"

[[listener]]
name = "forward"
protocol = "forward"
transport = "tcp"
address = "127.0.0.1:PORT"
frame_timeout = "3s"
[listener.forward]
chunk_size_limit = "1MiB"
max_decoded_bytes = "64MiB"
"#;

// ---------------------------------------------------------------- the neighbour

/// Ack latencies of the neighbour, stamped with when each event was sent.
#[derive(Default)]
struct Latencies {
    samples: Vec<(Instant, Duration)>,
    acked: u64,
}

struct Neighbour {
    child: std::process::Child,
    lat: Arc<Mutex<Latencies>>,
    thread: std::thread::JoinHandle<()>,
}

impl Neighbour {
    /// tests/clients/beats_neighbour.py: pylogbeat sends one event per window every 10 ms and
    /// reports each window's send-to-ack time, i.e. one event's commit latency.
    fn start(addr: SocketAddr) -> Neighbour {
        let probe = std::process::Command::new(require_tool("python3"))
            .args(["-c", "import pylogbeat"])
            .output()
            .unwrap();
        assert!(
            probe.status.success(),
            "Python's pylogbeat is not installed: run scripts/test.sh, which installs every client the tests use"
        );
        let mut child = std::process::Command::new(require_tool("python3"))
            .arg(repo_path("tests/clients/beats_neighbour.py"))
            .arg(addr.port().to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lat = Arc::new(Mutex::new(Latencies::default()));
        let l = lat.clone();
        let thread = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let acked_at = Instant::now();
                let (n, secs) = line.split_once(' ').expect("N SECONDS");
                let d = Duration::from_secs_f64(secs.parse().unwrap());
                let mut g = l.lock().unwrap();
                g.samples.push((acked_at - d, d));
                g.acked = n.parse().unwrap();
            }
        });
        Neighbour { child, lat, thread }
    }

    fn p99_between(&self, from: Instant, to: Instant) -> (Duration, usize) {
        let g = self.lat.lock().unwrap();
        let mut v: Vec<Duration> = g
            .samples
            .iter()
            // Every ack outstanding at some point of the window: a stall shows as one long sample.
            .filter(|(t, d)| *t <= to && *t + *d >= from)
            .map(|(_, d)| *d)
            .collect();
        v.sort();
        let n = v.len();
        assert!(n >= 1, "the neighbour got no ack in that window");
        (v[(n * 99).div_ceil(100) - 1], n)
    }

    /// Waits for an ack of an event sent after `t`, so that every ack outstanding at `t` has
    /// been reported; fails when none comes in 10 s (the neighbour is starved).
    fn wait_past(&self, t: Instant) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self
            .lat
            .lock()
            .unwrap()
            .samples
            .iter()
            .any(|(sent, _)| *sent > t)
        {
            assert!(
                Instant::now() < deadline,
                "the neighbour got no ack for 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the client; the number of its last acked event.
    fn finish(mut self) -> u64 {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the neighbour client died (its ack never came?)"
        );
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.thread.join().unwrap();
        let acked = self.lat.lock().unwrap().acked;
        acked
    }
}

// ---------------------------------------------------------------- /proc

fn status_kib(pid: u32, key: &str) -> usize {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("gateway alive");
    s.lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// Resets the kernel's peak-RSS mark so VmHWM covers one attack only.
fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset VmHWM via clear_refs");
}

// ---------------------------------------------------------------- attack helpers

/// Waits until the peer closes `s` (EOF or reset); false after `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Sends `bytes` (ignoring a reset: the gateway may close mid-write) and waits for the close.
fn send_and_expect_close(addr: SocketAddr, bytes: &[u8]) -> bool {
    send_and_expect_close_within(addr, bytes, Duration::from_secs(5))
}

fn send_and_expect_close_within(addr: SocketAddr, bytes: &[u8], within: Duration) -> bool {
    let mut s = TcpStream::connect(addr).unwrap();
    for piece in bytes.chunks(64 << 10) {
        if s.write_all(piece).is_err() {
            break;
        }
    }
    closed_within(&mut s, within)
}

/// `mib` MiB of `byte` compressed at level 9 as zlib or gzip: a bomb. Python's zlib (C) makes
/// it in a fraction of a second, where miniz in this unoptimised test build takes many.
fn bomb(gzip: bool, mib: usize, byte: u8) -> Vec<u8> {
    bomb_of(gzip, mib, &format!("bytes([{byte}]) * (1 << 20)"))
}

/// Like [`bomb`], repeating the block the Python expression `block` makes (about 1 MiB).
fn bomb_of(gzip: bool, blocks: usize, block: &str) -> Vec<u8> {
    let wbits = if gzip { 31 } else { 15 };
    let script = format!(
        "import sys, zlib\nc = zlib.compressobj(9, zlib.DEFLATED, {wbits})\nblock = {block}\nout = sys.stdout.buffer\nfor _ in range({blocks}):\n    out.write(c.compress(block))\nout.write(c.flush())\n"
    );
    let out = std::process::Command::new(require_tool("python3"))
        .args(["-c", &script])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn beats_window_header() -> BytesMut {
    let mut b = BytesMut::new();
    logport_lumberjack::encode_window(Version::V2, 1, &mut b);
    b
}

/// A seeded xorshift, so "random garbage" is the same bytes on every run.
fn garbage(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

// ---------------------------------------------------------------- the suite

struct Row {
    attack: &'static str,
    did: String,
    peak_rss_mib: f64,
    /// The neighbour's p99 in the control window just before the attack.
    control_p99: Duration,
    p99: Duration,
    events: usize,
    secs: f64,
}

struct Ctx<'a> {
    gw: &'a Gateway,
    bombs: Bombs,
}

/// Made before the neighbour starts: compressing hundreds of MiB takes the test's CPU, which
/// must not count against the gateway.
struct Bombs {
    beats: Vec<u8>,
    forward: Vec<u8>,
    gelf_zlib: Vec<u8>,
    gelf_gzip: Vec<u8>,
    /// Forward messages of `[0, {}]` entries: plain, and gzipped.
    tiny_plain: Vec<u8>,
    tiny_gzip: Vec<u8>,
}

/// Entries `[0, {}]` in the plain forward message, and in the gzip one.
const TINY_PLAIN: usize = 349_000;
const TINY_GZIP: usize = 4_000_000;

impl Bombs {
    fn make() -> Bombs {
        Bombs {
            // Valid `W` frames (6 bytes each) for 256 MiB: only the inflation cap can stop it,
            // and nothing is committed.
            beats: bomb_of(false, 256, "b'2W\\0\\0\\0\\x01' * 174763"),
            // Level 9 keeps 512 MiB under the 1 MiB message limit, so the inflation cap is
            // what refuses it.
            forward: bomb(true, 512, 0),
            // 60 MiB at level 9 is about 60 KiB: one datagram.
            gelf_zlib: bomb(false, 60, b' '),
            gelf_gzip: bomb(true, 60, b' '),
            tiny_plain: tiny_entries(false, TINY_PLAIN),
            tiny_gzip: tiny_entries(true, TINY_GZIP),
        }
    }
}

impl Ctx<'_> {
    fn addr(&self, name: &str) -> SocketAddr {
        self.gw.addr_of(name)
    }
    fn m(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric(&self.gw.metrics(), name, labels)
    }
    /// Waits for a counter to pass `above`: the gateway closes a socket before it counts why.
    fn m_above(&self, name: &str, labels: &[(&str, &str)], above: f64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            if self.m(name, labels) > above {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

type Attack = fn(&Ctx) -> String;

#[test]
fn hostile_clients_do_not_crash_starve_or_bloat_the_gateway() {
    let bombs = Bombs::make();
    let mut gw = Gateway::start(
        CONFIG,
        &format!("in_flight_bytes = \"{}MiB\"\n", IN_FLIGHT / MIB),
    );
    let pid = gw.child.id();
    let neighbour = Neighbour::start(gw.addr_of("neighbour"));
    let idle_rss = status_kib(pid, "VmRSS:") / 1024;

    // Baseline: the neighbour alone.
    let base_from = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let base_to = Instant::now();
    neighbour.wait_past(base_to);
    let (base_p99, base_n) = neighbour.p99_between(base_from, base_to);

    // The TLS stall runs beside everything else: its handshake_timeout is 4 s.
    let tls_addr = gw.addr_of("syslog-tls");
    let tls_started = Instant::now();
    let tls = std::thread::spawn(move || {
        let mut s = TcpStream::connect(tls_addr).unwrap();
        // The first bytes of a ClientHello record, then nothing.
        s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
        closed_within(&mut s, Duration::from_secs(8))
    });

    let attacks: &[(&'static str, Attack)] = &[
        ("idle connections past the limit", idle_connections),
        ("slowloris writers (1 byte/s)", slowloris),
        ("Beats `C` decompression bomb", beats_bomb),
        ("forward gzip decompression bombs, 16 at once", forward_bomb),
        (
            "forward messages of millions of tiny entries",
            forward_tiny_entries,
        ),
        ("GELF zlib bomb (UDP) and gzip bomb (TCP)", gelf_bombs),
        (
            "flood of incomplete GELF chunked messages",
            gelf_chunk_flood,
        ),
        ("declared lengths of gigabytes", huge_lengths),
        ("deeply nested JSON and msgpack", deep_nesting),
        ("invalid UTF-8", invalid_utf8),
        ("Beats client that never reads its acks", beats_deaf),
        ("random garbage on every port", random_garbage),
    ];
    let ctx = Ctx { gw: &gw, bombs };
    let mut rows = Vec::new();
    for (name, attack) in attacks {
        // A control window right before the attack: other builds share these 2 cores, and
        // their load moves the neighbour's latency more than a minute apart.
        let control_from = Instant::now();
        std::thread::sleep(CONTROL);
        reset_peak(pid);
        let from = Instant::now();
        let (control_p99, _) = neighbour.p99_between(control_from, from);
        let did = attack(&ctx);
        let to = Instant::now();
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            !state.is_empty() && !state.contains(") Z "),
            "{name}: the gateway died"
        );
        assert_eq!(
            http_get(gw.admin, "/health").map(|r| r.0).ok(),
            Some(200),
            "{name}: not healthy"
        );
        let peak = status_kib(pid, "VmHWM:") as f64 / 1024.0;
        let budget = (rss_bound() / MIB) as f64;
        assert!(
            peak <= budget,
            "{name}: peak RSS {peak:.1} MiB over {budget} MiB"
        );
        neighbour.wait_past(to);
        let (p99, n) = neighbour.p99_between(from, to);
        let reference = base_p99.max(control_p99);
        let allowed = (reference.mul_f64(FACTOR)).max(reference + FLOOR);
        assert!(
            p99 <= allowed,
            "{name}: neighbour p99 {p99:?} over {allowed:?} (baseline {base_p99:?}, just before {control_p99:?})"
        );
        eprintln!("hostile: {name}: peak RSS {peak:.1} MiB, neighbour p99 {p99:?} over {n} events, {:.1} s", (to - from).as_secs_f64());
        rows.push(Row {
            attack: name,
            did,
            peak_rss_mib: peak,
            control_p99,
            p99,
            events: n,
            secs: (to - from).as_secs_f64(),
        });
    }

    let tls_closed = tls.join().unwrap();
    let tls_to = Instant::now();
    neighbour.wait_past(tls_to);
    let tls_p99 = neighbour.p99_between(tls_started, tls_to);
    let tls_secs = tls_started.elapsed().as_secs_f64();
    assert!(tls_closed, "a stalled TLS handshake is closed");
    assert!(
        ctx.m(
            "logport_tls_handshake_failures_total",
            &[("listener", "syslog-tls")]
        ) >= 1.0
    );
    assert!(gw
        .log()
        .contains("TLS handshake did not complete within handshake_timeout"));
    rows.push(Row {
        attack: "TLS handshake that never completes",
        did: format!("closed after the listener's handshake_timeout of 4 s (default 10 s; seen at {tls_secs:.1} s), logport_tls_handshake_failures_total +1, \"TLS handshake did not complete within handshake_timeout\""),
        peak_rss_mib: status_kib(pid, "VmHWM:") as f64 / 1024.0,
        control_p99: base_p99,
        p99: tls_p99.0,
        events: tls_p99.1,
        secs: tls_secs,
    });

    let acked = neighbour.finish();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut committed;
    loop {
        // Numbers 1..=acked must all be there (one more may be, sent as the client was killed).
        let numbers: std::collections::BTreeSet<u64> = gw
            .events()
            .iter()
            .filter(|e| &*e.app == "neighbour")
            .filter_map(|e| json(e)["fields"]["n"].as_u64())
            .collect();
        committed = (1..=acked).filter(|n| numbers.contains(n)).count() as u64;
        if committed >= acked || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        committed, acked,
        "every event the neighbour had acked is committed"
    );

    let mut report = format!(
        "Gateway idle RSS {idle_rss} MiB; in-flight budget {} MiB; RSS bound {} MiB (budget + places in the inflation gate ({}) x the largest cap on what one reader may hold uncovered {} MiB + fixed {} MiB).\n\
         Neighbour: {acked} events acked and committed; baseline p99 {:.1} ms over {base_n} events in the first 2 s; allowed p99 under attack max({FACTOR}x, +{} ms) of the larger of that and the p99 in {} s just before the attack.\n\n\
         | attack | what logport did | peak RSS (MiB) | neighbour p99 before / during (ms), events during | attack time (s) |\n|---|---|---|---|---|\n",
        IN_FLIGHT / MIB,
        rss_bound() / MIB,
        inflation_gate(),
        LARGEST_CAP / MIB,
        FIXED_OVERHEAD / MIB,
        base_p99.as_secs_f64() * 1e3,
        FLOOR.as_millis(),
        CONTROL.as_secs_f64(),
    );
    for r in &rows {
        report += &format!(
            "| {} | {} | {:.1} | {:.0} / {:.0}, {} | {:.1} |\n",
            r.attack,
            r.did,
            r.peak_rss_mib,
            r.control_p99.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.events,
            r.secs
        );
    }
    println!("{report}");
    let path = std::env::var("HOSTILE_REPORT")
        .unwrap_or_else(|_| repo_path("target/hostile-report.md").display().to_string());
    std::fs::write(&path, &report).unwrap();
    gw.signal("TERM");
    assert!(gw.wait_exit(Duration::from_secs(30)).success());
}

// ---------------------------------------------------------------- the attacks

fn idle_connections(c: &Ctx) -> String {
    let addr = c.addr("syslog");
    let rejected0 = c.m(
        "logport_connections_rejected_total",
        &[("listener", "syslog")],
    );
    let mut conns: Vec<TcpStream> = (0..1200)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    // The gateway accepts them all at the kernel level and closes the excess at once.
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.m(
        "logport_connections_rejected_total",
        &[("listener", "syslog")],
    ) - rejected0
        < 200.0
    {
        assert!(
            Instant::now() < deadline,
            "the excess connections were not refused"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let rejected = c.m(
        "logport_connections_rejected_total",
        &[("listener", "syslog")],
    ) - rejected0;
    assert_eq!(
        rejected, 200.0,
        "exactly the connections past the limit are refused"
    );
    let mut closed = 0;
    for s in conns.iter_mut().skip(1000) {
        closed += usize::from(closed_within(s, Duration::from_secs(2)));
    }
    assert_eq!(closed, 200, "every refused connection is closed");
    assert!(c.gw.log().contains("connection limit reached"));
    // The rest are served: the last accepted one still gets an event committed.
    let line = "<14>1 2026-11-25T04:00:00Z host idle-survivor - - - still served\n";
    conns[999].write_all(line.as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !c.gw.events().iter().any(|e| &*e.app == "idle-survivor") {
        assert!(
            Instant::now() < deadline,
            "an accepted idle connection was not served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(conns);
    "1200 idle connections against max_connections = 1000: the 200 past the limit closed at once, logport_connections_rejected_total{reason=\"limit\"} +200, \"connection limit reached\" (rate-limited warning); the 1000 accepted stay served (an event sent on the last one is committed)".into()
}

fn slowloris(c: &Ctx) -> String {
    // The first bytes of a valid frame of each protocol, one byte a second per connection.
    let syslog = b"<14>1 2026-11-25T04:00:00Z host slowloris - - - a line that takes forever\n";
    let gelf = br#"{"version":"1.1","host":"slowloris","short_message":"forever"}"#;
    let mut forward = Vec::new();
    logport_forward::encode_message(
        &mut forward,
        "app.slowloris",
        logport_forward::Time::Int(1),
        &Value::Map(vec![(Value::from("log"), Value::from("forever"))]),
        None,
    );
    // Beats: a whole window header at once (a frame of its own), then an event frame slowly.
    let window = beats_window_header();
    let beats = b"2J\x00\x00\x00\x01\x00\x00\x00\x0f{\"message\":\"x\"}";
    let targets: [(&str, &[u8], &[u8], usize); 4] = [
        ("syslog", b"", syslog, 20),
        ("gelf-tcp", b"", gelf, 10),
        ("forward", b"", &forward, 10),
        ("beats", &window, beats, 10),
    ];
    let timeouts0: Vec<f64> = targets
        .iter()
        .map(|(l, _, _, _)| c.m("logport_frame_timeouts_total", &[("listener", l)]))
        .collect();
    // Beside them, a well-behaved connection per protocol sends whole frames with a pause
    // longer than frame_timeout between them: quiet between frames is never cut.
    let mut gelf_whole = gelf.to_vec();
    gelf_whole.push(0);
    let mut beats_whole = window.to_vec();
    beats_whole.extend_from_slice(beats);
    let whole: [&[u8]; 4] = [syslog, &gelf_whole, &forward, &beats_whole];
    let mut calm: Vec<TcpStream> = targets
        .iter()
        .zip(whole)
        .map(|((listener, _, _, _), frame)| {
            let mut s = TcpStream::connect(c.addr(listener)).unwrap();
            s.write_all(frame).unwrap();
            s
        })
        .collect();
    struct Slow<'a> {
        target: usize,
        frame: &'a [u8],
        stream: TcpStream,
        sent: usize,
        closed: Option<Instant>,
    }
    let mut conns: Vec<Slow> = Vec::new();
    for (i, (listener, prefix, frame, n)) in targets.iter().enumerate() {
        for _ in 0..*n {
            let mut stream = TcpStream::connect(c.addr(listener)).unwrap();
            stream.write_all(prefix).unwrap();
            stream.set_nonblocking(true).unwrap();
            conns.push(Slow {
                target: i,
                frame,
                stream,
                sent: 0,
                closed: None,
            });
        }
    }
    // frame_timeout is 3 s on these listeners: every writer must be closed by 3 s and a
    // little, though each of its bytes came in time (a read timeout would never fire).
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(8) && conns.iter().any(|c| c.closed.is_none()) {
        let second = started.elapsed().as_secs() as usize;
        for slow in conns.iter_mut().filter(|c| c.closed.is_none()) {
            let mut buf = [0u8; 256];
            let mut gone = match slow.stream.read(&mut buf) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            };
            // One byte a second, never the frame's last.
            if !gone && slow.sent <= second && slow.sent + 1 < slow.frame.len() {
                gone = slow
                    .stream
                    .write_all(&slow.frame[slow.sent..=slow.sent])
                    .is_err();
                slow.sent += 1;
            }
            if gone {
                slow.closed = Some(Instant::now());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let latest = conns
        .iter()
        .map(|c| c.closed.map(|t| t - started))
        .max()
        .flatten();
    let open: Vec<&str> = conns
        .iter()
        .filter(|c| c.closed.is_none())
        .map(|c| targets[c.target].0)
        .collect();
    assert!(open.is_empty(), "slow writers not closed: {open:?}");
    let latest = latest.unwrap();
    let earliest = conns.iter().filter_map(|c| c.closed).min().unwrap() - started;
    assert!(
        earliest >= Duration::from_millis(2500),
        "closed before their frame_timeout: {earliest:?}"
    );
    for (i, (listener, _, _, n)) in targets.iter().enumerate() {
        let want = timeouts0[i] + *n as f64;
        let deadline = Instant::now() + Duration::from_secs(3);
        while c.m("logport_frame_timeouts_total", &[("listener", listener)]) < want {
            assert!(
                Instant::now() < deadline,
                "{listener}: logport_frame_timeouts_total short of {want}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert!(c
        .gw
        .log()
        .contains("slow or stalled sender (see frame_timeout)"));
    std::thread::sleep(Duration::from_secs(5).saturating_sub(started.elapsed()));
    for ((s, frame), (listener, _, _, _)) in calm.iter_mut().zip(whole).zip(&targets) {
        s.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 256];
        // A close would have arrived by now (the slow writers' did, at 3 s).
        let open = match s.read(&mut buf) {
            Ok(0) => false,
            Ok(_) => true, // Beats: the ack of the first window
            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        };
        assert!(
            open,
            "{listener}: a connection quiet between frames was closed"
        );
        s.set_nonblocking(false).unwrap();
        s.write_all(frame).unwrap();
    }
    format!("50 connections (20 syslog, 10 GELF/TCP, 10 forward, 10 Beats) each writing the start of a valid frame one byte a second: every one closed when its frame was not whole 3 s (the listeners' frame_timeout; default 60 s) after its first byte, between {:.1} s and {:.1} s, though no read ever waited long, while a connection per protocol quiet for 5 s between whole frames stayed open; logport_frame_timeouts_total +20/+10/+10/+10 and logport_decode_errors_total{{reason=\"frame_timeout\"}}, \"closing connection: a frame was not whole 3s after its first byte (N bytes of it held): slow or stalled sender\"", earliest.as_secs_f64(), latest.as_secs_f64())
}

fn beats_bomb(c: &Ctx) -> String {
    let errors0 = c.m("logport_decode_errors_total", &[("listener", "beats")]);
    let z = &c.bombs.beats;
    let mut wire = beats_window_header();
    wire.extend_from_slice(b"2C");
    wire.extend_from_slice(&(z.len() as u32).to_be_bytes());
    wire.extend_from_slice(z);
    let on_wire = wire.len();
    assert!(
        send_and_expect_close(c.addr("beats"), &wire),
        "the bomb's connection is closed"
    );
    assert!(c.m_above(
        "logport_decode_errors_total",
        &[("listener", "beats")],
        errors0
    ));
    assert!(c.gw.log().contains("closing connection"));
    format!("`C` frame of {} KiB inflating to 256 MiB: inflation stops at max_inflated_bytes (4 MiB), connection closed, logport_decode_errors_total{{listener=\"beats\"}} +1, \"closing connection: ...\"", on_wire / 1024)
}

fn forward_bomb(c: &Ctx) -> String {
    // CompressedPackedForward whose one gzip member inflates to 512 MiB.
    let gz = c.bombs.forward.clone();
    let mut wire = Vec::new();
    use logport_forward::rmpv::encode::write_value;
    write_value(
        &mut wire,
        &Value::Array(vec![
            Value::from("app.bomb"),
            Value::Binary(gz),
            Value::Map(vec![(Value::from("compressed"), Value::from("gzip"))]),
        ]),
    )
    .unwrap();
    let on_wire = wire.len();
    // On FORWARD_BOMBS connections at once: each may inflate to the cap before it is refused,
    // and only the inflation gate (CPUs - 1 readers) keeps their sum from growing with the
    // number of connections.
    let closed = all_closed(c.addr("forward"), &[(wire, FORWARD_BOMBS)]);
    assert_eq!(closed, FORWARD_BOMBS, "every bomb's connection is closed");
    // Counted as the connection ends, just after it is closed.
    assert!(c.m_above(
        "logport_decode_errors_total",
        &[
            ("listener", "forward"),
            ("reason", "decompressed_too_large"),
        ],
        FORWARD_BOMBS as f64 - 1.0
    ));
    assert!(c
        .gw
        .log()
        .contains("compressed entries inflate to more than 16777216 bytes"));
    format!("{FORWARD_BOMBS} connections at once each sending a CompressedPackedForward of {} KiB inflating to 512 MiB: each refused at its 16 MiB inflation cap (max(chunk_size_limit, 16 MiB)), connection closed, logport_decode_errors_total{{listener=\"forward\",reason=\"decompressed_too_large\"}} +{FORWARD_BOMBS}; no more than {} (CPUs - 1) inflate at a time", on_wire / 1024, inflation_gate())
}

/// Sends each wire on its count of connections, all at once; how many were closed. They go
/// through the inflation gate a few at a time (CPUs - 1), each taking up to a second in this
/// debug build: the wait for the close is long.
fn all_closed(addr: SocketAddr, wires: &[(Vec<u8>, usize)]) -> usize {
    let threads: Vec<_> = wires
        .iter()
        .flat_map(|(wire, n)| {
            let wire = std::sync::Arc::new(wire.clone());
            (0..*n).map(move |_| {
                let wire = wire.clone();
                std::thread::spawn(move || {
                    send_and_expect_close_within(addr, &wire, Duration::from_secs(30))
                })
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|closed| *closed)
        .count()
}

/// A forward message of `n` entries `[0, {}]`, 3 bytes each on the wire and hundreds once
/// decoded and made events: Forward mode, or CompressedPackedForward.
fn tiny_entries(gzip: bool, n: usize) -> Vec<u8> {
    let tiny = [0x92u8, 0x00, 0x80].repeat(n);
    let mut wire = Vec::new();
    if gzip {
        use logport_forward::rmpv::encode::write_value;
        write_value(
            &mut wire,
            &Value::Array(vec![
                Value::from("t"),
                Value::Binary(logport_forward::encode::gzip(&tiny)),
                Value::Map(vec![(Value::from("compressed"), Value::from("gzip"))]),
            ]),
        )
        .unwrap();
    } else {
        wire.extend([0x92, 0xa1, b't', 0xdd]);
        wire.extend((n as u32).to_be_bytes());
        wire.extend(tiny);
    }
    wire
}

/// Forward messages of tiny entries: plain, as large as chunk_size_limit allows, and gzipped.
fn forward_tiny_entries(c: &Ctx) -> String {
    let (plain, gzipped) = (c.bombs.tiny_plain.clone(), c.bombs.tiny_gzip.clone());
    assert!(plain.len() <= 1 << 20, "within chunk_size_limit");
    let (plain_n, gzip_n) = (TINY_PLAIN, TINY_GZIP);
    let gz_len = gzipped.len();
    let closed = all_closed(c.addr("forward"), &[(plain, 4), (gzipped, 4)]);
    assert_eq!(closed, 8, "every connection is closed");
    assert!(c.m_above(
        "logport_decode_errors_total",
        &[("listener", "forward"), ("reason", "decoded_too_large")],
        7.0
    ));
    assert!(c
        .gw
        .log()
        .contains("bytes plus its own) (message at stream offset 0) (see [listener.forward] max_decoded_bytes)"));
    format!("4 connections each sending a plain message of {plain_n} entries `[0, {{}}]` (1 MiB, chunk_size_limit) and 4 each sending a gzip one of {} KiB holding {gzip_n} (12 MB inflated), all at once: entries are decoded one at a time, each counted as 256 bytes plus its own, and each message is refused at its 64 MiB decoded cap (max_decoded_bytes; by default 8 x the inflation cap) before more are decoded, connection closed, logport_decode_errors_total{{reason=\"decoded_too_large\"}} +8, \"entries cost more than 67108864 bytes once decoded\"; before this cap each gzip one would have become 4 million events (over a GiB)", gz_len / 1024)
}

fn gelf_bombs(c: &Ctx) -> String {
    let udp_drops0 = c.m(
        "logport_udp_datagrams_dropped_total",
        &[("listener", "gelf-udp")],
    );
    let zlib = &c.bombs.gelf_zlib;
    assert!(zlib.len() < 65_000, "{}", zlib.len());
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..20 {
        udp.send_to(zlib, c.addr("gelf-udp")).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.m(
        "logport_udp_datagrams_dropped_total",
        &[("listener", "gelf-udp")],
    ) - udp_drops0
        < 20.0
    {
        assert!(
            Instant::now() < deadline,
            "the zlib bombs were not dropped and counted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // gzip, also over UDP: GELF/TCP frames end at a NUL, so no client compresses there.
    let gzip = &c.bombs.gelf_gzip;
    for _ in 0..20 {
        udp.send_to(gzip, c.addr("gelf-udp")).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.m(
        "logport_udp_datagrams_dropped_total",
        &[("listener", "gelf-udp")],
    ) - udp_drops0
        < 40.0
    {
        assert!(
            Instant::now() < deadline,
            "the gzip bombs were not dropped and counted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let gz_len = gzip.len();
    format!("20 zlib and 20 gzip datagrams of {} / {} KiB inflating to 60 MiB each: inflation stops at max_decompressed_bytes (1 MiB), each dropped with a (rate-limited) \"GELF datagram dropped\" warning, logport_udp_datagrams_dropped_total +40. (GELF/TCP is NUL-framed, so compressed payloads cannot travel there: a compressed frame is cut at its first NUL and refused as corrupt.)", zlib.len() / 1024, gz_len / 1024)
}

fn gelf_chunk_flood(c: &Ctx) -> String {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = c.addr("gelf-udp");
    let data = vec![b'x'; 1400];
    // 6000 first chunks of 128-chunk messages that never complete: 8 MiB of chunk data
    // against a 4 MiB reassembly cap.
    for id in 0..6000u64 {
        let _ = udp.send_to(&logport_gelf::chunk(id, 0, 128, &data), addr);
        if id % 500 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let pending = c.m("logport_gelf_pending_bytes", &[("listener", "gelf-udp")]);
    let pending_msgs = c.m("logport_gelf_pending_messages", &[("listener", "gelf-udp")]);
    assert!(
        pending <= (4 * MIB) as f64,
        "reassembly holds {pending} bytes"
    );
    assert!(pending_msgs <= 1000.0);
    let m = c.gw.metrics();
    let dropped: f64 = m
        .lines()
        .filter(|l| l.starts_with("logport_udp_datagrams_dropped_total") && l.contains("gelf-udp"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    // After the chunk timeout the partial messages are gone.
    std::thread::sleep(Duration::from_millis(2500));
    let _ = udp.send_to(&logport_gelf::chunk(1 << 40, 0, 2, b"{"), addr);
    std::thread::sleep(Duration::from_millis(200));
    let after = c.m("logport_gelf_pending_bytes", &[("listener", "gelf-udp")]);
    assert!(
        after < pending.max(1.0),
        "partial messages expire ({after} bytes still held)"
    );
    format!("6000 first chunks of never-completed 128-chunk messages (8 MiB): reassembly held at most {:.1} MiB / {pending_msgs} messages (caps 4 MiB / 1000), the oldest evicted and counted (logport_udp_datagrams_dropped_total{{listener=\"gelf-udp\"}} = {dropped} over the run), the rest expired after chunk_timeout", pending / MIB as f64)
}

fn huge_lengths(c: &Ctx) -> String {
    let total0: f64 = ["syslog", "beats", "forward"]
        .iter()
        .map(|l| c.m("logport_decode_errors_total", &[("listener", l)]))
        .sum();
    // syslog octet count of 4 GiB.
    assert!(send_and_expect_close(
        c.addr("syslog"),
        b"4294967296 <14>1 - - - - - - x"
    ));
    // Beats `J` announcing 4 GiB - 1 bytes.
    let mut b = beats_window_header();
    b.extend_from_slice(b"2J\0\0\0\x01\xff\xff\xff\xff{");
    assert!(send_and_expect_close(c.addr("beats"), &b));
    // Beats `C` announcing 4 GiB - 1 compressed bytes.
    let mut b = beats_window_header();
    b.extend_from_slice(b"2C\xff\xff\xff\xff\x78\x9c");
    assert!(send_and_expect_close(c.addr("beats"), &b));
    // forward: an array of 4 Gi elements, then a str32 of 4 GiB.
    assert!(send_and_expect_close(
        c.addr("forward"),
        b"\xdd\xff\xff\xff\xff"
    ));
    assert!(send_and_expect_close(
        c.addr("forward"),
        b"\x93\xdb\xff\xff\xff\xffabc"
    ));
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let total: f64 = ["syslog", "beats", "forward"]
            .iter()
            .map(|l| c.m("logport_decode_errors_total", &[("listener", l)]))
            .sum();
        if total - total0 >= 5.0 {
            break;
        }
        assert!(Instant::now() < deadline, "each is a counted decode error");
        std::thread::sleep(Duration::from_millis(20));
    }
    // GELF/TCP has no length: an endless frame is cut at max_message_bytes.
    let gelf0 = c.m("logport_decode_errors_total", &[("listener", "gelf-tcp")]);
    assert!(send_and_expect_close(
        c.addr("gelf-tcp"),
        &vec![b'{'; 2 * MIB]
    ));
    assert!(c.m_above(
        "logport_decode_errors_total",
        &[("listener", "gelf-tcp")],
        gelf0
    ));
    "syslog octet count 4294967296, Beats `J` and `C` of 4 GiB, forward array32/str32 of 4 Gi: each refused from its header before any body is buffered, connection closed, logport_decode_errors_total +1 each; a 2 MiB GELF/TCP frame without NUL closed at max_message_bytes (1 MiB)".into()
}

fn deep_nesting(c: &Ctx) -> String {
    let not_json = [("listener", "gelf-tcp"), ("reason", "not_json")];
    let gelf0 = c.m("logport_decode_errors_total", &not_json);
    let fwd0 = c.m("logport_decode_errors_total", &[("listener", "forward")]);
    let depth = 100_000;
    let mut json = br#"{"version":"1.1","host":"h","short_message":"x","_deep":"#.to_vec();
    json.extend(std::iter::repeat_n(b'[', depth));
    json.extend(std::iter::repeat_n(b']', depth));
    json.extend_from_slice(b"}\0");
    // GELF/TCP keeps a payload that is not JSON as text tagged _jsonparsefailure, as Logstash
    // does, and counts it; the connection stays open.
    let mut s = TcpStream::connect(c.addr("gelf-tcp")).unwrap();
    s.write_all(&json).unwrap();
    assert!(c.m_above("logport_decode_errors_total", &not_json, gelf0));
    let gelf_closed = closed_within(&mut s, Duration::from_millis(300));
    drop(s);
    // forward: [tag, time, record] with a record of 100 000 nested one-element arrays.
    let mut mp = b"\x93\xa7app.web\xce\x6b\x04\xd3\x80".to_vec();
    mp.extend(std::iter::repeat_n(0x91u8, depth));
    mp.push(0xc0);
    assert!(
        send_and_expect_close(c.addr("forward"), &mp),
        "deep msgpack closes the connection"
    );
    assert!(c.m_above(
        "logport_decode_errors_total",
        &[("listener", "forward")],
        fwd0
    ));
    // Beats: a `J` document nested 100 000 deep.
    let mut doc = b"{\"a\":".to_vec();
    doc.extend(std::iter::repeat_n(b'[', depth));
    doc.extend(std::iter::repeat_n(b']', depth));
    doc.push(b'}');
    let mut b = beats_window_header();
    logport_lumberjack::encode_json(Version::V2, 1, &doc, &mut b);
    let mut s = TcpStream::connect(c.addr("beats")).unwrap();
    s.write_all(&b).unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(3)),
        "a Beats document nested too deep closes its connection"
    );
    format!("forward msgpack nested {depth} deep: refused by the extent scan's depth cap (64) before any value is built, connection closed, logport_decode_errors_total +1; GELF/TCP JSON nested {depth} deep: serde_json stops at its recursion limit (128), the frame is kept as text tagged _jsonparsefailure, logport_decode_errors_total{{reason=\"not_json\"}} +1, connection {}; Beats `J` nested {depth} deep: refused past 128 levels before it is parsed, connection closed (as Logstash's parser throws)", if gelf_closed { "closed" } else { "kept open" })
}

fn invalid_utf8(c: &Ctx) -> String {
    let bad = b"\xff\xfe\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc";
    // syslog: kept, lossily (Logstash does the same).
    let mut line = b"<14>1 2026-11-25T04:00:00Z host utf8-syslog - - - ".to_vec();
    line.extend_from_slice(bad);
    line.push(b'\n');
    let mut s = TcpStream::connect(c.addr("syslog")).unwrap();
    s.write_all(&line).unwrap();
    // GELF/TCP: JSON must be UTF-8.
    let gelf0 = c.m("logport_decode_errors_total", &[("listener", "gelf-tcp")]);
    let mut g = br#"{"version":"1.1","host":"h","short_message":""#.to_vec();
    g.extend_from_slice(bad);
    g.extend_from_slice(b"\"}\0");
    let mut gs = TcpStream::connect(c.addr("gelf-tcp")).unwrap();
    gs.write_all(&g).unwrap();
    assert!(c.m_above(
        "logport_decode_errors_total",
        &[("listener", "gelf-tcp")],
        gelf0
    ));
    let gelf_closed = closed_within(&mut gs, Duration::from_millis(300));
    // forward: a str record value that is not UTF-8.
    let mut f = b"\x93\xa7app.web\xce\x6b\x04\xd3\x80\x81\xa3log".to_vec();
    f.push(0xa0 | bad.len() as u8);
    f.extend_from_slice(bad);
    s.flush().unwrap();
    let mut fw = TcpStream::connect(c.addr("forward")).unwrap();
    fw.write_all(&f).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !c.gw.events().iter().any(|e| &*e.app == "utf8-syslog") {
        assert!(Instant::now() < deadline, "the syslog line was not kept");
        std::thread::sleep(Duration::from_millis(50));
    }
    let fwd_kept = {
        std::thread::sleep(Duration::from_millis(300));
        c.gw.events()
            .iter()
            .any(|e| &*e.app == "app.web" && String::from_utf8_lossy(&e.value).contains('\u{fffd}'))
    };
    format!("syslog: kept with U+FFFD replacements (as Logstash); GELF JSON: not JSON (serde_json wants UTF-8), kept as text tagged _jsonparsefailure, logport_decode_errors_total{{reason=\"not_json\"}} +1, connection {}; forward str: {}", if gelf_closed { "closed" } else { "kept open" }, if fwd_kept { "kept with U+FFFD replacements" } else { "not committed" })
}

fn beats_deaf(c: &Ctx) -> String {
    let idle0 = c.m("logport_beats_idle_closed_total", &[("listener", "beats")]);
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&c.addr("beats").into()).unwrap();
    let mut s: TcpStream = sock.into();
    let mut wire = BytesMut::new();
    for w in 0..2000u32 {
        let json = format!(r#"{{"message":"deaf {w}","fields":{{"app":"deaf"}}}}"#);
        encode_batch(
            Version::V2,
            1,
            &[Payload::Json(Bytes::from(json))],
            None,
            &mut wire,
        );
    }
    s.write_all(&wire).unwrap();
    // Never reads: the acks pile up in its 4 KiB receive buffer, then the gateway's send
    // buffer; once it sends nothing more and nothing awaits commit, it is an idle client.
    let deadline = Instant::now() + Duration::from_secs(8);
    while c.m("logport_beats_idle_closed_total", &[("listener", "beats")]) <= idle0 {
        assert!(Instant::now() < deadline, "the deaf client was not closed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let committed = c.gw.events().iter().filter(|e| &*e.app == "deaf").count();
    assert_eq!(committed, 2000, "its windows were committed all the same");
    format!("2000 one-event windows, acks never read (4 KiB receive buffer): all {committed} committed, acks left in the socket buffers; closed after client_inactivity_timeout (2 s), logport_beats_idle_closed_total +1, \"closing an idle client\"; had it kept sending, an ack write blocked for that timeout closes it (\"the client does not read its acks\")")
}

fn random_garbage(c: &Ctx) -> String {
    let mut outcome = Vec::new();
    let before = c.m("logport_decode_errors_total", &[]);
    for (i, name) in ["syslog", "beats", "gelf-tcp", "forward", "syslog-tls"]
        .iter()
        .enumerate()
    {
        let g = garbage(i as u64 + 7, 64 << 10);
        let mut s = TcpStream::connect(c.addr(name)).unwrap();
        let _ = s.write_all(&g);
        // No FIN: the gateway must close on the bytes alone.
        let closed = closed_within(&mut s, Duration::from_secs(2));
        // Framed binary protocols and TLS refuse at the first bad frame; syslog and GELF/TCP
        // keep what they cannot parse as text (Logstash's behaviour), so the socket stays.
        if matches!(*name, "beats" | "forward" | "syslog-tls") {
            assert!(closed, "{name}: garbage did not close the connection");
        }
        outcome.push(format!(
            "{name}: {}",
            if closed {
                "closed"
            } else {
                "kept open, lines kept as unparsed text"
            }
        ));
    }
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (i, name) in ["syslog-udp", "gelf-udp"].iter().enumerate() {
        for k in 0..200 {
            let _ = udp.send_to(
                &garbage(1000 + i as u64 * 1000 + k, 1 + (k as usize * 37) % 1400),
                c.addr(name),
            );
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        c.m_above("logport_decode_errors_total", &[], before),
        "garbage is counted"
    );
    let after = c.m("logport_decode_errors_total", &[]);
    format!("64 KiB of random bytes on each TCP listener (no FIN): {}; 200 random datagrams each on syslog-udp (kept as unparsed lines) and gelf-udp (dropped, counted); logport_decode_errors_total +{} in all", outcome.join(", "), after - before)
}
