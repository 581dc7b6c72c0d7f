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
