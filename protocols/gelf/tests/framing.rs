//! TCP NUL framing: splits, whitespace, empty frames, over-long frames, EOF.

use bytes::BytesMut;
use logport_gelf::{frame_tcp, FrameDecoder, FrameError};

/// (frame bodies with offsets, errors) for `wire` fed in `read`-byte pieces.
fn run(max: usize, wire: &[u8], read: usize) -> (Vec<(String, u64)>, Vec<FrameError>) {
    let mut dec = FrameDecoder::new(max);
    let mut buf = BytesMut::new();
    let (mut frames, mut errors) = (Vec::new(), Vec::new());
    let mut push = |r| match r {
        Ok(Some(f)) => {
            let f: logport_gelf::Frame = f;
            frames.push((String::from_utf8(f.bytes.to_vec()).unwrap(), f.offset));
            true
        }
        Ok(None) => false,
        Err(e) => {
            errors.push(e);
            true
        }
    };
    for piece in wire.chunks(read.max(1)) {
        buf.extend_from_slice(piece);
        while push(dec.decode(&mut buf)) {}
        assert!(buf.len() <= max + read, "buffer {} bytes", buf.len());
    }
    while push(dec.decode_eof(&mut buf)) {}
    (frames, errors)
}

#[test]
fn frames_whitespace_and_empties() {
    let wire = b"{\"a\":1}\0\0\n\0{\"b\":2}\n\0  {\"c\":3} \r\n\0";
    for read in 1..wire.len() {
        let (f, e) = run(64, wire, read);
        assert!(e.is_empty());
        assert_eq!(
            f,
            [
                ("{\"a\":1}".into(), 0),
                ("{\"b\":2}".into(), 11),
                ("{\"c\":3}".into(), 22)
            ]
        );
    }
}

#[test]
fn unterminated_tail_at_eof_is_a_frame() {
    let (f, e) = run(64, b"{\"a\":1}\0{\"b\":2}\n", 3);
    assert!(e.is_empty());
    assert_eq!(f, [("{\"a\":1}".into(), 0), ("{\"b\":2}".into(), 8)]);
}

#[test]
fn over_long_frame_is_skipped_and_reported() {
    let mut wire = BytesMut::new();
    frame_tcp(b"{\"a\":1}", &mut wire);
    frame_tcp(&[b'x'; 100], &mut wire);
    frame_tcp(&[b'y'; 16], &mut wire); // exactly max: fine
    frame_tcp(b"{\"b\":2}", &mut wire);
    for read in [1, 5, 16, 17, 1000] {
        let (f, e) = run(16, &wire, read);
        assert_eq!(
            e,
            [FrameError::TooLong { offset: 8, max: 16 }],
            "read {read}"
        );
        assert_eq!(
            f,
            [
                ("{\"a\":1}".into(), 0),
                ("y".repeat(16), 109),
                ("{\"b\":2}".into(), 126)
            ],
            "read {read}"
        );
    }
    assert_eq!(
        FrameError::TooLong { offset: 8, max: 16 }.to_string(),
        "GELF TCP frame at stream offset 8 has no NUL terminator within the maximum frame size of 16 bytes; skipping to the next NUL"
    );
}

#[test]
fn endless_garbage_stays_bounded() {
    let mut dec = FrameDecoder::new(1024);
    let mut buf = BytesMut::new();
    let mut errors = 0;
    for _ in 0..1000 {
        buf.extend_from_slice(&[b'z'; 700]);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(_)) => panic!("no frame in garbage"),
                Ok(None) => break,
                Err(_) => errors += 1,
            }
        }
        assert!(buf.len() <= 1024);
    }
    assert_eq!(errors, 1);
    assert_eq!(dec.offset() + buf.len() as u64, 700_000);
}

#[test]
fn in_frame_is_true_exactly_inside_a_frame() {
    let mut dec = FrameDecoder::new(8);
    let mut buf = BytesMut::new();
    let mut after = |bytes: &[u8]| {
        buf.extend_from_slice(bytes);
        while let Ok(Some(_)) | Err(_) = dec.decode(&mut buf) {}
        dec.in_frame(&buf)
    };
    assert!(after(b"{\"a"));
    assert!(!after(b"\":1}\0"));
    // Whitespace after a NUL is no frame; the tail of an over-long frame is.
    assert!(!after(b"\n "));
    assert!(after(b"0123456789"));
    assert!(after(b"abc"));
    assert!(!after(b"\0"));
}

#[test]
fn whitespace_between_frames_is_not_held() {
    // Held, a trickle of spaces would be a frame that never starts: no deadline, up to
    // max_frame of buffer per connection.
    let mut dec = FrameDecoder::new(1 << 20);
    let mut buf = BytesMut::new();
    for _ in 0..1000 {
        buf.extend_from_slice(b" \r\n\t");
        assert!(dec.decode(&mut buf).unwrap().is_none());
        assert!(buf.is_empty());
        assert!(!dec.in_frame(&buf));
    }
    buf.extend_from_slice(b"  {\"a\":1}\0");
    let frame = dec.decode(&mut buf).unwrap().unwrap();
    assert_eq!(&frame.bytes[..], b"{\"a\":1}");
    assert_eq!(frame.offset, 4002);
}
