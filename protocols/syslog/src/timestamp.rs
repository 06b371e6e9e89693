//! Syslog timestamps: RFC 3339 (RFC 5424, rsyslog's forwarding format) and the
//! BSD `Mmm dd hh:mm:ss` stamp, plus the calendar arithmetic both need. No date
//! crate: the conversions are a few lines and sit on the hot path.

/// When a message was stamped, as far as its sender said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timestamp {
    /// Date, time and zone known (RFC 5424 / RFC 3339, or an ISO 8601 stamp in a 3164 header).
    Absolute {
        /// Seconds since 1970-01-01T00:00:00Z.
        unix_secs: i64,
        nanos: u32,
        /// The sender's UTC offset, kept so the local wall time can be shown again.
        offset_secs: i32,
    },
    /// RFC 3164 `Mmm dd hh:mm:ss`: no year, no zone; the caller resolves both.
    Bsd {
        /// 1..=12
        month: u8,
        /// 1..=31; `Feb 29` is accepted whatever the year turns out to be.
        day: u8,
        hour: u8,
        minute: u8,
        /// 0..=60 (a leap second is passed through).
        second: u8,
        nanos: u32,
    },
}

impl Timestamp {
    /// Seconds since the epoch and nanoseconds. A `Bsd` stamp needs the year
    /// (see [`infer_year`]) and the sender's UTC offset; an `Absolute` one ignores both.
    /// `Feb 29` in a non-leap year becomes `Mar 1`, as a lenient receiver would.
    pub fn to_unix(&self, year: i32, offset_secs: i32) -> (i64, u32) {
        match *self {
            Timestamp::Absolute {
                unix_secs, nanos, ..
            } => (unix_secs, nanos),
            Timestamp::Bsd {
                month,
                day,
                hour,
                minute,
                second,
                nanos,
            } => (
                unix_from_civil(year, month, day, hour, minute, second, offset_secs),
                nanos,
            ),
        }
    }
}

/// The year of a BSD stamp, by Logstash's rule (`JodaParser.parseAndGuessYear`): a
/// December stamp seen in January is last year's, a January stamp seen in December is
/// next year's, anything else is this year's.
pub fn infer_year(month: u8, now_year: i32, now_month: u8) -> i32 {
    match (month, now_month) {
        (12, 1) => now_year.saturating_sub(1),
        (1, 12) => now_year.saturating_add(1),
        _ => now_year,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`). Out-of-range days roll over linearly (Feb 30 = Mar 2). The
/// year is an `i32` so that no input can overflow the arithmetic.
pub fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let m = i64::from(month);
    let year = i64::from(year);
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: (year, month 1..=12, day 1..=31).
pub fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are within 1..=31 and 1..=12 by construction.
    (year, month as u8, day as u8)
}

/// Seconds since the epoch of a wall-clock time at UTC offset `offset_secs`.
pub fn unix_from_civil(
    year: i32,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    offset_secs: i32,
) -> i64 {
    days_from_civil(year, month, day) * 86_400
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second)
        - i64::from(offset_secs)
}

pub fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1..=12) of `year`.
pub fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 31,
    }
}

// The two stamp layouts are fixed-width, so they are read by position rather
// than through nom: a third of the parse time went to combinator plumbing here.

/// Two ASCII digits at `at`.
#[inline]
fn d2(b: &[u8], at: usize) -> Option<u8> {
    match (b.get(at), b.get(at + 1)) {
        (Some(&x @ b'0'..=b'9'), Some(&y @ b'0'..=b'9')) => Some((x - b'0') * 10 + (y - b'0')),
        _ => None,
    }
}

#[inline]
fn byte_is(b: &[u8], at: usize, want: u8) -> Option<()> {
    (b.get(at) == Some(&want)).then_some(())
}

/// `hh:mm:ss` at `at`, range-checked (a leap second `60` passes).
#[inline]
fn clock(b: &[u8], at: usize) -> Option<(u8, u8, u8)> {
    let (h, m, s) = (d2(b, at)?, d2(b, at + 3)?, d2(b, at + 6)?);
    byte_is(b, at + 2, b':')?;
    byte_is(b, at + 5, b':')?;
    (h <= 23 && m <= 59 && s <= 60).then_some((h, m, s))
}

/// `.digits` at the start of `b`, if any: (nanoseconds, bytes used). The first
/// nine digits count; further ones are dropped rather than rejected (some senders
/// print more precision than they have). A `.` without digits is an error.
#[inline]
fn fraction(b: &[u8]) -> Option<(u32, usize)> {
    if b.first() != Some(&b'.') {
        return Some((0, 0));
    }
    let n = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let kept = n.min(9);
    let nanos = b[1..1 + kept]
        .iter()
        .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'));
    // kept ≤ 9, so the scale is at most 10^8 and the product below 10^9.
    let nanos = nanos * 10u32.pow(9 - kept as u32);
    Some((nanos, 1 + n))
}

/// `Z`, `z`, `±hh:mm` or `±hhmm`: (seconds east of UTC, bytes used).
#[inline]
fn zone(b: &[u8]) -> Option<(i32, usize)> {
    let sign = match b.first()? {
        b'Z' | b'z' => return Some((0, 1)),
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let h = d2(b, 1)?;
    let (m, used) = match b.get(3) {
        Some(b':') => (d2(b, 4)?, 6),
        _ => (d2(b, 3)?, 5),
    };
    (h <= 23 && m <= 59).then_some((sign * (i32::from(h) * 3600 + i32::from(m) * 60), used))
}

/// RFC 3339 `YYYY-MM-DDThh:mm:ss[.frac](Z|±hh:mm)`, also with `t` or a space
/// between date and time (ISO 8601 stamps in 3164 headers): the stamp and the
/// rest of the input. The zone is required: without it the instant is unknown.
pub(crate) fn rfc3339(b: &[u8]) -> Option<(Timestamp, &[u8])> {
    let year = i32::from(d2(b, 0)?) * 100 + i32::from(d2(b, 2)?);
    byte_is(b, 4, b'-')?;
    let month = d2(b, 5)?;
    byte_is(b, 7, b'-')?;
    let day = d2(b, 8)?;
    if !matches!(b.get(10)?, b'T' | b't' | b' ') {
        return None;
    }
    let (hour, minute, second) = clock(b, 11)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let rest = &b[19..];
    let (nanos, used) = fraction(rest)?;
    let rest = &rest[used..];
    let (offset_secs, used) = zone(rest)?;
    Some((
        Timestamp::Absolute {
            unix_secs: unix_from_civil(year, month, day, hour, minute, second, offset_secs),
            nanos,
            offset_secs,
        },
        &rest[used..],
    ))
}

fn month(name: &[u8]) -> Option<u8> {
    const NAMES: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let name = name.get(..3)?;
    let k = NAMES
        .iter()
        .position(|n| name.eq_ignore_ascii_case(&n[..]))?;
    Some(k as u8 + 1)
}

/// `Mmm dd hh:mm:ss[.frac]` with the day space-padded (`Nov  3`) or not (`Nov 3`):
/// the stamp and the rest of the input.
pub(crate) fn bsd(b: &[u8]) -> Option<(Timestamp, &[u8])> {
    let month = month(b)?;
    byte_is(b, 3, b' ')?;
    let digit = |at: usize| b.get(at).filter(|c| c.is_ascii_digit()).map(|c| c - b'0');
    // Day: ` d`, `dd` or `d`, then the SP before the clock.
    let (day, clock_at) = match (b.get(4)?, digit(5)) {
        (b' ', Some(d)) => (d, 7),
        _ => match d2(b, 4) {
            Some(dd) => (dd, 7),
            None => (digit(4)?, 6),
        },
    };
    byte_is(b, clock_at - 1, b' ')?;
    let (hour, minute, second) = clock(b, clock_at)?;
    // 2000 is a leap year, so Feb 29 passes; the year is the caller's to decide.
    if day == 0 || day > days_in_month(2000, month) {
        return None;
    }
    let rest = &b[clock_at + 8..];
    let (nanos, used) = fraction(rest)?;
    Some((
        Timestamp::Bsd {
            month,
            day,
            hour,
            minute,
            second,
            nanos,
        },
        &rest[used..],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn abs(s: &str) -> (i64, u32, i32) {
        let (ts, rest) = rfc3339(s.as_bytes()).unwrap();
        assert!(rest.is_empty(), "left over {rest:?}");
        match ts {
            Timestamp::Absolute {
                unix_secs,
                nanos,
                offset_secs,
            } => (unix_secs, nanos, offset_secs),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(0, 1, 1), -719_528);
        for d in (-800_000..800_000).step_by(997) {
            let (y, m, dd) = civil_from_days(d);
            let y = i32::try_from(y).unwrap();
            assert_eq!(days_from_civil(y, m, dd), d);
            assert!((1..=12).contains(&m) && dd >= 1 && dd <= days_in_month(y, m));
        }
    }

    #[test]
    fn calendar_extremes_do_not_overflow() {
        for y in [i32::MIN, -1, 0, i32::MAX] {
            for (m, d) in [(0, 0), (1, 1), (2, 29), (12, 31), (255, 255)] {
                let _ = unix_from_civil(y, m, d, 255, 255, 255, i32::MIN);
                let _ = unix_from_civil(y, m, d, 255, 255, 255, i32::MAX);
            }
        }
        for d in [i64::MIN, i64::MIN / 2, -1, 0, i64::MAX / 2, i64::MAX] {
            let (_, m, dd) = civil_from_days(d);
            assert!((1..=12).contains(&m) && (1..=31).contains(&dd), "{d}");
        }
        assert_eq!(civil_from_days(days_from_civil(-44, 3, 15)), (-44, 3, 15));
    }

    #[test]
    fn rfc3339_known_instants() {
        // RFC 5424 §6.5 example 1.
        assert_eq!(
            abs("2003-10-11T22:14:15.003Z"),
            (1_065_910_455, 3_000_000, 0)
        );
        // Example 2: 05:14:15 at -07:00 is 12:14:15Z.
        assert_eq!(
            abs("2003-08-24T05:14:15.000003-07:00"),
            (1_061_727_255, 3_000, -25_200)
        );
        assert_eq!(abs("2024-05-01T12:00:00+02:00"), (1_714_557_600, 0, 7200));
        assert_eq!(abs("1970-01-01t00:00:00z"), (0, 0, 0));
        assert_eq!(
            abs("2024-02-29T23:59:59.123456789+0530"),
            (1_709_231_399, 123_456_789, 19_800)
        );
        // Nanoseconds beyond nine digits are dropped.
        assert_eq!(abs("2024-01-01T00:00:00.1234567891Z").1, 123_456_789);
        assert_eq!(abs("2024-01-01 00:00:00.5Z").1, 500_000_000);
        assert_eq!(abs("1969-12-31T23:59:59Z").0, -1);
    }

    #[test]
    fn rfc3339_rejects() {
        for bad in [
            "2024-13-01T00:00:00Z",
            "2024-00-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:60:00Z",
            "2024-01-01T00:00:61Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00+01:60",
            "2024-01-01T00:00:00.Z",
            "2024-01-01X00:00:00Z",
            "24-01-01T00:00:00Z",
            "2024-01-01T00:00Z",
        ] {
            assert!(rfc3339(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn bsd_forms() {
        let b = |s: &str| bsd(s.as_bytes()).map(|(t, r)| (r.len(), t));
        let t = |month, day, hour, minute, second, nanos| Timestamp::Bsd {
            month,
            day,
            hour,
            minute,
            second,
            nanos,
        };
        assert_eq!(b("Nov  3 04:45:01 x"), Some((2, t(11, 3, 4, 45, 1, 0))));
        assert_eq!(b("Nov 3 04:45:01"), Some((0, t(11, 3, 4, 45, 1, 0))));
        assert_eq!(b("Oct 26 15:19:25"), Some((0, t(10, 26, 15, 19, 25, 0))));
        assert_eq!(
            b("feb 29 00:00:00.25"),
            Some((0, t(2, 29, 0, 0, 0, 250_000_000)))
        );
        for bad in [
            "Nov 31 00:00:00",
            "Feb 30 00:00:00",
            "Foo  3 04:45:01",
            "Nov  0 04:45:01",
            "Nov 3  04:45:01",
            "Nov 123 04:45:01",
            "Nov  3 4:45:01",
            "Nov  3 25:45:01",
            "Nov",
            "",
        ] {
            assert!(bsd(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn bsd_resolution() {
        let t = Timestamp::Bsd {
            month: 10,
            day: 26,
            hour: 15,
            minute: 19,
            second: 25,
            nanos: 7,
        };
        // 2024-10-26T15:19:25Z and the same wall time at +02:00.
        assert_eq!(t.to_unix(2024, 0), (1_729_955_965, 7));
        assert_eq!(t.to_unix(2024, 7200), (1_729_948_765, 7));
    }

    #[test]
    fn year_inference() {
        assert_eq!(infer_year(12, 2025, 1), 2024);
        assert_eq!(infer_year(1, 2025, 12), 2026);
        assert_eq!(infer_year(11, 2025, 1), 2025);
        assert_eq!(infer_year(6, 2025, 6), 2025);
        assert_eq!(infer_year(12, 2025, 12), 2025);
        assert_eq!(infer_year(12, i32::MIN, 1), i32::MIN);
    }
}
