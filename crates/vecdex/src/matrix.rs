//! All-pairs distances between two sets of f32 vectors.

use rayon::prelude::*;
use vecdex_distance::Metric;

use crate::cancel::StopFlag;
use crate::error::{Error, Result};
use crate::threads;
use crate::validate::{check_matrix, try_filled, MAX_DIMENSIONS};

/// Distances of every query row to every vector row (both row-major, `dim` columns), as a
/// row-major `queries × vectors` matrix, each entry computed by the pairwise simsimd kernel.
pub fn distance_matrix(
    queries: &[f32],
    vectors: &[f32],
    dim: usize,
    metric: Metric,
    stop: &StopFlag,
) -> Result<Vec<f32>> {
    if dim == 0 || dim > MAX_DIMENSIONS {
        return Err(Error::invalid(format!(
            "dimensions must be between 1 and {MAX_DIMENSIONS}, got {dim}"
        )));
    }
    if !metric.is_spatial() {
        return Err(Error::invalid(
            "distanceMatrix takes f32 vectors: use cosine, dot or l2sq",
        ));
    }
    let cosine = metric == Metric::Cosine;
    check_matrix(queries, dim, "queries", cosine)?;
    check_matrix(vectors, dim, "vectors", cosine)?;
    let columns = vectors.len() / dim;
    let cells = (queries.len() / dim).saturating_mul(columns);
    let mut out = try_filled(cells, 0f32, "distance matrix")?;
    let fill = |(row, q): (&mut [f32], &[f32])| -> Result<()> {
        stop.check()?;
        for (cell, v) in row.iter_mut().zip(vectors.chunks_exact(dim)) {
            *cell = vecdex_distance::distance(metric, q, v)
                .map_err(|e| Error::Internal(e.to_string()))? as f32;
        }
        Ok(())
    };
    if cells * dim < (1 << 20) {
        out.chunks_mut(columns)
            .zip(queries.chunks_exact(dim))
            .try_for_each(fill)?;
    } else {
        threads::run(|| {
            out.par_chunks_mut(columns)
                .zip(queries.par_chunks_exact(dim))
                .try_for_each(fill)
        })?;
    }
    Ok(out)
}
