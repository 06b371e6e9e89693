//! RFC 3164 (BSD) and what real senders make of it:
//! `<PRI>TIMESTAMP [HOSTNAME] [TAG[\[PID\]]:] MSG`.
//!
//! The timestamp is `Mmm dd hh:mm:ss` or an RFC 3339 stamp (rsyslog's forwarding
//! format). HOSTNAME is optional because Docker's default format leaves it out; a
//! first token shaped like a TAG (`name:` or `name[pid]:`) therefore means "no
//! hostname".

use memchr::memchr;

use crate::message::{msg_text, text, Format, Message, ParseError};
use crate::pri::Pri;
use crate::timestamp::{bsd, rfc3339};

/// TAG characters: printable ASCII except `[`, `]`, `:` and SP. Docker tags bring
/// `/`, `.`, `-` and `%`, so nothing narrower will do.
#[inline]
fn is_tag_byte(b: u8) -> bool {
    matches!(b, 0x21..=0x7E) && !matches!(b, b'[' | b']' | b':')
}

struct Tag<'a> {
    name: &'a [u8],
    pid: Option<&'a [u8]>,
    /// What follows `TAG:` and its one SP.
    msg: &'a [u8],
}

/// `name:` or `name[pid]:`, followed by SP or the end of the frame (so that an
/// IPv6 hostname such as `fe80::1` is not taken for a tag).
fn match_tag(b: &[u8]) -> Option<Tag<'_>> {
    let name_len = b.iter().position(|&c| !is_tag_byte(c)).unwrap_or(b.len());
    if name_len == 0 {
        return None;
    }
    let (name, mut rest) = b.split_at(name_len);
    let mut pid = None;
    if let Some(after_bracket) = rest.strip_prefix(b"[") {
        let close = memchr(b']', after_bracket)?;
        let p = &after_bracket[..close];
        if p.contains(&b' ') || p.contains(&b'[') {
            return None;
        }
        pid = (!p.is_empty()).then_some(p);
        rest = &after_bracket[close + 1..];
    }
    let msg = match rest {
        [b':'] => &rest[1..],
        [b':', b' ', msg @ ..] => msg,
        _ => return None,
    };
    Some(Tag { name, pid, msg })
}

fn skip_spaces(b: &[u8]) -> &[u8] {
    let n = b.iter().position(|&c| c != b' ').unwrap_or(b.len());
    &b[n..]
}

/// `body` follows `<PRI>` (and its optional SP) inside `frame`.
pub(crate) fn parse_body<'a>(
    frame: &'a [u8],
    pri: Pri,
    body: &'a [u8],
) -> Result<Message<'a>, ParseError> {
    let parsed = if body.first().is_some_and(u8::is_ascii_digit) {
        rfc3339(body)
    } else {
        bsd(body)
    };
    let (timestamp, after) = parsed.ok_or(ParseError::at(
        frame,
        body,
        "missing or invalid RFC 3164 TIMESTAMP",
    ))?;
    let raw = &body[..body.len() - after.len()];
    let header = match after {
        [] => after,
        [b' ', h @ ..] => skip_spaces(h),
        _ => return Err(ParseError::at(frame, after, "expected SP after TIMESTAMP")),
    };

    let (hostname, tag, msg) = match match_tag(header) {
        Some(tag) => (None, Some(tag), &b""[..]),
        None => {
            let (host, rest) = match memchr(b' ', header) {
                Some(k) => (&header[..k], skip_spaces(&header[k + 1..])),
                None => (header, &b""[..]),
            };
            let host = (!host.is_empty()).then_some(host);
            match match_tag(rest) {
                Some(tag) => (host, Some(tag), &b""[..]),
                None => (host, None, rest),
            }
        }
    };
    let (app_name, proc_id, msg) = match tag {
        Some(t) => (Some(text(t.name)), t.pid.map(text), t.msg),
        None => (None, None, msg),
    };

    Ok(Message {
        pri,
        format: Format::Rfc3164,
        timestamp: Some(timestamp),
        timestamp_raw: std::str::from_utf8(raw).ok(),
        hostname: hostname.map(text),
        app_name,
        proc_id,
        msg_id: None,
        structured_data: Vec::new(),
        msg: msg_text(msg),
    })
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use crate::timestamp::Timestamp;
    use crate::{parse, Message};

    fn fields<'m>(
        m: &'m Message<'_>,
    ) -> (Option<&'m str>, Option<&'m str>, Option<&'m str>, &'m str) {
        (
            m.hostname.as_deref(),
            m.app_name.as_deref(),
            m.proc_id.as_deref(),
            &m.msg,
        )
    }

    fn bsd(month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Option<Timestamp> {
        Some(Timestamp::Bsd {
            month,
            day,
            hour,
            minute,
            second,
            nanos: 0,
        })
    }

    #[test]
    fn host_and_tag() {
        let m = parse(b"<13>Nov 25 04:45:01 myhost root: hello").unwrap();
        assert_eq!(m.format, crate::Format::Rfc3164);
        assert_eq!(m.timestamp, bsd(11, 25, 4, 45, 1));
        assert_eq!(m.timestamp_raw, Some("Nov 25 04:45:01"));
        assert_eq!(fields(&m), (Some("myhost"), Some("root"), None, "hello"));
        assert_eq!(m.msg_id, None);
        assert!(m.structured_data.is_empty());
        assert!(matches!(m.msg, Cow::Borrowed(_)));
    }

    #[test]
    fn logstash_syslog_line() {
        let m = parse(b"<164>Oct 26 15:19:25 1.2.3.4 %ASA-4-106023: Deny udp src DRAC:10.1.2.3/43434 dst outside:192.168.0.1/53 by access-group \"acl_drac\" [0x0, 0x0]").unwrap();
        assert_eq!(
            (m.pri.value(), m.pri.facility(), m.pri.severity()),
            (164, 20, 4)
        );
        assert_eq!(m.timestamp, bsd(10, 26, 15, 19, 25));
        assert_eq!(
            fields(&m),
            (
                Some("1.2.3.4"),
                Some("%ASA-4-106023"),
                None,
                "Deny udp src DRAC:10.1.2.3/43434 dst outside:192.168.0.1/53 by access-group \"acl_drac\" [0x0, 0x0]"
            )
        );
    }

    #[test]
    fn logstash_ecs_precision_kernel() {
        let m = parse(b"<133>Mar 11 08:44:43 precision kernel: [765135.424096] mce: CPU6: Package temperature/speed normal").unwrap();
        assert_eq!((m.pri.facility(), m.pri.severity()), (16, 5));
        assert_eq!(
            fields(&m),
            (
                Some("precision"),
                Some("kernel"),
                None,
                "[765135.424096] mce: CPU6: Package temperature/speed normal"
            )
        );
    }

    #[test]
    fn docker_default_has_no_hostname() {
        let m = parse(b"<30>Nov 25 03:35:24 14223bda5336[5388]: hello 1").unwrap();
        assert_eq!((m.pri.facility(), m.pri.severity()), (3, 6));
        assert_eq!(
            fields(&m),
            (None, Some("14223bda5336"), Some("5388"), "hello 1")
        );
        // Day space-padded as Go's `Jan _2` writes it, and a tag with '/', '.', '-'.
        let m = parse(b"<27>Nov  3 03:35:24 web/app.v1-x[5388]: boom").unwrap();
        assert_eq!(m.timestamp, bsd(11, 3, 3, 35, 24));
        assert_eq!(
            fields(&m),
            (None, Some("web/app.v1-x"), Some("5388"), "boom")
        );
    }

    #[test]
    fn docker_rfc3164_has_hostname() {
        let m = parse(b"<30>Nov  5 03:35:24 dockerhost 14223bda5336[5388]: hello").unwrap();
        assert_eq!(
            fields(&m),
            (
                Some("dockerhost"),
                Some("14223bda5336"),
                Some("5388"),
                "hello"
            )
        );
    }

    #[test]
    fn no_tag() {
        let m = parse(b"<13>Nov 25 04:45:01 myhost just text").unwrap();
        assert_eq!(fields(&m), (Some("myhost"), None, None, "just text"));
        let m = parse(b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!").unwrap();
        assert_eq!(fields(&m), (Some("10.0.0.99"), None, None, "Use the BFG!"));
        let m = parse(b"<13>Feb  5 17:32:18 onlyhost").unwrap();
        assert_eq!(fields(&m), (Some("onlyhost"), None, None, ""));
        let m = parse(b"<13>Feb  5 17:32:18").unwrap();
        assert_eq!(fields(&m), (None, None, None, ""));
        // A tag needs SP (or the end) after its colon: IPv6 hosts are not tags.
        let m = parse(b"<13>Feb  5 17:32:18 fe80::1 sshd[7]: up").unwrap();
        assert_eq!(fields(&m), (Some("fe80::1"), Some("sshd"), Some("7"), "up"));
        // `name[pid]` without the colon is message text.
        let m = parse(b"<13>Feb  5 17:32:18 h sshd[7] up").unwrap();
        assert_eq!(fields(&m), (Some("h"), None, None, "sshd[7] up"));
    }

    #[test]
    fn tag_edge_cases() {
        let m = parse(b"<13>Feb  5 17:32:18 h app:").unwrap();
        assert_eq!(fields(&m), (Some("h"), Some("app"), None, ""));
        let m = parse(b"<13>Feb  5 17:32:18 h app[]:  two").unwrap();
        assert_eq!(fields(&m), (Some("h"), Some("app"), None, " two"));
        let m = parse(b"<13>Feb  5 17:32:18 h app:x y").unwrap();
        assert_eq!(fields(&m), (Some("h"), None, None, "app:x y"));
    }

    #[test]
    fn rfc3164_example_and_fraction() {
        let m =
            parse(b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8")
                .unwrap();
        assert_eq!(
            fields(&m),
            (
                Some("mymachine"),
                Some("su"),
                None,
                "'su root' failed for lonvick on /dev/pts/8"
            )
        );
        let m = parse(b"<34>Oct 11 22:14:15.123 mymachine su: x").unwrap();
        assert_eq!(
            m.timestamp,
            Some(Timestamp::Bsd {
                month: 10,
                day: 11,
                hour: 22,
                minute: 14,
                second: 15,
                nanos: 123_000_000
            })
        );
        assert_eq!(m.timestamp_raw, Some("Oct 11 22:14:15.123"));
    }

    #[test]
    fn iso_stamp_is_absolute() {
        let m = parse(b"<30>2024-05-01T12:00:00.123456+02:00 web1 nginx[42]: GET /").unwrap();
        assert_eq!(
            m.timestamp,
            Some(Timestamp::Absolute {
                unix_secs: 1_714_557_600,
                nanos: 123_456_000,
                offset_secs: 7200
            })
        );
        assert_eq!(m.timestamp_raw, Some("2024-05-01T12:00:00.123456+02:00"));
        assert_eq!(
            fields(&m),
            (Some("web1"), Some("nginx"), Some("42"), "GET /")
        );
        // srslog's DefaultFormatter: `<PRI> TIMESTAMP HOST TAG[PID]: MSG`.
        let m = parse(b"<30> 2024-05-01T12:00:00Z web1 app[1]: hi").unwrap();
        assert_eq!(m.format, crate::Format::Rfc3164);
        assert_eq!(fields(&m), (Some("web1"), Some("app"), Some("1"), "hi"));
    }

    #[test]
    fn unpadded_day() {
        let m = parse(b"<13>Nov 3 04:45:01 myhost root: hello").unwrap();
        assert_eq!(m.timestamp, bsd(11, 3, 4, 45, 1));
        assert_eq!(fields(&m), (Some("myhost"), Some("root"), None, "hello"));
    }

    #[test]
    fn bad_timestamps() {
        for (f, at) in [
            (&b"<13>hello world"[..], 4),
            (b"<13>", 4),
            (b"<13>Nov 31 04:45:01 h t: m", 4),
            (b"<13>2024-05-01T12:00:00 h t: m", 4),
            (b"<13>Nov 25 04:45:01:h t: m", 19),
        ] {
            let e = parse(f).unwrap_err();
            assert_eq!(e.offset, at, "{:?}: {e}", String::from_utf8_lossy(f));
        }
    }

    #[test]
    fn non_utf8_in_every_field() {
        let m = parse(b"<13>Nov 25 04:45:01 h\xFFst app[1\xFE]: m\xC0sg").unwrap();
        assert_eq!(
            fields(&m),
            (
                Some("h\u{FFFD}st"),
                Some("app"),
                Some("1\u{FFFD}"),
                "m\u{FFFD}sg"
            )
        );
        // A TAG is ASCII; a non-ASCII first word after the host is message text.
        let m = parse(b"<13>Nov 25 04:45:01 h \xFFapp: x").unwrap();
        assert_eq!(fields(&m), (Some("h"), None, None, "\u{FFFD}app: x"));
    }

    #[test]
    fn bom_is_stripped() {
        let m = parse(b"<13>Nov 25 04:45:01 h app: \xEF\xBB\xBFhi").unwrap();
        assert_eq!(m.msg, "hi");
    }
}
