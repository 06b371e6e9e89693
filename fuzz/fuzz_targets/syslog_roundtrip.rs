//! encode -> frame -> decode -> parse round trip of valid RFC 5424 messages:
//! any header fields within RFC 5424's alphabets and lengths, structured data
//! with values that need escaping, any UTF-8 MSG, octet-counted or LF-framed,
//! cut into arbitrary reads. Every field must come back as written.
#![no_main]
use std::borrow::Cow;

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use logport_syslog::{
    frame_lf, frame_octet_counted, parse, Format, FrameDecoder, Pri, Rfc5424Message, SdElement,
    StampField,
};

/// An SD-ID and its (name, value) params, before they are made valid.
type SdInput = (Vec<u8>, Vec<(Vec<u8>, String)>);

#[derive(Arbitrary, Debug)]
struct Input {
    pri: u8,
    hostname: Vec<u8>,
    app_name: Vec<u8>,
    proc_id: Vec<u8>,
    msg_id: Vec<u8>,
    sd: Vec<SdInput>,
    msg: String,
    bom: bool,
    octet_counted: bool,
    read: u8,
}

/// PRINTUSASCII (RFC 5424 §6), at most `max` long; `-` alone means nil.
fn field(raw: &[u8], max: usize) -> Option<String> {
    let s: String = raw
        .iter()
        .take(max)
        .map(|b| char::from(33 + b % 94))
        .collect();
    (!s.is_empty() && s != "-").then_some(s)
}

/// SD-NAME: PRINTUSASCII except `= SP ] "`, 1 to 32 long.
fn sd_name(raw: &[u8]) -> Option<String> {
    let s: String = field(raw, 32)?
        .chars()
        .map(|c| if matches!(c, '=' | ']' | '"') { '_' } else { c })
        .collect();
    Some(s)
}

fuzz_target!(|input: Input| {
    let pri = Pri::new(input.pri % (Pri::MAX + 1)).expect("in range");
    let hostname = field(&input.hostname, 255);
    let app_name = field(&input.app_name, 48);
    let proc_id = field(&input.proc_id, 128);
    let msg_id = field(&input.msg_id, 32);
    let sd: Vec<SdElement> = input
        .sd
        .iter()
        .filter_map(|(id, params)| {
            Some(SdElement {
                id: Cow::Owned(sd_name(id)?),
                params: params
                    .iter()
                    .filter_map(|(n, v)| Some((Cow::Owned(sd_name(n)?), Cow::Borrowed(v.as_str()))))
                    .collect(),
            })
        })
        .collect();
    // A leading BOM is stripped from MSG on purpose (RFC 5424 §6.4).
    let msg = input.msg.trim_start_matches('\u{feff}');
    let m = Rfc5424Message {
        pri,
        timestamp: StampField::Nil,
        hostname: hostname.as_deref(),
        app_name: app_name.as_deref(),
        proc_id: proc_id.as_deref(),
        msg_id: msg_id.as_deref(),
        structured_data: &sd,
        msg: msg.as_bytes(),
        bom: input.bom,
    };
    let line = m.to_vec();
    let mut wire = BytesMut::new();
    if input.octet_counted {
        frame_octet_counted(&line, &mut wire);
    } else if line.contains(&b'\n') || line.contains(&0) {
        // LF framing cannot carry a message with LF or NUL in it.
        return;
    } else {
        frame_lf(&line, &mut wire);
    }

    let mut dec = FrameDecoder::new(line.len().max(1));
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in wire.chunks(usize::from(input.read) + 1) {
        buf.extend_from_slice(piece);
        while let Some(f) = dec.decode(&mut buf).expect("valid stream") {
            frames.push(f);
        }
    }
    assert_eq!(frames.len(), 1, "one message, one frame");
    assert!(!frames[0].truncated);
    // Leniencies on purpose: one trailing LF inside an octet count is dropped
    // (srslog counts the LF it appends), and so is one CR before an LF
    // terminator (CRLF senders). A MSG ending that way loses that byte.
    let (end, endc) = if input.octet_counted {
        (b'\n', '\n')
    } else {
        (b'\r', '\r')
    };
    let line = line
        .strip_suffix(&[end])
        .map(<[u8]>::to_vec)
        .unwrap_or(line);
    let msg = msg.strip_suffix(endc).unwrap_or(msg);
    assert_eq!(&frames[0].bytes[..], &line[..]);

    let got = parse(&frames[0].bytes).expect("valid RFC 5424");
    assert_eq!(got.format, Format::Rfc5424);
    assert_eq!(got.pri, pri);
    assert_eq!(got.timestamp, None);
    assert_eq!(got.hostname.as_deref(), hostname.as_deref());
    assert_eq!(got.app_name.as_deref(), app_name.as_deref());
    assert_eq!(got.proc_id.as_deref(), proc_id.as_deref());
    assert_eq!(got.msg_id.as_deref(), msg_id.as_deref());
    assert_eq!(got.structured_data, sd);
    assert_eq!(got.msg, msg);
});
