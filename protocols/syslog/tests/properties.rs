//! Property tests: no panic on any input, bounded decoder memory, and
//! encode → frame → decode → parse round trips.

use std::borrow::Cow;

use bytes::BytesMut;
use logport_syslog::{
    frame_lf, frame_octet_counted, parse, FrameDecoder, Framing, Pri, Rfc3164Message,
    Rfc5424Message, SdElement, StampField, Timestamp,
};
use proptest::prelude::*;

/// `PROPTEST_CASES` in the environment overrides the default case count (for a
/// longer fuzzing run).
fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Valid frames of every kind the decoder and parser know, to mutate.
const SEEDS: &[&[u8]] = &[
    b"13 input message",
    b"28 abcdefghijklm3 nopqrstuvwxyz",
    b"88 <30>1 2024-05-01T12:00:00+02:00 dockerhost 3f2a1b4c5d6e 1234 3f2a1b4c5d6e - hello world\n",
    b"<57>Mar 25 21:47:46 gleichner6005 quaerat[2444]: There were 8 penguins in the shop.\n",
    b"<164>Oct 26 15:19:25 1.2.3.4 %ASA-4-106023: Deny udp src DRAC:10.1.2.3/43434\r\n",
    b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]\n",
    b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time\0",
    b"<14>1 - - - - - [id@1 a=\"q\\\"b\\\\s\\]e\"] \xEF\xBB\xBFm\n",
    b"<30>Nov  3 03:35:24 14223bda5336[5388]: hello 1\n",
    b"<30> 2024-05-01T12:00:00.123456+02:00 web1 nginx[42]: GET /\n",
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn apply(mut v: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let len = v.len();
        match *m {
            Mutation::Flip(i, b) if len > 0 => v[i % len] = b,
            Mutation::Insert(i, b) => v.insert(i % (len + 1), b),
            Mutation::Delete(i) if len > 0 => {
                v.remove(i % len);
            }
            Mutation::Truncate(i) => v.truncate(i % (len + 1)),
            _ => {}
        }
    }
    v
}

fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        prop::sample::select(&b"0123456789 <>[]=\"\\\n\r\0-:.TZ+\xEF\xBB\xBF\xFF"[..]),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), interesting_byte()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), interesting_byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// A stream: random bytes, or mutated seeds glued together.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let mutated = prop::collection::vec(
        (
            prop::sample::select(SEEDS),
            prop::collection::vec(mutation(), 0..4),
        ),
        1..8,
    )
    .prop_map(|parts| {
        parts
            .into_iter()
            .flat_map(|(seed, muts)| apply(seed.to_vec(), &muts))
            .collect()
    });
    prop_oneof![prop::collection::vec(any::<u8>(), 0..600), mutated]
}

/// Feeds `data` in reads of the given sizes, checking the memory bound as it goes.
fn feed(max_frame: usize, data: &[u8], reads: &[usize]) -> Vec<logport_syslog::Frame> {
    let mut dec = FrameDecoder::new(max_frame);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut pos = 0;
    let mut reads = reads.iter().cycle();
    let mut fed = 0u64;
    'outer: while pos < data.len() {
        let n = (*reads.next().unwrap_or(&1)).max(1).min(data.len() - pos);
        buf.extend_from_slice(&data[pos..pos + n]);
        pos += n;
        fed += n as u64;
        assert!(
            buf.len() <= max_frame.max(20) + n,
            "held {} > {max_frame} + {n}",
            buf.len()
        );
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(f)) => {
                    assert!(f.bytes.len() <= max_frame);
                    assert!(f.offset < fed);
                    frames.push(f)
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(e.offset <= fed);
                    assert!(!e.to_string().is_empty());
                    break 'outer;
                }
            }
        }
        // A count's digits (at most 19, plus its space) wait whole in the buffer.
        assert!(
            buf.len() <= max_frame.max(20),
            "held {} > {max_frame} between reads",
            buf.len()
        );
        assert_eq!(dec.offset() + buf.len() as u64, fed);
    }
    while let Ok(Some(f)) = dec.decode_eof(&mut buf) {
        frames.push(f);
    }
    frames
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn decoder_never_panics_and_stays_bounded(
        data in stream(),
        max_frame in prop_oneof![Just(0usize), 1usize..64, Just(1024)],
        reads in prop::collection::vec(1usize..80, 1..8),
    ) {
        for f in feed(max_frame, &data, &reads) {
            let _ = parse(&f.bytes);
        }
    }

    #[test]
    fn parse_never_panics(data in stream()) {
        if let Ok(m) = parse(&data) {
            // Whatever it returned is usable.
            let _ = (m.pri.facility(), m.msg.len(), m.clone().into_owned());
        }
        for end in 0..data.len().min(200) {
            let _ = parse(&data[..end]);
        }
    }

    #[test]
    fn chunking_does_not_change_frames(
        data in stream(),
        reads in prop::collection::vec(1usize..40, 1..6),
    ) {
        let whole = feed(256, &data, &[usize::MAX / 2]);
        let pieces = feed(256, &data, &reads);
        prop_assert_eq!(whole, pieces);
    }
}

fn header_field() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[!-~]{1,40}".prop_filter("'-' is NIL", |s| s != "-"))
}

fn msg_text() -> impl Strategy<Value = String> {
    // Any text, LFs inside but not at the end (octet counting strips one trailing
    // LF), no leading BOM (the parser strips it).
    prop_oneof![
        Just(String::new()),
        "([^\n]{0,40}\n)?[^\n]{1,40}".prop_filter("leading BOM", |s| !s.starts_with('\u{FEFF}')),
    ]
}

fn sd() -> impl Strategy<Value = Vec<SdElement<'static>>> {
    let name = "[a-zA-Z0-9@._-]{1,16}";
    let param = (name, ".{0,20}").prop_map(|(n, v)| (Cow::Owned(n), Cow::Owned(v)));
    let element = (name, prop::collection::vec(param, 0..4)).prop_map(|(id, params)| SdElement {
        id: Cow::Owned(id),
        params,
    });
    prop::collection::vec(element, 0..3)
}

fn frame_into(msg: &[u8], octet: bool, wire: &mut BytesMut) -> Framing {
    let lf_safe = !msg.contains(&b'\n') && !msg.contains(&0) && msg.last() != Some(&b'\r');
    if octet || !lf_safe {
        frame_octet_counted(msg, wire);
        Framing::OctetCounting
    } else {
        frame_lf(msg, wire);
        Framing::NonTransparent
    }
}

#[derive(Debug, Clone)]
struct Case5424 {
    pri: u8,
    stamp: Option<(i64, u32, i32, Option<u8>)>,
    hostname: Option<String>,
    app_name: Option<String>,
    proc_id: Option<String>,
    msg_id: Option<String>,
    sd: Vec<SdElement<'static>>,
    msg: String,
    bom: bool,
    octet: bool,
}

fn case5424() -> impl Strategy<Value = Case5424> {
    let stamp = prop::option::of((
        -2_208_988_800i64..253_402_300_799,
        0u32..1_000_000_000,
        (-23 * 60..=23 * 60i32).prop_map(|m| m * 60),
        prop::option::of(Just(9u8)),
    ));
    (
        (
            0u8..=191,
            stamp,
            header_field(),
            header_field(),
            header_field(),
            header_field(),
        ),
        (sd(), msg_text(), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |((pri, stamp, hostname, app_name, proc_id, msg_id), (sd, msg, bom, octet))| Case5424 {
                pri,
                stamp,
                hostname,
                app_name,
                proc_id,
                msg_id,
                sd,
                msg,
                bom,
                octet,
            },
        )
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn rfc5424_round_trip(cases in prop::collection::vec(case5424(), 1..5), read in 1usize..64) {
        let mut wire = BytesMut::new();
        let mut framings = Vec::new();
        // A connection that starts LF-framed stays so; one that starts octet-counted
        // may still carry LF-framed frames.
        let mut octet_connection = None;
        let mut encoded = Vec::new();
        for c in &cases {
            let m = Rfc5424Message {
                pri: Pri::new(c.pri).unwrap(),
                timestamp: match c.stamp {
                    None => StampField::Nil,
                    Some((secs, nanos, offset_secs, frac_digits)) => {
                        StampField::Unix { secs, nanos, offset_secs, frac_digits }
                    }
                },
                hostname: c.hostname.as_deref(),
                app_name: c.app_name.as_deref(),
                proc_id: c.proc_id.as_deref(),
                msg_id: c.msg_id.as_deref(),
                structured_data: &c.sd,
                msg: c.msg.as_bytes(),
                bom: c.bom,
            };
            encoded.push((m.to_vec(), c.octet));
        }
        let lf_safe = |b: &[u8]| !b.contains(&b'\n') && !b.contains(&0) && b.last() != Some(&b'\r');
        let all_lf_safe = encoded.iter().all(|(b, _)| lf_safe(b));
        for (bytes, octet) in &encoded {
            let octet = match octet_connection {
                None => *octet || !all_lf_safe,
                Some(true) => *octet,
                Some(false) => false,
            };
            octet_connection.get_or_insert(octet);
            framings.push(frame_into(bytes, octet, &mut wire));
        }
        let wire = wire.to_vec();
        let frames = feed(1 << 16, &wire, &[read]);
        prop_assert_eq!(frames.len(), cases.len());
        for ((c, f), framing) in cases.iter().zip(&frames).zip(framings) {
            prop_assert_eq!(f.framing, framing);
            let p = parse(&f.bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(p.pri.value(), c.pri);
            prop_assert_eq!(
                p.timestamp,
                c.stamp.map(|(unix_secs, nanos, offset_secs, _)| Timestamp::Absolute {
                    unix_secs,
                    nanos,
                    offset_secs
                })
            );
            prop_assert_eq!(p.hostname.as_deref(), c.hostname.as_deref());
            prop_assert_eq!(p.app_name.as_deref(), c.app_name.as_deref());
            prop_assert_eq!(p.proc_id.as_deref(), c.proc_id.as_deref());
            prop_assert_eq!(p.msg_id.as_deref(), c.msg_id.as_deref());
            prop_assert_eq!(&p.structured_data, &c.sd);
            prop_assert_eq!(&p.msg, &c.msg);
        }
    }

    #[test]
    fn rfc3164_round_trip(
        pri in 0u8..=191,
        (month, day) in (1u8..=12).prop_flat_map(|m| (Just(m), 1u8..=if m == 2 { 29 } else { 30 })),
        (hour, minute, second) in (0u8..24, 0u8..60, 0u8..60),
        millis in prop::option::of(1u32..1000),
        hostname in prop::option::of("[a-zA-Z0-9][a-zA-Z0-9.-]{0,30}"),
        tag in "[!-~&&[^\\[\\]:]]{1,40}",
        pid in prop::option::of("[0-9]{1,7}"),
        msg in msg_text(),
        octet in any::<bool>(),
    ) {
        let timestamp = Timestamp::Bsd {
            month, day, hour, minute, second, nanos: millis.unwrap_or(0) * 1_000_000,
        };
        let m = Rfc3164Message {
            pri: Pri::new(pri).unwrap(),
            timestamp,
            hostname: hostname.as_deref(),
            tag: &tag,
            pid: pid.as_deref(),
            msg: msg.as_bytes(),
        };
        let mut wire = BytesMut::new();
        frame_into(&m.to_vec(), octet, &mut wire);
        let frames = feed(1 << 16, &wire, &[7]);
        prop_assert_eq!(frames.len(), 1);
        let p = parse(&frames[0].bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(p.pri.value(), pri);
        prop_assert_eq!(p.timestamp, Some(timestamp));
        prop_assert_eq!(p.hostname.as_deref(), hostname.as_deref());
        prop_assert_eq!(p.app_name.as_deref(), Some(tag.as_str()));
        prop_assert_eq!(p.proc_id.as_deref(), pid.as_deref());
        prop_assert_eq!(&p.msg, &msg);
    }
}
