//! Conversions of JS values the TS layer has already validated (checked again here: the
//! native API must not trust its caller).

use napi::bindgen_prelude::BigInt;
use vecdex::Metric;

use crate::error::{invalid, Result};

pub fn metric(name: &str) -> Result<Metric> {
    name.parse::<Metric>().map_err(|e| invalid(e.to_string()))
}

/// An unsigned 64-bit key from a JS bigint.
pub fn key(value: &BigInt) -> Result<u64> {
    let (negative, key, lossless) = value.get_u64();
    if negative && key != 0 || !lossless {
        return Err(invalid(format!(
            "key must be an unsigned 64-bit integer, got {value:?}"
        )));
    }
    Ok(key)
}

/// The most bytes one result typed array may hold: Node-API refuses to wrap Rust memory larger
/// than `buffer.constants.MAX_LENGTH` (4 GiB on Node 20) and throws instead, which in an async
/// task's settlement would leave its promise unsettled. Lowered by the test hook
/// `debugSetMaxResultBytes`.
static MAX_RESULT_BYTES: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(DEFAULT_MAX_RESULT_BYTES);
pub const DEFAULT_MAX_RESULT_BYTES: usize = 1 << 32;

pub fn set_max_result_bytes(bytes: usize) {
    MAX_RESULT_BYTES.store(bytes, std::sync::atomic::Ordering::SeqCst);
}

/// `values`, if they fit one result typed array; else ERR_OUT_OF_MEMORY saying what to do.
pub fn fits_one_array<T>(values: Vec<T>, what: &str) -> Result<Vec<T>> {
    let bytes = values.len().saturating_mul(std::mem::size_of::<T>());
    let most = MAX_RESULT_BYTES.load(std::sync::atomic::Ordering::SeqCst);
    if bytes > most {
        return Err(vecdex::Error::OutOfMemory(format!(
            "{what} would be {bytes} bytes in one typed array, and Node-API makes at most {most}: ask for fewer rows per call"
        ))
        .into());
    }
    Ok(values)
}
