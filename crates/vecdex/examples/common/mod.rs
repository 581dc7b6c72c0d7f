//! Shared by the development harnesses: raw little-endian f32 files (see benchmark/dump.mjs).

/// Every f32 of a raw little-endian file.
pub fn read_f32(path: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
