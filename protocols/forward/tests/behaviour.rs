//! Times, str/bin, invalid entries, errors with their offsets, caps, JSON
//! connections and the handshake.

use bytes::BytesMut;
use logport_forward::encode::{gzip, TCP_HEARTBEAT};
use logport_forward::handshake::{
    check_pong, decode_helo, encode_ping, encode_pong_failure, password_digest,
    REASON_INVALID_PING, REASON_SHARED_KEY_MISMATCH, REASON_USER_MISMATCH,
};
use logport_forward::rmpv::Value;
use logport_forward::value::to_json;
use logport_forward::{
    encode_compressed_packed_forward, encode_forward, encode_message, encode_message_json,
    encode_packed_forward, Chunk, ClientOptions, DecodeError, Decoder, ErrorKind, EventTime,
    Format, Handshake, HandshakeState, Limits, Mode, PackedAs, Time, User, HEARTBEAT_REPLY,
};

fn limits(max_message: usize) -> Limits {
    Limits {
        max_message,
        ..Limits::default()
    }
}

/// Decodes `wire` byte by byte until the first error; chunks before it too.
fn run(wire: &[u8], limits: Limits) -> (Vec<Chunk>, Option<DecodeError>) {
    let mut dec = Decoder::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for &b in wire {
        buf.extend_from_slice(&[b]);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(c)) => out.push(c),
                Ok(None) => break,
                Err(e) => {
                    // The decoder stays failed.
                    assert_eq!(dec.decode(&mut buf), Err(e.clone()));
                    return (out, Some(e));
                }
            }
        }
    }
    match dec.decode_eof(&mut buf) {
        Ok(c) => {
            out.extend(c);
            (out, None)
        }
        Err(e) => (out, Some(e)),
    }
}

fn ok(wire: &[u8]) -> Vec<Chunk> {
    let (c, e) = run(wire, Limits::default());
    assert_eq!(e, None);
    c
}

fn rec(log: &str) -> Value {
    Value::Map(vec![("log".into(), log.into())])
}

fn message(time: Time) -> Vec<u8> {
    let mut w = Vec::new();
    encode_message(&mut w, "t", time, &rec("x"), None);
    w
}

#[test]
fn time_encodings() {
    let cases = [
        (Time::Int(0), EventTime::new(0, 0)),
        (Time::Int(-5), EventTime::new(-5, 0)),
        (Time::Int(1_714_564_800), EventTime::new(1_714_564_800, 0)),
        (Time::Int(i64::MAX), EventTime::new(i64::MAX, 0)),
        (
            Time::Event(EventTime::new(1_714_564_800, 999_999_999)),
            EventTime::new(1_714_564_800, 999_999_999),
        ),
        (
            Time::Float(1_714_564_800.5),
            EventTime::new(1_714_564_800, 500_000_000),
        ),
        (Time::Float(-1.25), EventTime::new(-2, 750_000_000)),
    ];
    for (t, want) in cases {
        let c = ok(&message(t));
        assert_eq!(c[0].entries[0].time, want, "{t:?}");
    }
    // Every msgpack int width for the same epoch.
    for t in [
        "ce 66 32 2e c0",
        "d2 66 32 2e c0",
        "cf 00 00 00 00 66 32 2e c0",
        "d3 00 00 00 00 66 32 2e c0",
    ] {
        let mut w = vec![0x93, 0xa1, b't'];
        w.extend(t.split(' ').map(|b| u8::from_str_radix(b, 16).unwrap()));
        w.extend([0x80]);
        assert_eq!(ok(&w)[0].entries[0].time.secs, 1_714_564_800);
    }
    // f32 too.
    assert_eq!(
        ok(&[0x93, 0xa1, b't', 0xca, 0x3f, 0xc0, 0, 0, 0x80])[0].entries[0].time,
        EventTime::new(1, 500_000_000)
    );
    assert!(EventTime::new(0, 5).is_zero());
}

#[test]
fn invalid_entries_are_skipped_but_acked() {
    let opts = ClientOptions {
        chunk: Some(b"id".to_vec()),
        size: None,
    };
    // nil time, string time, u64 beyond i64, ext of the wrong type or size, NaN,
    // non-map record: in_forward drops these (skip_invalid_event) and still acks.
    let bad_times = [
        vec![0xc0],
        vec![0xc3],
        vec![0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        vec![0xd7, 0x01, 0, 0, 0, 1, 0, 0, 0, 0],
        vec![0xd6, 0x00, 0, 0, 0, 1],
        vec![0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0],
    ];
    for t in bad_times {
        let mut w = vec![0x94, 0xa1, b't'];
        w.extend(&t);
        w.push(0x80);
        w.extend([0x81, 0xa5]);
        w.extend(b"chunk");
        w.extend([0xa2, b'i', b'd']);
        let c = ok(&w);
        assert_eq!((c[0].entries.len(), c[0].skipped), (0, 1), "{t:x?}");
        assert_eq!(
            c[0].options.chunk.as_deref(),
            Some(&b"id"[..]),
            "{t:x?} {:?}",
            c[0]
        );
        assert!(c[0].ack().is_some());
    }
    let mut w = Vec::new();
    encode_message(
        &mut w,
        "t",
        Time::Int(1),
        &Value::from("not a map"),
        Some(&opts),
    );
    assert_eq!(ok(&w)[0].skipped, 1);

    // Forward: non-array entry, short entry, string record, Fluent Bit [time, meta].
    let entries = Value::Array(vec![
        Value::from(1),
        Value::Array(vec![Value::from(1)]),
        Value::Array(vec![Value::from(1), Value::from("x")]),
        Value::Array(vec![
            Value::Array(vec![Value::from(7), Value::Map(vec![])]),
            rec("ok"),
        ]),
    ]);
    let w = [vec![0x92, 0xa1, b't'], {
        let mut v = Vec::new();
        logport_forward::rmpv::encode::write_value(&mut v, &entries).unwrap();
        v
    }]
    .concat();
    let c = ok(&w);
    assert_eq!(
        (c[0].mode, c[0].entries.len(), c[0].skipped),
        (Mode::Forward, 1, 3)
    );
    assert_eq!(c[0].entries[0].time.secs, 7);
}

#[test]
fn tags_and_entries_str_or_bin() {
    let entries = vec![
        (Time::Int(1), rec("a")),
        (Time::Event(EventTime::new(2, 3)), rec("b")),
    ];
    for as_ in [PackedAs::Bin, PackedAs::Str] {
        let mut w = Vec::new();
        encode_packed_forward(&mut w, "tag", &entries, None, as_);
        let c = ok(&w);
        assert_eq!(c[0].entries.len(), 2);
        assert_eq!(c[0].entries[1].time, EventTime::new(2, 3));
        // Same message with a bin tag.
        w[1] = 0xc4;
        w.splice(2..2, [3u8]);
        let c = ok(&w);
        assert_eq!(c[0].tag, "tag");
    }
}

#[test]
fn several_gzip_members_and_text_compression() {
    let entries: Vec<(Time, Value)> = (0..10)
        .map(|i| (Time::Int(i), rec(&i.to_string())))
        .collect();
    for members in [1, 2, 3, 10, 12] {
        let mut w = Vec::new();
        let opts = ClientOptions {
            chunk: Some(b"c".to_vec()),
            size: Some(10),
        };
        encode_compressed_packed_forward(&mut w, "t", &entries, &opts, members);
        let c = ok(&w);
        assert_eq!(c[0].mode, Mode::CompressedPackedForward);
        let secs: Vec<i64> = c[0].entries.iter().map(|e| e.time.secs).collect();
        assert_eq!(secs, (0..10).collect::<Vec<_>>(), "{members} members");
    }
}

#[test]
fn errors_and_their_offsets() {
    let good = message(Time::Int(1));
    let g = good.len() as u64;
    let with_prefix = |bad: &[u8]| [good.clone(), bad.to_vec()].concat();
    let cases: Vec<(Vec<u8>, u64, ErrorKind)> = vec![
        // A map where a message array belongs.
        (
            with_prefix(&[0x81, 0xa1, b'a', 1]),
            g,
            ErrorKind::NotAnArray { found: 0x81 },
        ),
        // 0xc1 inside a record.
        (
            with_prefix(&[0x93, 0xa1, b't', 1, 0x81, 0xa1, b'a', 0xc1]),
            g + 7,
            ErrorKind::InvalidMarker(0xc1),
        ),
        // Arity.
        (with_prefix(&[0x91, 0xa1, b't']), g, ErrorKind::BadArity(1)),
        (
            with_prefix(&[0x95, 0xa1, b't', 1, 0x80, 0x80, 0x80]),
            g,
            ErrorKind::BadArity(5),
        ),
        (
            with_prefix(&[0x92, 0xa1, b't', 1]),
            g,
            ErrorKind::BadArity(2),
        ),
        // Tag not a string.
        (with_prefix(&[0x93, 0x01, 1, 0x80]), g, ErrorKind::BadTag),
        // zstd / unknown compression.
        (
            with_prefix(&[
                0x93, 0xa1, b't', 0xc4, 0, 0x81, 0xaa, b'c', b'o', b'm', b'p', b'r', b'e', b's',
                b's', b'e', b'd', 0xa4, b'z', b's', b't', b'd',
            ]),
            g,
            ErrorKind::UnsupportedCompression("zstd".into()),
        ),
        // Packed entries cut short inside the second entry.
        (
            with_prefix(&[0x92, 0xa1, b't', 0xc4, 6, 0x92, 1, 0x80, 0x92, 2, 0x81]),
            g,
            ErrorKind::BadPackedEntries {
                at: 3,
                reason: "truncated value".into(),
            },
        ),
        // Stream ends mid-message.
        (
            with_prefix(&[0x93, 0xa1]),
            g,
            ErrorKind::Truncated { buffered: 2 },
        ),
    ];
    for (wire, offset, kind) in cases {
        let (chunks, e) = run(&wire, Limits::default());
        assert_eq!(chunks.len(), 1, "{kind:?}");
        let e = e.expect("an error");
        assert_eq!((e.offset, &e.kind), (offset, &kind));
        assert!(
            e.to_string().contains(&format!("stream offset {offset}")),
            "{e}"
        );
    }
    // Corrupt gzip.
    let mut w = vec![0x93, 0xa1, b't', 0xc4, 4, 0x1f, 0x8b, 0, 0];
    w.extend([0x81, 0xaa]);
    w.extend(b"compressed");
    w.extend([0xa4]);
    w.extend(b"gzip");
    let (_, e) = run(&w, Limits::default());
    assert!(matches!(e.unwrap().kind, ErrorKind::Gzip(_)));
}

#[test]
fn message_size_cap_is_enforced_before_buffering() {
    // An array32 header announcing 4 billion elements: refused at its 5th byte.
    let mut dec = Decoder::new(limits(1 << 20));
    let mut buf = BytesMut::from(&[0xdd, 0xff, 0xff, 0xff][..]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    buf.extend_from_slice(&[0xff]);
    let e = dec.decode(&mut buf).unwrap_err();
    assert_eq!(
        (e.offset, e.kind),
        (0, ErrorKind::TooLarge { max: 1 << 20 })
    );

    // A bin32 entries header announcing 1 GiB: refused at once, offset of the header.
    let (_, e) = run(&[0x92, 0xa1, b't', 0xc6, 0x40, 0, 0, 0], limits(1 << 20));
    assert_eq!(
        e.unwrap(),
        DecodeError {
            offset: 3,
            kind: ErrorKind::TooLarge { max: 1 << 20 }
        }
    );

    // Many small items: the buffered prefix crosses the cap.
    let mut w = vec![0x93, 0xa1, b't', 1, 0xde, 0xff, 0xff];
    w.extend(std::iter::repeat_n(1u8, 4000));
    let (_, e) = run(&w, limits(1000));
    assert!(matches!(e.unwrap().kind, ErrorKind::TooLarge { max: 1000 }));

    // Exactly at the cap is fine.
    let m = message(Time::Int(1));
    let (c, e) = run(&m, limits(m.len()));
    assert_eq!((c.len(), e), (1, None));
    let (_, e) = run(&m, limits(m.len() - 1));
    assert!(matches!(e.unwrap().kind, ErrorKind::TooLarge { .. }));
}

#[test]
fn depth_cap() {
    let nest = |n: usize| {
        let mut v = rec("x");
        for _ in 0..n {
            v = Value::Array(vec![v]);
        }
        Value::Map(vec![("a".into(), v)])
    };
    let lim = Limits {
        max_depth: 8,
        ..Limits::default()
    };
    let mut w = Vec::new();
    encode_message(&mut w, "t", Time::Int(1), &nest(6), None);
    assert_eq!(run(&w, lim).1, None);
    let mut w = Vec::new();
    encode_message(&mut w, "t", Time::Int(1), &nest(20), None);
    assert!(matches!(
        run(&w, lim).1.unwrap().kind,
        ErrorKind::TooDeep { max: 8 }
    ));
    // Same inside packed entries.
    let mut w = Vec::new();
    encode_packed_forward(
        &mut w,
        "t",
        &[(Time::Int(1), nest(20))],
        None,
        PackedAs::Bin,
    );
    assert!(matches!(
        run(&w, lim).1.unwrap().kind,
        ErrorKind::TooDeep { max: 8 }
    ));
}

#[test]
fn decompressed_cap() {
    let plain: Vec<u8> = std::iter::repeat_n([0x92u8, 0x01, 0x80], 100_000)
        .flatten()
        .collect();
    let mut w = vec![0x93, 0xa1, b't', 0xc6];
    let gz = gzip(&plain);
    w.extend((gz.len() as u32).to_be_bytes());
    w.extend(&gz);
    w.extend([0x81, 0xaa]);
    w.extend(b"compressed");
    w.push(0xa4);
    w.extend(b"gzip");
    let lim = |max_decompressed| Limits {
        max_decompressed,
        ..Limits::default()
    };
    let (c, e) = run(&w, lim(plain.len()));
    assert_eq!((c[0].entries.len(), e), (100_000, None));
    let (_, e) = run(&w, lim(plain.len() - 1));
    assert_eq!(
        e.unwrap().kind,
        ErrorKind::DecompressedTooLarge {
            max: plain.len() - 1
        }
    );
}

#[test]
fn json_connections() {
    let mut wire = Vec::new();
    let opts = ClientOptions {
        chunk: Some(b"abc".to_vec()),
        size: None,
    };
    encode_message_json(
        &mut wire,
        "tag",
        Time::Int(1_267_867_237),
        &rec("he said \"]\""),
        Some(&opts),
    );
    wire.extend(b"\r\n  ");
    encode_message_json(
        &mut wire,
        "tag",
        Time::Event(EventTime::new(5, 500_000_000)),
        &rec("b"),
        None,
    );
    wire.push(b'\n');
    // Forward mode in JSON too.
    wire.extend(br#"["tag",[[1,{"k":[1,2,{"n":null}]}],[2,{"k":true}]]]"#);
    let c = ok(&wire);
    assert_eq!(c.len(), 3);
    assert!(c.iter().all(|c| c.format == Format::Json));
    assert_eq!(
        to_json(&c[0].entries[0].record),
        r#"{"log":"he said \"]\""}"#
    );
    assert_eq!(c[0].entries[0].time.secs, 1_267_867_237);
    assert_eq!(c[0].ack().unwrap(), br#"{"ack":"abc"}"#);
    assert_eq!(c[1].entries[0].time, EventTime::new(5, 500_000_000));
    assert_eq!(c[2].mode, Mode::Forward);
    assert_eq!(
        to_json(&c[2].entries[0].record),
        r#"{"k":[1,2,{"n":null}]}"#
    );

    // The fluent-logger MarshalAsJSON shape.
    let c = ok(br#"["tag",1267867237,{"foo":"bar"},{}]"#);
    assert_eq!(c[0].entries[0].time.secs, 1_267_867_237);

    // A JSON object message, and broken JSON.
    let (_, e) = run(br#"{"a":1}"#, Limits::default());
    assert_eq!(e.unwrap().kind, ErrorKind::NotAnArray { found: b'{' });
    let (_, e) = run(br#"["t",1,{"a":}]"#, Limits::default());
    assert!(matches!(e.unwrap().kind, ErrorKind::InvalidJson(_)));
    let (_, e) = run(br#"["t",1,{"a":1}] x"#, Limits::default());
    assert_eq!(
        e.unwrap(),
        DecodeError {
            offset: 16,
            kind: ErrorKind::NotAnArray { found: b'x' }
        }
    );
    let (_, e) = run(br#"["t",1,{"a":1"#, Limits::default());
    assert!(matches!(e.unwrap().kind, ErrorKind::Truncated { .. }));
    let (_, e) = run(br#"["t",1,{"a":"0123456789"}]"#, limits(20));
    assert!(matches!(e.unwrap().kind, ErrorKind::TooLarge { max: 20 }));
}

#[test]
fn heartbeats() {
    assert_eq!(HEARTBEAT_REPLY, b"\0");
    let mut w = TCP_HEARTBEAT.repeat(3);
    w.extend(message(Time::Int(1)));
    w.extend(TCP_HEARTBEAT);
    assert_eq!(ok(&w).len(), 1);
}

#[test]
fn raw_messages_for_the_handshake() {
    let mut w = Vec::new();
    encode_forward(&mut w, "t", &[(Time::Int(1), rec("x"))], None);
    let mut dec = Decoder::new(Limits::default());
    let mut buf = BytesMut::from(&w[..]);
    let raw = dec.decode_raw(&mut buf).unwrap().unwrap();
    assert_eq!(
        (&raw.bytes[..], raw.format, raw.offset),
        (&w[..], Format::MessagePack, 0)
    );
    assert!(buf.is_empty());
}

const NONCE: [u8; 16] = [7; 16];
const AUTH_SALT: [u8; 16] = [9; 16];

fn server(users: Vec<User>) -> Handshake {
    Handshake::new(b"gateway-1", b"secret", users, &NONCE, &AUTH_SALT)
}

/// Runs the exchange; the client checks the PONG when it is a success.
fn exchange(
    server: &mut Handshake,
    key: &[u8],
    user: Option<(&[u8], &[u8])>,
) -> logport_forward::Pong {
    let helo = decode_helo(&server.helo()).unwrap();
    assert_eq!(
        (helo.nonce.as_slice(), helo.auth.as_slice(), helo.keepalive),
        (&NONCE[..], &AUTH_SALT[..], true)
    );
    let ping = encode_ping(
        b"client-1",
        b"salt0123",
        key,
        &helo,
        user.or(Some((b"", b""))),
    )
    .unwrap();
    // The gateway cuts the PING off the stream like any message.
    let mut dec = Decoder::new(Limits::default());
    let raw = dec
        .decode_raw(&mut BytesMut::from(&ping[..]))
        .unwrap()
        .unwrap();
    let pong = server.on_ping(&raw.bytes);
    if pong.ok {
        let host = check_pong(&pong.reply, b"client-1", b"salt0123", key, &NONCE).unwrap();
        assert_eq!(host, b"gateway-1");
    } else {
        let e = check_pong(&pong.reply, b"client-1", b"salt0123", key, &NONCE).unwrap_err();
        assert_eq!(e.0, format!("authentication failed: {}", pong.reason));
    }
    pong
}

#[test]
fn handshake_success_and_failures() {
    let mut s = server(vec![]);
    let p = exchange(&mut s, b"secret", None);
    assert!(p.ok && s.state() == HandshakeState::Established);
    assert_eq!(p.client_hostname.as_deref(), Some(&b"client-1"[..]));
    // A second PING is refused.
    assert!(!s.on_ping(&[0x90]).ok);

    let mut s = server(vec![]);
    let p = exchange(&mut s, b"wrong", None);
    assert_eq!(
        (p.ok, p.reason.as_str()),
        (false, REASON_SHARED_KEY_MISMATCH)
    );
    assert_eq!(p.reply, encode_pong_failure(REASON_SHARED_KEY_MISMATCH));
    assert_eq!(s.state(), HandshakeState::Failed);

    let users = || {
        vec![User {
            username: b"alice".to_vec(),
            password: b"pw".to_vec(),
        }]
    };
    let mut s = server(users());
    assert!(exchange(&mut s, b"secret", Some((b"alice", b"pw"))).ok);
    let mut s = server(users());
    let p = exchange(&mut s, b"secret", Some((b"alice", b"nope")));
    assert_eq!((p.ok, p.reason.as_str()), (false, REASON_USER_MISMATCH));
    let mut s = server(users());
    let p = exchange(&mut s, b"secret", Some((b"mallory", b"pw")));
    assert_eq!((p.ok, p.reason.as_str()), (false, REASON_USER_MISMATCH));

    // Not a PING.
    for bad in [
        &[0x95u8, 0xa4, b'P', b'I', b'N', b'G', 1, 2, 3, 4][..],
        &[0xc1],
        &[
            0x96, 0xa4, b'P', b'O', b'N', b'G', 0xa0, 0xa0, 0xa0, 0xa0, 0xa0,
        ],
    ] {
        let p = server(vec![]).on_ping(bad);
        assert_eq!((p.ok, p.reason.as_str()), (false, REASON_INVALID_PING));
    }
}

#[test]
fn handshake_fields_are_raw_bytes() {
    // Fluent Bit's shared-key salt: 16 random bytes in a msgpack str, not UTF-8.
    let salt = [0xffu8, 0xfe, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
    let mut s = server(vec![]);
    let helo = decode_helo(&s.helo()).unwrap();
    let ping = encode_ping(b"fb-1", &salt, b"secret", &helo, Some((b"", b""))).unwrap();
    let p = s.on_ping(&ping);
    assert!(p.ok);
    check_pong(&p.reply, b"fb-1", &salt, b"secret", &NONCE).unwrap();
    // Client-side checks of out_forward.
    assert_eq!(
        check_pong(&p.reply, b"gateway-1", &salt, b"secret", &NONCE)
            .unwrap_err()
            .0,
        "same hostname between input and output: invalid configuration"
    );
    assert_eq!(
        check_pong(&p.reply, b"fb-1", &salt, b"other", &NONCE)
            .unwrap_err()
            .0,
        "shared key mismatch"
    );
    // A client without credentials facing a HELO with an auth salt.
    assert!(encode_ping(b"c", b"s", b"k", &helo, None).is_err());
    assert_eq!(password_digest(b"", b"", b"").len(), 128);
}

#[test]
fn in_frame_is_true_exactly_inside_a_message() {
    let mut wire = Vec::new();
    encode_message(&mut wire, "app", Time::Int(1), &rec("hello"), None);
    let mut dec = Decoder::new(Limits::default());
    let mut buf = BytesMut::new();
    assert!(!dec.in_frame(&buf));
    for (i, &b) in wire.iter().enumerate() {
        buf.extend_from_slice(&[b]);
        while dec.decode(&mut buf).unwrap().is_some() {}
        assert_eq!(dec.in_frame(&buf), i + 1 < wire.len(), "byte {i}");
    }
    // JSON: whitespace between messages is no message.
    let mut dec = Decoder::new(Limits::default());
    let mut buf = BytesMut::from(&br#"["app",1,{"log":"x"}]"#[..]);
    assert!(dec.decode(&mut buf).unwrap().is_some());
    buf.extend_from_slice(b"\n ");
    assert!(dec.decode(&mut buf).unwrap().is_none());
    assert!(!dec.in_frame(&buf));
    buf.extend_from_slice(b"[\"ap");
    assert!(dec.decode(&mut buf).unwrap().is_none());
    assert!(dec.in_frame(&buf));
}
