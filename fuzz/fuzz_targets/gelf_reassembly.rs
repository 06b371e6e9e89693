//! UDP chunk reassembly with time passed in: arbitrary datagrams (chunked or
//! not, well-formed or forged headers) from a few senders, interleaved with
//! the clock moving forward and expiry sweeps, under small caps. Invariants:
//! no panic; the bytes and partial messages held never exceed the configured
//! caps after any datagram; nothing outlives its timeout; and a valid payload
//! split by encode_chunks and delivered in any order comes back whole.
#![no_main]
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use logport_gelf::{chunk, encode_chunks, Outcome, Reassembler, ReassemblerConfig};

#[derive(Arbitrary, Debug)]
enum Op {
    Raw {
        from: u8,
        bytes: Vec<u8>,
    },
    Chunk {
        from: u8,
        id: u8,
        seq: u8,
        count: u8,
        data: Vec<u8>,
    },
    AdvanceMs(u16),
    Expire,
}

#[derive(Arbitrary, Debug)]
struct Input {
    ops: Vec<Op>,
    payload: Vec<u8>,
    chunk_size: u16,
    order: Vec<u8>,
}

const CONFIG: ReassemblerConfig = ReassemblerConfig {
    timeout: Duration::from_secs(1),
    max_bytes: 8192,
    max_messages: 16,
};

fuzz_target!(|input: Input| {
    let start = Instant::now();
    let mut now = start;
    let mut r: Reassembler<u8> = Reassembler::new(CONFIG);
    for op in input.ops {
        match op {
            Op::Raw { from, bytes } => {
                let _ = r.push_from(from % 4, Bytes::from(bytes), now);
            }
            Op::Chunk {
                from,
                id,
                seq,
                count,
                data,
            } => {
                let d = chunk(u64::from(id % 8), seq, count, &data);
                if let Ok(Outcome::Complete(p)) = r.push_from(from % 4, d, now) {
                    // Every chunk's data is at most what one datagram carries.
                    assert!(p.len() <= usize::from(count) * 65_536);
                }
            }
            Op::AdvanceMs(ms) => now += Duration::from_millis(u64::from(ms)),
            Op::Expire => {
                r.expire(now);
                if let Some(at) = r.next_expiry() {
                    assert!(at > now, "a message outlived its timeout");
                }
            }
        }
        assert!(
            r.pending_bytes() <= CONFIG.max_bytes,
            "held {} bytes",
            r.pending_bytes()
        );
        assert!(r.pending_messages() <= CONFIG.max_messages);
    }

    // Round trip: a fresh reassembler, the chunks in a fuzzer-chosen order.
    let size = usize::from(input.chunk_size).clamp(13, 9000);
    let Ok(mut chunks) = encode_chunks(&input.payload, 42, size) else {
        return;
    };
    for (i, &o) in input.order.iter().enumerate() {
        let n = chunks.len();
        chunks.swap(i % n, usize::from(o) % n);
    }
    let mut r = Reassembler::default();
    let last = chunks.len() - 1;
    for (i, c) in chunks.into_iter().enumerate() {
        match r.push(c, start).expect("valid chunk") {
            Outcome::Complete(p) => {
                assert_eq!(i, last, "complete before the last chunk");
                assert_eq!(&p[..], &input.payload[..]);
            }
            Outcome::Incomplete => assert!(i < last, "last chunk left it incomplete"),
            Outcome::Duplicate => panic!("no chunk was sent twice"),
        }
    }
    assert_eq!(r.pending_messages(), 0);
    assert_eq!(r.pending_bytes(), 0);
});
