//! Finding where the next message ends, before decoding it.
//!
//! A forward message can be megabytes and arrive in thousands of reads. Trying a
//! full decode after each read would re-parse the buffered prefix every time
//! (quadratic). Instead these scanners walk the buffer once, remember how far
//! they got, and never look at a byte twice: the msgpack one reads only headers
//! and jumps over string/binary payloads (so a 16 MiB `bin` costs one step), the
//! JSON one tracks bracket depth and string state. Neither allocates beyond its
//! small stack of open containers, bounded by the depth cap. Only when a message
//! is known to be complete (and within the caps) is it handed to rmpv/serde_json,
//! once.

/// Why a scan stopped; `at` is relative to the message's first byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ScanError {
    pub at: usize,
    pub kind: ScanErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ScanErrorKind {
    /// 0xc1, never used by msgpack.
    InvalidMarker(u8),
    /// Declared or buffered length beyond the cap.
    TooLarge,
    TooDeep,
    /// JSON text outside any array or object at the top level.
    NotJsonArray(u8),
}

/// Resumable msgpack extent scanner for one value.
#[derive(Clone, Debug, Default)]
pub(crate) struct MsgpackScan {
    /// Offset of the next header to read; may lie beyond the buffered bytes when
    /// a payload is still arriving.
    pos: usize,
    /// Items still expected in each open container (the bottom entry is the
    /// value itself).
    stack: Vec<u64>,
    /// Sum of `stack`: every pending item takes at least one byte, so
    /// `pos + pending` is a lower bound of the message length, which lets an
    /// absurd count be refused as soon as its header is read.
    pending: u64,
}

impl MsgpackScan {
    pub fn reset(&mut self) {
        self.pos = 0;
        self.stack.clear();
        self.pending = 0;
    }

    /// `Ok(Some(len))`: `buf[..len]` is one complete value. `Ok(None)`: need
    /// more bytes. `max_depth` counts containers, the outermost one included.
    pub fn scan(
        &mut self,
        buf: &[u8],
        max_len: usize,
        max_depth: usize,
    ) -> Result<Option<usize>, ScanError> {
        if self.stack.is_empty() && self.pos == 0 {
            self.stack.push(1);
            self.pending = 1;
        }
        loop {
            if self.stack.is_empty() {
                // The last payload may still be arriving.
                return Ok((self.pos <= buf.len()).then_some(self.pos));
            }
            if self.pos as u64 + self.pending > max_len as u64 {
                return Err(ScanError {
                    at: self.pos.min(max_len),
                    kind: ScanErrorKind::TooLarge,
                });
            }
            let Some(&marker) = buf.get(self.pos) else {
                return Ok(None);
            };
            let at = self.pos;
            let (head, body, children, container) = match head(marker, &buf[at..]) {
                // A header cut short just under the cap may not wait for more.
                Head::Need if buf.len() > max_len => {
                    return Err(ScanError {
                        at,
                        kind: ScanErrorKind::TooLarge,
                    })
                }
                Head::Need => return Ok(None),
                Head::Invalid => {
                    return Err(ScanError {
                        at,
                        kind: ScanErrorKind::InvalidMarker(marker),
                    })
                }
                Head::Ok {
                    head,
                    body,
                    children,
                } => (head, body, children.unwrap_or(0), children.is_some()),
            };
            // This item is now accounted for by its own extent.
            self.pending -= 1;
            if let Some(top) = self.stack.last_mut() {
                *top -= 1;
            }
            let end = at as u64 + head as u64 + body;
            if end + self.pending + children > max_len as u64 {
                return Err(ScanError {
                    at,
                    kind: ScanErrorKind::TooLarge,
                });
            }
            self.pos = end as usize;
            // The stack holds the sentinel plus every open container, so its
            // length is the depth of a container starting here (empty ones count).
            if container && self.stack.len() > max_depth {
                return Err(ScanError {
                    at,
                    kind: ScanErrorKind::TooDeep,
                });
            }
            if children > 0 {
                self.stack.push(children);
                self.pending += children;
            }
            while self.stack.last() == Some(&0) {
                self.stack.pop();
            }
        }
    }
}

enum Head {
    Need,
    Invalid,
    /// `head` header bytes, then `body` payload bytes, then `children` nested values.
    /// `children` is `Some` for arrays and maps (a map of n pairs has 2n).
    Ok {
        head: usize,
        body: u64,
        children: Option<u64>,
    },
}

fn be(b: &[u8], n: usize) -> Option<u64> {
    b.get(1..1 + n)
        .map(|s| s.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

fn head(m: u8, b: &[u8]) -> Head {
    let fixed = |head: usize, body: u64| Head::Ok {
        head,
        body,
        children: None,
    };
    // Variable-length items: `n` length bytes after the marker (plus one type
    // byte for ext), then `len` payload bytes or `len * per` children.
    let var = |n: usize, extra: usize, per: u64, container: bool| match be(b, n) {
        None => Head::Need,
        Some(len) if container => Head::Ok {
            head: 1 + n,
            body: 0,
            children: Some(len * per),
        },
        Some(len) => Head::Ok {
            head: 1 + n + extra,
            body: len,
            children: None,
        },
    };
    match m {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => fixed(1, 0),
        0x80..=0x8f => Head::Ok {
            head: 1,
            body: 0,
            children: Some(u64::from(m & 0x0f) * 2),
        },
        0x90..=0x9f => Head::Ok {
            head: 1,
            body: 0,
            children: Some(u64::from(m & 0x0f)),
        },
        0xa0..=0xbf => fixed(1, u64::from(m & 0x1f)),
        0xc1 => Head::Invalid,
        0xc4 | 0xd9 => var(1, 0, 0, false),
        0xc5 | 0xda => var(2, 0, 0, false),
        0xc6 | 0xdb => var(4, 0, 0, false),
        0xc7 => var(1, 1, 0, false),
        0xc8 => var(2, 1, 0, false),
        0xc9 => var(4, 1, 0, false),
        0xca => fixed(1, 4),
        0xcb => fixed(1, 8),
        0xcc | 0xd0 => fixed(1, 1),
        0xcd | 0xd1 => fixed(1, 2),
        0xce | 0xd2 => fixed(1, 4),
        0xcf | 0xd3 => fixed(1, 8),
        0xd4 => fixed(2, 1),
        0xd5 => fixed(2, 2),
        0xd6 => fixed(2, 4),
        0xd7 => fixed(2, 8),
        0xd8 => fixed(2, 16),
        0xdc => var(2, 0, 1, true),
        0xdd => var(4, 0, 1, true),
        0xde => var(2, 0, 2, true),
        0xdf => var(4, 0, 2, true),
    }
}

/// Resumable JSON extent scanner for one top-level array or object. It checks
/// only what delimits values; serde_json validates the rest once complete.
#[derive(Clone, Debug, Default)]
pub(crate) struct JsonScan {
    pos: usize,
    depth: usize,
    in_str: bool,
    escaped: bool,
}

impl JsonScan {
    pub fn reset(&mut self) {
        *self = JsonScan::default();
    }

    /// `buf[0]` must be the first byte of the value (whitespace already skipped).
    pub fn scan(
        &mut self,
        buf: &[u8],
        max_len: usize,
        max_depth: usize,
    ) -> Result<Option<usize>, ScanError> {
        if self.pos == 0 {
            match buf.first() {
                None => return Ok(None),
                Some(b'[' | b'{') => {}
                Some(&b) => {
                    return Err(ScanError {
                        at: 0,
                        kind: ScanErrorKind::NotJsonArray(b),
                    })
                }
            }
        }
        let limit = buf.len().min(max_len);
        while self.pos < limit {
            let b = buf[self.pos];
            self.pos += 1;
            if self.in_str {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_str = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_str = true,
                b'[' | b'{' => {
                    self.depth += 1;
                    if self.depth > max_depth {
                        return Err(ScanError {
                            at: self.pos - 1,
                            kind: ScanErrorKind::TooDeep,
                        });
                    }
                }
                b']' | b'}' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Ok(Some(self.pos));
                    }
                }
                _ => {}
            }
        }
        if buf.len() >= max_len {
            return Err(ScanError {
                at: max_len,
                kind: ScanErrorKind::TooLarge,
            });
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msgpack_extent_byte_by_byte() {
        // [ "a", bin(3), {1: [2, 3]}, ext8 ]
        let v: &[u8] = &[
            0x94, 0xa1, b'a', 0xc4, 3, 1, 2, 3, 0x81, 1, 0x92, 2, 3, 0xd7, 0, 1, 2, 3, 4, 5, 6, 7,
            8, 0xff,
        ];
        let mut s = MsgpackScan::default();
        for n in 0..v.len() - 1 {
            assert_eq!(s.scan(&v[..n], 100, 8), Ok(None), "prefix {n}");
        }
        assert_eq!(s.scan(v, 100, 8), Ok(Some(v.len() - 1)));
    }

    #[test]
    fn msgpack_huge_header_refused_at_once() {
        let mut s = MsgpackScan::default();
        let e = s
            .scan(&[0xdd, 0xff, 0xff, 0xff, 0xff], 1 << 20, 8)
            .unwrap_err();
        assert_eq!(e.kind, ScanErrorKind::TooLarge);
        let mut s = MsgpackScan::default();
        let e = s
            .scan(&[0x92, 0xa0, 0xc6, 0, 0x10, 0, 0], 1 << 20, 8)
            .unwrap_err();
        assert_eq!((e.at, e.kind), (2, ScanErrorKind::TooLarge));
    }

    #[test]
    fn msgpack_depth() {
        let v = [0x91, 0x91, 0x91, 0x90];
        assert_eq!(MsgpackScan::default().scan(&v, 100, 4), Ok(Some(4)));
        let e = MsgpackScan::default().scan(&v, 100, 3).unwrap_err();
        assert_eq!((e.at, e.kind), (3, ScanErrorKind::TooDeep));
    }

    #[test]
    fn json_extent() {
        let v = br#"["a]\"", {"b": [1]}, "}"] tail"#;
        let mut s = JsonScan::default();
        for n in 0..25 {
            assert_eq!(s.scan(&v[..n], 100, 8), Ok(None));
        }
        assert_eq!(s.scan(v, 100, 8), Ok(Some(25)));
    }
}
