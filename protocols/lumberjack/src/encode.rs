//! Encoders. The gateway only ever writes acks ([`encode_ack`]); the client
//! frames are for tests and the load generator, and write what libbeat
//! (go-lumber `client/v2`) and Logstash's lumberjack output (jls) send.

use std::io::Write;

use bytes::BufMut;
use flate2::write::ZlibEncoder;
use flate2::Compression;

use crate::frame::{FrameType, Payload, Record, Version};

fn put_header(out: &mut impl BufMut, version: Version, frame: FrameType) {
    out.put_u8(version.byte());
    out.put_u8(frame.byte());
}

/// `ver 'A' seq`: the server's ack. `seq` is the seq of the last event of the
/// window, and `version` the window's (a v1 client does not expect `'2'`).
pub fn encode_ack(version: Version, seq: u32, out: &mut impl BufMut) {
    put_header(out, version, FrameType::Ack);
    out.put_u32(seq);
}

/// `ver 'W' size`.
pub fn encode_window(version: Version, size: u32, out: &mut impl BufMut) {
    put_header(out, version, FrameType::Window);
    out.put_u32(size);
}

/// `ver 'J' seq len json`.
///
/// # Panics
/// If `json` is longer than `u32::MAX` bytes.
pub fn encode_json(version: Version, seq: u32, json: &[u8], out: &mut impl BufMut) {
    put_header(out, version, FrameType::Json);
    out.put_u32(seq);
    out.put_u32(u32::try_from(json.len()).expect("JSON document over 4 GiB"));
    out.put_slice(json);
}

/// `ver 'D' seq count {klen key vlen value}×count`.
///
/// # Panics
/// If there are more than `u32::MAX` pairs or a key or value is over 4 GiB.
pub fn encode_data<K, V>(version: Version, seq: u32, pairs: &[(K, V)], out: &mut impl BufMut)
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    put_header(out, version, FrameType::Data);
    out.put_u32(seq);
    out.put_u32(u32::try_from(pairs.len()).expect("over 2^32 pairs"));
    for (k, v) in pairs {
        for s in [k.as_ref(), v.as_ref()] {
            out.put_u32(u32::try_from(s.len()).expect("pair item over 4 GiB"));
            out.put_slice(s);
        }
    }
}

/// `ver 'C' len zlib(frames)`: `frames` are already-encoded frames, compressed
/// at zlib `level` (0–9; libbeat's default is 3, logstash-forwarder's 3).
pub fn encode_compressed(version: Version, frames: &[u8], level: u32, out: &mut impl BufMut) {
    let mut z = ZlibEncoder::new(Vec::new(), Compression::new(level.min(9)));
    z.write_all(frames)
        .and_then(|()| z.flush())
        .expect("writing to a Vec does not fail");
    let compressed = z.finish().expect("writing to a Vec does not fail");
    put_header(out, version, FrameType::Compressed);
    out.put_u32(u32::try_from(compressed.len()).expect("compressed frames over 4 GiB"));
    out.put_slice(&compressed);
}

/// Writes `record` as the frame it was decoded from (a `C` frame decodes into
/// its inner records, so there is no record for `C` itself).
pub fn encode_record(record: &Record, out: &mut impl BufMut) {
    match record {
        Record::Window { version, size } => encode_window(*version, *size, out),
        Record::Ack { version, seq } => encode_ack(*version, *seq, out),
        Record::Event {
            version,
            seq,
            payload,
        } => encode_event(*version, *seq, payload, out),
    }
}

/// A `J` or `D` frame for `payload`.
pub fn encode_event(version: Version, seq: u32, payload: &Payload, out: &mut impl BufMut) {
    match payload {
        Payload::Json(json) => encode_json(version, seq, json, out),
        Payload::Pairs(pairs) => encode_data(version, seq, pairs, out),
    }
}

/// One window the way the real clients write it: `W n`, then the events
/// numbered from `first_seq` (libbeat: 1 in every window; logstash-forwarder and
/// jls: counting on across windows, wrapping at 2^32), either as plain frames
/// (`level == None`, libbeat's `compression_level: 0`) or wrapped in one `C`.
///
/// # Panics
/// If there are more than `u32::MAX` events.
pub fn encode_batch(
    version: Version,
    first_seq: u32,
    events: &[Payload],
    level: Option<u32>,
    out: &mut impl BufMut,
) {
    encode_window(
        version,
        u32::try_from(events.len()).expect("over 2^32 events"),
        out,
    );
    let mut frames = Vec::new();
    for (i, payload) in events.iter().enumerate() {
        let seq = first_seq.wrapping_add(i as u32);
        match level {
            Some(_) => encode_event(version, seq, payload, &mut frames),
            None => encode_event(version, seq, payload, out),
        }
    }
    if let Some(level) = level {
        encode_compressed(version, &frames, level, out);
    }
}
