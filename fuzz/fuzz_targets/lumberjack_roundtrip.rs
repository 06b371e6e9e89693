//! encode -> decode round trip of valid Lumberjack windows: plain or in one
//! `C` frame at any level, `J` or `D` events, v1 or v2, cut into arbitrary
//! reads. Every event must come back byte for byte with its sequence number,
//! and the window must complete on its last event with that event's ack.
#![no_main]
use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use logport_lumberjack::{encode_batch, Decoder, Limits, Payload, Record, Version, WindowTracker};

#[derive(Arbitrary, Debug)]
struct Input {
    v2: bool,
    first_seq: u32,
    level: Option<u8>,
    read: u8,
    events: Vec<Event>,
}

#[derive(Arbitrary, Debug)]
enum Event {
    Json(Vec<u8>),
    Pairs(Vec<(Vec<u8>, Vec<u8>)>),
}

fuzz_target!(|input: Input| {
    let version = if input.v2 { Version::V2 } else { Version::V1 };
    // Valid records only: what the decoder rejects on purpose (empty `J`, `D`
    // without pairs) is covered by lumberjack_decode.
    let events: Vec<Payload> = input
        .events
        .into_iter()
        .filter_map(|e| match e {
            Event::Json(j) if !j.is_empty() => Some(Payload::Json(Bytes::from(j))),
            Event::Pairs(p) if !p.is_empty() => Some(Payload::Pairs(
                p.into_iter()
                    .map(|(k, v)| (Bytes::from(k), Bytes::from(v)))
                    .collect(),
            )),
            _ => None,
        })
        .collect();
    if events.is_empty() {
        return;
    }
    let level = input.level.map(|l| u32::from(l % 10));
    let mut wire = BytesMut::new();
    encode_batch(version, input.first_seq, &events, level, &mut wire);

    let mut dec = Decoder::new(Limits::default());
    let mut window = WindowTracker::new(u32::MAX);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let mut done = None;
    for piece in wire.chunks(usize::from(input.read) + 1) {
        buf.extend_from_slice(piece);
        while let Some(record) = dec.decode(&mut buf).expect("valid window") {
            assert!(done.is_none(), "record after the window completed");
            done = window.on_record(&record).expect("valid window");
            got.push(record);
        }
    }
    assert!(buf.is_empty());
    assert_eq!(
        got[0],
        Record::Window {
            version,
            size: events.len() as u32
        }
    );
    assert_eq!(got.len(), events.len() + 1);
    for (i, (record, sent)) in got[1..].iter().zip(&events).enumerate() {
        let Record::Event { seq, payload, .. } = record else {
            panic!("record {i} is not an event: {record:?}");
        };
        assert_eq!(*seq, input.first_seq.wrapping_add(i as u32));
        assert_eq!(payload, sent);
    }
    let done = done.expect("window completes on its last event");
    assert_eq!(done.events, events.len() as u32);
    assert_eq!(
        done.ack.seq,
        input.first_seq.wrapping_add(events.len() as u32 - 1)
    );
});
