//! Bytes → `HnswIndex::from_bytes` (as given and re-signed); an accepted index is searched,
//! changed and saved (see `vecdex_fuzz::check_hnsw`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vecdex_fuzz::run_loader(data, vecdex_fuzz::check_hnsw);
});
