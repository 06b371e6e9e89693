//! logport-loadgen: drives logport's inputs the way real shippers do, through the protocol
//! crates' client encoders, and reads events back to check that none went missing.
//!
//! Every event's text starts with a stamp `lp=CONN:SEQ:MICROS` (connection, sequence number
//! within it, send time in Unix microseconds), so whatever reads the committed events back can
//! tell which ones arrived and how late.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use bytes::{Buf, BytesMut};
use clap::{Parser, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

mod encode;
mod kafka;

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send stamped events; print one JSON line of results (sent, acked, rate, ack latency).
    Send(SendArgs),
    /// Read committed events as JSON lines on stdin (`logport read --from-start`, or `consume`)
    /// and count the stamped ones: distinct, duplicated; fail if fewer than --expect.
    Check(CheckArgs),
    /// Print every message value of a Kafka topic, from the beginning, one per line.
    Consume(kafka::ConsumeArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// RFC 5424 over TCP, RFC 6587 octet counting (Docker's and rsyslog's framing)
    SyslogTcp,
    /// RFC 5424 over TCP, LF-terminated lines
    SyslogTcpLf,
    /// RFC 5424, one datagram each
    SyslogUdp,
    /// Lumberjack v2 windows of JSON documents, as libbeat sends them; waits for each window's ack
    Beats,
    /// GELF over UDP: compressed per --gelf-compression, chunked beyond --gelf-chunk-size
    GelfUdp,
    /// GELF over TCP, NUL-framed
    GelfTcp,
    /// Fluent forward (msgpack) in --forward-mode, with acks unless --no-ack
    Forward,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ForwardMode {
    /// one `[tag, time, record, option]` per event
    Message,
    /// `[tag, [[time, record], ...], option]` per batch
    Forward,
    /// PackedForward: the entries in one bin, per batch (Fluent Bit's way)
    Packed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GelfCompression {
    None,
    Zlib,
    Gzip,
}

/// Message text length: fixed (`200`) or uniform over a range (`100-400`).
#[derive(Clone, Copy, Debug)]
pub struct Size {
    min: usize,
    max: usize,
}

impl FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Size, String> {
        let num = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| format!("`{s}`: expected BYTES or MIN-MAX, e.g. 200 or 100-400"))
        };
        let (min, max) = match s.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(s)?, num(s)?),
        };
        // The stamp alone takes up to ~40 bytes; smaller messages could not carry it.
        if min < 48 || max < min || max > 1 << 20 {
            return Err(format!(
                "`{s}`: sizes must be 48 bytes to 1 MiB, MIN <= MAX"
            ));
        }
        Ok(Size { min, max })
    }
}

#[derive(clap::Args, Clone)]
pub struct SendArgs {
    #[arg(long, value_enum)]
    protocol: Protocol,
    /// The listener's address.
    #[arg(long)]
    addr: SocketAddr,
    #[arg(long, default_value_t = 1)]
    connections: u32,
    /// Events per second over all connections; 0 sends as fast as the gateway takes them.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Events to send over all connections.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Stop sending after this many seconds even if --count is not reached.
    #[arg(long)]
    duration: Option<f64>,
    /// Length of each event's text in bytes: `200`, or a uniform range `100-400`.
    #[arg(long, default_value = "200")]
    size: Size,
    /// Events per write: the Beats window, the forward chunk, the syslog/GELF-TCP write.
    #[arg(long, default_value_t = 1000)]
    batch: u32,
    /// Beats: zlib level of a `C` frame around each window (libbeat's default is 3); none if unset.
    #[arg(long)]
    compression_level: Option<u32>,
    #[arg(long, value_enum, default_value_t = GelfCompression::None)]
    gelf_compression: GelfCompression,
    /// GELF UDP datagram size, chunk header included (go-gelf and Docker: 1420).
    #[arg(long, default_value_t = logport_gelf::GO_GELF_CHUNK_SIZE)]
    gelf_chunk_size: usize,
    #[arg(long, value_enum, default_value_t = ForwardMode::Packed)]
    forward_mode: ForwardMode,
    /// Forward: do not ask for acks (fire and forget, as Docker's fluentd driver does by default).
    #[arg(long)]
    no_ack: bool,
    /// Number connections from here in stamps, so that several runs into one sink stay apart.
    #[arg(long, default_value_t = 0)]
    conn_base: u32,
    /// The app key the events carry (syslog APP-NAME, Beats fields.app, GELF _app, forward tag).
    #[arg(long, default_value = "bench")]
    app: String,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Fail unless at least this many distinct stamped events are read.
    #[arg(long)]
    expect: Option<u64>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Send(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let report = rt.block_on(send(args))?;
            println!("{report}");
            Ok(())
        }
        Cmd::Check(args) => check(args),
        Cmd::Consume(args) => kafka::consume(args),
    }
}

pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// What one connection did.
struct Outcome {
    sent: u64,
    acked: u64,
    /// A write or ack wait was cut short by --duration: one batch may be partly sent.
    cut_off: bool,
    /// Microseconds from writing a window/chunk to reading its ack, recorded once per event.
    ack_latency: Histogram<u64>,
}

async fn send(args: SendArgs) -> anyhow::Result<serde_json::Value> {
    if args.connections == 0 || args.batch == 0 {
        bail!("--connections and --batch must be at least 1");
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for conn in 0..args.connections {
        let per = args.count / u64::from(args.connections)
            + u64::from(u64::from(conn) < args.count % u64::from(args.connections));
        let args = args.clone();
        tasks.push(tokio::spawn(async move {
            connection(&args, args.conn_base + conn, per, start)
                .await
                .with_context(|| format!("connection {conn} to {}", args.addr))
        }));
    }
    let (mut sent, mut acked, mut cut_off) = (0, 0, 0);
    let mut hist = Histogram::<u64>::new(3)?;
    for t in tasks {
        let o = t.await??;
        sent += o.sent;
        acked += o.acked;
        cut_off += u32::from(o.cut_off);
        hist.add(&o.ack_latency)?;
    }
    let secs = start.elapsed().as_secs_f64();
    let acks = matches!(args.protocol, Protocol::Beats)
        || (args.protocol == Protocol::Forward && !args.no_ack);
    let mut report = serde_json::json!({
        "protocol": format!("{:?}", args.protocol),
        "connections": args.connections,
        "sent": sent,
        "connections_cut_off": cut_off,
        "seconds": secs,
        "events_per_second": sent as f64 / secs,
    });
    if acks {
        report["acked"] = acked.into();
        report["ack_latency_us"] = serde_json::json!({
            "p50": hist.value_at_quantile(0.5),
            "p99": hist.value_at_quantile(0.99),
            "max": hist.max(),
        });
    }
    Ok(report)
}

/// Sends `count` events on one connection, paced to its share of --rate.
async fn connection(
    args: &SendArgs,
    conn: u32,
    count: u64,
    start: Instant,
) -> anyhow::Result<Outcome> {
    let per_conn_rate = args.rate as f64 / f64::from(args.connections);
    // At a fixed rate, send about every 5 ms rather than in bursts of --batch, so the
    // latency measured is the gateway's and not the generator's batching.
    let batch = if per_conn_rate > 0.0 {
        (args.batch as f64).min((per_conn_rate / 200.0).max(1.0)) as u64
    } else {
        u64::from(args.batch)
    };
    let deadline = args.duration.map(|d| start + Duration::from_secs_f64(d));
    let mut rng = SmallRng::seed_from_u64(u64::from(conn) + 1);
    let mut gen = encode::Generator::new(args, conn);
    let mut io = Io::connect(args).await?;
    let mut out = Outcome {
        sent: 0,
        acked: 0,
        cut_off: false,
        ack_latency: Histogram::new(3)?,
    };
    let mut wire = BytesMut::with_capacity(1 << 20);
    while out.sent < count {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if per_conn_rate > 0.0 {
            let due = start + Duration::from_secs_f64(out.sent as f64 / per_conn_rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let n = batch.min(count - out.sent);
        let sizes: Vec<usize> = (0..n)
            .map(|_| rng.random_range(args.size.min..=args.size.max))
            .collect();
        wire.clear();
        let unit = gen.encode(out.sent, &sizes, &mut wire);
        let t0 = Instant::now();
        let io_ref = &mut io;
        let wire_ref = &wire;
        let step = async move {
            match io_ref {
                Io::Udp(sock) => {
                    for d in unit.datagrams {
                        sock.send(&d).await?;
                    }
                    Ok::<_, anyhow::Error>(false)
                }
                Io::Tcp(stream, acks) => {
                    stream.write_all(wire_ref).await?;
                    if unit.acks > 0 {
                        read_acks(args.protocol, stream, acks, &unit).await?;
                        return Ok(true);
                    }
                    Ok(false)
                }
            }
        };
        // Under backpressure a write may wait for as long as the gateway reads nothing: the
        // --duration bound applies to it too (that batch then counts as not sent).
        let acked = match deadline {
            Some(d) => match tokio::time::timeout_at(d.into(), step).await {
                Ok(r) => r?,
                Err(_) => {
                    out.cut_off = true;
                    break;
                }
            },
            None => step.await?,
        };
        if acked {
            let us = t0.elapsed().as_micros() as u64;
            out.ack_latency.record_n(us.max(1), n)?;
            out.acked += n;
        }
        out.sent += n;
    }
    if let Io::Tcp(stream, _) = &mut io {
        stream.shutdown().await.ok();
    }
    Ok(out)
}

enum Io {
    Udp(UdpSocket),
    /// The stream, and what was read of its acks so far.
    Tcp(TcpStream, BytesMut),
}

impl Io {
    async fn connect(args: &SendArgs) -> anyhow::Result<Io> {
        Ok(match args.protocol {
            Protocol::SyslogUdp | Protocol::GelfUdp => {
                let local: SocketAddr = if args.addr.is_ipv4() {
                    "0.0.0.0:0".parse()?
                } else {
                    "[::]:0".parse()?
                };
                let s = UdpSocket::bind(local).await?;
                s.connect(args.addr).await?;
                Io::Udp(s)
            }
            _ => {
                let s = TcpStream::connect(args.addr).await?;
                s.set_nodelay(true)?;
                Io::Tcp(s, BytesMut::with_capacity(4096))
            }
        })
    }
}

/// Reads until the unit's acks are all in: Beats `2A` frames until the window's last seq
/// (earlier seqs are partial acks, seq 0 a keep-alive); forward `{"ack": chunk}` maps, one per
/// chunk, each checked against the chunk id sent.
async fn read_acks(
    protocol: Protocol,
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    unit: &encode::Unit,
) -> anyhow::Result<()> {
    let mut pending = unit.acks;
    let mut chunks = unit.chunk_ids.iter();
    loop {
        match protocol {
            Protocol::Beats => {
                while buf.len() >= 6 {
                    if &buf[..2] != b"2A" {
                        bail!("not a Lumberjack v2 ack: {:?}", &buf[..2]);
                    }
                    buf.advance(2);
                    let seq = buf.get_u32();
                    if seq == unit.last_seq {
                        pending = 0;
                    }
                }
            }
            _ => loop {
                let mut rd = &buf[..];
                match logport_forward::rmpv::decode::read_value(&mut rd) {
                    Ok(v) => {
                        let used = buf.len() - rd.len();
                        buf.advance(used);
                        let got = v
                            .as_map()
                            .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some("ack")))
                            .and_then(|(_, c)| match c {
                                logport_forward::rmpv::Value::String(s) => {
                                    Some(s.as_bytes().to_vec())
                                }
                                logport_forward::rmpv::Value::Binary(b) => Some(b.clone()),
                                _ => None,
                            })
                            .with_context(|| format!("not a forward ack: {v}"))?;
                        let want = chunks.next().context("an ack nobody asked for")?;
                        if &got != want {
                            bail!(
                                "ack for chunk {:?}, expected {:?}",
                                String::from_utf8_lossy(&got),
                                String::from_utf8_lossy(want)
                            );
                        }
                        pending -= 1;
                    }
                    Err(_) => break,
                }
                if pending == 0 {
                    break;
                }
            },
        }
        if pending == 0 {
            return Ok(());
        }
        if stream.read_buf(buf).await? == 0 {
            bail!("the gateway closed the connection with {pending} acks outstanding");
        }
    }
}

fn parse_stamp(line: &[u8]) -> Option<(u32, u64, u64)> {
    let at = line.windows(3).position(|w| w == b"lp=")? + 3;
    let rest = &line[at..];
    let end = rest
        .iter()
        .position(|b| !(b.is_ascii_digit() || *b == b':'))
        .unwrap_or(rest.len());
    let mut it = std::str::from_utf8(&rest[..end]).ok()?.split(':');
    Some((
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    ))
}

fn check(args: CheckArgs) -> anyhow::Result<()> {
    let stdin = std::io::stdin().lock();
    let (mut lines, mut stamped, mut dups) = (0u64, 0u64, 0u64);
    let mut seen = HashSet::new();
    // Per connection: the highest seq read. Seqs below it that never arrived are gaps: lost
    // from the middle of a stream, which no cut-off at the end explains.
    let mut top: std::collections::BTreeMap<u32, u64> = Default::default();
    for line in stdin.split(b'\n') {
        let line = line?;
        lines += 1;
        // An event carries its text twice in ECS mode (message and [event][original]): the
        // first stamp on the line is the event's.
        if let Some((conn, seq, _)) = parse_stamp(&line) {
            stamped += 1;
            let t = top.entry(conn).or_default();
            *t = (*t).max(seq);
            if !seen.insert((conn, seq)) {
                dups += 1;
            }
        }
    }
    let mut gaps = serde_json::Map::new();
    for (conn, max) in &top {
        let have = seen.iter().filter(|(c, _)| c == conn).count() as u64;
        if have < max + 1 {
            gaps.insert(conn.to_string(), (max + 1 - have).into());
        }
    }
    let report = serde_json::json!({
        "lines": lines, "stamped": stamped, "distinct": seen.len(), "duplicates": dups,
        "gaps": gaps,
    });
    println!("{report}");
    std::io::stdout().flush()?;
    if let Some(want) = args.expect {
        if (seen.len() as u64) < want {
            bail!(
                "{} distinct stamped events read back, at least {want} expected: {} lost",
                seen.len(),
                want - seen.len() as u64
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_is_found_inside_json() {
        let line =
            br#"{"message":"lp=3:17:1700000000123456 xxxx","event":{"original":"lp=9:9:9"}}"#;
        assert_eq!(parse_stamp(line), Some((3, 17, 1_700_000_000_123_456)));
        assert_eq!(parse_stamp(b"{\"message\":\"no stamp\"}"), None);
    }

    #[test]
    fn sizes_parse_and_bad_ones_say_why() {
        let s: Size = "100-400".parse().unwrap();
        assert_eq!((s.min, s.max), (100, 400));
        let s: Size = "200".parse().unwrap();
        assert_eq!((s.min, s.max), (200, 200));
        assert!("400-100"
            .parse::<Size>()
            .unwrap_err()
            .contains("MIN <= MAX"));
        assert!("ten"
            .parse::<Size>()
            .unwrap_err()
            .contains("expected BYTES"));
    }
}
