//! Turns stamped event texts into each protocol's client bytes, with the protocol crates'
//! own client encoders (the same ones the gateway's tests trust), so the generator sends what
//! real shippers send.

use bytes::{Bytes, BytesMut};
use logport_forward::rmpv::Value;
use logport_forward::{ClientOptions, EventTime, PackedAs, Time};
use logport_gelf::Encoding;
use logport_lumberjack::{Payload, Version};
use logport_syslog::{Pri, Rfc5424Message, StampField};

use crate::{unix_micros, ForwardMode, GelfCompression, Protocol, SendArgs};

/// Printable filler, so every protocol carries the text unescaped.
const FILLER: &[u8] = b"GET /api/v1/orders/00004711 200 latency_ms=12 user=4711 request_id=7f3a9c \
upstream=127.0.0.1:8080 bytes=5123 ua=curl/8.5 ";

/// One write's worth of events, and what to expect back for it.
#[derive(Default)]
pub struct Unit {
    /// UDP: the datagrams to send (TCP bytes go to the caller's buffer instead).
    pub datagrams: Vec<Bytes>,
    /// Acks to wait for: 1 per Beats window, 1 per forward chunk; 0 without acks.
    pub acks: usize,
    /// Beats: the seq of the window's last event, which its final ack names.
    pub last_seq: u32,
    /// Forward: the chunk ids sent, in order, which the acks must name.
    pub chunk_ids: Vec<Vec<u8>>,
}

pub struct Generator {
    protocol: Protocol,
    conn: u32,
    app: String,
    hostname: String,
    level: Option<u32>,
    gelf_compression: GelfCompression,
    gelf_chunk_size: usize,
    gelf_id: u64,
    forward_mode: ForwardMode,
    acks: bool,
    text: Vec<u8>,
    scratch: Vec<u8>,
}

impl Generator {
    pub fn new(args: &SendArgs, conn: u32) -> Generator {
        Generator {
            protocol: args.protocol,
            conn,
            app: args.app.clone(),
            hostname: format!("loadgen-{conn}"),
            level: args.compression_level,
            gelf_compression: args.gelf_compression,
            gelf_chunk_size: args.gelf_chunk_size,
            gelf_id: u64::from(conn) << 40,
            forward_mode: args.forward_mode,
            acks: !args.no_ack,
            text: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// `lp=CONN:SEQ:MICROS ` then filler, `size` bytes in all.
    fn stamp(&mut self, seq: u64, size: usize, micros: u64) {
        self.text.clear();
        self.text
            .extend_from_slice(format!("lp={}:{seq}:{micros} ", self.conn).as_bytes());
        while self.text.len() < size {
            let take = (size - self.text.len()).min(FILLER.len());
            self.text.extend_from_slice(&FILLER[..take]);
        }
    }

    /// Encodes events `first_seq..first_seq + sizes.len()` of this connection: stream bytes
    /// into `wire`, datagrams into the returned unit.
    pub fn encode(&mut self, first_seq: u64, sizes: &[usize], wire: &mut BytesMut) -> Unit {
        let micros = unix_micros();
        let mut unit = Unit::default();
        match self.protocol {
            Protocol::SyslogTcp | Protocol::SyslogTcpLf | Protocol::SyslogUdp => {
                for (i, &size) in sizes.iter().enumerate() {
                    self.stamp(first_seq + i as u64, size, micros);
                    let proc_id = self.conn.to_string();
                    let msg = Rfc5424Message {
                        timestamp: StampField::Unix {
                            secs: (micros / 1_000_000) as i64,
                            nanos: (micros % 1_000_000) as u32 * 1000,
                            offset_secs: 0,
                            frac_digits: Some(6),
                        },
                        hostname: Some(&self.hostname),
                        app_name: Some(&self.app),
                        proc_id: Some(&proc_id),
                        msg: &self.text,
                        ..Rfc5424Message::new(Pri::from_parts(16, 6).expect("local0.info"))
                    };
                    self.scratch.clear();
                    msg.encode(&mut self.scratch);
                    match self.protocol {
                        Protocol::SyslogTcp => {
                            logport_syslog::frame_octet_counted(&self.scratch, wire)
                        }
                        Protocol::SyslogTcpLf => logport_syslog::frame_lf(&self.scratch, wire),
                        _ => unit.datagrams.push(Bytes::copy_from_slice(&self.scratch)),
                    }
                }
            }
            Protocol::Beats => {
                let mut events = Vec::with_capacity(sizes.len());
                for (i, &size) in sizes.iter().enumerate() {
                    self.stamp(first_seq + i as u64, size, micros);
                    // What Filebeat's log input sends, trimmed to the fields that matter.
                    let doc = serde_json::json!({
                        "@timestamp": rfc3339_millis(micros),
                        "@metadata": {"beat": "filebeat", "type": "_doc", "version": "8.15.0"},
                        "message": String::from_utf8_lossy(&self.text),
                        "fields": {"app": self.app},
                        "host": {"name": self.hostname},
                        "log": {"file": {"path": "/var/log/bench.log"}, "offset": first_seq + i as u64},
                        "input": {"type": "log"},
                        "agent": {"type": "filebeat", "version": "8.15.0"},
                    });
                    events.push(Payload::Json(Bytes::from(
                        serde_json::to_vec(&doc).expect("JSON of a json! value"),
                    )));
                }
                // libbeat numbers every window from 1.
                logport_lumberjack::encode_batch(Version::V2, 1, &events, self.level, wire);
                unit.acks = 1;
                unit.last_seq = sizes.len() as u32;
            }
            Protocol::GelfUdp | Protocol::GelfTcp => {
                for (i, &size) in sizes.iter().enumerate() {
                    self.stamp(first_seq + i as u64, size, micros);
                    let json = format!(
                        r#"{{"version":"1.1","host":"{}","short_message":"{}","timestamp":{}.{:06},"level":6,"_app":"{}","_container_name":"{}"}}"#,
                        self.hostname,
                        String::from_utf8_lossy(&self.text),
                        micros / 1_000_000,
                        micros % 1_000_000,
                        self.app,
                        self.app,
                    );
                    if self.protocol == Protocol::GelfTcp {
                        logport_gelf::frame_tcp(json.as_bytes(), wire);
                        continue;
                    }
                    let encoding = match self.gelf_compression {
                        GelfCompression::None => Encoding::Plain,
                        GelfCompression::Zlib => Encoding::Zlib,
                        GelfCompression::Gzip => Encoding::Gzip,
                    };
                    // Docker's gelf driver compresses at level 1.
                    let payload = logport_gelf::compress(json.as_bytes(), encoding, 1);
                    self.gelf_id += 1;
                    let datagrams = logport_gelf::encode_datagrams(
                        &payload,
                        self.gelf_id,
                        self.gelf_chunk_size,
                    )
                    .expect("a --size of at most 1 MiB fits in 128 chunks of 1420 bytes");
                    unit.datagrams.extend(datagrams);
                }
            }
            Protocol::Forward => {
                let time = Time::Event(EventTime {
                    secs: (micros / 1_000_000) as i64,
                    nanos: (micros % 1_000_000) as u32 * 1000,
                });
                let mut entries = Vec::with_capacity(sizes.len());
                for (i, &size) in sizes.iter().enumerate() {
                    self.stamp(first_seq + i as u64, size, micros);
                    // Docker's fluentd driver record.
                    let record = Value::Map(vec![
                        ("container_id".into(), "0123456789ab".into()),
                        ("container_name".into(), format!("/{}", self.app).into()),
                        ("source".into(), "stdout".into()),
                        (
                            "log".into(),
                            String::from_utf8_lossy(&self.text).into_owned().into(),
                        ),
                    ]);
                    entries.push((time, record));
                }
                let mut out = Vec::new();
                let mut options = |n: usize, k: usize| {
                    let id = format!("c{}-{}-{}", self.conn, first_seq, k).into_bytes();
                    if self.acks {
                        unit.chunk_ids.push(id.clone());
                    }
                    ClientOptions {
                        chunk: self.acks.then_some(id),
                        size: Some(n as u64),
                    }
                };
                match self.forward_mode {
                    ForwardMode::Message => {
                        for (k, (t, r)) in entries.iter().enumerate() {
                            let o = options(1, k);
                            logport_forward::encode_message(&mut out, &self.app, *t, r, Some(&o));
                        }
                    }
                    ForwardMode::Forward => {
                        let o = options(entries.len(), 0);
                        logport_forward::encode_forward(&mut out, &self.app, &entries, Some(&o));
                    }
                    ForwardMode::Packed => {
                        let o = options(entries.len(), 0);
                        logport_forward::encode_packed_forward(
                            &mut out,
                            &self.app,
                            &entries,
                            Some(&o),
                            PackedAs::Bin,
                        );
                    }
                }
                wire.extend_from_slice(&out);
                unit.acks = unit.chunk_ids.len();
            }
        }
        unit
    }
}

fn rfc3339_millis(micros: u64) -> String {
    let mut out = Vec::new();
    logport_syslog::write_rfc3339(
        &mut out,
        (micros / 1_000_000) as i64,
        (micros % 1_000_000) as u32 * 1000,
        0,
        Some(3),
    );
    String::from_utf8(out).expect("RFC 3339 is ASCII")
}
