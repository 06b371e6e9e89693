//! Encoders: the server's replies, and client messages for tests and the load
//! generator. Writing to a `Vec<u8>` cannot fail, so these return nothing.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use rmp::encode as mp;
use rmpv::Value;

use crate::decode::{EventTime, Format};
use crate::value::write_json;

/// What in_forward sends back to every UDP heartbeat datagram, whatever it
/// held (`HEARTBEAT_UDP_PAYLOAD = "\0"` in in_forward.rb).
pub const HEARTBEAT_REPLY: &[u8] = b"\0";

/// in_forward reads at most this many bytes of a heartbeat datagram.
pub const HEARTBEAT_MAX_DATAGRAM: usize = 128;

/// A msgpack nil: the TCP heartbeat a client may send between messages; the
/// decoder skips it.
pub const TCP_HEARTBEAT: &[u8] = &[0xc0];

/// The `{"ack": chunk}` reply, chunk as a str (fluent-logger-golang cannot read
/// a bin ack), in the connection's encoding.
pub fn encode_ack(chunk: &[u8], format: Format) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunk.len() + 12);
    match format {
        Format::MessagePack => {
            let _ = mp::write_map_len(&mut out, 1);
            write_str(&mut out, b"ack");
            write_str(&mut out, chunk);
        }
        Format::Json => {
            out.extend_from_slice(b"{\"ack\":");
            write_json(&Value::Binary(chunk.to_vec()), &mut out);
            out.push(b'}');
        }
    }
    out
}

/// An event time as a client writes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Time {
    /// Integer seconds, smallest msgpack int that holds it.
    Int(i64),
    /// EventTime ext (fixext8, type 0); seconds are truncated to u32.
    Event(EventTime),
    /// A float, as some JSON clients send.
    Float(f64),
}

/// Options a client puts in the last element.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientOptions {
    pub chunk: Option<Vec<u8>>,
    pub size: Option<u64>,
}

/// How PackedForward entries are wrapped: Fluentd sends str32, Fluent Bit bin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackedAs {
    Bin,
    Str,
}

fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    let _ = mp::write_str_len(out, s.len() as u32);
    out.extend_from_slice(s);
}

fn write_time(out: &mut Vec<u8>, t: Time) {
    match t {
        Time::Int(s) => {
            let _ = mp::write_sint(out, s);
        }
        Time::Event(t) => {
            out.extend_from_slice(&[0xd7, 0x00]);
            out.extend_from_slice(&(t.secs as u32).to_be_bytes());
            out.extend_from_slice(&t.nanos.to_be_bytes());
        }
        Time::Float(f) => {
            let _ = mp::write_f64(out, f);
        }
    }
}

fn write_value(out: &mut Vec<u8>, v: &Value) {
    let _ = rmpv::encode::write_value(out, v);
}

fn write_options(out: &mut Vec<u8>, o: &ClientOptions, compressed: Option<&str>) {
    let n = u32::from(o.chunk.is_some())
        + u32::from(o.size.is_some())
        + u32::from(compressed.is_some());
    let _ = mp::write_map_len(out, n);
    if let Some(c) = &o.chunk {
        write_str(out, b"chunk");
        write_str(out, c);
    }
    if let Some(s) = o.size {
        write_str(out, b"size");
        let _ = mp::write_uint(out, s);
    }
    if let Some(c) = compressed {
        write_str(out, b"compressed");
        write_str(out, c.as_bytes());
    }
}

/// `[tag, time, record]`, or `[tag, time, record, option]` when `options` is
/// given (fluent-logger-golang always sends the option map, `80` when empty).
pub fn encode_message(
    out: &mut Vec<u8>,
    tag: &str,
    time: Time,
    record: &Value,
    options: Option<&ClientOptions>,
) {
    let _ = mp::write_array_len(out, 3 + u32::from(options.is_some()));
    write_str(out, tag.as_bytes());
    write_time(out, time);
    write_value(out, record);
    if let Some(o) = options {
        write_options(out, o, None);
    }
}

/// The JSON form of [`encode_message`] (fluent-logger `MarshalAsJSON`):
/// `["tag",1267867237,{...},{}]`. An EventTime with nanoseconds becomes a float.
pub fn encode_message_json(
    out: &mut Vec<u8>,
    tag: &str,
    time: Time,
    record: &Value,
    options: Option<&ClientOptions>,
) {
    out.push(b'[');
    write_json(&Value::from(tag), out);
    out.push(b',');
    let t = match time {
        Time::Int(s) => Value::from(s),
        Time::Event(t) if t.nanos == 0 => Value::from(t.secs),
        Time::Event(t) => Value::F64(t.secs as f64 + f64::from(t.nanos) / 1e9),
        Time::Float(f) => Value::F64(f),
    };
    write_json(&t, out);
    out.push(b',');
    write_json(record, out);
    if let Some(o) = options {
        let mut map = Vec::new();
        if let Some(c) = &o.chunk {
            map.push((Value::from("chunk"), Value::Binary(c.clone())));
        }
        if let Some(s) = o.size {
            map.push((Value::from("size"), Value::from(s)));
        }
        out.push(b',');
        write_json(&Value::Map(map), out);
    }
    out.push(b']');
}

/// `[tag, [[time, record], ...](, option)]`.
pub fn encode_forward(
    out: &mut Vec<u8>,
    tag: &str,
    entries: &[(Time, Value)],
    options: Option<&ClientOptions>,
) {
    let _ = mp::write_array_len(out, 2 + u32::from(options.is_some()));
    write_str(out, tag.as_bytes());
    let _ = mp::write_array_len(out, entries.len() as u32);
    for (t, r) in entries {
        let _ = mp::write_array_len(out, 2);
        write_time(out, *t);
        write_value(out, r);
    }
    if let Some(o) = options {
        write_options(out, o, None);
    }
}

/// Concatenated `[time, record]` arrays: the payload of PackedForward.
pub fn encode_entries(out: &mut Vec<u8>, entries: &[(Time, Value)]) {
    for (t, r) in entries {
        let _ = mp::write_array_len(out, 2);
        write_time(out, *t);
        write_value(out, r);
    }
}

fn write_blob(out: &mut Vec<u8>, data: &[u8], as_: PackedAs) {
    match as_ {
        PackedAs::Bin => {
            let _ = mp::write_bin_len(out, data.len() as u32);
        }
        PackedAs::Str => {
            let _ = mp::write_str_len(out, data.len() as u32);
        }
    }
    out.extend_from_slice(data);
}

/// `[tag, entries(, option)]` with entries packed in a bin or str.
pub fn encode_packed_forward(
    out: &mut Vec<u8>,
    tag: &str,
    entries: &[(Time, Value)],
    options: Option<&ClientOptions>,
    as_: PackedAs,
) {
    let mut packed = Vec::new();
    encode_entries(&mut packed, entries);
    let _ = mp::write_array_len(out, 2 + u32::from(options.is_some()));
    write_str(out, tag.as_bytes());
    write_blob(out, &packed, as_);
    if let Some(o) = options {
        write_options(out, o, None);
    }
}

/// CompressedPackedForward: the entries split as evenly as possible into
/// `members` gzip members back to back (at least one), wrapped in a bin, with
/// option `compressed: "gzip"` plus `options`.
pub fn encode_compressed_packed_forward(
    out: &mut Vec<u8>,
    tag: &str,
    entries: &[(Time, Value)],
    options: &ClientOptions,
    members: usize,
) {
    let members = members.max(1);
    let per = entries.len().div_ceil(members).max(1);
    let mut gz = Vec::new();
    let mut groups: Vec<&[(Time, Value)]> = entries.chunks(per).collect();
    groups.resize(members.max(groups.len()), &[]);
    for group in groups {
        let mut plain = Vec::new();
        encode_entries(&mut plain, group);
        gz.extend_from_slice(&gzip(&plain));
    }
    let _ = mp::write_array_len(out, 3);
    write_str(out, tag.as_bytes());
    write_blob(out, &gz, PackedAs::Bin);
    write_options(out, options, Some("gzip"));
}

/// One gzip member.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}
