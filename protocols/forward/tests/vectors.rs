//! The FWD lines of the shared vectors.txt and the vectors of the protocol
//! reference (§4.7), each fed whole, in 7-byte reads, and one byte at a time.

use bytes::BytesMut;
use logport_forward::handshake::shared_key_digest;
use logport_forward::rmpv::Value;
use logport_forward::value::{get, text_of, to_json};
use logport_forward::{encode_ack, Chunk, Decoder, EventTime, Format, Limits, Mode};

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

/// Every chunk of `wire`, decoded with reads of `read` bytes; EOF included.
fn chunks_in(wire: &[u8], read: usize) -> Vec<Chunk> {
    let mut dec = Decoder::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in wire.chunks(read) {
        buf.extend_from_slice(piece);
        while let Some(c) = dec.decode(&mut buf).expect("decodes") {
            out.push(c);
        }
    }
    assert_eq!(dec.decode_eof(&mut buf).expect("clean end"), None);
    assert_eq!(dec.offset(), wire.len() as u64);
    out
}

/// Same result whatever the read size.
fn decode_all_ways(wire: &[u8]) -> Vec<Chunk> {
    let whole = chunks_in(wire, wire.len().max(1));
    assert_eq!(chunks_in(wire, 7), whole);
    assert_eq!(chunks_in(wire, 1), whole);
    whole
}

fn field(c: &Chunk, i: usize, k: &str) -> String {
    text_of(get(&c.entries[i].record, k).unwrap())
        .unwrap()
        .into_owned()
}

const MESSAGE_INT: &str = "93 a7 61 70 70 2e 77 65 62 ce 6b 04 d3 80 82 a3 6c 6f 67 a5 68 65 6c 6c 6f a6 73 6f 75 72 63 65 a6 73 74 64 6f 75 74";
const MESSAGE_EVENTTIME_CHUNK: &str = "94 a7 61 70 70 2e 77 65 62 d7 00 6b 04 d3 80 07 5b cd 15 81 a3 6c 6f 67 a2 68 69 82 a5 63 68 75 6e 6b a8 63 44 46 69 59 7a 45 3d a4 73 69 7a 65 01";
const PACKED_BIN: &str = "93 a1 74 c4 16 92 ce 6b 04 d3 80 81 a1 6d a1 61 92 ce 6b 04 d3 81 81 a1 6d a1 62 81 a4 73 69 7a 65 02";
const COMPRESSED: &str = "93 a1 74 c4 26 1f 8b 08 00 00 00 00 00 02 03 9b 74 2e 9b e5 72 43 e3 c2 dc 85 89 93 40 cc 46 10 33 09 00 6e 9f 99 ff 16 00 00 00 82 a4 73 69 7a 65 02 aa 63 6f 6d 70 72 65 73 73 65 64 a4 67 7a 69 70";
const ACK: &str = "81 a3 61 63 6b a8 63 44 46 69 59 7a 45 3d";

#[test]
fn fwd_message_int_time() {
    let c = decode_all_ways(&hex(MESSAGE_INT));
    assert_eq!(c.len(), 1);
    let c = &c[0];
    assert_eq!(
        (c.tag.as_str(), c.mode, c.skipped),
        ("app.web", Mode::Message, 0)
    );
    assert_eq!(c.entries.len(), 1);
    assert_eq!(c.entries[0].time, EventTime::new(1_795_478_400, 0));
    assert_eq!(field(c, 0, "log"), "hello");
    assert_eq!(field(c, 0, "source"), "stdout");
    assert_eq!(c.options.chunk, None);
    assert_eq!(c.ack(), None);
    assert_eq!(c.wire_len, hex(MESSAGE_INT).len());
}

#[test]
fn fwd_message_eventtime_chunk_and_ack_reply() {
    let c = decode_all_ways(&hex(MESSAGE_EVENTTIME_CHUNK));
    let c = &c[0];
    assert_eq!(c.mode, Mode::Message);
    assert_eq!(
        c.entries[0].time,
        EventTime::new(1_795_478_400, 123_456_789)
    );
    assert_eq!(field(c, 0, "log"), "hi");
    assert_eq!(c.options.chunk.as_deref(), Some(&b"cDFiYzE="[..]));
    assert_eq!(c.options.size, Some(1));
    // The FWD ack reply vector is the answer to this message.
    assert_eq!(c.ack().unwrap(), hex(ACK));
    assert_eq!(encode_ack(b"cDFiYzE=", Format::MessagePack), hex(ACK));
}

fn check_two_entries(c: &Chunk) {
    assert_eq!(c.tag, "t");
    assert_eq!(c.entries.len(), 2);
    assert_eq!(c.entries[0].time, EventTime::new(1_795_478_400, 0));
    assert_eq!(c.entries[1].time, EventTime::new(1_795_478_401, 0));
    assert_eq!(field(c, 0, "m"), "a");
    assert_eq!(field(c, 1, "m"), "b");
    assert_eq!(c.options.size, Some(2));
}

#[test]
fn fwd_packed_forward_bin() {
    let c = decode_all_ways(&hex(PACKED_BIN));
    assert_eq!(c[0].mode, Mode::PackedForward);
    check_two_entries(&c[0]);
}

#[test]
fn fwd_compressed_packed_forward() {
    let c = decode_all_ways(&hex(COMPRESSED));
    assert_eq!(c[0].mode, Mode::CompressedPackedForward);
    assert_eq!(c[0].options.compressed.as_deref(), Some("gzip"));
    check_two_entries(&c[0]);
}

#[test]
fn fwd_all_vectors_on_one_stream() {
    let mut wire = Vec::new();
    for v in [MESSAGE_INT, MESSAGE_EVENTTIME_CHUNK, PACKED_BIN, COMPRESSED] {
        wire.extend(hex(v));
        // A TCP heartbeat (bare nil) between messages is skipped.
        wire.push(0xc0);
    }
    let c = decode_all_ways(&wire);
    let modes: Vec<Mode> = c.iter().map(|c| c.mode).collect();
    assert_eq!(
        modes,
        [
            Mode::Message,
            Mode::Message,
            Mode::PackedForward,
            Mode::CompressedPackedForward
        ]
    );
    let offsets: Vec<u64> = c.iter().map(|c| c.offset).collect();
    let l0 = hex(MESSAGE_INT).len() as u64 + 1;
    let l1 = hex(MESSAGE_EVENTTIME_CHUNK).len() as u64 + 1;
    let l2 = hex(PACKED_BIN).len() as u64 + 1;
    assert_eq!(offsets, [0, l0, l0 + l1, l0 + l1 + l2]);
}

#[test]
fn fwd_ping_digest() {
    let d = shared_key_digest(b"salt0123", b"client-1", &[0u8; 16], b"secret");
    assert_eq!(
        d,
        "cae0f95a5e828ecaa598eb3478d52c2bfd8637746d752e67c8f48de6400ae0d7b4924bfdb2b7874607d1c4bd96ac023c5db98b31bd0834847067a6dc1eea4f30"
    );
}

#[test]
fn golang_marshal_as_msgpack_and_sub_second() {
    // fluent-logger-golang Test_MarshalAsMsgpack: d2 int time, option map always present.
    let c = decode_all_ways(&hex(
        "94 a3 74 61 67 d2 4b 92 1e 65 82 a3 66 6f 6f a3 62 61 72 a4 68 6f 67 65 a4 68 6f 67 65 80",
    ));
    assert_eq!(c[0].entries[0].time, EventTime::new(1_267_867_237, 0));
    assert_eq!(
        to_json(&c[0].entries[0].record),
        r#"{"foo":"bar","hoge":"hoge"}"#
    );
    assert_eq!(c[0].options, Default::default());
    // Test_SubSecondPrecision, fixext8 and ext8 forms.
    for t in ["d7 00", "c7 08 00"] {
        let wire = hex(&format!(
            "94 a3 74 61 67 {t} 4b 92 1e 65 00 00 01 00 81 a3 66 6f 6f a3 62 61 72 80"
        ));
        let c = decode_all_ways(&wire);
        assert_eq!(c[0].entries[0].time, EventTime::new(1_267_867_237, 256));
    }
}

#[test]
fn vector_message_and_forward_modes() {
    let mut wire = hex("93 a8");
    wire.extend(b"tag.name");
    wire.extend(hex("ce 55 ec e6 f8 81 a7"));
    wire.extend(b"message");
    wire.extend(hex("a3"));
    wire.extend(b"bar");
    let c = decode_all_ways(&wire);
    assert_eq!(c[0].entries[0].time.secs, 1_441_588_984);

    let mut wire = hex("92 a8");
    wire.extend(b"tag.name");
    wire.push(0x93);
    for (t, m) in [("f8", "foo"), ("f9", "bar"), ("fa", "baz")] {
        wire.extend(hex(&format!("92 ce 55 ec e6 {t} 81 a7")));
        wire.extend(b"message");
        wire.push(0xa3);
        wire.extend(m.as_bytes());
    }
    let c = decode_all_ways(&wire);
    assert_eq!(c[0].mode, Mode::Forward);
    let secs: Vec<i64> = c[0].entries.iter().map(|e| e.time.secs).collect();
    assert_eq!(secs, [1_441_588_984, 1_441_588_985, 1_441_588_986]);
    assert_eq!(field(&c[0], 2, "message"), "baz");
}

#[test]
fn docker_shaped_event_and_golang_ack() {
    let mut wire = hex("94 ab");
    wire.extend(b"docker.3f2a");
    wire.extend(hex("d2 66 32 2e c0 84 ac"));
    wire.extend(b"container_id");
    wire.push(0xa4);
    wire.extend(b"3f2a");
    wire.push(0xae);
    wire.extend(b"container_name");
    wire.push(0xa4);
    wire.extend(b"/web");
    wire.push(0xa6);
    wire.extend(b"source");
    wire.push(0xa6);
    wire.extend(b"stdout");
    wire.push(0xa3);
    wire.extend(b"log");
    wire.push(0xa2);
    wire.extend(b"hi");
    wire.push(0x80);
    let c = decode_all_ways(&wire);
    assert_eq!(c[0].tag, "docker.3f2a");
    assert_eq!(c[0].entries[0].time.secs, 1_714_564_800);
    assert_eq!(field(&c[0], 0, "container_name"), "/web");

    let mut ack = hex("81 a3 61 63 6b b8");
    ack.extend(b"dgxdWAAAAAABAAAAAAAAAA==");
    assert_eq!(
        encode_ack(b"dgxdWAAAAAABAAAAAAAAAA==", Format::MessagePack),
        ack
    );
}

#[test]
fn fluentd_out_forward_shape_str32_entries_and_newline_chunk() {
    // out_forward: PackedForward with entries as str32 and a base64 chunk id
    // ending in "\n", which must be echoed byte for byte.
    let entries = hex("92 ce 6b 04 d3 80 81 a1 6d a1 61");
    let mut wire = hex("93 a1 74 db");
    wire.extend((entries.len() as u32).to_be_bytes());
    wire.extend(&entries);
    wire.extend(hex("83 a4 73 69 7a 65 01 aa"));
    wire.extend(b"compressed");
    wire.push(0xa4);
    wire.extend(b"text");
    wire.push(0xa5);
    wire.extend(b"chunk");
    wire.push(0xb9);
    wire.extend(b"AAAAAAAAAAAAAAAAAAAAAA==\n");
    let c = decode_all_ways(&wire);
    assert_eq!(c[0].mode, Mode::PackedForward);
    assert_eq!(c[0].entries.len(), 1);
    let ack = c[0].ack().unwrap();
    assert!(ack.ends_with(b"==\n"));
    assert_eq!(&ack[..6], &[0x81, 0xa3, b'a', b'c', b'k', 0xb9]);
}

#[test]
fn bin_values_are_kept_as_bytes() {
    // Docker's `log` sent as bin: kept as Binary, rendered as a string.
    let wire = hex("93 a1 74 01 81 a3 6c 6f 67 c4 02 68 69");
    let c = decode_all_ways(&wire);
    let log = get(&c[0].entries[0].record, "log").unwrap();
    assert_eq!(log, &Value::Binary(b"hi".to_vec()));
    assert_eq!(to_json(&c[0].entries[0].record), r#"{"log":"hi"}"#);
}
