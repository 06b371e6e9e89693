//! encode -> decode round trip of valid forward messages in every mode
//! (Message in msgpack and JSON, Forward, PackedForward as bin and str,
//! CompressedPackedForward in several gzip members), with chunk/size options,
//! cut into arbitrary reads. Every entry must come back with its time and
//! record, the chunk id must come back for the ack, nothing is skipped.
#![no_main]
use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use logport_forward::rmpv::Value;
use logport_forward::{
    encode_compressed_packed_forward, encode_forward, encode_message, encode_message_json,
    encode_packed_forward, ClientOptions, Decoder, EventTime, Limits, Mode, PackedAs, Time,
};

#[derive(Arbitrary, Debug)]
enum Leaf {
    Str(String),
    Int(i64),
    Uint(u64),
    Bool(bool),
    Nil,
    Nested(Vec<(String, String)>),
}

#[derive(Arbitrary, Debug)]
struct Entry {
    secs: u32,
    nanos: u32,
    event_time: bool,
    record: Vec<(String, Leaf)>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    mode: u8,
    tag: String,
    entries: Vec<Entry>,
    chunk: Option<String>,
    size: bool,
    members: u8,
    read: u8,
}

fn leaf(l: &Leaf) -> Value {
    match l {
        Leaf::Str(s) => Value::from(s.as_str()),
        Leaf::Int(i) => Value::from(*i),
        Leaf::Uint(u) => Value::from(*u),
        Leaf::Bool(b) => Value::from(*b),
        Leaf::Nil => Value::Nil,
        Leaf::Nested(kv) => Value::Map(
            kv.iter()
                .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str())))
                .collect(),
        ),
    }
}

fuzz_target!(|input: Input| {
    if input.tag.is_empty() || input.entries.is_empty() {
        return;
    }
    let entries: Vec<(Time, Value)> = input
        .entries
        .iter()
        .map(|e| {
            let time = if e.event_time {
                Time::Event(EventTime {
                    secs: i64::from(e.secs),
                    nanos: e.nanos % 1_000_000_000,
                })
            } else {
                Time::Int(i64::from(e.secs))
            };
            let record = e
                .record
                .iter()
                .map(|(k, v)| (Value::from(k.as_str()), leaf(v)));
            (time, Value::Map(record.collect()))
        })
        .collect();
    let opts = ClientOptions {
        chunk: input.chunk.map(String::into_bytes),
        size: input.size.then_some(entries.len() as u64),
    };
    let mut wire = Vec::new();
    let (mode, sent) = match input.mode % 6 {
        0 => {
            encode_message(
                &mut wire,
                &input.tag,
                entries[0].0,
                &entries[0].1,
                Some(&opts),
            );
            (Mode::Message, &entries[..1])
        }
        1 => {
            // JSON carries EventTime as a float; integer seconds only here.
            let (Time::Int(_), rec) = &entries[0] else {
                return;
            };
            encode_message_json(&mut wire, &input.tag, entries[0].0, rec, Some(&opts));
            (Mode::Message, &entries[..1])
        }
        2 => {
            encode_forward(&mut wire, &input.tag, &entries, Some(&opts));
            (Mode::Forward, &entries[..])
        }
        3 | 4 => {
            let as_ = if input.mode % 6 == 3 {
                PackedAs::Bin
            } else {
                PackedAs::Str
            };
            encode_packed_forward(&mut wire, &input.tag, &entries, Some(&opts), as_);
            (Mode::PackedForward, &entries[..])
        }
        _ => {
            let members = usize::from(input.members % 4) + 1;
            encode_compressed_packed_forward(&mut wire, &input.tag, &entries, &opts, members);
            (Mode::CompressedPackedForward, &entries[..])
        }
    };

    let mut dec = Decoder::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut chunks = Vec::new();
    for piece in wire.chunks(usize::from(input.read) + 1) {
        buf.extend_from_slice(piece);
        while let Some(c) = dec.decode(&mut buf).expect("valid message") {
            chunks.push(c);
        }
    }
    assert_eq!(chunks.len(), 1);
    let c = &chunks[0];
    assert_eq!(c.tag, input.tag);
    assert_eq!(c.mode, mode);
    assert_eq!(c.skipped, 0);
    assert_eq!(c.wire_len, wire.len());
    assert_eq!(c.options.chunk, opts.chunk);
    assert_eq!(c.entries.len(), sent.len());
    for (got, (time, record)) in c.entries.iter().zip(sent) {
        match *time {
            Time::Int(s) => assert_eq!((got.time.secs, got.time.nanos), (s, 0)),
            Time::Event(t) => assert_eq!(got.time, t),
            Time::Float(_) => unreachable!(),
        }
        assert_eq!(&got.record, record);
    }
});
