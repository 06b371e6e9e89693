//! RFC 6587 framing (octet counting and LF/NUL, fixed by the first frame) cut
//! into arbitrary reads, each frame then parsed as RFC 5424 or RFC 3164; the
//! whole input is also parsed as one UDP datagram. Invariants: no panic; once
//! the decoder wants more bytes the buffer holds at most max(max_frame, 20)
//! bytes (the bound FrameDecoder documents); no frame exceeds max_frame; an
//! error is sticky; a parsed message owns the same fields as it borrowed.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use logport_fuzz::reads;
use logport_syslog::{parse, trim_datagram, FrameDecoder};

const MAX_FRAME: usize = 512;

fuzz_target!(|data: &[u8]| {
    let (read, stream) = reads(data);
    parse_checked(trim_datagram(stream));

    let mut dec = FrameDecoder::new(MAX_FRAME);
    let mut buf = BytesMut::new();
    for piece in stream.chunks(read) {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.bytes.len() <= MAX_FRAME);
                    parse_checked(&frame.bytes);
                }
                Ok(None) => {
                    assert!(
                        buf.len() <= MAX_FRAME.max(20),
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
    while let Ok(Some(frame)) = dec.decode_eof(&mut buf) {
        parse_checked(&frame.bytes);
    }
});

fn parse_checked(frame: &[u8]) {
    match parse(frame) {
        Ok(msg) => {
            // into_owned drops the raw timestamp (it borrows the frame); the
            // rest must survive.
            let mut owned = msg.clone().into_owned();
            owned.timestamp_raw = msg.timestamp_raw;
            assert_eq!(owned, msg);
        }
        Err(e) => {
            assert!(e.offset <= frame.len(), "error offset past the frame");
            let _ = e.to_string();
        }
    }
}
