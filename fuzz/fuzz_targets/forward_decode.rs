//! Fluent forward stream decoding: msgpack or JSON connections, all four
//! modes, gzip members, heartbeats, cut into arbitrary reads, under small
//! caps. Invariants: no panic; once the decoder wants more bytes the buffer
//! holds at most max_message bytes (a header announcing more fails at once);
//! no chunk is longer on the wire than max_message, nor costs more than
//! max_decoded with every entry counted; records nest no deeper
//! than max_depth plus the envelope the cap is counted from; an error is sticky.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use logport_forward::{rmpv::Value, value, Decoder, Limits};
use logport_fuzz::reads;

const LIMITS: Limits = Limits {
    max_message: 4096,
    max_decompressed: 16384,
    max_depth: 8,
    max_decoded: 64 << 10,
};

/// The decoder counts depth from the message array: message, Forward entries,
/// entry, and Fluent Bit's `[time, metadata]` sit above a record.
const ENVELOPE: usize = 4;

fuzz_target!(|data: &[u8]| {
    let (read, stream) = reads(data);
    let mut dec = Decoder::new(LIMITS);
    let mut buf = BytesMut::new();
    for piece in stream.chunks(read) {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(chunk)) => {
                    assert!(chunk.wire_len <= LIMITS.max_message);
                    assert!(chunk.decoded <= LIMITS.max_decoded.max(logport_forward::ENTRY_COST));
                    assert!(
                        chunk.entries.len() * logport_forward::ENTRY_COST <= chunk.decoded,
                        "every entry is counted"
                    );
                    for e in &chunk.entries {
                        assert!(depth(&e.record) <= LIMITS.max_depth + ENVELOPE);
                        let _ = value::to_json(&e.record);
                    }
                    let _ = chunk.ack();
                }
                Ok(None) => {
                    assert!(
                        buf.len() <= LIMITS.max_message,
                        "decoder left {} bytes buffered",
                        buf.len()
                    );
                    break;
                }
                Err(e) => {
                    let _ = e.to_string();
                    assert_eq!(dec.decode(&mut buf), Err(e), "errors are sticky");
                    return;
                }
            }
        }
    }
    let _ = dec.decode_eof(&mut buf);
});

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Map(m) => {
            1 + m
                .iter()
                .map(|(k, v)| depth(k).max(depth(v)))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}
