//! Property tests: encode → split anywhere → decode round trips, acks that
//! follow the last seq, and no panic or unbounded buffering on mangled input.

mod common;

use bytes::{Bytes, BytesMut};
use common::run;
use logport_lumberjack::{encode_batch, Decoder, Limits, Payload, Record, Version, WindowTracker};
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

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![Just(Version::V1), Just(Version::V2)]
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 1..200).prop_map(|v| Payload::Json(v.into())),
        prop::collection::vec((bytes(16), bytes(40)), 1..6).prop_map(Payload::Pairs),
    ]
}

#[derive(Debug, Clone)]
struct Window {
    version: Version,
    first_seq: u32,
    events: Vec<Payload>,
    level: Option<u32>,
}

fn window() -> impl Strategy<Value = Window> {
    (
        version(),
        prop_oneof![Just(1u32), any::<u32>()],
        prop::collection::vec(payload(), 1..12),
        prop_oneof![Just(None), (0u32..=9).prop_map(Some)],
    )
        .prop_map(|(version, first_seq, events, level)| Window {
            version,
            first_seq,
            events,
            level,
        })
}

fn expected(windows: &[Window]) -> Vec<Record> {
    let mut out = Vec::new();
    for w in windows {
        out.push(Record::Window {
            version: w.version,
            size: w.events.len() as u32,
        });
        for (i, p) in w.events.iter().enumerate() {
            out.push(Record::Event {
                version: w.version,
                seq: w.first_seq.wrapping_add(i as u32),
                payload: p.clone(),
            });
        }
    }
    out
}

/// Cuts `wire` at the given points (taken modulo its length).
fn split<'a>(wire: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    points.push(0);
    points.push(wire.len());
    points.sort_unstable();
    points.windows(2).map(|w| &wire[w[0]..w[1]]).collect()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn round_trip(
        windows in prop::collection::vec(window(), 1..5),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let mut wire = BytesMut::new();
        for w in &windows {
            encode_batch(w.version, w.first_seq, &w.events, w.level, &mut wire);
        }
        let (records, err) = run(Limits::default(), &split(&wire, &cuts));
        prop_assert_eq!(err, None);
        prop_assert_eq!(&records, &expected(&windows));

        // The tracker acks each window with its last seq, in its version.
        let mut t = WindowTracker::new(10_000);
        let mut acks = Vec::new();
        for r in &records {
            if let Some(done) = t.on_record(r).unwrap() {
                t.commit(done.id).unwrap();
                acks.extend(std::iter::from_fn(|| t.next_ack()));
            }
        }
        let want: Vec<(Version, u32)> = windows
            .iter()
            .map(|w| (w.version, w.first_seq.wrapping_add(w.events.len() as u32 - 1)))
            .collect();
        let got: Vec<(Version, u32)> = acks.iter().map(|a| (a.version, a.seq)).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn one_byte_at_a_time_equals_whole(w in window()) {
        let mut wire = BytesMut::new();
        encode_batch(w.version, w.first_seq, &w.events, w.level, &mut wire);
        let whole = run(Limits::default(), &[&wire]);
        let bytewise = run(Limits::default(), &wire.chunks(1).collect::<Vec<_>>());
        prop_assert_eq!(whole, bytewise);
    }

    #[test]
    fn mangled_input_never_panics_and_buffers_little(
        w in window(),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut wire = BytesMut::new();
        encode_batch(w.version, w.first_seq, &w.events, w.level, &mut wire);
        let mut wire = wire.to_vec();
        for (i, b) in flips {
            let n = wire.len();
            wire[i % n] = b;
        }
        let limits = Limits { max_payload: 512, max_inflated: 4096, max_pairs: 16 };
        let mut dec = Decoder::new(limits);
        let mut buf = BytesMut::new();
        'feed: for chunk in split(&wire, &cuts) {
            buf.extend_from_slice(chunk);
            loop {
                match dec.decode(&mut buf) {
                    Ok(Some(_)) => {}
                    // Waiting for more: never more than one frame's worth held.
                    Ok(None) => {
                        prop_assert!(buf.len() <= 10 + limits.max_payload, "{}", buf.len());
                        break;
                    }
                    Err(e) => {
                        prop_assert!(e.to_string().starts_with("lumberjack: "));
                        break 'feed;
                    }
                }
            }
        }
        let _ = dec.decode_eof(&mut buf);
    }
}
