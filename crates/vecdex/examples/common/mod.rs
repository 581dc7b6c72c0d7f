//! Shared by the development harnesses: raw little-endian f32 files (see benchmark/dump.mjs).

/// Every f32 of a raw little-endian file.
pub fn read_f32(path: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Every u32 of a raw little-endian file (CSR offsets of the multi-vector dumps).
#[allow(dead_code)] // not every harness reads offsets
pub fn read_u32(path: &str) -> Vec<u32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// An integer setting from the environment, or `default`.
#[allow(dead_code)] // not every harness takes settings this way
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
