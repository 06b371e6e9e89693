//! Property tests: message → JSON → compression → chunks → shuffled,
//! duplicated datagrams → reassembly → decoding gives the message back; TCP
//! framing under random splits; no panic and bounded memory on any input.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use logport_gelf::{
    compress, decode_payload, encode_datagrams, frame_tcp, Encoding, FrameDecoder, Message,
    Outcome, Reassembler, ReassemblerConfig,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// `PROPTEST_CASES` in the environment overrides the default case count.
fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ./:_-]{0,40}",
        any::<String>(),
        // Long enough to need several chunks once compressed.
        proptest::collection::vec(any::<char>(), 0..3000).prop_map(|v| v.into_iter().collect()),
    ]
}

/// Floats with a few decimals, as clients send them (their shortest text
/// parses back to the same f64).
fn decimal() -> impl Strategy<Value = f64> {
    (-10_000_000_000_000i64..10_000_000_000_000, 0u32..7)
        .prop_map(|(n, d)| n as f64 / 10f64.powi(d as i32))
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        decimal().prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::vec(("[a-z]{1,5}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn fields(prefix: &'static str) -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::vec(("[a-z_@.]{1,12}", value()), 0..6).prop_map(move |kv| {
        kv.into_iter()
            .map(|(k, v)| (format!("{prefix}{k}"), v))
            .collect()
    })
}

fn message() -> impl Strategy<Value = Message> {
    (
        (
            proptest::option::of(prop_oneof![Just("1.1".to_string()), Just("1.0".into())]),
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(decimal()),
            proptest::option::of(0i64..8),
        ),
        (
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(any::<i64>()),
            fields("_"),
            // Non-standard keys outside the spec: an `x` prefix keeps them clear
            // of the standard names.
            fields("x"),
        ),
    )
        .prop_map(
            |(
                (version, host, short, full, timestamp, level),
                (facility, file, line, additional, other),
            )| {
                Message {
                    version,
                    host,
                    short_message: short,
                    full_message: full,
                    timestamp,
                    level,
                    facility,
                    file,
                    line,
                    additional,
                    other,
                }
            },
        )
}

fn encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![
        Just(Encoding::Plain),
        Just(Encoding::Zlib),
        Just(Encoding::Gzip)
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn udp_round_trip(
        m in message(),
        enc in encoding(),
        level in 0u32..10,
        chunk_size in 13usize..2000,
        id in any::<u64>(),
        // Permutation keys and which datagrams to send twice.
        order in proptest::collection::vec(any::<u32>(), 128),
        dups in proptest::collection::vec(any::<bool>(), 128),
    ) {
        let payload = compress(&m.to_json(), enc, level);
        let Ok(datagrams) = encode_datagrams(&payload, id, chunk_size) else {
            // More than 128 chunks: refused by the encoder, nothing to test.
            return Ok(());
        };
        let mut sent: Vec<(u32, Bytes)> = Vec::new();
        for (i, d) in datagrams.iter().enumerate() {
            sent.push((order[i], d.clone()));
            if dups[i] {
                sent.push((order[127 - i], d.clone()));
            }
        }
        sent.sort_by_key(|(k, _)| *k);
        let mut r = Reassembler::default();
        let t = Instant::now();
        let mut complete = Vec::new();
        for (i, (_, d)) in sent.into_iter().enumerate() {
            match r.push(d, t + Duration::from_millis(i as u64)).unwrap() {
                Outcome::Complete(p) => complete.push(p),
                Outcome::Incomplete | Outcome::Duplicate => {}
            }
        }
        // Duplicates arriving after completion start a new partial (which
        // expires), or a second copy when every chunk was sent twice: the
        // protocol cannot tell a late duplicate from a resent message.
        let twice = dups[..datagrams.len()].iter().all(|&d| d);
        prop_assert!(complete.len() == 1 || (twice && complete.len() == 2));
        prop_assert!(complete.iter().all(|p| p[..] == payload[..]));
        let back = decode_payload(&complete[0], 16 << 20).unwrap();
        prop_assert_eq!(back, m);
    }

    #[test]
    fn tcp_round_trip(msgs in proptest::collection::vec(message(), 1..5), cuts in proptest::collection::vec(any::<usize>(), 0..12)) {
        let mut wire = BytesMut::new();
        for m in &msgs {
            frame_tcp(&m.to_json(), &mut wire);
        }
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (wire.len() + 1)).collect();
        cuts.push(wire.len());
        cuts.sort_unstable();
        let mut dec = FrameDecoder::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut at = 0;
        for c in cuts {
            buf.extend_from_slice(&wire[at..c]);
            at = c;
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                got.push(decode_payload(&f.bytes, 1 << 20).unwrap());
            }
        }
        prop_assert_eq!(dec.decode_eof(&mut buf).unwrap(), None);
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn decode_payload_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512), max in 0usize..4096) {
        let _ = decode_payload(&bytes, max);
        // With a valid magic in front, the inflaters see garbage too.
        for magic in [&[0x78u8, 0x9c][..], &[0x1f, 0x8b, 8, 0][..]] {
            let mut b = magic.to_vec();
            b.extend_from_slice(&bytes);
            let _ = decode_payload(&b, max);
        }
    }

    #[test]
    fn reassembler_stays_within_caps(
        ops in proptest::collection::vec((0u64..16, 0u8..6, 1u8..6, 0usize..300, 0u64..3000), 1..400),
        max_bytes in 0usize..4000,
        max_messages in 0usize..8,
    ) {
        let mut r: Reassembler<u8> = Reassembler::new(ReassemblerConfig {
            timeout: Duration::from_secs(1),
            max_bytes,
            max_messages,
        });
        let t0 = Instant::now();
        let mut now = t0;
        for (id, seq, count, len, step) in ops {
            now += Duration::from_millis(step);
            let d = logport_gelf::chunk(id, seq, count, &vec![7u8; len]);
            let _ = r.push_from((id % 2) as u8, d, now);
            prop_assert!(r.pending_bytes() <= max_bytes);
            prop_assert!(r.pending_messages() <= max_messages.max(1));
        }
        r.expire(now + Duration::from_secs(1));
        prop_assert_eq!((r.pending_messages(), r.pending_bytes()), (0, 0));
    }

    #[test]
    fn frame_decoder_bounded_on_any_stream(
        bytes in proptest::collection::vec(prop_oneof![Just(0u8), Just(b'\n'), any::<u8>()], 0..2000),
        read in 1usize..100,
        max in 0usize..64,
    ) {
        let mut dec = FrameDecoder::new(max);
        let mut buf = BytesMut::new();
        let mut total = 0u64;
        for piece in bytes.chunks(read) {
            buf.extend_from_slice(piece);
            loop {
                match dec.decode(&mut buf) {
                    Ok(Some(f)) => {
                        prop_assert!(f.bytes.len() <= max);
                        prop_assert!(!f.bytes.contains(&0));
                        total += 1;
                    }
                    Ok(None) => break,
                    Err(e) => prop_assert!(e.offset() < bytes.len() as u64),
                }
            }
            prop_assert!(buf.len() <= max + read);
        }
        let _ = dec.decode_eof(&mut buf);
        prop_assert!(total <= bytes.len() as u64);
    }
}
