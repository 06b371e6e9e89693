//! Helpers shared by the test files (`mod common;`).
#![allow(dead_code)]

use bytes::BytesMut;
use logport_lumberjack::{Decoder, Error, Limits, Record};

pub fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).expect("hex byte"))
        .collect()
}

/// Feeds `chunks` one after another, decoding after each, then EOF.
pub fn run(limits: Limits, chunks: &[&[u8]]) -> (Vec<Record>, Option<Error>) {
    let mut dec = Decoder::new(limits);
    let mut buf = BytesMut::new();
    let mut records = Vec::new();
    for c in chunks {
        buf.extend_from_slice(c);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(r)) => records.push(r),
                Ok(None) => break,
                Err(e) => return (records, Some(e)),
            }
        }
    }
    loop {
        match dec.decode_eof(&mut buf) {
            Ok(Some(r)) => records.push(r),
            Ok(None) => return (records, None),
            Err(e) => return (records, Some(e)),
        }
    }
}

pub fn run_whole(limits: Limits, wire: &[u8]) -> (Vec<Record>, Option<Error>) {
    run(limits, &[wire])
}

pub fn run_bytewise(limits: Limits, wire: &[u8]) -> (Vec<Record>, Option<Error>) {
    let chunks: Vec<&[u8]> = wire.chunks(1).collect();
    run(limits, &chunks)
}
