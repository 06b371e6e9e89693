//! GELF decode: a Docker gelf-driver line plain and gzip, and a 64 KB message
//! arriving as 1420-byte chunks (go-gelf's size) reassembled and decoded.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logport_gelf::{
    compress, decode_payload, encode_chunks, Encoding, Outcome, Reassembler, GO_GELF_CHUNK_SIZE,
};

/// ~400 bytes, fields and order as Docker's gelf driver marshals them.
const DOCKER: &str = r#"{"version":"1.1","host":"mesos-agent-17","short_message":"10.2.3.4 - - \"GET /api/v1/orders?page=2 HTTP/1.1\" 200 5123 \"-\" \"curl/8.5.0\"","timestamp":1714557600.123,"level":6,"_command":"nginx -g daemon off;","_container_id":"3f2a1b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081","_container_name":"orders-web.1","_created":"2024-05-01T10:00:00.123456789Z","_image_id":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","_image_name":"registry.local/orders-web:1.25","_tag":"3f2a1b4c5d6e"}"#;

const MAX: usize = 1 << 20;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("gelf_decode");
    g.throughput(Throughput::Elements(1));

    let plain = DOCKER.as_bytes().to_vec();
    g.bench_function("docker_line_plain", |b| {
        b.iter(|| decode_payload(black_box(&plain), MAX).unwrap())
    });

    let gz = compress(DOCKER.as_bytes(), Encoding::Gzip, 1);
    g.bench_function("docker_line_gzip", |b| {
        b.iter(|| decode_payload(black_box(&gz), MAX).unwrap())
    });

    // A 64 KB stack trace in full_message, sent uncompressed: 47 chunks.
    let trace: String = (0..1100)
        .map(|i| format!("\tat com.example.orders.Service.handle{i:04}(Service.java:{i})\n"))
        .collect::<String>()
        .chars()
        .take(62 * 1024)
        .collect();
    let big = format!(
        r#"{{"version":"1.1","host":"mesos-agent-17","short_message":"java.lang.IllegalStateException","full_message":{},"timestamp":1714557600.123,"level":3}}"#,
        serde_json::to_string(&trace).unwrap()
    );
    let chunks = encode_chunks(big.as_bytes(), 42, GO_GELF_CHUNK_SIZE).unwrap();
    eprintln!(
        "64 KB message: {} bytes in {} chunks",
        big.len(),
        chunks.len()
    );
    let mut r = Reassembler::default();
    let now = Instant::now();
    g.bench_function("chunked_64k_reassemble_decode", |b| {
        b.iter(|| {
            let mut done = None;
            for ch in &chunks {
                if let Outcome::Complete(p) = r.push(ch.clone(), now).unwrap() {
                    done = Some(p);
                }
            }
            decode_payload(&done.unwrap(), MAX).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
