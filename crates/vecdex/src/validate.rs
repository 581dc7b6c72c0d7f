//! Checks on raw input shared by every index: the facade and the binding are the only layers
//! that see unvalidated data.

use std::borrow::Cow;

use crate::error::{Error, Result};

/// Largest dimension count accepted (keeps every size computation far from overflow).
pub const MAX_DIMENSIONS: usize = 65_536;

/// Largest squared norm accepted for a vector: a quarter of f32's range, so that any squared
/// distance (‖a − b‖² ≤ 2‖a‖² + 2‖b‖²) and any inner product stays finite in f32.
pub const MAX_SQUARED_NORM: f64 = f32::MAX as f64 / 4.0;

/// Checks the configuration of an index of f32 vectors: `dim` in range and a spatial metric.
pub fn check_f32_config(dim: usize, metric: vecdex_distance::Metric, index: &str) -> Result<()> {
    if dim == 0 || dim > MAX_DIMENSIONS {
        return Err(Error::invalid(format!(
            "dimensions must be between 1 and {MAX_DIMENSIONS}, got {dim}"
        )));
    }
    if !metric.is_spatial() {
        return Err(Error::invalid(format!(
            "{index} stores f32 vectors: use cosine, dot or l2sq (hamming needs binary vectors)"
        )));
    }
    Ok(())
}

/// Largest squared norm accepted for a token of a point cloud (2⁶⁰, a norm of 2³⁰ ≈ 1.07e9), at
/// every entry point that takes tokens: a multi-vector index's add, train, search and
/// searchExact, the FDE encoder, and `chamfer`. Chamfer similarity sums one inner product per
/// query token, so the single-vector bound ([`MAX_SQUARED_NORM`]) would let a few large tokens
/// overflow f32; under this one nothing derived from accepted tokens can (see
/// [`vecdex_fde::MAX_TOKEN_SQUARED_NORM`] for the proof). Cosine tokens are normalised first and
/// need only be non-zero.
pub const MAX_TOKEN_SQUARED_NORM: f64 = vecdex_fde::MAX_TOKEN_SQUARED_NORM;

/// Checks a row-major matrix of `dim`-dimensional rows: non-empty, a whole number of rows, every
/// value finite; for cosine (rows are normalised) no zero row, otherwise no row too large for
/// f32 distances.
pub fn check_matrix(data: &[f32], dim: usize, what: &str, cosine: bool) -> Result<()> {
    let bound = (MAX_SQUARED_NORM, "where f32 distances overflow");
    check_rows(data, dim, what, cosine, "row", bound)
}

/// Checks point-cloud tokens (row-major, `dim` wide) as [`check_matrix`] does, with the token
/// bound [`MAX_TOKEN_SQUARED_NORM`] instead: the one rule of every entry point taking tokens.
pub fn check_tokens(data: &[f32], dim: usize, what: &str, cosine: bool) -> Result<()> {
    let bound = (
        MAX_TOKEN_SQUARED_NORM,
        "the largest token accepted, so that Chamfer sums and encodings stay finite",
    );
    check_rows(data, dim, what, cosine, "token", bound)
}

/// Checks two single vectors given to `distance` by the rule of the indexes ([`check_matrix`]
/// on each, and equal lengths), so that a pair an index would refuse is refused here too
/// instead of yielding an infinite distance.
pub fn check_pair(a: &[f32], b: &[f32], metric: vecdex_distance::Metric) -> Result<()> {
    if a.len() != b.len() {
        return Err(Error::DimensionMismatch {
            expected: a.len(),
            actual: b.len(),
            what: "distance".into(),
        });
    }
    if a.is_empty() {
        return Err(Error::invalid("distance: the vectors are empty"));
    }
    let cosine = metric == vecdex_distance::Metric::Cosine;
    check_matrix(a, a.len(), "a", cosine)?;
    check_matrix(b, b.len(), "b", cosine)
}

/// Squared norm below which the f32 cosine kernel loses a vector: its squares fall into
/// subnormals (a vector of 1e-25s has an f32 norm of 0 and a cosine of garbage).
const MIN_KERNEL_SQUARED_NORM: f64 = 1e-30;

/// Checks a pair for `distance` ([`check_pair`]) and returns it as the SIMD kernel must see
/// it: unchanged, except under cosine when a vector's norm is outside what the kernel's f32
/// sums can hold (squared norm above [`MAX_SQUARED_NORM`] or below 1e-30); such a vector is
/// normalised in f64 first, as an index normalises at insert, so `distance` agrees with the
/// indexes instead of answering 0.
pub fn pair_for_kernel<'a>(
    a: &'a [f32],
    b: &'a [f32],
    metric: vecdex_distance::Metric,
) -> Result<[Cow<'a, [f32]>; 2]> {
    check_pair(a, b, metric)?;
    let ready = |v: &'a [f32], what: &str| -> Result<Cow<'a, [f32]>> {
        let squared = squared_norm_f64(v);
        if metric != vecdex_distance::Metric::Cosine
            || (MIN_KERNEL_SQUARED_NORM..=MAX_SQUARED_NORM).contains(&squared)
        {
            return Ok(Cow::Borrowed(v));
        }
        let mut unit = try_copy(v, what)?;
        normalize(&mut unit);
        Ok(Cow::Owned(unit))
    };
    Ok([ready(a, "a")?, ready(b, "b")?])
}

fn check_rows(
    data: &[f32],
    dim: usize,
    what: &str,
    cosine: bool,
    noun: &str,
    (limit, reason): (f64, &str),
) -> Result<()> {
    if data.is_empty() {
        return Err(Error::invalid(format!(
            "{what}: empty input, give at least one vector"
        )));
    }
    if !data.len().is_multiple_of(dim) {
        let actual = if data.len() < dim {
            data.len()
        } else {
            data.len() % dim
        };
        return Err(Error::DimensionMismatch {
            expected: dim,
            actual,
            what: format!(
                "{what}: length {} is not a whole number of {dim}-dimensional rows",
                data.len()
            ),
        });
    }
    for (row, values) in data.chunks_exact(dim).enumerate() {
        if let Some(col) = values.iter().position(|x| !x.is_finite()) {
            return Err(Error::invalid(format!(
                "{what}: {noun} {row} has a non-finite value ({}) at dimension {col}",
                values[col]
            )));
        }
        let squared_norm = squared_norm_f64(values);
        if !cosine && squared_norm > limit {
            return Err(Error::invalid(format!(
                "{what}: {noun} {row} is too large (squared norm {squared_norm:e} exceeds {limit:e}, {reason})"
            )));
        }
        if cosine && squared_norm == 0.0 {
            return Err(Error::ZeroVector(format!(
                "{what}: {noun} {row} is a zero vector, which has no direction for cosine"
            )));
        }
    }
    Ok(())
}

/// The key of a search-result cell that holds no hit: rows have `min(k, size)` columns, and a
/// row with fewer hits (a filter that admits fewer vectors, a graph walk that finds fewer) is
/// padded with this key and a distance of +∞ after its `counts[i]` hits. 2⁶⁴ − 1 can never be
/// a key: adding it is an error ([`check_new_keys`]), so a padding cell is never mistaken for
/// a hit. Looking it up, removing it or filtering by it is harmless (nothing matches).
pub const NO_KEY: u64 = u64::MAX;

/// Checks the keys of a batch to add: none is [`NO_KEY`], none appears twice.
pub fn check_new_keys(keys: &[u64]) -> Result<()> {
    let mut seen = std::collections::HashMap::new();
    seen.try_reserve(keys.len())
        .map_err(|_| out_of_memory("the batch's keys", keys.len()))?;
    for (i, key) in keys.iter().enumerate() {
        check_stored_key(*key)?;
        if let Some(first) = seen.insert(*key, i) {
            return Err(Error::invalid(format!(
                "key {key} appears twice in one batch (positions {first} and {i})"
            )));
        }
    }
    Ok(())
}

/// Refuses [`NO_KEY`] as the key of something stored.
pub fn check_stored_key(key: u64) -> Result<()> {
    if key == NO_KEY {
        return Err(reserved_key());
    }
    Ok(())
}

/// The error for [`NO_KEY`] given as a key to store (a file that holds it is corrupt instead).
pub fn reserved_key() -> Error {
    Error::invalid(format!(
        "key {NO_KEY} is reserved: it marks the empty cells of search results, so no index stores it"
    ))
}

/// Checks a batch of keys and row-major vectors for an add: the vectors as [`check_matrix`],
/// one key per row, the keys as [`check_new_keys`].
pub fn check_keyed_batch(keys: &[u64], vectors: &[f32], dim: usize, cosine: bool) -> Result<()> {
    check_matrix(vectors, dim, "vectors", cosine)?;
    if vectors.len() / dim != keys.len() {
        return Err(Error::invalid(format!(
            "{} keys for {} vectors: give one key per vector",
            keys.len(),
            vectors.len() / dim
        )));
    }
    check_new_keys(keys)
}

fn squared_norm_f64(values: &[f32]) -> f64 {
    values.iter().map(|x| f64::from(*x) * f64::from(*x)).sum()
}

/// Scales a non-zero row to unit length, in f64 so that tiny or huge rows neither underflow nor
/// overflow on the way (an f32 norm of [1e-30, 0] is 0; of [1e20, 1e20], infinite).
pub fn normalize(row: &mut [f32]) {
    let norm = squared_norm_f64(row).sqrt();
    if norm > 0.0 {
        row.iter_mut()
            .for_each(|x| *x = (f64::from(*x) / norm) as f32);
    }
}

/// [`Error::OutOfMemory`] for `what`, `len` values that could not be allocated.
pub fn out_of_memory(what: &str, len: usize) -> Error {
    Error::OutOfMemory(format!(
        "{what}: {len} values do not fit in memory; ask for fewer results, fewer or smaller inputs per call"
    ))
}

/// A buffer of `len` copies of `value`, or [`Error::OutOfMemory`] (never an abort) when memory
/// runs out: for every buffer whose size comes from the caller (options, counts, headers).
pub fn try_filled<T: Clone>(len: usize, value: T, what: &str) -> Result<Vec<T>> {
    let mut out = Vec::new();
    out.try_reserve_exact(len)
        .map_err(|_| out_of_memory(what, len))?;
    out.resize(len, value);
    Ok(out)
}

/// A copy of `values`, or [`Error::OutOfMemory`]: for inputs copied before work is queued (an
/// async call's copy of a JS array, checked tokens about to be normalised).
pub fn try_copy<T: Copy>(values: &[T], what: &str) -> Result<Vec<T>> {
    let mut out = Vec::new();
    out.try_reserve_exact(values.len())
        .map_err(|_| out_of_memory(what, values.len()))?;
    out.extend_from_slice(values);
    Ok(out)
}
