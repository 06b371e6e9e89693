//! Bytes on disk: segment names, the block header, and the record encoding. Shared by the writer
//! (which produces them and scans them at recovery) and the reader. No policy lives here.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::event::{Event, Protocol};

pub(super) const MAGIC: [u8; 4] = *b"LPSB";
pub(super) const VERSION: u8 = 1;
pub(super) const HEADER_LEN: usize = 32;
/// Bytes covered by the CRC inside the header (everything before the CRC field).
const HEADER_CRC_SPAN: usize = 28;

/// A block is cut once its uncompressed records reach this size (a single larger record still
/// gets a block of its own).
pub(super) const BLOCK_TARGET: usize = 1 << 20;
/// The largest encoded record accepted (and so the largest sane block payload, with margin).
pub(super) const MAX_RECORD: usize = 256 << 20;
const MAX_BLOCK_UNCOMPRESSED: usize = MAX_RECORD + BLOCK_TARGET;
/// received_ns + protocol + family + IPv4 + port + two one-byte lengths.
const MIN_RECORD: usize = 8 + 1 + 1 + 4 + 2 + 1 + 1;

const SEGMENT_SUFFIX: &str = ".log";
const SEGMENT_NAME_LEN: usize = 20 + SEGMENT_SUFFIX.len();

pub(super) fn segment_file_name(base: u64) -> String {
    format!("{base:020}{SEGMENT_SUFFIX}")
}

pub(super) fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(segment_file_name(base))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if name.len() != SEGMENT_NAME_LEN || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Base offsets of the segments in `dir`, oldest first. Other files (LOCK) are ignored.
pub(super) fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| with_path(e, "listing", dir))? {
        let entry = entry.map_err(|e| with_path(e, "listing", dir))?;
        if let Some(base) = entry.file_name().to_str().and_then(parse_segment_name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// An io::Error that says what was being done to which path, keeping the original kind.
pub(super) fn with_path(e: io::Error, doing: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{doing} {}: {e}", path.display()))
}

pub(super) fn corrupt(path: &Path, pos: u64, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "corrupt store segment {} at byte {pos}: {what}",
            path.display()
        ),
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    pub base: u64,
    pub count: u32,
    pub ulen: u32,
    pub clen: u32,
    pub crc: u32,
}

impl Header {
    /// Header plus payload.
    pub fn total_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.clen)
    }

    pub fn end_offset(&self) -> u64 {
        self.base + u64::from(self.count)
    }

    /// Blocks of a segment are contiguous: each starts where the previous one ended.
    pub fn check_base(&self, expected: u64) -> Result<(), Bad> {
        if self.base == expected {
            Ok(())
        } else {
            Err(Bad::Base {
                expected,
                found: self.base,
            })
        }
    }

    fn fixed_fields(&self) -> [u8; HEADER_CRC_SPAN] {
        let mut b = [0u8; HEADER_CRC_SPAN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4] = VERSION;
        // b[5] flags and b[6..8] reserved: zero in version 1.
        b[8..16].copy_from_slice(&self.base.to_le_bytes());
        b[16..20].copy_from_slice(&self.count.to_le_bytes());
        b[20..24].copy_from_slice(&self.ulen.to_le_bytes());
        b[24..28].copy_from_slice(&self.clen.to_le_bytes());
        b
    }

    /// Builds the header for `payload` (already compressed) and writes it into `out`.
    pub fn seal(base: u64, count: u32, ulen: u32, payload: &[u8], out: &mut [u8; HEADER_LEN]) {
        let mut h = Header {
            base,
            count,
            ulen,
            clen: payload.len() as u32,
            crc: 0,
        };
        let fixed = h.fixed_fields();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&fixed);
        crc.update(payload);
        h.crc = crc.finalize();
        out[..HEADER_CRC_SPAN].copy_from_slice(&fixed);
        out[HEADER_CRC_SPAN..].copy_from_slice(&h.crc.to_le_bytes());
    }

    fn parse(b: &[u8; HEADER_LEN]) -> Result<Header, Bad> {
        if b[0..4] != MAGIC {
            return Err(Bad::Header("bad magic"));
        }
        if b[4] != VERSION {
            return Err(Bad::Header("unknown format version"));
        }
        if b[5..8] != [0, 0, 0] {
            return Err(Bad::Header("unknown flags"));
        }
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        let h = Header {
            base: u64::from_le_bytes(b[8..16].try_into().unwrap()),
            count: u32_at(16),
            ulen: u32_at(20),
            clen: u32_at(24),
            crc: u32_at(28),
        };
        let ulen = h.ulen as usize;
        if h.count == 0
            || ulen > MAX_BLOCK_UNCOMPRESSED
            || ulen < h.count as usize * MIN_RECORD
            || h.clen as usize > lz4_flex::block::get_maximum_output_size(ulen)
        {
            return Err(Bad::Header("implausible lengths"));
        }
        Ok(h)
    }

    pub fn check_crc(&self, payload: &[u8]) -> bool {
        let mut crc = crc32fast::Hasher::new();
        crc.update(&self.fixed_fields());
        crc.update(payload);
        crc.finalize() == self.crc
    }
}

/// Why no valid block starts at a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Bad {
    /// Nothing at all: the position is the end of the file.
    Eof,
    /// Fewer than a header's bytes before the end of the file.
    ShortHeader,
    /// The header is not one this code wrote.
    Header(&'static str),
    /// The header promises more payload than the file holds.
    ShortPayload,
    /// The payload (or header) does not match its CRC.
    Crc,
    /// A valid block, but not the one that continues the offsets.
    Base { expected: u64, found: u64 },
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bad::Eof => f.write_str("end of file"),
            Bad::ShortHeader => f.write_str("incomplete block header"),
            Bad::Header(why) => write!(f, "invalid block header ({why})"),
            Bad::ShortPayload => f.write_str("incomplete block payload"),
            Bad::Crc => f.write_str("block CRC mismatch"),
            Bad::Base { expected, found } => {
                write!(f, "block starts at offset {found}, expected {expected}")
            }
        }
    }
}

/// Reads until `buf` is full or the file ends; returns how many bytes were read.
fn read_full_at(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], pos + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Reads and checks the header at `pos` of a file `file_len` bytes long: magic, version, sane
/// lengths, and the whole block within the file.
pub(super) fn read_header(file: &File, pos: u64, file_len: u64) -> io::Result<Result<Header, Bad>> {
    if pos >= file_len {
        return Ok(Err(Bad::Eof));
    }
    let mut b = [0u8; HEADER_LEN];
    if read_full_at(file, &mut b, pos)? < HEADER_LEN {
        return Ok(Err(Bad::ShortHeader));
    }
    let h = match Header::parse(&b) {
        Ok(h) => h,
        Err(bad) => return Ok(Err(bad)),
    };
    if pos + h.total_len() > file_len {
        return Ok(Err(Bad::ShortPayload));
    }
    Ok(Ok(h))
}

/// Reads the compressed payload of the block at `pos` into `buf` and checks the CRC.
pub(super) fn read_payload(
    file: &File,
    pos: u64,
    h: &Header,
    buf: &mut Vec<u8>,
) -> io::Result<Result<(), Bad>> {
    buf.resize(h.clen as usize, 0);
    if read_full_at(file, buf, pos + HEADER_LEN as u64)? < buf.len() {
        return Ok(Err(Bad::ShortPayload));
    }
    Ok(if h.check_crc(buf) {
        Ok(())
    } else {
        Err(Bad::Crc)
    })
}

/// The first valid block (magic, version, sane lengths, whole within the file, CRC) that starts
/// at or after byte `from`, as its byte position and header. A bad position with no valid block
/// after it is a torn tail (what a crash leaves, or a block still being written); a valid block
/// after it means damage in the middle of a segment.
pub(super) fn find_block(
    file: &File,
    from: u64,
    file_len: u64,
    payload: &mut Vec<u8>,
) -> io::Result<Option<(u64, Header)>> {
    const CHUNK: u64 = 256 << 10;
    let mut buf = Vec::new();
    let mut start = from;
    while start + HEADER_LEN as u64 <= file_len {
        let want = CHUNK.min(file_len - start) as usize;
        buf.resize(want, 0);
        let n = read_full_at(file, &mut buf, start)?;
        let window = &buf[..n];
        let mut i = 0;
        while let Some(j) = window[i..].iter().position(|&b| b == MAGIC[0]) {
            let at = i + j;
            if window[at..].starts_with(&MAGIC) {
                let pos = start + at as u64;
                if let Ok(h) = read_header(file, pos, file_len)? {
                    if read_payload(file, pos, &h, payload)?.is_ok() {
                        return Ok(Some((pos, h)));
                    }
                }
            }
            i = at + 1;
        }
        if n < want || start + n as u64 >= file_len {
            break;
        }
        // Overlap the next window so that a magic cut by this window's end is found there.
        start += (n - (MAGIC.len() - 1)) as u64;
    }
    Ok(None)
}

/// The sidecar file in which the writer publishes its committed next offset for live readers.
pub(super) const COMMITTED_FILE: &str = "COMMITTED";
/// 8 bytes of offset (LE) and the CRC32 of those 8 bytes (LE).
pub(super) const COMMITTED_LEN: usize = 12;

pub(super) fn encode_committed(offset: u64) -> [u8; COMMITTED_LEN] {
    let mut b = [0u8; COMMITTED_LEN];
    b[..8].copy_from_slice(&offset.to_le_bytes());
    let crc = crc32fast::hash(&b[..8]);
    b[8..].copy_from_slice(&crc.to_le_bytes());
    b
}

fn decode_committed(b: &[u8; COMMITTED_LEN]) -> Option<u64> {
    let crc = u32::from_le_bytes(b[8..].try_into().unwrap());
    (crc32fast::hash(&b[..8]) == crc).then(|| u64::from_le_bytes(b[..8].try_into().unwrap()))
}

/// The committed next offset the writer last published in `dir`, or `None` when there is no
/// usable `COMMITTED` file (a store written before it existed, a writer that has not synced yet,
/// or a file left garbled by a crash). The writer rewrites it in place with one pwrite while
/// readers read it without a lock, so a read that fails its CRC is retried a few times.
pub(super) fn read_committed(dir: &Path) -> io::Result<Option<u64>> {
    let path = dir.join(COMMITTED_FILE);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(with_path(e, "opening", &path)),
    };
    let mut b = [0u8; COMMITTED_LEN];
    for _ in 0..3 {
        if read_full_at(&file, &mut b, 0).map_err(|e| with_path(e, "reading", &path))?
            < COMMITTED_LEN
        {
            return Ok(None);
        }
        if let Some(offset) = decode_committed(&b) {
            return Ok(Some(offset));
        }
    }
    Ok(None)
}

pub(super) fn decompress(h: &Header, payload: &[u8]) -> Result<Vec<u8>, String> {
    match lz4_flex::block::decompress(payload, h.ulen as usize) {
        Ok(v) if v.len() == h.ulen as usize => Ok(v),
        Ok(v) => Err(format!(
            "payload decompresses to {} bytes, header says {}",
            v.len(),
            h.ulen
        )),
        Err(e) => Err(format!("lz4: {e}")),
    }
}

const FAMILY_V4: u8 = 4;
const FAMILY_V6: u8 = 6;

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn varint_len(v: usize) -> usize {
    (usize::BITS - (v | 1).leading_zeros()).div_ceil(7) as usize
}

/// Bytes `encode_record` will write for `e`.
pub(super) fn record_len(e: &Event) -> usize {
    let ip = if e.peer.is_ipv4() { 4 } else { 16 };
    8 + 1
        + 1
        + ip
        + 2
        + varint_len(e.app.len())
        + e.app.len()
        + varint_len(e.value.len())
        + e.value.len()
}

/// Appends one record. Flow info and scope id of IPv6 peers are not kept.
pub(super) fn encode_record(buf: &mut Vec<u8>, e: &Event) {
    buf.extend_from_slice(&e.received_ns.to_le_bytes());
    buf.push(e.protocol.code());
    match e.peer.ip() {
        IpAddr::V4(ip) => {
            buf.push(FAMILY_V4);
            buf.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            buf.push(FAMILY_V6);
            buf.extend_from_slice(&ip.octets());
        }
    }
    buf.extend_from_slice(&e.peer.port().to_le_bytes());
    put_varint(buf, e.app.len() as u64);
    buf.extend_from_slice(e.app.as_bytes());
    put_varint(buf, e.value.len() as u64);
    buf.extend_from_slice(&e.value);
}

/// Decodes records from one decompressed block. Values are slices of the block (no copy); the
/// app of the previous record is reused when it repeats, as it usually does.
pub(super) struct RecordCursor {
    block: Bytes,
    pos: usize,
    last_app: Option<Arc<str>>,
}

impl std::fmt::Debug for RecordCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordCursor")
            .field("pos", &self.pos)
            .field("len", &self.block.len())
            .finish()
    }
}

impl RecordCursor {
    pub fn new(block: Bytes) -> RecordCursor {
        RecordCursor {
            block,
            pos: 0,
            last_app: None,
        }
    }

    pub fn empty() -> RecordCursor {
        RecordCursor::new(Bytes::new())
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.block.len()
    }

    fn take(&mut self, n: usize) -> Result<std::ops::Range<usize>, &'static str> {
        let start = self.pos;
        let end = start.checked_add(n).filter(|&end| end <= self.block.len());
        let end = end.ok_or("record runs past the end of its block")?;
        self.pos = end;
        Ok(start..end)
    }

    fn byte(&mut self) -> Result<u8, &'static str> {
        let r = self.take(1)?;
        Ok(self.block[r.start])
    }

    fn varint(&mut self) -> Result<usize, &'static str> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return usize::try_from(v).map_err(|_| "length out of range");
            }
        }
        Err("overlong varint")
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let r = self.take(N)?;
        Ok(self.block[r].try_into().unwrap())
    }

    /// Skips one record without building an event.
    pub fn skip(&mut self) -> Result<(), &'static str> {
        self.take(9)?;
        let ip_len = match self.byte()? {
            FAMILY_V4 => 4,
            FAMILY_V6 => 16,
            _ => return Err("unknown address family"),
        };
        self.take(ip_len + 2)?;
        let app = self.varint()?;
        self.take(app)?;
        let value = self.varint()?;
        self.take(value)?;
        Ok(())
    }

    pub fn next_event(&mut self) -> Result<Event, &'static str> {
        let received_ns = i64::from_le_bytes(self.array()?);
        let protocol = Protocol::from_code(self.byte()?).ok_or("unknown protocol code")?;
        let ip = match self.byte()? {
            FAMILY_V4 => IpAddr::V4(Ipv4Addr::from(self.array::<4>()?)),
            FAMILY_V6 => IpAddr::V6(Ipv6Addr::from(self.array::<16>()?)),
            _ => return Err("unknown address family"),
        };
        let port = u16::from_le_bytes(self.array()?);
        let app_len = self.varint()?;
        let app_range = self.take(app_len)?;
        let app_bytes = &self.block[app_range];
        let app = match &self.last_app {
            Some(last) if last.as_bytes() == app_bytes => last.clone(),
            _ => {
                let s = std::str::from_utf8(app_bytes).map_err(|_| "app is not UTF-8")?;
                let app: Arc<str> = Arc::from(s);
                self.last_app = Some(app.clone());
                app
            }
        };
        let value_len = self.varint()?;
        let value_range = self.take(value_len)?;
        let value = self.block.slice(value_range);
        Ok(Event {
            app,
            protocol,
            peer: SocketAddr::new(ip, port),
            received_ns,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_sort_by_offset_and_round_trip() {
        assert_eq!(segment_file_name(42), "00000000000000000042.log");
        assert_eq!(
            parse_segment_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(parse_segment_name("LOCK"), None);
        assert_eq!(parse_segment_name("0000000000000000004.log"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.log"), None);
    }

    #[test]
    fn record_len_matches_encoding() {
        for app_len in [0usize, 1, 127, 128, 300, 20_000] {
            for value_len in [0usize, 5, 127, 128, 16_383, 16_384, 70_000] {
                for peer in ["10.1.2.3:514", "[2001:db8::1]:6514"] {
                    let e = Event {
                        app: Arc::from("a".repeat(app_len)),
                        protocol: Protocol::Gelf,
                        peer: peer.parse().unwrap(),
                        received_ns: -1,
                        value: Bytes::from(vec![0xff; value_len]),
                    };
                    let mut buf = Vec::new();
                    encode_record(&mut buf, &e);
                    assert_eq!(buf.len(), record_len(&e));
                    let mut c = RecordCursor::new(Bytes::from(buf));
                    assert_eq!(c.next_event().unwrap(), e);
                    assert!(c.at_end());
                }
            }
        }
    }

    #[test]
    fn header_rejects_what_it_did_not_write() {
        let mut b = [0u8; HEADER_LEN];
        Header::seal(7, 3, 300, b"payload", &mut b);
        let h = Header::parse(&b).unwrap();
        assert_eq!((h.base, h.count, h.ulen, h.clen), (7, 3, 300, 7));
        assert!(h.check_crc(b"payload"));
        assert!(!h.check_crc(b"paylaod"));
        for (i, why) in [
            (0, "bad magic"),
            (4, "unknown format version"),
            (5, "unknown flags"),
        ] {
            let mut bad = b;
            bad[i] ^= 0x40;
            assert_eq!(Header::parse(&bad), Err(Bad::Header(why)));
        }
        let mut huge = b;
        huge[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            Header::parse(&huge),
            Err(Bad::Header("implausible lengths"))
        );
    }
}
