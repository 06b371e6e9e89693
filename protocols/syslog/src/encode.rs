//! Client-side encoders: what rsyslog, Docker or a load generator would send. The
//! gateway itself never writes syslog; tests and the load generator do.
//!
//! Header fields are written as given: a value containing SP would shift every
//! field after it, exactly as it does for real senders (Docker tag templates with
//! spaces), so avoiding that is the caller's business. `None` and `""` become `-`.

use bytes::BufMut;

use crate::message::SdElement;
use crate::pri::Pri;
use crate::timestamp::{civil_from_days, Timestamp};

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Writes `n` in decimal, left-padded with `pad` to `width`.
fn put_uint(out: &mut impl BufMut, n: u64, width: usize, pad: u8) {
    let mut digits = [0u8; 20];
    let mut k = digits.len();
    let mut n = n;
    loop {
        k -= 1;
        digits[k] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for _ in (digits.len() - k)..width {
        out.put_u8(pad);
    }
    out.put_slice(&digits[k..]);
}

/// `.fffffffff`: `digits` places, or when `None` as few as keep every non-zero digit
/// (nothing at all for a whole second).
fn put_fraction(out: &mut impl BufMut, nanos: u32, digits: Option<u8>) {
    let nanos = nanos.min(999_999_999);
    let places = match digits {
        Some(d) => u32::from(d.min(9)),
        None if nanos == 0 => 0,
        None => {
            // Drop trailing zeros.
            let (mut places, mut n) = (9u32, nanos);
            while places > 0 && n.is_multiple_of(10) {
                n /= 10;
                places -= 1;
            }
            places
        }
    };
    if places > 0 {
        out.put_u8(b'.');
        put_uint(
            out,
            u64::from(nanos / 10u32.pow(9 - places)),
            places as usize,
            b'0',
        );
    }
}

/// RFC 3339 text of an instant, in the wall time of `offset_secs` (`Z` when 0).
/// `frac_digits`: fixed number of fraction digits (Docker's `rfc5424micro` uses 6),
/// or `None` for the fewest that lose nothing.
pub fn write_rfc3339(
    out: &mut impl BufMut,
    unix_secs: i64,
    nanos: u32,
    offset_secs: i32,
    frac_digits: Option<u8>,
) {
    // Offsets are written to the minute; seconds of offset are not representable.
    let offset_secs = offset_secs - offset_secs % 60;
    let local = unix_secs.saturating_add(i64::from(offset_secs));
    let (year, month, day) = civil_from_days(local.div_euclid(86_400));
    let sod = local.rem_euclid(86_400) as u64;
    // Years outside 0..=9999 have no RFC 3339 form; clamp rather than emit garbage.
    put_uint(out, year.clamp(0, 9999) as u64, 4, b'0');
    out.put_u8(b'-');
    put_uint(out, u64::from(month), 2, b'0');
    out.put_u8(b'-');
    put_uint(out, u64::from(day), 2, b'0');
    out.put_u8(b'T');
    put_uint(out, sod / 3600, 2, b'0');
    out.put_u8(b':');
    put_uint(out, sod / 60 % 60, 2, b'0');
    out.put_u8(b':');
    put_uint(out, sod % 60, 2, b'0');
    put_fraction(out, nanos, frac_digits);
    if offset_secs == 0 {
        out.put_u8(b'Z');
    } else {
        out.put_u8(if offset_secs < 0 { b'-' } else { b'+' });
        let abs = offset_secs.unsigned_abs();
        put_uint(out, u64::from(abs / 3600 % 100), 2, b'0');
        out.put_u8(b':');
        put_uint(out, u64::from(abs / 60 % 60), 2, b'0');
    }
}

/// A [`Timestamp`] as a 3164 header writes it: `Mmm dd hh:mm:ss` (day
/// space-padded, as Go's `Jan _2`) or RFC 3339 for an absolute one.
pub fn write_timestamp(out: &mut impl BufMut, ts: &Timestamp) {
    match *ts {
        Timestamp::Absolute {
            unix_secs,
            nanos,
            offset_secs,
        } => write_rfc3339(out, unix_secs, nanos, offset_secs, None),
        Timestamp::Bsd {
            month,
            day,
            hour,
            minute,
            second,
            nanos,
        } => {
            let m = MONTHS[usize::from(month.clamp(1, 12) - 1)];
            out.put_slice(m);
            out.put_u8(b' ');
            put_uint(out, u64::from(day), 2, b' ');
            out.put_u8(b' ');
            put_uint(out, u64::from(hour), 2, b'0');
            out.put_u8(b':');
            put_uint(out, u64::from(minute), 2, b'0');
            out.put_u8(b':');
            put_uint(out, u64::from(second), 2, b'0');
            put_fraction(out, nanos, None);
        }
    }
}

/// How an RFC 5424 TIMESTAMP is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StampField<'a> {
    /// `-`
    Nil,
    /// Written verbatim (it should be RFC 3339).
    Text(&'a str),
    /// Formatted with [`write_rfc3339`].
    Unix {
        secs: i64,
        nanos: u32,
        offset_secs: i32,
        frac_digits: Option<u8>,
    },
}

/// An RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [SP MSG]`.
#[derive(Clone, Debug)]
pub struct Rfc5424Message<'a> {
    pub pri: Pri,
    pub timestamp: StampField<'a>,
    pub hostname: Option<&'a str>,
    pub app_name: Option<&'a str>,
    pub proc_id: Option<&'a str>,
    pub msg_id: Option<&'a str>,
    /// Empty: `-`. Values are escaped; SD-IDs and names are written as given.
    pub structured_data: &'a [SdElement<'a>],
    /// Written after one SP; with no MSG and no BOM the SP is left out too.
    pub msg: &'a [u8],
    /// Put the UTF-8 BOM before MSG, as RFC 5424 asks of UTF-8 messages.
    pub bom: bool,
}

fn put_field(out: &mut impl BufMut, field: Option<&str>) {
    match field {
        Some(f) if !f.is_empty() => out.put_slice(f.as_bytes()),
        _ => out.put_u8(b'-'),
    }
}

impl<'a> Rfc5424Message<'a> {
    /// Every field nil, no SD, empty MSG.
    pub fn new(pri: Pri) -> Self {
        Rfc5424Message {
            pri,
            timestamp: StampField::Nil,
            hostname: None,
            app_name: None,
            proc_id: None,
            msg_id: None,
            structured_data: &[],
            msg: b"",
            bom: false,
        }
    }

    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_u8(b'<');
        put_uint(out, u64::from(self.pri.value()), 0, b'0');
        out.put_slice(b">1 ");
        match self.timestamp {
            StampField::Nil => out.put_u8(b'-'),
            StampField::Text(t) => put_field(out, Some(t)),
            StampField::Unix {
                secs,
                nanos,
                offset_secs,
                frac_digits,
            } => write_rfc3339(out, secs, nanos, offset_secs, frac_digits),
        }
        for field in [self.hostname, self.app_name, self.proc_id, self.msg_id] {
            out.put_u8(b' ');
            put_field(out, field);
        }
        out.put_u8(b' ');
        if self.structured_data.is_empty() {
            out.put_u8(b'-');
        }
        for e in self.structured_data {
            out.put_u8(b'[');
            out.put_slice(e.id.as_bytes());
            for (name, value) in &e.params {
                out.put_u8(b' ');
                out.put_slice(name.as_bytes());
                out.put_slice(b"=\"");
                for &b in value.as_bytes() {
                    if matches!(b, b'"' | b'\\' | b']') {
                        out.put_u8(b'\\');
                    }
                    out.put_u8(b);
                }
                out.put_u8(b'"');
            }
            out.put_u8(b']');
        }
        if self.bom || !self.msg.is_empty() {
            out.put_u8(b' ');
            if self.bom {
                out.put_slice(b"\xEF\xBB\xBF");
            }
            out.put_slice(self.msg);
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(64 + self.msg.len());
        self.encode(&mut v);
        v
    }
}

/// An RFC 3164 message: `<PRI>TIMESTAMP [HOSTNAME ]TAG[\[PID\]]: MSG`. Leaving out
/// the hostname gives Docker's default format.
#[derive(Clone, Debug)]
pub struct Rfc3164Message<'a> {
    pub pri: Pri,
    /// `Bsd` as `Mmm dd hh:mm:ss`, `Absolute` as RFC 3339 (rsyslog's forwarding format).
    pub timestamp: Timestamp,
    pub hostname: Option<&'a str>,
    /// Empty: no `TAG:` at all (and no PID).
    pub tag: &'a str,
    pub pid: Option<&'a str>,
    pub msg: &'a [u8],
}

impl Rfc3164Message<'_> {
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_u8(b'<');
        put_uint(out, u64::from(self.pri.value()), 0, b'0');
        out.put_u8(b'>');
        write_timestamp(out, &self.timestamp);
        if let Some(h) = self.hostname.filter(|h| !h.is_empty()) {
            out.put_u8(b' ');
            out.put_slice(h.as_bytes());
        }
        if !self.tag.is_empty() {
            out.put_u8(b' ');
            out.put_slice(self.tag.as_bytes());
            if let Some(pid) = self.pid {
                out.put_u8(b'[');
                out.put_slice(pid.as_bytes());
                out.put_u8(b']');
            }
            out.put_u8(b':');
        }
        out.put_u8(b' ');
        out.put_slice(self.msg);
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(64 + self.msg.len());
        self.encode(&mut v);
        v
    }
}

/// RFC 6587 octet counting: `MSG-LEN SP MSG`.
pub fn frame_octet_counted(msg: &[u8], out: &mut impl BufMut) {
    put_uint(out, msg.len() as u64, 0, b'0');
    out.put_u8(b' ');
    out.put_slice(msg);
}

/// RFC 6587 non-transparent framing: `MSG LF`. A MSG containing LF becomes two
/// messages on the receiving side; use octet counting for those.
pub fn frame_lf(msg: &[u8], out: &mut impl BufMut) {
    out.put_slice(msg);
    out.put_u8(b'\n');
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use bytes::BytesMut;

    use super::*;
    use crate::{parse, FrameDecoder};

    fn rfc3339(secs: i64, nanos: u32, off: i32, digits: Option<u8>) -> String {
        let mut v = Vec::new();
        write_rfc3339(&mut v, secs, nanos, off, digits);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn rfc3339_text() {
        assert_eq!(
            rfc3339(1_065_910_455, 3_000_000, 0, None),
            "2003-10-11T22:14:15.003Z"
        );
        assert_eq!(
            rfc3339(1_061_727_255, 3_000, -25_200, Some(6)),
            "2003-08-24T05:14:15.000003-07:00"
        );
        assert_eq!(
            rfc3339(1_714_557_600, 0, 7200, None),
            "2024-05-01T12:00:00+02:00"
        );
        assert_eq!(
            rfc3339(1_714_557_600, 0, 7200, Some(6)),
            "2024-05-01T12:00:00.000000+02:00"
        );
        assert_eq!(
            rfc3339(0, 999_999_999, 19_800, Some(9)),
            "1970-01-01T05:30:00.999999999+05:30"
        );
        assert_eq!(rfc3339(-1, 0, 0, Some(0)), "1969-12-31T23:59:59Z");
        // Out-of-range inputs stay well-formed instead of panicking.
        assert_eq!(rfc3339(i64::MAX, u32::MAX, i32::MIN, Some(200)).len(), 35);
    }

    #[test]
    fn srslog_length_framer_vector() {
        let mut out = Vec::new();
        frame_octet_counted(b"input message", &mut out);
        assert_eq!(out, b"13 input message");
        let mut out = BytesMut::new();
        frame_lf(b"<1>x", &mut out);
        assert_eq!(&out[..], b"<1>x\n");
    }

    #[test]
    fn docker_rfc5424_tls_vector() {
        // srslog appends `\n` to the message before the length framer counts it.
        let mut line = Rfc5424Message {
            timestamp: StampField::Unix {
                secs: 1_714_557_600,
                nanos: 0,
                offset_secs: 7200,
                frac_digits: None,
            },
            hostname: Some("dockerhost"),
            app_name: Some("3f2a1b4c5d6e"),
            proc_id: Some("1234"),
            msg_id: Some("3f2a1b4c5d6e"),
            msg: b"hello world",
            ..Rfc5424Message::new(Pri::from_parts(3, 6).unwrap())
        }
        .to_vec();
        line.push(b'\n');
        let mut wire = Vec::new();
        frame_octet_counted(&line, &mut wire);
        assert_eq!(
            wire,
            &b"88 <30>1 2024-05-01T12:00:00+02:00 dockerhost 3f2a1b4c5d6e 1234 3f2a1b4c5d6e - hello world\n"[..]
        );
    }

    #[test]
    fn rfc5424_example_3_bytes() {
        let sd = [SdElement {
            id: "exampleSDID@32473".into(),
            params: vec![
                ("iut".into(), "3".into()),
                ("eventSource".into(), "Application".into()),
                ("eventID".into(), "1011".into()),
            ],
        }];
        let v = Rfc5424Message {
            timestamp: StampField::Text("2003-10-11T22:14:15.003Z"),
            hostname: Some("mymachine.example.com"),
            app_name: Some("evntslog"),
            msg_id: Some("ID47"),
            structured_data: &sd,
            msg: b"An application event log entry...",
            bom: true,
            ..Rfc5424Message::new(Pri::new(165).unwrap())
        }
        .to_vec();
        assert_eq!(
            v,
            &b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \xEF\xBB\xBFAn application event log entry..."[..]
        );
    }

    #[test]
    fn nil_everything() {
        let v = Rfc5424Message {
            hostname: Some(""),
            ..Rfc5424Message::new(Pri::new(0).unwrap())
        }
        .to_vec();
        assert_eq!(v, b"<0>1 - - - - - -");
    }

    #[test]
    fn sd_escaping_round_trips() {
        let sd = [SdElement {
            id: "x@1".into(),
            params: vec![("k".into(), r#"a"b\c]d\n"#.into())],
        }];
        let v = Rfc5424Message {
            structured_data: &sd,
            ..Rfc5424Message::new(Pri::new(14).unwrap())
        }
        .to_vec();
        assert_eq!(v, &br#"<14>1 - - - - - [x@1 k="a\"b\\c\]d\\n"]"#[..]);
        let m = parse(&v).unwrap();
        assert_eq!(m.structured_data, sd);
    }

    #[test]
    fn rfc3164_forms() {
        let ts = Timestamp::Bsd {
            month: 11,
            day: 3,
            hour: 3,
            minute: 35,
            second: 24,
            nanos: 0,
        };
        let docker_default = Rfc3164Message {
            pri: Pri::new(30).unwrap(),
            timestamp: ts,
            hostname: None,
            tag: "14223bda5336",
            pid: Some("5388"),
            msg: b"hello 1",
        };
        assert_eq!(
            docker_default.to_vec(),
            b"<30>Nov  3 03:35:24 14223bda5336[5388]: hello 1"
        );
        let with_host = Rfc3164Message {
            hostname: Some("myhost"),
            tag: "root",
            pid: None,
            timestamp: Timestamp::Bsd {
                month: 11,
                day: 25,
                hour: 4,
                minute: 45,
                second: 1,
                nanos: 250_000_000,
            },
            ..docker_default.clone()
        };
        assert_eq!(
            with_host.to_vec(),
            b"<30>Nov 25 04:45:01.25 myhost root: hello 1"
        );
        let no_tag = Rfc3164Message {
            tag: "",
            pid: Some("ignored"),
            ..with_host.clone()
        };
        assert_eq!(no_tag.to_vec(), b"<30>Nov 25 04:45:01.25 myhost hello 1");
    }

    #[test]
    fn rfc3164_round_trip_through_both_framings() {
        let msgs = [
            Rfc3164Message {
                pri: Pri::new(13).unwrap(),
                timestamp: Timestamp::Bsd {
                    month: 12,
                    day: 25,
                    hour: 4,
                    minute: 45,
                    second: 1,
                    nanos: 250_000_000,
                },
                hostname: Some("myhost"),
                tag: "root",
                pid: None,
                msg: b"hello",
            },
            Rfc3164Message {
                pri: Pri::new(191).unwrap(),
                timestamp: Timestamp::Absolute {
                    unix_secs: 1_714_557_600,
                    nanos: 123_456_000,
                    offset_secs: 7200,
                },
                hostname: None,
                tag: "web/app.v1",
                pid: Some("42"),
                msg: "multi\nline \u{e9}".as_bytes(),
            },
        ];
        let mut wire = BytesMut::new();
        // Octet-counted first: a connection that starts LF-framed stays LF-framed.
        for (k, m) in msgs.iter().enumerate() {
            if k % 2 == 1 && !m.msg.contains(&b'\n') {
                frame_lf(&m.to_vec(), &mut wire);
            } else {
                frame_octet_counted(&m.to_vec(), &mut wire);
            }
        }
        let mut dec = FrameDecoder::new(1024);
        for m in &msgs {
            let f = dec.decode(&mut wire).unwrap().unwrap();
            let p = parse(&f.bytes).unwrap();
            assert_eq!(p.pri, m.pri);
            assert_eq!(p.timestamp, Some(m.timestamp));
            assert_eq!(p.hostname.as_deref(), m.hostname);
            assert_eq!(p.app_name.as_deref(), Some(m.tag));
            assert_eq!(p.proc_id.as_deref(), m.pid);
            assert_eq!(p.msg, Cow::Borrowed(std::str::from_utf8(m.msg).unwrap()));
        }
        assert_eq!(dec.decode(&mut wire), Ok(None));
    }
}
