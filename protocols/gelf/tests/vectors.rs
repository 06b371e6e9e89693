//! The GELF test vectors of the protocol reference (vectors.txt and
//! protocols-detail.md §3.6), end to end.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use logport_gelf::{
    chunk, compress, decode_payload, decompress, detect, encode_chunks, encode_datagrams,
    ChunkError, Encoding, FrameDecoder, Message, Outcome, Reassembler, GO_GELF_CHUNK_SIZE,
};

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

const ZLIB_PAYLOAD: &str = "78 9c 25 cc 41 0e 83 20 10 46 e1 bb fc 6b 34 92 68 6d b9 0c 41 33 29 24 c0 34 cc 44 17 4d ef 2e 8d cb f7 2d de 17 07 35 49 5c e1 60 47 0b 83 c8 a2 3d 4e da 86 7f 4a e4 a6 be 90 48 78 53 f7 48 39 73 77 4d dd 34 94 0f 9c 5d 5f cb bc 3e e7 69 1a 17 83 4c 07 65 b8 87 81 df b9 6a 48 95 9a af a1 d0 3d c5 ef 02 25 d1 24 43";
const TCP_FRAME: &str = "7b 22 76 65 72 73 69 6f 6e 22 3a 22 31 2e 31 22 2c 22 68 6f 73 74 22 3a 22 77 65 62 2d 31 22 2c 22 73 68 6f 72 74 5f 6d 65 73 73 61 67 65 22 3a 22 68 65 6c 6c 6f 22 2c 22 74 69 6d 65 73 74 61 6d 70 22 3a 31 37 39 35 34 37 38 34 30 30 2e 35 2c 22 6c 65 76 65 6c 22 3a 36 2c 22 5f 63 6f 6e 74 61 69 6e 65 72 5f 6e 61 6d 65 22 3a 22 77 65 62 22 7d 00";
const CHUNK_0: &str = "1e 0f 01 02 03 04 05 06 07 08 00 02 78 9c 25 cc 41 0e 83 20 10 46 e1 bb fc 6b 34 92 68 6d b9 0c 41 33 29 24 c0 34 cc 44 17 4d ef 2e 8d cb f7 2d de 17 07 35 49 5c e1 60 47 0b 83 c8 a2 3d 4e da 86";
const CHUNK_1: &str = "1e 0f 01 02 03 04 05 06 07 08 01 02 7f 4a e4 a6 be 90 48 78 53 f7 48 39 73 77 4d dd 34 94 0f 9c 5d 5f cb bc 3e e7 69 1a 17 83 4c 07 65 b8 87 81 df b9 6a 48 95 9a af a1 d0 3d c5 ef 02 25 d1 24 43";
const JSON: &str = r#"{"version":"1.1","host":"web-1","short_message":"hello","timestamp":1795478400.5,"level":6,"_container_name":"web"}"#;

fn expected() -> Message {
    Message::from_json(JSON.as_bytes()).unwrap()
}

fn check(m: &Message) {
    assert_eq!(m.version.as_deref(), Some("1.1"));
    assert_eq!(m.host.as_deref(), Some("web-1"));
    assert_eq!(m.short_message.as_deref(), Some("hello"));
    assert_eq!(m.timestamp, Some(1795478400.5));
    assert_eq!(m.timestamp_micros(), Some(1_795_478_400_500_000));
    assert_eq!(m.level, Some(6));
    assert_eq!(m.additional.len(), 1);
    assert_eq!(m.additional["_container_name"], "web");
    assert!(m.other.is_empty());
}

#[test]
fn json_vector() {
    let m = expected();
    check(&m);
    // Encoding gives back the vector byte for byte (same field order).
    assert_eq!(m.to_json(), JSON.as_bytes());
}

#[test]
fn zlib_payload_vector() {
    let p = hex(ZLIB_PAYLOAD);
    assert_eq!(detect(&p), Encoding::Zlib);
    assert_eq!(&*decompress(&p, 4096).unwrap(), JSON.as_bytes());
    check(&decode_payload(&p, 4096).unwrap());
}

#[test]
fn tcp_frame_vector() {
    let wire = hex(TCP_FRAME);
    for read in [1, 2, 7, wire.len()] {
        let mut dec = FrameDecoder::new(1024);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for piece in wire.chunks(read) {
            buf.extend_from_slice(piece);
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(dec.decode_eof(&mut buf).unwrap(), None);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].offset, 0);
        assert_eq!(&frames[0].bytes[..], JSON.as_bytes());
        check(&decode_payload(&frames[0].bytes, 4096).unwrap());
    }
}

#[test]
fn udp_chunk_vectors_either_order() {
    let c0 = Bytes::from(hex(CHUNK_0));
    let c1 = Bytes::from(hex(CHUNK_1));
    for (first, second) in [(&c0, &c1), (&c1, &c0)] {
        let mut r = Reassembler::default();
        let t = Instant::now();
        assert_eq!(r.push(first.clone(), t).unwrap(), Outcome::Incomplete);
        assert_eq!(r.push(first.clone(), t).unwrap(), Outcome::Duplicate);
        let Outcome::Complete(p) = r.push(second.clone(), t).unwrap() else {
            panic!("complete")
        };
        assert_eq!(p, hex(ZLIB_PAYLOAD));
        check(&decode_payload(&p, 4096).unwrap());
        assert_eq!(r.pending_messages(), 0);
        assert_eq!(r.pending_bytes(), 0);
        let s = r.stats();
        assert_eq!((s.chunks, s.duplicate_chunks, s.reassembled), (2, 1, 1));
    }
}

/// Vector's chunked_gelf.rs fixtures.
#[test]
fn vector_two_chunks_foobar() {
    let a = Bytes::from(hex("1e 0f 00 00 00 00 00 00 00 01 00 02 66 6f 6f"));
    let b = Bytes::from(hex("1e 0f 00 00 00 00 00 00 00 01 01 02 62 61 72"));
    let t = Instant::now();
    for order in [[&a, &b], [&b, &a]] {
        let mut r = Reassembler::default();
        assert_eq!(r.push(order[0].clone(), t), Ok(Outcome::Incomplete));
        assert_eq!(
            r.push(order[1].clone(), t),
            Ok(Outcome::Complete(Bytes::from_static(b"foobar")))
        );
    }
    // Total 129: refused.
    let mut r = Reassembler::default();
    let bad = Bytes::from(hex("1e 0f 00 00 00 00 00 00 00 01 00 81 66 6f 6f"));
    assert_eq!(
        r.push(bad, t),
        Err(ChunkError::InvalidCount { id: 1, count: 129 })
    );
    assert_eq!(r.stats().invalid_chunks, 1);
    // One chunk, then 5 s: discarded.
    assert_eq!(r.push(a.clone(), t), Ok(Outcome::Incomplete));
    assert_eq!(r.expire(t + Duration::from_millis(4999)).messages, 0);
    let d = r.expire(t + Duration::from_secs(5));
    assert_eq!(d.messages, 1);
    assert_eq!(r.pending_messages(), 0);
    assert_eq!(r.stats().expired.messages, 1);
    // The late second chunk starts a new, incomplete message.
    assert_eq!(
        r.push(b, t + Duration::from_secs(6)),
        Ok(Outcome::Incomplete)
    );
}

#[test]
fn compression_detection() {
    for b1 in [0x01, 0x5e, 0x9c, 0xda] {
        assert_eq!(detect(&[0x78, b1, 0]), Encoding::Zlib);
    }
    // 78 00 fails the header check: not zlib.
    assert_eq!(detect(&[0x78, 0x00]), Encoding::Plain);
    assert_eq!(detect(&[0x1f, 0x8b, 8]), Encoding::Gzip);
    assert_eq!(detect(b"{\"a\":1}"), Encoding::Plain);
    // Docker's level-1 zlib (78 01), missed by gelfd2, decodes.
    let z = compress(JSON.as_bytes(), Encoding::Zlib, 1);
    assert_eq!(&z[..2], &[0x78, 0x01]);
    check(&decode_payload(&z, 4096).unwrap());
}

/// go-gelf `numChunks` edges: 1420 → one datagram, 1421 → 2 chunks, 2816 →
/// go-gelf sends 1408 + 1408 + an empty chunk; 180224 → refused by go-gelf.
#[test]
fn chunk_count_edges() {
    let p = vec![b'x'; 1420];
    let d = encode_datagrams(&p, 9, GO_GELF_CHUNK_SIZE).unwrap();
    assert_eq!((d.len(), d[0].len()), (1, 1420));
    let d = encode_datagrams(&vec![b'x'; 1421], 9, GO_GELF_CHUNK_SIZE).unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!((d[0].len(), d[1].len()), (1420, 12 + 13));

    // go-gelf's empty trailing chunk, forged, is accepted.
    let p: Vec<u8> = (0..2816u32).map(|i| i as u8).collect();
    let mut r = Reassembler::default();
    let t = Instant::now();
    assert_eq!(r.push(chunk(5, 2, 3, &[]), t), Ok(Outcome::Incomplete));
    assert_eq!(
        r.push(chunk(5, 0, 3, &p[..1408]), t),
        Ok(Outcome::Incomplete)
    );
    assert_eq!(
        r.push(chunk(5, 1, 3, &p[1408..]), t),
        Ok(Outcome::Complete(Bytes::from(p.clone())))
    );
    assert_eq!(encode_chunks(&p, 5, GO_GELF_CHUNK_SIZE).unwrap().len(), 2);

    // go-gelf refuses 180224 = 128 * 1408 (its count says 129); with the
    // ceiling it is exactly 128 chunks, and one byte more is refused.
    assert_eq!(
        encode_datagrams(&vec![0; 180_224], 9, GO_GELF_CHUNK_SIZE)
            .unwrap()
            .len(),
        128
    );
    assert_eq!(
        encode_datagrams(&vec![0; 180_225], 9, GO_GELF_CHUNK_SIZE),
        Err(logport_gelf::EncodeError::TooManyChunks {
            len: 180_225,
            needed: 129
        })
    );
}
