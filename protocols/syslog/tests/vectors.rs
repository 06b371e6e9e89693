//! The test vectors of the protocol reference (§2.6), end to end: wire bytes →
//! `FrameDecoder` (or `trim_datagram` for UDP) → `parse`.

use bytes::BytesMut;
use logport_syslog::{parse, trim_datagram, Format, FrameDecoder, Framing, Timestamp};

/// All frames of `wire`, fed in `read`-byte pieces, EOF included.
fn frames(wire: &[u8], read: usize) -> Vec<(Vec<u8>, Framing)> {
    let mut dec = FrameDecoder::new(64 * 1024);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in wire.chunks(read) {
        buf.extend_from_slice(chunk);
        while let Some(f) = dec.decode(&mut buf).expect("frames") {
            out.push((f.bytes.to_vec(), f.framing));
        }
    }
    while let Some(f) = dec.decode_eof(&mut buf).expect("frames") {
        out.push((f.bytes.to_vec(), f.framing));
    }
    out
}

#[test]
fn docker_rfc5424_over_tcp_tls() {
    let wire = b"88 <30>1 2024-05-01T12:00:00+02:00 dockerhost 3f2a1b4c5d6e 1234 3f2a1b4c5d6e - hello world\n";
    for read in [1, 7, wire.len()] {
        let f = frames(wire, read);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].1, Framing::OctetCounting);
        let m = parse(&f[0].0).unwrap();
        assert_eq!(m.format, Format::Rfc5424);
        assert_eq!((m.pri.facility(), m.pri.severity()), (3, 6));
        assert_eq!(
            m.timestamp,
            Some(Timestamp::Absolute {
                unix_secs: 1_714_557_600,
                nanos: 0,
                offset_secs: 7200
            })
        );
        assert_eq!(m.hostname.as_deref(), Some("dockerhost"));
        assert_eq!(m.app_name.as_deref(), Some("3f2a1b4c5d6e"));
        assert_eq!(m.msg_id.as_deref(), Some("3f2a1b4c5d6e"));
        assert_eq!(m.proc_id.as_deref(), Some("1234"));
        assert!(m.structured_data.is_empty());
        assert_eq!(m.msg, "hello world");
    }
}

#[test]
fn vector_non_octet_then_logstash_lines_on_one_stream() {
    let wire: &[u8] = b"<57>Mar 25 21:47:46 gleichner6005 quaerat[2444]: There were 8 penguins in the shop.\n\
        <164>Oct 26 15:19:25 1.2.3.4 %ASA-4-106023: Deny udp src DRAC:10.1.2.3/43434 dst outside:192.168.0.1/53\r\n\
        <133>Mar 11 08:44:43 precision kernel: [765135.424096] mce: CPU6: Package temperature/speed normal\n\
        13 input message";
    let f = frames(wire, 5);
    assert_eq!(f.len(), 4);

    let m = parse(&f[0].0).unwrap();
    assert_eq!(m.hostname.as_deref(), Some("gleichner6005"));
    assert_eq!(m.app_name.as_deref(), Some("quaerat"));
    assert_eq!(m.proc_id.as_deref(), Some("2444"));
    assert_eq!(m.msg, "There were 8 penguins in the shop.");

    let m = parse(&f[1].0).unwrap();
    assert_eq!(
        (m.pri.value(), m.pri.facility(), m.pri.severity()),
        (164, 20, 4)
    );
    assert_eq!(m.hostname.as_deref(), Some("1.2.3.4"));
    assert_eq!(m.app_name.as_deref(), Some("%ASA-4-106023"));
    assert_eq!(m.timestamp_raw, Some("Oct 26 15:19:25"));
    assert_eq!(
        m.msg,
        "Deny udp src DRAC:10.1.2.3/43434 dst outside:192.168.0.1/53"
    );

    let m = parse(&f[2].0).unwrap();
    assert_eq!(m.hostname.as_deref(), Some("precision"));
    assert_eq!(m.app_name.as_deref(), Some("kernel"));
    assert_eq!(
        m.msg,
        "[765135.424096] mce: CPU6: Package temperature/speed normal"
    );

    // On a connection that started LF-framed, a digit-led line is a line, not a count.
    assert_eq!(
        (f[3].0.as_slice(), f[3].1),
        (&b"13 input message"[..], Framing::NonTransparent)
    );
    // srslog's framer vector on a connection of its own is octet-counted (and not syslog).
    let f = frames(b"13 input message", 5);
    assert_eq!(
        (f[0].0.as_slice(), f[0].1),
        (&b"input message"[..], Framing::OctetCounting)
    );
    let e = parse(&f[0].0).unwrap_err();
    assert_eq!(e.offset, 0);
}

#[test]
fn docker_default_format_over_udp() {
    // srslog appends `\n` even to datagrams.
    let datagram = b"<30>Nov 25 03:35:24 14223bda5336[5388]: hello 1\n";
    let m = parse(trim_datagram(datagram)).unwrap();
    assert_eq!(m.format, Format::Rfc3164);
    assert_eq!(m.hostname, None);
    assert_eq!(m.app_name.as_deref(), Some("14223bda5336"));
    assert_eq!(m.proc_id.as_deref(), Some("5388"));
    assert_eq!(m.msg, "hello 1");
    assert_eq!(
        m.timestamp,
        Some(Timestamp::Bsd {
            month: 11,
            day: 25,
            hour: 3,
            minute: 35,
            second: 24,
            nanos: 0
        })
    );
}
