//! Helpers shared by the fuzz targets.

/// Splits a fuzz input into a read size and the stream. The first byte picks
/// how many bytes each simulated socket read delivers (1..=256): TCP cuts
/// frames anywhere, and the incremental decoders' resume paths are where
/// off-by-one and buffering bugs hide, so the fuzzer must steer the cuts too.
pub fn reads(data: &[u8]) -> (usize, &[u8]) {
    match data.split_first() {
        Some((&b, rest)) => (usize::from(b) + 1, rest),
        None => (1, data),
    }
}
