//! Decode throughput of one libbeat-sized window (2048 events of ~300-byte
//! Filebeat JSON), plain and zlib level 3 (libbeat's default).

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logport_lumberjack::{encode_batch, Decoder, Limits, Payload, Record, Version};

const EVENTS: usize = 2048;

fn filebeat_event(i: usize) -> Payload {
    let json = format!(
        concat!(
            r#"{{"@timestamp":"2024-05-01T10:00:{:02}.{:03}Z","@metadata":{{"beat":"filebeat","type":"_doc","version":"8.13.4"}},"#,
            r#""log":{{"offset":{},"file":{{"path":"/var/log/app.log"}}}},"message":"GET /api/v1/items/{} 200 {}ms","#,
            r#""input":{{"type":"filestream"}},"ecs":{{"version":"8.0.0"}},"host":{{"name":"web-1"}},"#,
            r#""agent":{{"type":"filebeat","version":"8.13.4","name":"web-1"}}}}"#
        ),
        i % 60,
        i % 1000,
        i * 97,
        i,
        i % 250
    );
    Payload::Json(json.into())
}

fn decode_all(wire: &[u8]) -> usize {
    let mut buf = BytesMut::from(wire);
    let mut dec = Decoder::new(Limits::default());
    let mut n = 0;
    while let Some(r) = dec.decode(&mut buf).expect("valid window") {
        if matches!(r, Record::Event { .. }) {
            n += 1;
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let events: Vec<Payload> = (0..EVENTS).map(filebeat_event).collect();
    let mut group = c.benchmark_group("lumberjack_decode");
    group.throughput(Throughput::Elements(EVENTS as u64));
    for (name, level) in [("plain", None), ("zlib3", Some(3))] {
        let mut wire = BytesMut::new();
        encode_batch(Version::V2, 1, &events, level, &mut wire);
        assert_eq!(decode_all(&wire), EVENTS);
        eprintln!("{name}: {} wire bytes for {EVENTS} events", wire.len());
        group.bench_function(name, |b| b.iter(|| decode_all(std::hint::black_box(&wire))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
