//! The parsed record and the one entry point that tells RFC 5424 from RFC 3164.

use std::borrow::Cow;
use std::fmt;

use crate::pri::{parse_pri, Pri};
use crate::timestamp::Timestamp;
use crate::{rfc3164, rfc5424};

/// Which header layout the message used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Rfc5424,
    Rfc3164,
}

/// One syslog message, borrowing from the frame wherever the bytes are valid UTF-8
/// and need no unescaping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub pri: Pri,
    pub format: Format,
    /// `None` for the RFC 5424 NILVALUE.
    pub timestamp: Option<Timestamp>,
    /// The timestamp text as received (Logstash's legacy mode keeps it).
    pub timestamp_raw: Option<&'a str>,
    pub hostname: Option<Cow<'a, str>>,
    /// RFC 5424 APP-NAME, or the RFC 3164 TAG.
    pub app_name: Option<Cow<'a, str>>,
    /// RFC 5424 PROCID, or the `[PID]` of an RFC 3164 TAG.
    pub proc_id: Option<Cow<'a, str>>,
    /// RFC 5424 MSGID; always `None` for RFC 3164.
    pub msg_id: Option<Cow<'a, str>>,
    /// Empty for the NILVALUE and for RFC 3164.
    pub structured_data: Vec<SdElement<'a>>,
    /// Lossy UTF-8, leading BOM removed.
    pub msg: Cow<'a, str>,
}

/// One `[SD-ID name="value" ...]` element; values are unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdElement<'a> {
    pub id: Cow<'a, str>,
    pub params: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> SdElement<'a> {
    /// The first value of the parameter `name` (a name may repeat).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    /// Detaches the element from the frame it was parsed from.
    pub fn into_owned(self) -> SdElement<'static> {
        SdElement {
            id: Cow::Owned(self.id.into_owned()),
            params: self
                .params
                .into_iter()
                .map(|(n, v)| (Cow::Owned(n.into_owned()), Cow::Owned(v.into_owned())))
                .collect(),
        }
    }
}

impl<'a> Message<'a> {
    /// The element with SD-ID `id`, if present.
    pub fn sd(&self, id: &str) -> Option<&SdElement<'a>> {
        self.structured_data.iter().find(|e| e.id == id)
    }

    /// Detaches the message from the frame it was parsed from, except for
    /// `timestamp_raw`, which is dropped (the parsed `timestamp` stays).
    pub fn into_owned(self) -> Message<'static> {
        fn own(c: Option<Cow<'_, str>>) -> Option<Cow<'static, str>> {
            c.map(|c| Cow::Owned(c.into_owned()))
        }
        Message {
            pri: self.pri,
            format: self.format,
            timestamp: self.timestamp,
            timestamp_raw: None,
            hostname: own(self.hostname),
            app_name: own(self.app_name),
            proc_id: own(self.proc_id),
            msg_id: own(self.msg_id),
            structured_data: self
                .structured_data
                .into_iter()
                .map(SdElement::into_owned)
                .collect(),
            msg: Cow::Owned(self.msg.into_owned()),
        }
    }
}

/// The frame is not syslog. The gateway keeps such a frame as a raw event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset inside the frame where parsing gave up.
    pub offset: usize,
    pub reason: &'static str,
}

impl ParseError {
    pub(crate) const fn new(offset: usize, reason: &'static str) -> Self {
        ParseError { offset, reason }
    }

    /// Offset of `rest` (a suffix of `frame`) inside `frame`.
    pub(crate) fn at(frame: &[u8], rest: &[u8], reason: &'static str) -> Self {
        ParseError::new(frame.len().saturating_sub(rest.len()), reason)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (byte {} of the frame)", self.reason, self.offset)
    }
}

impl std::error::Error for ParseError {}

/// Parses one syslog message (a frame from [`crate::FrameDecoder`] or a UDP datagram
/// after [`crate::trim_datagram`]). `<PRI>1 ` selects RFC 5424, anything else after
/// the PRI is read as RFC 3164. Bytes that are not UTF-8 never fail the parse.
pub fn parse(frame: &[u8]) -> Result<Message<'_>, ParseError> {
    let (pri, rest) = parse_pri(frame)?;
    match rest {
        [b'1', b' ', body @ ..] => rfc5424::parse_body(frame, pri, body),
        _ => rfc3164::parse_body(frame, pri, rest),
    }
}

/// `bytes` as text, borrowed when valid UTF-8. `str::from_utf8` first: its ASCII
/// fast path is several times quicker than `from_utf8_lossy`'s chunk iterator,
/// and valid text is the common case.
#[inline]
pub fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The MSG part: lossy UTF-8 without a leading BOM.
#[inline]
pub(crate) fn msg_text(bytes: &[u8]) -> Cow<'_, str> {
    text(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
}
