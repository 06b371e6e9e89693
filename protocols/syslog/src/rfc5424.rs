//! RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [SP MSG]`.
//!
//! Header fields are split by hand (one `memchr` each) and the fixed-width
//! timestamp is read by position; the structured data, which has a grammar worth
//! the name, goes through nom. Field
//! length limits of the RFC are not enforced: Docker puts whole tags in APP-NAME
//! and MSGID, and a receiver gains nothing by refusing them.

use std::borrow::Cow;

use memchr::{memchr, memchr2};
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::combinator::cut;
use nom::error::{Error, ErrorKind};
use nom::multi::{many0, many1};
use nom::sequence::preceded;
use nom::{IResult, Parser};

use crate::message::{msg_text, text, Format, Message, ParseError, SdElement};
use crate::pri::Pri;
use crate::timestamp::rfc3339;

/// Splits off the next space-delimited field: `(field, rest after the SP)`, with
/// `rest = None` when the frame ends inside the field.
#[inline]
fn split_field(b: &[u8]) -> (&[u8], Option<&[u8]>) {
    match memchr(b' ', b) {
        Some(k) => (&b[..k], Some(&b[k + 1..])),
        None => (b, None),
    }
}

#[inline]
fn nil_or_text(field: &[u8]) -> Option<Cow<'_, str>> {
    if field == b"-" {
        None
    } else {
        Some(text(field))
    }
}

/// `body` follows `<PRI>1 ` inside `frame` (kept for error offsets).
pub(crate) fn parse_body<'a>(
    frame: &'a [u8],
    pri: Pri,
    body: &'a [u8],
) -> Result<Message<'a>, ParseError> {
    let (ts_field, rest) = split_field(body);
    let (timestamp, timestamp_raw) = if ts_field == b"-" {
        (None, None)
    } else {
        match rfc3339(ts_field) {
            Some((ts, [])) => (Some(ts), std::str::from_utf8(ts_field).ok()),
            _ => return Err(ParseError::at(frame, body, "invalid RFC 3339 TIMESTAMP")),
        }
    };

    let mut fields: [&[u8]; 4] = [b""; 4];
    const MISSING: [&str; 4] = [
        "missing HOSTNAME",
        "missing APP-NAME",
        "missing PROCID",
        "missing MSGID",
    ];
    let mut rest = rest.ok_or(ParseError::new(frame.len(), MISSING[0]))?;
    let mut after_msgid = None;
    for (k, slot) in fields.iter_mut().enumerate() {
        let (field, next) = split_field(rest);
        if field.is_empty() {
            return Err(ParseError::at(
                frame,
                rest,
                "empty header field (two spaces)",
            ));
        }
        *slot = field;
        match (next, MISSING.get(k + 1)) {
            (Some(next), _) => rest = next,
            (None, Some(missing)) => return Err(ParseError::new(frame.len(), missing)),
            (None, None) => {}
        }
        if k == 3 {
            after_msgid = next;
        }
    }
    let [hostname, app_name, proc_id, msg_id] = fields;

    let (structured_data, msg) = match after_msgid {
        // Lenient: a message that ends right after MSGID (with or without the SP)
        // is read as having nil SD and no MSG.
        None | Some([]) => (Vec::new(), &b""[..]),
        Some(sd) => parse_sd(frame, sd)?,
    };

    Ok(Message {
        pri,
        format: Format::Rfc5424,
        timestamp,
        timestamp_raw,
        hostname: nil_or_text(hostname),
        app_name: nil_or_text(app_name),
        proc_id: nil_or_text(proc_id),
        msg_id: nil_or_text(msg_id),
        structured_data,
        msg: msg_text(msg),
    })
}

/// STRUCTURED-DATA and what follows it: `(elements, MSG bytes)`.
fn parse_sd<'a>(
    frame: &'a [u8],
    sd: &'a [u8],
) -> Result<(Vec<SdElement<'a>>, &'a [u8]), ParseError> {
    let (elements, rest) = match sd.first() {
        Some(b'-') => (Vec::new(), &sd[1..]),
        Some(b'[') => match many1(sd_element).parse(sd) {
            Ok((rest, elements)) => (elements, rest),
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
                return Err(ParseError::at(frame, e.input, "malformed STRUCTURED-DATA"))
            }
            Err(nom::Err::Incomplete(_)) => {
                return Err(ParseError::new(frame.len(), "malformed STRUCTURED-DATA"))
            }
        },
        _ => {
            return Err(ParseError::at(
                frame,
                sd,
                "expected STRUCTURED-DATA ('-' or '[')",
            ))
        }
    };
    match rest {
        [] => Ok((elements, rest)),
        [b' ', msg @ ..] => Ok((elements, msg)),
        _ => Err(ParseError::at(
            frame,
            rest,
            "expected SP after STRUCTURED-DATA",
        )),
    }
}

/// SD-NAME: printable, not `=`, SP, `]` or `"`. Bytes above 0x7F are let through
/// (and decoded lossily) so that a non-ASCII name does not cost the whole message.
#[inline]
fn is_sd_name_byte(b: u8) -> bool {
    b > b' ' && b != b'=' && b != b']' && b != b'"' && b != 0x7F
}

fn sd_name(i: &[u8]) -> IResult<&[u8], &[u8]> {
    take_while1(is_sd_name_byte).parse(i)
}

/// `"value"` with `\"`, `\\` and `\]` unescaped; any other backslash is literal.
fn sd_value(i: &[u8]) -> IResult<&[u8], Cow<'_, str>> {
    let (body, _) = tag(&b"\""[..]).parse(i)?;
    let mut k = 0;
    let mut escaped = false;
    let end = loop {
        match body.get(k..).and_then(|b| memchr2(b'"', b'\\', b)) {
            Some(j) if body[k + j] == b'"' => break k + j,
            Some(j) => {
                escaped = true;
                // The byte after a backslash never closes the value.
                k += j + 2;
            }
            None => return Err(nom::Err::Error(Error::new(i, ErrorKind::Char))),
        }
    };
    let raw = &body[..end];
    let value = if escaped {
        Cow::Owned(String::from_utf8_lossy(&unescape(raw)).into_owned())
    } else {
        text(raw)
    };
    Ok((&body[end + 1..], value))
}

fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut it = raw.iter().copied().peekable();
    while let Some(b) = it.next() {
        if b == b'\\' {
            if let Some(&n @ (b'"' | b'\\' | b']')) = it.peek() {
                out.push(n);
                it.next();
                continue;
            }
        }
        out.push(b);
    }
    out
}

fn sd_param(i: &[u8]) -> IResult<&[u8], (Cow<'_, str>, Cow<'_, str>)> {
    // Once `name=` is seen, a bad value is this element's error, not a reason
    // to backtrack and report the SP before it.
    let (rest, (name, _, value)) = (sd_name, tag(&b"="[..]), cut(sd_value)).parse(i)?;
    Ok((rest, (text(name), value)))
}

fn sd_element(i: &[u8]) -> IResult<&[u8], SdElement<'_>> {
    let spaces = |i| take_while(|b| b == b' ').parse(i);
    let (rest, (_, id, params, _, _)) = (
        tag(&b"["[..]),
        sd_name,
        many0(preceded(take_while1(|b| b == b' '), sd_param)),
        spaces,
        tag(&b"]"[..]),
    )
        .parse(i)?;
    Ok((
        rest,
        SdElement {
            id: text(id),
            params,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;
    use crate::timestamp::Timestamp;

    fn ts(m: &Message<'_>) -> Option<(i64, u32, i32)> {
        match m.timestamp {
            Some(Timestamp::Absolute {
                unix_secs,
                nanos,
                offset_secs,
            }) => Some((unix_secs, nanos, offset_secs)),
            _ => None,
        }
    }

    fn s<'m>(c: &'m Option<Cow<'_, str>>) -> Option<&'m str> {
        c.as_deref()
    }

    #[test]
    fn rfc5424_example_1_no_sd_with_bom() {
        let m = parse(
            b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8",
        )
        .unwrap();
        assert_eq!(m.format, Format::Rfc5424);
        assert_eq!((m.pri.facility(), m.pri.severity()), (4, 2));
        assert_eq!(ts(&m), Some((1_065_910_455, 3_000_000, 0)));
        assert_eq!(m.timestamp_raw, Some("2003-10-11T22:14:15.003Z"));
        assert_eq!(s(&m.hostname), Some("mymachine.example.com"));
        assert_eq!(s(&m.app_name), Some("su"));
        assert_eq!(s(&m.proc_id), None);
        assert_eq!(s(&m.msg_id), Some("ID47"));
        assert!(m.structured_data.is_empty());
        assert_eq!(m.msg, "'su root' failed for lonvick on /dev/pts/8");
        assert!(matches!(m.msg, Cow::Borrowed(_)));
    }

    #[test]
    fn rfc5424_example_2_offset_and_micros() {
        let m = parse(
            b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
        )
        .unwrap();
        assert_eq!((m.pri.facility(), m.pri.severity()), (20, 5));
        assert_eq!(ts(&m), Some((1_061_727_255, 3_000, -25_200)));
        assert_eq!(s(&m.hostname), Some("192.0.2.1"));
        assert_eq!(s(&m.app_name), Some("myproc"));
        assert_eq!(s(&m.proc_id), Some("8710"));
        assert_eq!(s(&m.msg_id), None);
        assert_eq!(m.msg, "%% It's time to make the do-nuts.");
    }

    #[test]
    fn rfc5424_example_3_sd_and_msg() {
        let m = parse(
            b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \xEF\xBB\xBFAn application event log entry...",
        )
        .unwrap();
        assert_eq!(s(&m.app_name), Some("evntslog"));
        assert_eq!(m.structured_data.len(), 1);
        let e = &m.structured_data[0];
        assert_eq!(e.id, "exampleSDID@32473");
        assert_eq!(
            e.params,
            vec![
                (Cow::from("iut"), Cow::from("3")),
                (Cow::from("eventSource"), Cow::from("Application")),
                (Cow::from("eventID"), Cow::from("1011")),
            ]
        );
        assert_eq!(m.msg, "An application event log entry...");
    }

    #[test]
    fn rfc5424_example_4_sd_only() {
        let m = parse(
            b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]",
        )
        .unwrap();
        assert_eq!(m.structured_data.len(), 2);
        assert_eq!(
            m.sd("examplePriority@32473").and_then(|e| e.param("class")),
            Some("high")
        );
        assert_eq!(
            m.sd("exampleSDID@32473").and_then(|e| e.param("eventID")),
            Some("1011")
        );
        assert_eq!(m.msg, "");
    }

    #[test]
    fn all_nil() {
        let m = parse(b"<14>1 - - - - - -").unwrap();
        assert_eq!(m.timestamp, None);
        assert_eq!(m.timestamp_raw, None);
        assert_eq!(
            (s(&m.hostname), s(&m.app_name), s(&m.proc_id), s(&m.msg_id)),
            (None, None, None, None)
        );
        assert!(m.structured_data.is_empty());
        assert_eq!(m.msg, "");
        let m = parse(b"<14>1 - - - - - - ").unwrap();
        assert_eq!(m.msg, "");
        let m = parse(b"<14>1 - - - - - - - x").unwrap();
        assert_eq!(m.msg, "- x");
    }

    #[test]
    fn ends_after_msgid_is_nil_sd() {
        for f in [&b"<14>1 - h a p m"[..], b"<14>1 - h a p m "] {
            let m = parse(f).unwrap();
            assert_eq!(s(&m.msg_id), Some("m"));
            assert!(m.structured_data.is_empty());
            assert_eq!(m.msg, "");
        }
    }

    #[test]
    fn docker_rfc5424_and_micro() {
        let m = parse(
            b"<30>1 2024-05-01T12:00:00+02:00 dockerhost 3f2a1b4c5d6e 1234 3f2a1b4c5d6e - hello world",
        )
        .unwrap();
        assert_eq!((m.pri.facility(), m.pri.severity()), (3, 6));
        assert_eq!(ts(&m), Some((1_714_557_600, 0, 7200)));
        assert_eq!(s(&m.hostname), Some("dockerhost"));
        assert_eq!(s(&m.app_name), Some("3f2a1b4c5d6e"));
        assert_eq!(s(&m.proc_id), Some("1234"));
        assert_eq!(s(&m.msg_id), Some("3f2a1b4c5d6e"));
        assert_eq!(m.msg, "hello world");

        // rfc5424micro, with a long tag containing '/' and '.' in APP-NAME and MSGID.
        let tag = "registry.example.com/team/very-long-service-name-well-beyond-48-chars.1.abcdef";
        let line = format!("<27>1 2024-05-01T12:00:00.123456Z dockerhost {tag} 1234 {tag} - oops");
        let m = parse(line.as_bytes()).unwrap();
        assert_eq!(ts(&m), Some((1_714_564_800, 123_456_000, 0)));
        assert_eq!((m.pri.facility(), m.pri.severity()), (3, 3));
        assert_eq!(s(&m.app_name), Some(tag));
        assert_eq!(s(&m.msg_id), Some(tag));
        assert_eq!(m.msg, "oops");
    }

    #[test]
    fn sd_escapes() {
        let m =
            parse(br#"<14>1 - - - - - [id@1 a="q\"b\\s\]e" b="lit\n\x" c="" d="\\"] m"#).unwrap();
        let e = &m.structured_data[0];
        assert_eq!(e.param("a"), Some(r#"q"b\s]e"#));
        assert_eq!(e.param("b"), Some(r"lit\n\x"));
        assert_eq!(e.param("c"), Some(""));
        assert_eq!(e.param("d"), Some("\\"));
        assert!(matches!(e.params[1].1, Cow::Owned(_)));
        assert!(matches!(e.params[2].1, Cow::Borrowed(_)));
        assert_eq!(m.msg, "m");
    }

    #[test]
    fn sd_value_may_hold_spaces_brackets_and_lf() {
        let m = parse(b"<14>1 - - - - - [a x=\"1 ] [2\n3\"][b] body").unwrap();
        assert_eq!(m.structured_data[0].param("x"), Some("1 ] [2\n3"));
        assert_eq!(m.structured_data[1].id, "b");
        assert!(m.structured_data[1].params.is_empty());
        assert_eq!(m.msg, "body");
    }

    #[test]
    fn malformed_sd() {
        for (f, at) in [
            (&b"<14>1 - - - - - [id a=\"1\" b] m"[..], 26),
            (b"<14>1 - - - - - [id a=\"1] m", 22),
            (b"<14>1 - - - - - [id a=1] m", 22),
            (b"<14>1 - - - - - [] m", 17),
            (b"<14>1 - - - - - [id", 19),
            (b"<14>1 - - - - - [id a=\"1\"]x", 26),
            (b"<14>1 - - - - - -x", 17),
            (b"<14>1 - - - - - hello", 16),
            (b"<14>1 - - - - - [id a=\"\\", 22),
        ] {
            let e = parse(f).unwrap_err();
            assert_eq!(e.offset, at, "{:?}: {e}", String::from_utf8_lossy(f));
        }
    }

    #[test]
    fn header_errors() {
        let e = parse(b"<14>1 2003-13-11T22:14:15Z h a p m -").unwrap_err();
        assert_eq!((e.offset, e.reason), (6, "invalid RFC 3339 TIMESTAMP"));
        assert_eq!(parse(b"<14>1 -").unwrap_err().reason, "missing HOSTNAME");
        assert_eq!(parse(b"<14>1 - h").unwrap_err().reason, "missing APP-NAME");
        assert_eq!(parse(b"<14>1 - h a").unwrap_err().reason, "missing PROCID");
        assert_eq!(parse(b"<14>1 - h a p").unwrap_err().reason, "missing MSGID");
        assert_eq!(parse(b"<14>1 - h  a p m -").unwrap_err().offset, 10);
        assert!(parse(b"<14>1 ").is_err());
    }

    #[test]
    fn non_utf8_everywhere_is_lossy() {
        let f = b"<14>1 - h\xFF a\xFE p\xC3 m\x80 [i\xFFd k\xFE=\"v\xFF\" e=\"\\\"\xFF\"] b\xFFody";
        let m = parse(f).unwrap();
        assert_eq!(s(&m.hostname), Some("h\u{FFFD}"));
        assert_eq!(s(&m.app_name), Some("a\u{FFFD}"));
        assert_eq!(s(&m.proc_id), Some("p\u{FFFD}"));
        assert_eq!(s(&m.msg_id), Some("m\u{FFFD}"));
        let e = &m.structured_data[0];
        assert_eq!(e.id, "i\u{FFFD}d");
        assert_eq!(e.param("k\u{FFFD}"), Some("v\u{FFFD}"));
        assert_eq!(e.param("e"), Some("\"\u{FFFD}"));
        assert_eq!(m.msg, "b\u{FFFD}ody");
    }

    #[test]
    fn bom_only_stripped_at_start() {
        let m = parse(b"<14>1 - - - - - - \xEF\xBB\xBFa\xEF\xBB\xBFb").unwrap();
        assert_eq!(m.msg, "a\u{FEFF}b");
        let m = parse(b"<14>1 - - - - - - \xEF\xBB\xBF").unwrap();
        assert_eq!(m.msg, "");
    }

    #[test]
    fn pri_space_then_version() {
        let m = parse(b"<013> 1 - - - - - - x").unwrap();
        assert_eq!((m.pri.value(), m.format), (13, Format::Rfc5424));
    }
}
