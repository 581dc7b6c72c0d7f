//! What the fuzz targets run, shared with `examples/replay.rs` (which runs a saved input
//! through the same checks without libFuzzer, for a readable panic message and backtrace).
//!
//! Checksums would stop almost every mutated input at the first CRC, so each loader target
//! runs twice per input: on the bytes as given (the checksum gate itself), and on
//! [`reencode`]d bytes, where the header fields, configuration and section payloads are taken
//! leniently from the input and laid out again by `vecdex_store::encode` with correct
//! lengths, offsets, padding and CRCs. The second run reaches the cross-field checks of the
//! loaders (graph links, counts, keys, codec models) with every mutation.

#![allow(clippy::unwrap_used)] // a failed expectation here is a finding: it must abort

use vecdex::{Error, FlatIndex, HnswIndex, StopFlag};
use vecdex_store::{encode, parse, FileHeader, IndexKind};

const FIXED_HEADER: usize = 40;
const SECTION_ENTRY: usize = 32;
const MAX_SECTIONS: usize = 256;
const MAX_CONFIG: usize = 1 << 20;
const ALIGN: usize = 64;

fn aligned(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The input re-signed: its header fields, configuration and sections (ids and lengths from
/// its table, payloads laid one after the other from the end of its header, cut at the end
/// of the input) encoded again into a file whose checksums, offsets and padding are right.
/// `None` when the input is too short for the fixed header, names an unknown index kind or
/// repeats a section id. A valid image comes back unchanged.
pub fn reencode(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < FIXED_HEADER {
        return None;
    }
    let kind = IndexKind::from_byte(data[16])?;
    let config_len = (u32_at(data, 32) as usize)
        .min(MAX_CONFIG)
        .min(data.len() - FIXED_HEADER);
    let config = data[FIXED_HEADER..FIXED_HEADER + config_len].to_vec();
    let table = aligned(FIXED_HEADER + config_len);
    let announced = (u32_at(data, 36) as usize).min(MAX_SECTIONS);
    let present = data.len().saturating_sub(table) / SECTION_ENTRY;
    let count = announced.min(present);
    let mut at = aligned(table + SECTION_ENTRY * count + 4);
    let mut sections: Vec<(u32, &[u8])> = Vec::with_capacity(count);
    for i in 0..count {
        let entry = table + i * SECTION_ENTRY;
        let id = u32_at(data, entry);
        let start = at.min(data.len());
        let len = usize::try_from(u64_at(data, entry + 16)).unwrap_or(usize::MAX);
        let end = start.saturating_add(len).min(data.len());
        sections.push((id, &data[start..end]));
        at = aligned(end);
    }
    let header = FileHeader {
        kind,
        metric: data[17],
        dimensions: u32_at(data, 20),
        count: u64_at(data, 24),
        config,
    };
    encode(&header, &sections).ok()
}

/// `vecdex_store::parse` on the input: never a panic; and a file it accepts is canonical (the
/// encoding of its own header and sections, byte for byte, since every byte of a valid file
/// is covered by a checksum or must be zero).
pub fn check_parse(data: &[u8]) {
    let Ok(file) = parse(data) else { return };
    let sections: Vec<(u32, &[u8])> = file.sections.iter().map(|s| (s.id, s.bytes)).collect();
    let again = encode(&file.header, &sections).expect("an accepted file re-encodes");
    assert!(again == data, "parse accepted a non-canonical image");
}

/// What a loader may answer for a bad file (as `tests/persistence.rs` expects).
fn assert_file_error(error: &Error) {
    assert!(
        matches!(
            error,
            Error::CorruptFile(_) | Error::UnsupportedFormat(_) | Error::InvalidArgument(_)
        ),
        "a bad file gave an error of another kind: {error:?}"
    );
}

/// A small query of `dim` values, nonzero (cosine refuses zero vectors).
fn query(dim: usize) -> Option<Vec<f32>> {
    // Larger dimensions are valid but make no new paths, only slow runs.
    (dim <= 4096).then(|| {
        (0..dim)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 6.0 + 0.05)
            .collect()
    })
}

/// Loads `data`; an error must be a file error (then `None`); an accepted index must save to
/// bytes that load and save to the same bytes.
fn load_and_round_trip<T>(
    data: &[u8],
    from_bytes: fn(&[u8]) -> vecdex::Result<T>,
    to_bytes: fn(&T) -> vecdex::Result<Vec<u8>>,
) -> Option<T> {
    let index = match from_bytes(data) {
        Ok(index) => index,
        Err(e) => {
            assert_file_error(&e);
            return None;
        }
    };
    let saved = to_bytes(&index).expect("a loaded index saves");
    let again = from_bytes(&saved).expect("a saved index loads");
    assert!(
        to_bytes(&again).expect("saves") == saved,
        "save → load → save changed the bytes"
    );
    Some(index)
}

/// `HnswIndex::from_bytes`: never a panic; an error is a file error; an index it accepts
/// searches, takes an insert and a removal, and saves to bytes that load to the same bytes.
pub fn check_hnsw(data: &[u8]) {
    let Some(mut index) = load_and_round_trip(data, HnswIndex::from_bytes, HnswIndex::to_bytes)
    else {
        return;
    };
    let stop = StopFlag::never();
    let _ = index.stats();
    let keys = index.keys();
    if let Some(&key) = keys.first() {
        let _ = index.get(key);
    }
    if let Some(q) = query(index.dim()) {
        let _ = index.search(&q, 5, Some(32), None, &stop);
        let _ = index.search(&q, 3, None, None, &stop);
        let fresh = (0..=keys.len() as u64).find(|k| !index.contains(*k));
        if let Some(key) = fresh {
            if index.add(&[key], &q, &stop).is_ok() {
                let _ = index.search(&q, 1, Some(16), None, &stop);
                let _ = index.remove(&[key]);
            }
        }
    }
}

/// `FlatIndex::from_bytes`, as [`check_hnsw`].
pub fn check_flat(data: &[u8]) {
    let Some(mut index) = load_and_round_trip(data, FlatIndex::from_bytes, FlatIndex::to_bytes)
    else {
        return;
    };
    let stop = StopFlag::never();
    let keys = index.keys().to_vec();
    if let Some(&key) = keys.first() {
        let _ = index.get(key);
    }
    if let Some(q) = query(index.dim()) {
        let _ = index.search(&q, 5, None, &stop);
        let fresh = (0..=keys.len() as u64).find(|k| !index.contains(*k));
        if let Some(key) = fresh {
            if index.add(&[key], &q, &stop).is_ok() {
                let _ = index.search(&q, 1, None, &stop);
                index.remove(&[key]);
            }
        }
    }
}

/// One fuzz input through a loader: as given, then re-signed when that changes it.
pub fn run_loader(data: &[u8], check: fn(&[u8])) {
    check(data);
    if let Some(fixed) = reencode(data) {
        if fixed != data {
            check(&fixed);
        }
    }
}

/// One fuzz input through the store parser: as given, then re-signed (which must parse unless
/// its header fields are out of range).
pub fn run_parse(data: &[u8]) {
    check_parse(data);
    if let Some(fixed) = reencode(data) {
        if fixed != data {
            check_parse(&fixed);
        }
    }
}
