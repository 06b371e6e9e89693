//! Syslog decode throughput: RFC 6587 framing alone, framing plus parsing, and the gateway's
//! whole per-event work (framing, parsing, shaping the Logstash JSON event), over a
//! deterministic corpus of mixed RFC 5424 / RFC 3164 lines (100–2000 bytes, some with
//! structured data, some in Docker's default format), octet-counted and LF-framed into one
//! stream and fed in 64 KiB reads as a socket would deliver it.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logport::config::{EcsCompatibility, ListenerConfig, ProtocolName};
use logport::source::syslog::Shaper;
use logport::source::AppCache;
use logport_syslog::{
    frame_lf, frame_octet_counted, parse, FrameDecoder, Pri, Rfc3164Message, Rfc5424Message,
    SdElement, StampField, Timestamp,
};

const MAX_FRAME: usize = 64 * 1024;
const READ: usize = 64 * 1024;
const EVENTS: usize = 2000;

/// xorshift64*: deterministic, and no rand crate needed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "GET",
    "/api/v1/orders",
    "200",
    "latency_ms=12",
    "user=4711",
    "connection",
    "reset",
    "by",
    "peer",
    "upstream",
    "timed",
    "out",
    "while",
    "reading",
    "response",
    "header",
    "from",
    "request_id=7f3a9c",
    "WARN",
    "INFO",
    "retrying",
    "in",
    "250ms",
    "cache",
    "miss",
    "for",
    "key",
    "session:9f2c",
    "écrit",
    "完了",
    "disk",
    "usage",
    "87%",
    "on",
    "/var/lib/docker",
];
const HOSTS: &[&str] = &[
    "web-1",
    "web-2.prod.example.com",
    "10.1.2.3",
    "dockerhost",
    "db-primary",
];
const APPS: &[&str] = &[
    "nginx",
    "3f2a1b4c5d6e",
    "registry.example.com/team/orders-api",
    "sshd",
    "kernel",
    "%ASA-4-106023",
];

fn message_text(rng: &mut Rng, target: usize) -> String {
    let mut s = String::with_capacity(target + 16);
    while s.len() < target {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(rng.pick(WORDS));
    }
    s
}

/// One syslog line of roughly `len` bytes, of one of four shapes.
fn line(rng: &mut Rng, len: usize) -> Vec<u8> {
    let pri = Pri::from_parts(rng.below(24) as u8, rng.below(8) as u8).unwrap();
    let host = rng.pick(HOSTS);
    let app = rng.pick(APPS);
    let pid = (1000 + rng.below(60_000)).to_string();
    let secs = 1_714_557_600 + rng.below(86_400 * 365) as i64;
    match rng.below(4) {
        // RFC 5424 as Docker's rfc5424micro writes it.
        0 => {
            let text = message_text(rng, len.saturating_sub(90));
            Rfc5424Message {
                timestamp: StampField::Unix {
                    secs,
                    nanos: rng.below(1_000_000) as u32 * 1000,
                    offset_secs: 7200,
                    frac_digits: Some(6),
                },
                hostname: Some(host),
                app_name: Some(app),
                proc_id: Some(&pid),
                msg_id: Some(app),
                msg: text.as_bytes(),
                ..Rfc5424Message::new(pri)
            }
            .to_vec()
        }
        // RFC 5424 with structured data and a BOM.
        1 => {
            let text = message_text(rng, len.saturating_sub(200));
            let sd = [
                SdElement {
                    id: "origin".into(),
                    params: vec![
                        ("ip".into(), "192.0.2.7".into()),
                        ("software".into(), "rsyslogd".into()),
                    ],
                },
                SdElement {
                    id: "meta@32473".into(),
                    params: vec![
                        ("sequenceId".into(), rng.below(1 << 20).to_string().into()),
                        ("note".into(), "quoted \"value\" with \\ and ]".into()),
                    ],
                },
            ];
            Rfc5424Message {
                timestamp: StampField::Unix {
                    secs,
                    nanos: rng.below(1000) as u32 * 1_000_000,
                    offset_secs: 0,
                    frac_digits: Some(3),
                },
                hostname: Some(host),
                app_name: Some(app),
                proc_id: Some(&pid),
                msg_id: Some("ID47"),
                structured_data: &sd,
                msg: text.as_bytes(),
                bom: true,
                ..Rfc5424Message::new(pri)
            }
            .to_vec()
        }
        // RFC 3164 with a hostname.
        2 => {
            let text = message_text(rng, len.saturating_sub(50));
            Rfc3164Message {
                pri,
                timestamp: bsd(rng),
                hostname: Some(host),
                tag: app,
                pid: Some(&pid),
                msg: text.as_bytes(),
            }
            .to_vec()
        }
        // Docker's default format: no hostname.
        _ => {
            let text = message_text(rng, len.saturating_sub(40));
            Rfc3164Message {
                pri,
                timestamp: bsd(rng),
                hostname: None,
                tag: "14223bda5336",
                pid: Some(&pid),
                msg: text.as_bytes(),
            }
            .to_vec()
        }
    }
}

fn bsd(rng: &mut Rng) -> Timestamp {
    Timestamp::Bsd {
        month: 1 + rng.below(12) as u8,
        day: 1 + rng.below(28) as u8,
        hour: rng.below(24) as u8,
        minute: rng.below(60) as u8,
        second: rng.below(60) as u8,
        nanos: 0,
    }
}

/// The stream and its number of events.
fn corpus() -> (Vec<u8>, usize) {
    let mut rng = Rng(0x5EED_1065_9104_55AB);
    let mut wire = BytesMut::new();
    for i in 0..EVENTS {
        let len = 100 + rng.below(1901) as usize;
        let mut msg = line(&mut rng, len);
        // The first frame fixes the connection's framing: octet-counted, which still
        // lets `<`-led LF frames through, so the stream can mix both.
        if i == 0 || rng.below(2) == 0 {
            // srslog counts its trailing LF inside the frame half of the time.
            if rng.below(2) == 0 {
                msg.push(b'\n');
            }
            frame_octet_counted(&msg, &mut wire);
        } else {
            frame_lf(&msg, &mut wire);
        }
    }
    (wire.to_vec(), EVENTS)
}

/// How far each frame is taken.
#[derive(Clone, Copy)]
enum Depth<'a> {
    Frame,
    Parse,
    /// Parse and write the event's JSON, as a syslog listener does.
    Event(&'a Shaper),
}

fn decode_stream(stream: &[u8], depth: Depth) -> usize {
    let mut dec = FrameDecoder::new(MAX_FRAME);
    let mut buf = BytesMut::with_capacity(2 * READ);
    let mut values = BytesMut::new();
    let mut apps = AppCache::default();
    let mut events = 0;
    for chunk in stream.chunks(READ) {
        buf.extend_from_slice(chunk);
        while let Some(frame) = dec.decode(&mut buf).expect("valid stream") {
            match depth {
                Depth::Frame => {
                    black_box(&frame);
                }
                Depth::Parse => {
                    black_box(parse(&frame.bytes).expect("valid syslog"));
                }
                Depth::Event(shaper) => {
                    let now = (1_795_579_200, 0);
                    let shaped = shaper.shape(
                        &frame.bytes,
                        frame.truncated,
                        "10.1.2.3",
                        now,
                        &mut values,
                        &mut apps,
                    );
                    black_box((shaped.app, values.split().freeze()));
                }
            }
            events += 1;
        }
    }
    events
}

fn shaper(ecs: EcsCompatibility) -> Shaper {
    let mut config = ListenerConfig::new(ProtocolName::Syslog, "127.0.0.1:5514".parse().unwrap());
    config.ecs_compatibility = ecs;
    Shaper::new(&config).unwrap()
}

fn bench(c: &mut Criterion) {
    let (stream, events) = corpus();
    assert_eq!(decode_stream(&stream, Depth::Parse), events);
    let (ecs, legacy) = (
        shaper(EcsCompatibility::V8),
        shaper(EcsCompatibility::Disabled),
    );

    let depths = [
        ("syslog_framing", Depth::Frame),
        ("syslog_framing_parse", Depth::Parse),
        ("syslog_to_event_ecs", Depth::Event(&ecs)),
        ("syslog_to_event_legacy", Depth::Event(&legacy)),
    ];
    for (name, depth) in depths {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(stream.len() as u64));
        group.bench_function("bytes", |b| {
            b.iter(|| decode_stream(black_box(&stream), depth))
        });
        group.throughput(Throughput::Elements(events as u64));
        group.bench_function("events", |b| {
            b.iter(|| decode_stream(black_box(&stream), depth))
        });
        group.finish();
    }

    // One ~200-byte line of each common shape, parse only.
    let lines: [(&str, &[u8]); 3] = [
        (
            "rfc5424_200B",
            b"<30>1 2024-05-01T12:00:00.123456+02:00 dockerhost 3f2a1b4c5d6e 1234 3f2a1b4c5d6e - GET /api/v1/orders 200 latency_ms=12 user=4711 request_id=7f3a9c upstream cache miss for key session:9f2c retrying in 250ms ok",
        ),
        (
            "rfc3164_200B",
            b"<164>Oct 26 15:19:25 1.2.3.4 %ASA-4-106023: Deny udp src DRAC:10.1.2.3/43434 dst outside:192.168.0.1/53 by access-group \"acl_drac\" [0x0, 0x0] connection reset by peer while reading response header from upstream",
        ),
        (
            "docker_default_200B",
            b"<30>Nov 25 03:35:24 14223bda5336[5388]: GET /api/v1/orders 200 latency_ms=12 user=4711 request_id=7f3a9c upstream timed out while reading response header from upstream cache miss for key session:9f2c retrying in 250ms",
        ),
    ];
    let mut group = c.benchmark_group("syslog_parse_line");
    group.throughput(Throughput::Elements(1));
    for (name, line) in lines {
        parse(line).expect("valid");
        group.bench_function(name, |b| {
            b.iter(|| parse(black_box(line)).map(|m| m.msg.len()))
        });
    }
    group.finish();

    // The same lines all the way to the event's JSON (ECS v8, `[event][original]` kept).
    let mut group = c.benchmark_group("syslog_line_to_event");
    group.throughput(Throughput::Elements(1));
    let mut values = BytesMut::new();
    let mut apps = AppCache::default();
    for (name, line) in lines {
        group.bench_function(name, |b| {
            b.iter(|| {
                let shaped = ecs.shape(
                    black_box(line),
                    false,
                    "10.1.2.3",
                    (1_795_579_200, 0),
                    &mut values,
                    &mut apps,
                );
                (shaped.app, values.split().freeze())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
