//! Bytes → `vecdex_store::parse` (as given and re-signed); an accepted image must be
//! canonical (see `vecdex_fuzz::check_parse`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vecdex_fuzz::run_parse(data);
});
