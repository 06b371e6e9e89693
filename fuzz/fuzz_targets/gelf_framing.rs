//! GELF over TCP: NUL-delimited frames cut into arbitrary reads, each frame
//! decoded as a payload. Invariants: no panic; once the decoder wants more
//! bytes the buffer holds at most max_frame bytes (the bound FrameDecoder
//! documents); no frame exceeds max_frame; an over-long frame is reported once and
//! decoding goes on after its NUL (the recovery FrameDecoder documents).
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use logport_fuzz::reads;
use logport_gelf::{decode_payload, FrameDecoder};

const MAX_FRAME: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let (read, stream) = reads(data);
    let mut dec = FrameDecoder::new(MAX_FRAME);
    let mut buf = BytesMut::new();
    let mut last_error = None;
    for piece in stream.chunks(read) {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.bytes.len() <= MAX_FRAME);
                    let _ = decode_payload(&frame.bytes, 4 * MAX_FRAME);
                }
                Ok(None) => {
                    assert!(buf.len() <= MAX_FRAME, "decoder left {} bytes", buf.len());
                    break;
                }
                Err(e) => {
                    let _ = e.to_string();
                    // The over-long frame's bytes so far are gone: the same error must not
                    // come back for the same bytes.
                    assert!(buf.len() <= MAX_FRAME, "{} bytes kept after {e}", buf.len());
                    assert_ne!(
                        last_error,
                        Some(e.offset()),
                        "the same frame reported twice"
                    );
                    last_error = Some(e.offset());
                }
            }
        }
    }
    while let Ok(Some(frame)) = dec.decode_eof(&mut buf) {
        assert!(frame.bytes.len() <= MAX_FRAME);
        let _ = decode_payload(&frame.bytes, 4 * MAX_FRAME);
    }
});
