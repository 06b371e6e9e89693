//! The embedded store's share of the per-event cost: appending ~300-byte JSON events (encode,
//! lz4, CRC, write) in groups of 1000, with and without the group commit's fdatasync.

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logport::event::{Event, Protocol};
use logport::sink::store::{StoreConfig, Writer};

const GROUP: usize = 1000;

fn events() -> Vec<Event> {
    let app: Arc<str> = Arc::from("billing");
    (0..GROUP)
        .map(|i| {
            let value = format!(
                r#"{{"@timestamp":"2026-11-25T04:00:00.{:03}Z","@version":"1","message":"GET /api/v1/orders/{i} 200 latency_ms={} user=4711","host":{{"hostname":"web-1","ip":"10.1.2.3"}},"process":{{"name":"billing","pid":4242}},"log":{{"syslog":{{"priority":14,"facility":{{"code":1,"name":"user-level"}},"severity":{{"code":6,"name":"Informational"}}}}}},"service":{{"type":"system"}}}}"#,
                i % 1000,
                i % 97
            );
            Event { app: app.clone(), protocol: Protocol::Syslog, peer: "10.1.2.3:514".parse().unwrap(), received_ns: 1_795_579_200_000_000_000 + i as i64, value: Bytes::from(value) }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let events = events();
    let bytes: usize = events.iter().map(|e| e.value.len()).sum();
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        dir: dir.path().join("store"),
        segment_bytes: 64 << 20,
        retention_bytes: 256 << 20,
        ..StoreConfig::default()
    };
    let (mut writer, _) = Writer::open(&config).unwrap();

    let mut group = c.benchmark_group("store_append");
    group.throughput(Throughput::Elements(GROUP as u64));
    group.bench_function("events_written", |b| {
        b.iter(|| {
            writer.append(black_box(&events)).unwrap();
            writer.flush().unwrap();
        })
    });
    group.bench_function("events_written_and_fsynced", |b| {
        b.iter(|| {
            writer.append(black_box(&events)).unwrap();
            writer.sync().unwrap();
        })
    });
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("bytes_written", |b| {
        b.iter(|| {
            writer.append(black_box(&events)).unwrap();
            writer.flush().unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
