//! The UDP reassembler: orders, duplicates, interleaving, expiry, eviction
//! under the caps, invalid headers.

use std::time::{Duration, Instant};

use bytes::Bytes;
use logport_gelf::{
    chunk, encode_chunks, parse_chunk, ChunkError, ChunkHeader, Outcome, Reassembler,
    ReassemblerConfig,
};

fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Every permutation of 4 chunks (24 orders), each with a duplicate thrown in.
#[test]
fn every_order_of_four_chunks() {
    let p = payload(40, 1);
    let chunks = encode_chunks(&p, 0xdead_beef, 12 + 10).unwrap();
    assert_eq!(chunks.len(), 4);
    let t = Instant::now();
    let mut orders = Vec::new();
    permutations(&mut vec![0, 1, 2, 3], 0, &mut orders);
    assert_eq!(orders.len(), 24);
    for order in orders {
        let mut r = Reassembler::default();
        let mut done = None;
        for (i, &k) in order.iter().enumerate() {
            let out = r.push(chunks[k].clone(), t).unwrap();
            if i < 3 {
                assert_eq!(out, Outcome::Incomplete);
                assert_eq!(r.push(chunks[k].clone(), t).unwrap(), Outcome::Duplicate);
            } else {
                done = Some(out);
            }
        }
        assert_eq!(done, Some(Outcome::Complete(Bytes::from(p.clone()))));
        assert_eq!((r.pending_messages(), r.pending_bytes()), (0, 0));
        assert_eq!(r.stats().duplicate_chunks, 3);
    }
}

fn permutations(v: &mut Vec<usize>, k: usize, out: &mut Vec<Vec<usize>>) {
    if k == v.len() {
        out.push(v.clone());
        return;
    }
    for i in k..v.len() {
        v.swap(k, i);
        permutations(v, k + 1, out);
        v.swap(k, i);
    }
}

#[test]
fn interleaved_ids_never_mix() {
    let t = Instant::now();
    let payloads: Vec<Vec<u8>> = (0..5).map(|i| payload(100 + i * 7, i as u8)).collect();
    let chunked: Vec<Vec<Bytes>> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| encode_chunks(p, 1000 + i as u64, 12 + 16).unwrap())
        .collect();
    // Round robin over the ids, each id's chunks reversed.
    let mut r = Reassembler::default();
    let mut got = vec![None; 5];
    let longest = chunked.iter().map(Vec::len).max().unwrap();
    for j in 0..longest {
        for (i, cs) in chunked.iter().enumerate() {
            if j < cs.len() {
                if let Outcome::Complete(p) = r.push(cs[cs.len() - 1 - j].clone(), t).unwrap() {
                    got[i] = Some(p);
                }
            }
        }
    }
    for (i, p) in payloads.iter().enumerate() {
        assert_eq!(got[i].as_deref(), Some(&p[..]), "message {i}");
    }
    assert_eq!(r.stats().reassembled, 5);
}

#[test]
fn same_id_from_two_senders_kept_apart() {
    let t = Instant::now();
    let mut r: Reassembler<u32> = Reassembler::default();
    assert_eq!(
        r.push_from(1, chunk(7, 0, 2, b"ab"), t),
        Ok(Outcome::Incomplete)
    );
    assert_eq!(
        r.push_from(2, chunk(7, 0, 2, b"xy"), t),
        Ok(Outcome::Incomplete)
    );
    assert_eq!(
        r.push_from(2, chunk(7, 1, 2, b"z"), t),
        Ok(Outcome::Complete(Bytes::from_static(b"xyz")))
    );
    assert_eq!(
        r.push_from(1, chunk(7, 1, 2, b"c"), t),
        Ok(Outcome::Complete(Bytes::from_static(b"abc")))
    );
}

#[test]
fn unchunked_and_single_chunk_pass_through() {
    let t = Instant::now();
    let mut r = Reassembler::default();
    let d = Bytes::from_static(b"{\"short_message\":\"x\"}");
    assert_eq!(r.push(d.clone(), t), Ok(Outcome::Complete(d.clone())));
    assert_eq!(r.push(chunk(3, 0, 1, &d), t), Ok(Outcome::Complete(d)));
    assert_eq!(r.stats().completed, 2);
    assert_eq!(r.pending_messages(), 0);
}

#[test]
fn invalid_headers() {
    assert_eq!(parse_chunk(b"{}"), Ok(None));
    assert_eq!(
        parse_chunk(&[0x1e, 0x0f, 1, 2, 3]),
        Err(ChunkError::Truncated { len: 5 })
    );
    assert_eq!(
        parse_chunk(&chunk(1, 0, 0, b"x")),
        Err(ChunkError::InvalidCount { id: 1, count: 0 })
    );
    assert_eq!(
        parse_chunk(&chunk(1, 0, 200, b"x")),
        Err(ChunkError::InvalidCount { id: 1, count: 200 })
    );
    assert_eq!(
        parse_chunk(&chunk(1, 2, 2, b"x")),
        Err(ChunkError::InvalidSequence {
            id: 1,
            seq: 2,
            count: 2
        })
    );
    let c = chunk(0x0102_0304_0506_0708, 127, 128, b"");
    assert_eq!(
        parse_chunk(&c),
        Ok(Some((
            ChunkHeader {
                id: 0x0102_0304_0506_0708,
                seq: 127,
                count: 128
            },
            &b""[..]
        )))
    );
    let e = parse_chunk(&chunk(0xab, 5, 3, b"")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "GELF chunk 00000000000000ab: sequence number 5 at byte 10 is not below the count 3"
    );
    let mut r = Reassembler::default();
    assert!(r.push(chunk(1, 0, 0, b"x"), Instant::now()).is_err());
    assert_eq!(r.stats().invalid_chunks, 1);
}

#[test]
fn count_mismatch_drops_the_message() {
    let t = Instant::now();
    let mut r = Reassembler::default();
    assert_eq!(r.push(chunk(4, 0, 3, b"aaaa"), t), Ok(Outcome::Incomplete));
    let held = r.pending_bytes();
    match r.push(chunk(4, 1, 2, b"bb"), t) {
        Err(ChunkError::CountMismatch {
            id: 4,
            count: 2,
            expected: 3,
            dropped_bytes,
        }) => assert_eq!(dropped_bytes, held),
        other => panic!("{other:?}"),
    }
    assert_eq!((r.pending_messages(), r.pending_bytes()), (0, 0));
    assert_eq!(r.stats().invalid.messages, 1);
    assert_eq!(r.stats().invalid_chunks, 1);
}

#[test]
fn expiry_counts_messages_and_bytes() {
    let t0 = Instant::now();
    let cfg = ReassemblerConfig {
        timeout: Duration::from_secs(5),
        ..ReassemblerConfig::default()
    };
    let mut r = Reassembler::new(cfg);
    r.push(chunk(1, 0, 2, &[0; 100]), t0).unwrap();
    r.push(chunk(2, 0, 2, &[0; 50]), t0 + Duration::from_secs(2))
        .unwrap();
    assert_eq!(r.next_expiry(), Some(t0 + Duration::from_secs(5)));
    let held_1 = r.pending_bytes();
    // A later chunk does not make a message younger: age is from its first chunk.
    r.push(chunk(1, 0, 2, &[0; 100]), t0 + Duration::from_secs(4))
        .unwrap();
    let d = r.expire(t0 + Duration::from_secs(5));
    assert_eq!(d.messages, 1);
    assert!(d.bytes >= 100 && d.bytes < held_1 as u64);
    assert_eq!(r.pending_messages(), 1);
    assert_eq!(r.next_expiry(), Some(t0 + Duration::from_secs(7)));
    // A push expires too: message 2 is gone before chunk 1/2 of id 2 arrives.
    assert_eq!(
        r.push(chunk(2, 1, 2, b"x"), t0 + Duration::from_secs(8)),
        Ok(Outcome::Incomplete)
    );
    assert_eq!(r.stats().expired.messages, 2);
    // A clock that goes backwards expires nothing.
    assert_eq!(r.expire(t0).messages, 0);
}

#[test]
fn flood_of_partials_never_exceeds_the_byte_cap() {
    let cap = 64 * 1024;
    let mut r = Reassembler::new(ReassemblerConfig {
        max_bytes: cap,
        ..ReassemblerConfig::default()
    });
    let t = Instant::now();
    // A legitimate 3-chunk message starts first, so it is the oldest.
    r.push(chunk(u64::MAX, 0, 3, &[1; 1000]), t).unwrap();
    for id in 0..10_000u64 {
        let out = r.push(chunk(id, 0, 128, &[0; 1408]), t + Duration::from_micros(id));
        assert_eq!(out, Ok(Outcome::Incomplete));
        assert!(r.pending_bytes() <= cap, "{} > {cap}", r.pending_bytes());
    }
    let s = *r.stats();
    assert!(s.evicted.messages > 9_000, "{s:?}");
    assert_eq!(s.evicted.messages as usize + r.pending_messages(), 10_001);
    // The oldest went first: the legitimate message was evicted, its late
    // chunks start a new partial instead of completing.
    assert_eq!(
        r.push(chunk(u64::MAX, 1, 3, &[1; 10]), t + Duration::from_secs(1)),
        Ok(Outcome::Incomplete)
    );
    // Empty chunks are charged too: a flood of them is bounded as well.
    for id in 0..10_000u64 {
        r.push(chunk(id << 8, 0, 128, &[]), t).unwrap();
        assert!(r.pending_bytes() <= cap);
    }
}

#[test]
fn eviction_spares_the_message_being_filled() {
    let cap = 10_000;
    let mut r = Reassembler::new(ReassemblerConfig {
        max_bytes: cap,
        ..ReassemblerConfig::default()
    });
    let t = Instant::now();
    // The big message is oldest, but the chunk that needs room is its own.
    r.push(chunk(1, 0, 3, &[1; 3000]), t).unwrap();
    r.push(chunk(2, 0, 2, &[2; 3000]), t + Duration::from_millis(1))
        .unwrap();
    r.push(chunk(1, 1, 3, &[1; 3000]), t + Duration::from_millis(2))
        .unwrap();
    let out = r.push(chunk(1, 2, 3, &[1; 3000]), t + Duration::from_millis(3));
    assert_eq!(out, Ok(Outcome::Complete(Bytes::from(vec![1; 9000]))));
    assert_eq!(r.stats().evicted.messages, 1);
    assert_eq!(r.pending_bytes(), 0);
    // A message that cannot fit even alone is refused and dropped.
    r.push(chunk(3, 0, 2, &[3; 6000]), t).unwrap();
    match r.push(chunk(3, 1, 2, &[3; 6000]), t) {
        Err(ChunkError::TooLarge { id: 3, max, .. }) => assert_eq!(max, cap),
        other => panic!("{other:?}"),
    }
    assert_eq!((r.pending_messages(), r.pending_bytes()), (0, 0));
    assert_eq!(r.stats().invalid.messages, 1);
}

#[test]
fn message_cap_evicts_the_oldest() {
    let mut r = Reassembler::new(ReassemblerConfig {
        max_messages: 3,
        ..ReassemblerConfig::default()
    });
    let t = Instant::now();
    for id in 0..5u64 {
        r.push(chunk(id, 0, 2, b"a"), t + Duration::from_millis(id))
            .unwrap();
        assert!(r.pending_messages() <= 3);
    }
    assert_eq!(r.stats().evicted.messages, 2);
    // 0 and 1 were evicted; 2..5 complete.
    assert_eq!(r.push(chunk(0, 1, 2, b"b"), t), Ok(Outcome::Incomplete));
    assert_eq!(
        r.push(chunk(4, 1, 2, b"b"), t),
        Ok(Outcome::Complete(Bytes::from_static(b"ab")))
    );
}
