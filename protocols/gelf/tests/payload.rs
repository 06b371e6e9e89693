//! Payload decoding: leniency choices, typed errors, decompression caps.

use logport_gelf::{compress, decode_payload, decompress, Encoding, Message, PayloadError};
use serde_json::json;

const MAX: usize = 1 << 20;

fn parse(s: &str) -> Message {
    Message::from_json(s.as_bytes()).unwrap()
}

/// A line as Docker's gelf driver marshals it (Go key order, `\u003c` escapes).
const DOCKER: &str = r#"{"version":"1.1","host":"dockerhost","short_message":"GET /health \u003c200\u003e","timestamp":1714557600.123,"level":6,"_command":"nginx -g daemon off;","_container_id":"3f2a1b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081","_container_name":"web","_created":"2024-05-01T10:00:00.123456789Z","_image_id":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","_image_name":"nginx:1.25","_tag":"3f2a1b4c5d6e"}"#;

#[test]
fn docker_line() {
    let m = parse(DOCKER);
    assert_eq!(m.short_message.as_deref(), Some("GET /health <200>"));
    assert_eq!(m.timestamp_micros(), Some(1_714_557_600_123_000));
    let keys: Vec<&str> = m.additional.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "_command",
            "_container_id",
            "_container_name",
            "_created",
            "_image_id",
            "_image_name",
            "_tag"
        ]
    );
    for enc in [Encoding::Plain, Encoding::Zlib, Encoding::Gzip] {
        let p = compress(DOCKER.as_bytes(), enc, 1);
        assert_eq!(decode_payload(&p, MAX).unwrap(), m, "{enc}");
    }
}

#[test]
fn lenient_like_logstash() {
    // No version, no host, no short_message: kept (Logstash keeps them).
    let m = parse(r#"{"full_message":"trace\nline 2"}"#);
    assert_eq!((m.version, m.host, m.short_message), (None, None, None));
    assert_eq!(m.full_message.as_deref(), Some("trace\nline 2"));
    // GELF 1.0 and unknown versions are kept as sent.
    assert_eq!(
        parse(r#"{"version":"1.0"}"#).version.as_deref(),
        Some("1.0")
    );
    assert_eq!(parse(r#"{"version":"2"}"#).version.as_deref(), Some("2"));
    // Quoted and exponent timestamps; integral levels in any spelling.
    let m = parse(r#"{"timestamp":"1714557600.5","level":"3","line":42.0}"#);
    assert_eq!(
        (m.timestamp, m.level, m.line),
        (Some(1714557600.5), Some(3), Some(42))
    );
    let m = parse(r#"{"timestamp":1.660873462488E13}"#);
    assert_eq!(m.timestamp, Some(1.660873462488e13));
    // Wrong types are kept aside, not rejected.
    let m = parse(
        r#"{"version":1.1,"host":12,"timestamp":"soon","level":6.5,"message":"x","_b":true,"_n":null,"_o":{"k":[1]},"_id":"abc"}"#,
    );
    assert_eq!(
        (&m.version, &m.host, m.timestamp, m.level),
        (&None, &None, None, None)
    );
    let other: Vec<(&str, &serde_json::Value)> =
        m.other.iter().map(|(k, v)| (k.as_str(), v)).collect();
    assert_eq!(
        other,
        [
            ("version", &json!(1.1)),
            ("host", &json!(12)),
            ("timestamp", &json!("soon")),
            ("level", &json!(6.5)),
            ("message", &json!("x")),
        ]
    );
    // Additional values of any type, `_id` included, in order.
    let add: Vec<&str> = m.additional.keys().map(String::as_str).collect();
    assert_eq!(add, ["_b", "_n", "_o", "_id"]);
    assert_eq!(m.additional["_o"], json!({"k": [1]}));
    // Nothing lost: re-encoding and parsing gives the same message.
    assert_eq!(Message::from_json(&m.to_json()).unwrap(), m);
}

#[test]
fn whitespace_and_trailing_nul() {
    let m = parse(" \n{\"short_message\":\"x\"}\n\0\0");
    assert_eq!(m.short_message.as_deref(), Some("x"));
}

#[test]
fn typed_errors() {
    assert_eq!(decode_payload(b"", MAX), Err(PayloadError::Empty));
    assert_eq!(decode_payload(b" \n\0", MAX), Err(PayloadError::Empty));
    assert_eq!(
        decode_payload(b"  [1,2]", MAX),
        Err(PayloadError::NotAnObject {
            offset: 2,
            byte: b'['
        })
    );
    assert_eq!(
        decode_payload(b"<30>syslog", MAX).unwrap_err().to_string(),
        "GELF payload is not a JSON object, zlib or gzip: byte 0x3c at offset 0 (expected '{', 78 or 1f 8b)"
    );
    match decode_payload(b"{\"a\":\n tru}", MAX) {
        Err(PayloadError::Json {
            line: 2, column, ..
        }) => assert!(column > 0),
        other => panic!("{other:?}"),
    }
    // Invalid UTF-8 in a string is not JSON.
    assert!(matches!(
        decode_payload(b"{\"a\":\"\xff\"}", MAX),
        Err(PayloadError::Json { .. })
    ));
    // Corrupt and truncated compressed streams.
    let z = compress(
        b"{\"short_message\":\"hello hello hello\"}",
        Encoding::Zlib,
        6,
    );
    let mut bad = z.clone();
    bad[4] ^= 0xff;
    assert!(matches!(
        decode_payload(&bad, MAX),
        Err(PayloadError::Decompress {
            encoding: Encoding::Zlib,
            ..
        })
    ));
    let g = compress(b"{\"short_message\":\"hello\"}", Encoding::Gzip, 6);
    match decode_payload(&g[..g.len() - 3], MAX) {
        Err(
            e @ PayloadError::Decompress {
                encoding: Encoding::Gzip,
                ..
            },
        ) => {
            assert!(
                e.to_string()
                    .starts_with("invalid gzip data in GELF payload after"),
                "{e}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn gzip_members_back_to_back() {
    let mut p = compress(b"{\"short_message\":", Encoding::Gzip, 1);
    p.extend(compress(b"\"two members\"}", Encoding::Gzip, 9));
    let m = decode_payload(&p, MAX).unwrap();
    assert_eq!(m.short_message.as_deref(), Some("two members"));
}

#[test]
fn decompression_bomb_refused_at_the_cap() {
    // 8 MiB of spaces inside a string: ~8 KiB of zlib, ~1000:1.
    let mut json = b"{\"short_message\":\"".to_vec();
    json.resize(json.len() + (8 << 20), b' ');
    json.extend_from_slice(b"\"}");
    for enc in [Encoding::Zlib, Encoding::Gzip] {
        let bomb = compress(&json, enc, 9);
        assert!(bomb.len() < 1 << 20);
        assert_eq!(
            decompress(&bomb, 1 << 20),
            Err(PayloadError::TooLarge {
                encoding: enc,
                max: 1 << 20
            })
        );
    }
    // The cap is inclusive: exactly `max` bytes pass, one more does not.
    let small = b"{\"short_message\":\"abc\"}";
    for enc in [Encoding::Plain, Encoding::Zlib, Encoding::Gzip] {
        let p = compress(small, enc, 6);
        assert_eq!(&*decompress(&p, small.len()).unwrap(), small);
        assert_eq!(
            decompress(&p, small.len() - 1),
            Err(PayloadError::TooLarge {
                encoding: enc,
                max: small.len() - 1
            })
        );
        let owned = decompress(&p, small.len()).unwrap().into_owned();
        assert!(
            owned.capacity() <= small.len(),
            "{enc}: {}",
            owned.capacity()
        );
    }
    // A cap of zero refuses everything without allocating.
    assert!(matches!(
        decompress(&compress(small, Encoding::Zlib, 1), 0),
        Err(PayloadError::TooLarge { .. })
    ));
}

/// Found by fuzz/gelf_payload: without correctly rounded float parsing, a number came out of
/// decode -> encode -> decode one ULP away from the first decode.
#[test]
fn numbers_survive_a_round_trip_bit_for_bit() {
    let json = br#"{"version":"1.1","hosimestamp":11111111111795478400.5,"level":6,"timestamp":1795478400.123456789}"#;
    let first = Message::from_json(json).unwrap();
    let again = Message::from_json(&first.to_json()).unwrap();
    assert_eq!(again, first);
    assert_eq!(
        first.other["hosimestamp"].as_f64().unwrap().to_bits(),
        11111111111795478400.5f64.to_bits()
    );
}
