//! Decode throughput for what Docker and Fluentd really send: Docker-like
//! Message-mode events (~300 bytes), and chunks of 1000 such entries: Forward
//! mode (an array, as fluent-logger libraries batch), PackedForward plain and
//! gzip.

use bytes::BytesMut;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logport_forward::rmpv::Value;
use logport_forward::{
    encode_compressed_packed_forward, encode_forward, encode_message, encode_packed_forward,
    ClientOptions, Decoder, EventTime, Limits, PackedAs, Time,
};

fn docker_record(i: usize) -> Value {
    Value::Map(vec![
        (
            "container_id".into(),
            "3f2a1b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081".into(),
        ),
        ("container_name".into(), "/web-frontend-7d9f".into()),
        ("source".into(), "stdout".into()),
        (
            "log".into(),
            format!(
                "10.0.3.{} - - [01/May/2024:12:00:00 +0000] \"GET /api/v1/items/{i}?page=2 HTTP/1.1\" 200 5123 \"-\" \"Mozilla/5.0 (X11; Linux x86_64) curl/8.5\" rt=0.012 uct=0.000",
                i % 250
            )
            .into(),
        ),
    ])
}

fn decode_all(wire: &[u8]) -> usize {
    let mut dec = Decoder::new(Limits::default());
    let mut buf = BytesMut::from(wire);
    let mut n = 0;
    while let Some(c) = dec.decode(&mut buf).unwrap() {
        n += c.entries.len();
        black_box(&c);
    }
    n
}

fn bench(c: &mut Criterion) {
    let time = Time::Event(EventTime::new(1_714_564_800, 123_456_789));
    let opts = ClientOptions {
        chunk: Some(b"dgxdWAAAAAABAAAAAAAAAA==".to_vec()),
        size: None,
    };
    let mut messages = Vec::new();
    for i in 0..1000 {
        encode_message(
            &mut messages,
            "docker.3f2a1b4c5d6e",
            time,
            &docker_record(i),
            Some(&opts),
        );
    }
    let entries: Vec<(Time, Value)> = (0..1000).map(|i| (time, docker_record(i))).collect();
    let mut packed = Vec::new();
    encode_packed_forward(
        &mut packed,
        "docker.web",
        &entries,
        Some(&opts),
        PackedAs::Str,
    );
    let mut array = Vec::new();
    encode_forward(&mut array, "docker.web", &entries, Some(&opts));
    let mut gz = Vec::new();
    encode_compressed_packed_forward(&mut gz, "docker.web", &entries, &opts, 1);
    eprintln!(
        "message stream {} B ({} B/event), packed {} B, gzip {} B",
        messages.len(),
        messages.len() / 1000,
        packed.len(),
        gz.len()
    );

    let mut g = c.benchmark_group("forward_decode");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("message_mode_1000_docker_events", |b| {
        b.iter(|| assert_eq!(decode_all(black_box(&messages)), 1000))
    });
    g.bench_function("forward_mode_1000", |b| {
        b.iter(|| assert_eq!(decode_all(black_box(&array)), 1000))
    });
    g.bench_function("packed_forward_1000", |b| {
        b.iter(|| assert_eq!(decode_all(black_box(&packed)), 1000))
    });
    g.bench_function("compressed_packed_forward_1000", |b| {
        b.iter(|| assert_eq!(decode_all(black_box(&gz)), 1000))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
