//! Checks on raw input shared by every index: the facade and the binding are the only layers
//! that see unvalidated data.

use crate::error::{Error, Result};

/// Largest dimension count accepted (keeps every size computation far from overflow).
pub const MAX_DIMENSIONS: usize = 65_536;

/// Checks a row-major matrix of `dim`-dimensional rows: non-empty, a whole number of rows, every
/// value finite, and (for cosine) no zero row.
pub fn check_matrix(data: &[f32], dim: usize, what: &str, reject_zero_rows: bool) -> Result<()> {
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
                "{what}: row {row} has a non-finite value ({}) at dimension {col}",
                values[col]
            )));
        }
        if reject_zero_rows && values.iter().all(|x| *x == 0.0) {
            return Err(Error::ZeroVector(format!(
                "{what}: row {row} is a zero vector, which has no direction for cosine"
            )));
        }
    }
    Ok(())
}

/// A zero-filled buffer of `len` values, or an error (never an abort) when memory runs out.
pub fn try_filled<T: Clone>(len: usize, value: T, what: &str) -> Result<Vec<T>> {
    let mut out = Vec::new();
    out.try_reserve_exact(len).map_err(|_| {
        Error::invalid(format!(
            "{what}: {len} values do not fit in memory; ask for fewer results or fewer queries per call"
        ))
    })?;
    out.resize(len, value);
    Ok(out)
}
