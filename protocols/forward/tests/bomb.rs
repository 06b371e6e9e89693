//! Decompression bombs: 1 GiB of zeros, gzipped to about 1 MB, must be refused
//! at the cap without ever holding much more than the cap; so must messages of
//! millions of tiny entries, plain or gzipped, at the decoded cap. A global
//! allocator that tracks the live byte count (this test binary only) checks it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BytesMut;
use flate2::{Compress, Compression, FlushCompress};
use logport_forward::{Decoder, ErrorKind, Limits};

struct Tracking;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

const MIB: usize = 1 << 20;

/// A deflate block sequence for 1 MiB of zeros, ending on a byte boundary
/// (sync flush) so that copies of it can follow each other: each copy only
/// refers back to zeros.
fn zeros_block() -> Vec<u8> {
    let mut c = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(4 * 1024);
    c.compress_vec(&vec![0u8; MIB], &mut out, FlushCompress::Sync)
        .unwrap();
    out
}

fn message(entries: &[u8]) -> Vec<u8> {
    let mut w = vec![0x93, 0xa1, b't', 0xc6];
    w.extend((entries.len() as u32).to_be_bytes());
    w.extend(entries);
    w.extend([0x81, 0xaa]);
    w.extend(b"compressed");
    w.push(0xa4);
    w.extend(b"gzip");
    w
}

/// The live count is global: the tests run one at a time, wire building included.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn refused(wire: &[u8], cap: usize) {
    let mut dec = Decoder::new(Limits {
        max_message: 8 * MIB,
        max_decompressed: cap,
        max_depth: 16,
        max_decoded: 1 << 30,
    });
    let mut buf = BytesMut::from(wire);
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let e = dec.decode(&mut buf).unwrap_err();
    assert_eq!(e.kind, ErrorKind::DecompressedTooLarge { max: cap });
    let peak = PEAK.load(Ordering::Relaxed) - base;
    // The inflated buffer never has more than `cap` bytes of capacity; while it
    // grows, the allocator briefly holds the old half too. Plus inflater state.
    assert!(
        peak < cap * 3 / 2 + MIB,
        "peak {peak} bytes for a cap of {cap}"
    );
}

#[test]
fn one_gib_of_zeros_in_one_gzip_member() {
    let _one = one_at_a_time();
    let block = zeros_block();
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    for _ in 0..1024 {
        gz.extend(&block);
    }
    // Final empty block; the trailer's CRC is never reached.
    gz.extend([0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
    refused(&message(&gz), 8 * MIB);
}

#[test]
fn one_gib_of_zeros_in_1024_gzip_members() {
    let _one = one_at_a_time();
    let member = logport_forward::encode::gzip(&vec![0u8; MIB]);
    refused(&message(&member.repeat(1024)), 4 * MIB + 17);
}

/// `n` entries `[0, {}]`: 3 bytes each on the wire, far more once decoded.
fn tiny_entries(n: usize) -> Vec<u8> {
    [0x92, 0x00, 0x80].repeat(n)
}

/// A message refused at `max_decoded` (`decoded`), never holding much more than
/// that cap beside the message itself and the `inflated` bytes of its entries.
fn refused_decoded(wire: &[u8], decoded: usize, inflated: usize) {
    let mut dec = Decoder::new(Limits {
        max_message: 64 * MIB,
        max_decompressed: 64 * MIB,
        max_depth: 16,
        max_decoded: decoded,
    });
    let mut buf = BytesMut::from(wire);
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let e = dec.decode(&mut buf).unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::DecodedTooLarge { max, .. } if max == decoded),
        "{e}"
    );
    assert!(e.to_string().contains("once decoded"), "{e}");
    let peak = PEAK.load(Ordering::Relaxed) - base;
    // Decoded entries take less than what they are counted as; a compressed
    // message adds its inflated entries (and the old half of the buffer as it grew).
    assert!(
        peak < decoded + inflated * 3 / 2 + MIB,
        "peak {peak} bytes for a decoded cap of {decoded}"
    );
}

#[test]
fn millions_of_tiny_entries_in_forward_mode() {
    let _one = one_at_a_time();
    let n = 4_000_000;
    // [tag, [[0, {}], ...]]: 12 MB on the wire, about a hundred times that as events.
    let mut wire = vec![0x92, 0xa1, b't', 0xdd];
    wire.extend((n as u32).to_be_bytes());
    wire.extend(tiny_entries(n));
    refused_decoded(&wire, 16 * MIB, 0);
}

#[test]
fn millions_of_tiny_entries_gzipped() {
    let _one = one_at_a_time();
    // 12 MB of entries gzip to about 12 KB: the bomb that the inflation cap does not stop.
    let gz = logport_forward::encode::gzip(&tiny_entries(4_000_000));
    assert!(gz.len() < 64 << 10, "{}", gz.len());
    refused_decoded(&message(&gz), 16 * MIB, 12_000_000);
}

#[test]
fn entries_within_the_decoded_cap_all_come_out() {
    let _one = one_at_a_time();
    let n = 50_000;
    let gz = logport_forward::encode::gzip(&tiny_entries(n));
    let mut dec = Decoder::new(Limits {
        max_decoded: n * (logport_forward::ENTRY_COST + 3),
        ..Limits::default()
    });
    let chunk = dec
        .decode(&mut BytesMut::from(&message(&gz)[..]))
        .unwrap()
        .unwrap();
    assert_eq!((chunk.entries.len(), chunk.skipped), (n, 0));
    assert_eq!(chunk.decoded, n * (logport_forward::ENTRY_COST + 3));
}
