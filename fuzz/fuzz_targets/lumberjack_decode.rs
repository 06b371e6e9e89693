//! Lumberjack v1/v2 stream decoding (`W J D C A`, `C` inflated incrementally)
//! and window bookkeeping, over arbitrary bytes cut into arbitrary reads.
//! Invariants: no panic; once the decoder wants more bytes the caller's buffer
//! is bounded by the per-event cap plus a frame header, whatever the peer sent
//! (a `C` frame is inflated as it arrives, never buffered whole); no record
//! exceeds the caps; an error is sticky.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use logport_fuzz::reads;
use logport_lumberjack::{Decoder, Limits, Payload, Record, WindowTracker};

const LIMITS: Limits = Limits {
    max_payload: 4096,
    max_inflated: 16384,
    max_pairs: 64,
};
/// Version, type, and up to two u32 lengths before a body.
const HEADER: usize = 10;

fuzz_target!(|data: &[u8]| {
    let (read, stream) = reads(data);
    let mut dec = Decoder::new(LIMITS);
    let mut window = WindowTracker::new(1000);
    let mut buf = BytesMut::new();
    for piece in stream.chunks(read) {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(record)) => {
                    check_caps(&record);
                    if !track(&mut window, &record) {
                        return;
                    }
                }
                Ok(None) => {
                    assert!(
                        buf.len() <= LIMITS.max_payload + HEADER,
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
    while let Ok(Some(record)) = dec.decode_eof(&mut buf) {
        check_caps(&record);
    }
});

fn check_caps(record: &Record) {
    if let Record::Event { payload, .. } = record {
        match payload {
            Payload::Json(j) => assert!(!j.is_empty() && j.len() <= LIMITS.max_payload),
            Payload::Pairs(p) => {
                assert!(!p.is_empty() && p.len() <= LIMITS.max_pairs as usize);
                let body: usize = p.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
                assert!(body <= LIMITS.max_payload, "D body {body}");
            }
        }
    }
}

/// Feeds the window tracker as the Beats source does, committing each
/// completed window at once; false when the window stream is invalid (the
/// source closes the connection there).
fn track(window: &mut WindowTracker, record: &Record) -> bool {
    match window.on_record(record) {
        Ok(Some(done)) => {
            window
                .commit(done.id)
                .expect("a completed window commits once");
            let ack = window
                .next_ack()
                .expect("the only pending window is committed");
            assert_eq!(ack, done.ack);
            let mut out = BytesMut::new();
            ack.encode(&mut out);
            assert_eq!(out.len(), 6);
            true
        }
        Ok(None) => true,
        Err(e) => {
            let _ = e.to_string();
            false
        }
    }
}
