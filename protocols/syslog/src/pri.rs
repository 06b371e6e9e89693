//! The `<PRI>` part shared by RFC 3164 and RFC 5424.

use nom::bytes::complete::{tag, take_while_m_n};
use nom::sequence::delimited;
use nom::{IResult, Parser};

use crate::message::ParseError;

/// Facility × 8 + severity, always within 0..=191.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pri(u8);

impl Pri {
    /// Largest valid PRI value: facility 23 (local7), severity 7 (debug).
    pub const MAX: u8 = 191;

    /// `None` when `value` is above 191.
    pub const fn new(value: u8) -> Option<Pri> {
        if value <= Self::MAX {
            Some(Pri(value))
        } else {
            None
        }
    }

    /// `None` when facility > 23 or severity > 7.
    pub const fn from_parts(facility: u8, severity: u8) -> Option<Pri> {
        if facility <= 23 && severity <= 7 {
            Some(Pri(facility * 8 + severity))
        } else {
            None
        }
    }

    pub const fn facility(&self) -> u8 {
        self.0 >> 3
    }

    pub const fn severity(&self) -> u8 {
        self.0 & 7
    }

    pub const fn value(&self) -> u8 {
        self.0
    }
}

fn pri_digits(i: &[u8]) -> IResult<&[u8], &[u8]> {
    delimited(
        tag(&b"<"[..]),
        take_while_m_n(1, 3, |b: u8| b.is_ascii_digit()),
        tag(&b">"[..]),
    )
    .parse(i)
}

/// Parses `<N>` plus the one space srslog's DefaultFormatter puts after it, and
/// returns the PRI and the rest of the frame.
pub(crate) fn parse_pri(frame: &[u8]) -> Result<(Pri, &[u8]), ParseError> {
    let (rest, digits) = pri_digits(frame).map_err(|e| {
        let at = match e {
            nom::Err::Error(e) | nom::Err::Failure(e) => frame.len() - e.input.len(),
            nom::Err::Incomplete(_) => frame.len(),
        };
        ParseError::new(at, "expected <PRI> with 1 to 3 digits")
    })?;
    // At most three digits, so the sum cannot overflow u16.
    let value = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    let pri = u8::try_from(value)
        .ok()
        .and_then(Pri::new)
        .ok_or(ParseError::new(1, "PRI value out of range 0..=191"))?;
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    Ok((pri, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let p = Pri::new(165).unwrap();
        assert_eq!((p.facility(), p.severity(), p.value()), (20, 5, 165));
        assert_eq!(Pri::from_parts(3, 6), Pri::new(30));
        assert_eq!(Pri::from_parts(24, 0), None);
        assert_eq!(Pri::from_parts(0, 8), None);
        assert_eq!(Pri::new(192), None);
        assert_eq!(Pri::new(191).map(|p| p.facility()), Some(23));
    }

    #[test]
    fn parse_plain_and_leading_zeros() {
        let (p, rest) = parse_pri(b"<13>Nov").unwrap();
        assert_eq!((p.value(), rest), (13, &b"Nov"[..]));
        let (p, _) = parse_pri(b"<013>x").unwrap();
        assert_eq!(p.value(), 13);
        let (p, _) = parse_pri(b"<0>x").unwrap();
        assert_eq!(p.value(), 0);
        let (p, _) = parse_pri(b"<191>x").unwrap();
        assert_eq!(p.value(), 191);
    }

    #[test]
    fn one_space_after_gt_is_tolerated() {
        let (p, rest) = parse_pri(b"<30> 2024").unwrap();
        assert_eq!((p.value(), rest), (30, &b"2024"[..]));
        let (_, rest) = parse_pri(b"<30>  x").unwrap();
        assert_eq!(rest, b" x");
    }

    #[test]
    fn rejects() {
        assert_eq!(parse_pri(b"<192>x").unwrap_err().offset, 1);
        assert_eq!(parse_pri(b"<999>x").unwrap_err().offset, 1);
        assert_eq!(parse_pri(b"13>x").unwrap_err().offset, 0);
        assert_eq!(parse_pri(b"<>x").unwrap_err().offset, 1);
        assert_eq!(parse_pri(b"<1234>x").unwrap_err().offset, 4);
        assert_eq!(parse_pri(b"<12").unwrap_err().offset, 3);
        assert_eq!(parse_pri(b"").unwrap_err().offset, 0);
    }
}
