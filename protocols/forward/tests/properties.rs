//! Property tests: every mode round-trips through the encoders and the decoder
//! whatever the read boundaries, and no input makes the decoder panic or buffer
//! past its cap.

use bytes::BytesMut;
use logport_forward::rmpv::Value;
use logport_forward::{
    encode_compressed_packed_forward, encode_forward, encode_message, encode_message_json,
    encode_packed_forward, Chunk, ClientOptions, Decoder, EventTime, Limits, Mode, PackedAs, Time,
};
use proptest::prelude::*;

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

fn key() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-z_]{1,12}".prop_map(Value::from),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::Binary),
    ]
}

fn leaf(json: bool) -> BoxedStrategy<Value> {
    let common = prop_oneof![
        ".{0,40}".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Nil),
    ];
    if json {
        common.boxed()
    } else {
        prop_oneof![
            common,
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(Value::Binary),
            any::<f64>()
                .prop_filter("NaN never equals itself", |f| !f.is_nan())
                .prop_map(Value::F64),
            (any::<i8>(), proptest::collection::vec(any::<u8>(), 0..10))
                .prop_map(|(t, d)| Value::Ext(t, d)),
        ]
        .boxed()
    }
}

fn record(json: bool) -> impl Strategy<Value = Value> {
    let value = leaf(json).prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(("[a-z]{1,6}".prop_map(Value::from), inner), 0..4)
                .prop_map(Value::Map),
        ]
    });
    let k = if json {
        "[a-z_]{1,12}".prop_map(Value::from).boxed()
    } else {
        key().boxed()
    };
    proptest::collection::vec((k, value), 0..6).prop_map(Value::Map)
}

fn time() -> impl Strategy<Value = Time> {
    prop_oneof![
        any::<i64>().prop_map(Time::Int),
        (any::<u32>(), 0u32..1_000_000_000)
            .prop_map(|(s, n)| Time::Event(EventTime::new(i64::from(s), n))),
        // Halves are exact in binary.
        (-1_000_000_000i64..4_000_000_000, any::<bool>())
            .prop_map(|(s, h)| Time::Float(s as f64 + if h { 0.5 } else { 0.0 })),
    ]
}

fn expected(t: Time) -> EventTime {
    match t {
        Time::Int(s) => EventTime::new(s, 0),
        Time::Event(e) => e,
        Time::Float(f) => EventTime::new(
            f.floor() as i64,
            if f.fract() != 0.0 { 500_000_000 } else { 0 },
        ),
    }
}

fn options() -> impl Strategy<Value = Option<ClientOptions>> {
    proptest::option::of(
        (
            proptest::option::of(proptest::collection::vec(any::<u8>(), 1..30)),
            proptest::option::of(any::<u64>()),
        )
            .prop_map(|(chunk, size)| ClientOptions { chunk, size }),
    )
}

/// Decodes `wire` cut at `cuts` (sorted positions).
fn decode_split(wire: &[u8], cuts: &[usize]) -> Vec<Chunk> {
    let mut dec = Decoder::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut at = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.push(wire.len());
    for c in cuts {
        buf.extend_from_slice(&wire[at..c]);
        at = c;
        while let Some(chunk) = dec.decode(&mut buf).expect("valid stream") {
            out.push(chunk);
        }
    }
    assert_eq!(dec.decode_eof(&mut buf).expect("clean end"), None);
    out
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Message,
    Forward,
    PackedBin,
    PackedStr,
    Compressed(usize),
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Message),
        Just(Shape::Forward),
        Just(Shape::PackedBin),
        Just(Shape::PackedStr),
        (1usize..4).prop_map(Shape::Compressed),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn every_mode_round_trips_at_any_split(
        msgs in proptest::collection::vec(
            (shape(), "[a-z.]{1,20}", proptest::collection::vec((time(), record(false)), 1..6), options()),
            1..4,
        ),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut wire = Vec::new();
        for (shape, tag, entries, opts) in &msgs {
            match shape {
                Shape::Message => encode_message(&mut wire, tag, entries[0].0, &entries[0].1, opts.as_ref()),
                Shape::Forward => encode_forward(&mut wire, tag, entries, opts.as_ref()),
                Shape::PackedBin => encode_packed_forward(&mut wire, tag, entries, opts.as_ref(), PackedAs::Bin),
                Shape::PackedStr => encode_packed_forward(&mut wire, tag, entries, opts.as_ref(), PackedAs::Str),
                Shape::Compressed(m) => encode_compressed_packed_forward(&mut wire, tag, entries, &opts.clone().unwrap_or_default(), *m),
            }
        }
        let chunks = decode_split(&wire, &cuts);
        prop_assert_eq!(chunks.len(), msgs.len());
        for (c, (shape, tag, entries, opts)) in chunks.iter().zip(&msgs) {
            let mode = match shape {
                Shape::Message => Mode::Message,
                Shape::Forward => Mode::Forward,
                Shape::PackedBin | Shape::PackedStr => Mode::PackedForward,
                Shape::Compressed(_) => Mode::CompressedPackedForward,
            };
            prop_assert_eq!(c.mode, mode);
            prop_assert_eq!(&c.tag, tag);
            prop_assert_eq!(c.skipped, 0);
            let want: &[(Time, Value)] = if matches!(shape, Shape::Message) { &entries[..1] } else { entries };
            prop_assert_eq!(c.entries.len(), want.len());
            for (e, (t, r)) in c.entries.iter().zip(want) {
                prop_assert_eq!(e.time, expected(*t));
                prop_assert_eq!(&e.record, r);
            }
            let o = opts.clone().unwrap_or_default();
            prop_assert_eq!(&c.options.chunk, &o.chunk);
            prop_assert_eq!(c.options.size, o.size);
        }
    }

    #[test]
    fn json_messages_round_trip_at_any_split(
        msgs in proptest::collection::vec(("[a-z.]{1,20}", time(), record(true), options()), 1..4),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut wire = Vec::new();
        for (tag, t, r, o) in &msgs {
            encode_message_json(&mut wire, tag, *t, r, o.as_ref());
            wire.push(b'\n');
        }
        let chunks = decode_split(&wire, &cuts);
        prop_assert_eq!(chunks.len(), msgs.len());
        for (c, (tag, t, r, _)) in chunks.iter().zip(&msgs) {
            prop_assert_eq!(&c.tag, tag);
            // JSON has no EventTime: sub-second times travel as floats.
            let want = expected(*t);
            prop_assert_eq!(c.entries[0].time.secs, want.secs);
            prop_assert!(c.entries[0].time.nanos.abs_diff(want.nanos) < 1_000);
            prop_assert_eq!(&c.entries[0].record, r);
        }
    }
}

/// Valid messages of every shape, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let r = Value::Map(vec![
        ("log".into(), "hello".into()),
        ("n".into(), Value::Array(vec![1.into()])),
    ]);
    let e = vec![
        (Time::Int(1), r.clone()),
        (Time::Event(EventTime::new(2, 3)), r.clone()),
    ];
    let o = ClientOptions {
        chunk: Some(b"c".to_vec()),
        size: Some(2),
    };
    let mut out = Vec::new();
    let mut w = Vec::new();
    encode_message(&mut w, "t", Time::Int(1), &r, Some(&o));
    out.push(std::mem::take(&mut w));
    encode_forward(&mut w, "t", &e, Some(&o));
    out.push(std::mem::take(&mut w));
    encode_packed_forward(&mut w, "t", &e, None, PackedAs::Str);
    out.push(std::mem::take(&mut w));
    encode_compressed_packed_forward(&mut w, "t", &e, &o, 2);
    out.push(std::mem::take(&mut w));
    encode_message_json(&mut w, "t", Time::Int(1), &r, Some(&o));
    out.push(w);
    out
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn mutated_input_never_panics_nor_overbuffers(
        seed in 0usize..5,
        muts in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6),
        read in 1usize..16,
    ) {
        let mut v = seeds()[seed].clone();
        v.extend(seeds()[seed].clone());
        for (i, b, op) in muts {
            let len = v.len();
            match op {
                0 if len > 0 => v[i % len] = b,
                1 => v.insert(i % (len + 1), b),
                _ if len > 0 => { v.remove(i % len); }
                _ => {}
            }
        }
        let max = 64;
        let mut dec = Decoder::new(Limits { max_message: max, max_decompressed: 256, max_depth: 4, max_decoded: 1 << 20 });
        let mut buf = BytesMut::new();
        'feed: for piece in v.chunks(read) {
            buf.extend_from_slice(piece);
            loop {
                match dec.decode(&mut buf) {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        prop_assert!(buf.len() <= max, "{} bytes buffered", buf.len());
                        break;
                    }
                    Err(_) => break 'feed,
                }
            }
        }
        let _ = dec.decode_eof(&mut buf);
    }
}
