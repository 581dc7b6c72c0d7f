//! The one interface of every codec.

use vecdex_distance::Metric;

/// A codec that cannot be trained or used as asked; the message says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantError {
    message: String,
    /// A buffer sized by the caller's input (dimensions, sample size) could not be allocated;
    /// the facade reports this as out of memory rather than as a bad argument.
    out_of_memory: bool,
}

impl QuantError {
    pub fn new(message: impl Into<String>) -> Self {
        QuantError {
            message: message.into(),
            out_of_memory: false,
        }
    }

    /// `what` (`len` values) could not be allocated.
    pub fn out_of_memory(what: &str, len: usize) -> Self {
        QuantError {
            message: format!("{what}: {len} values do not fit in memory"),
            out_of_memory: true,
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn is_out_of_memory(&self) -> bool {
        self.out_of_memory
    }
}

impl std::fmt::Display for QuantError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A buffer of `len` copies of `value`, or [`QuantError::out_of_memory`] (never an abort): for
/// every buffer whose size comes from the caller's dimensions or sample.
pub fn try_filled<T: Clone>(len: usize, value: T, what: &str) -> Result<Vec<T>, QuantError> {
    let mut out = Vec::new();
    out.try_reserve_exact(len)
        .map_err(|_| QuantError::out_of_memory(what, len))?;
    out.resize(len, value);
    Ok(out)
}

impl std::error::Error for QuantError {}

/// Encodes `dim`-dimensional f32 vectors into codes of [`Codec::code_size`] bytes and scores
/// codes against prepared queries. Scores follow the crate's metric convention (lower is
/// closer): `l2sq` is the squared distance, `dot` and `cosine` are `1 − ⟨q, x⟩` (cosine on
/// vectors normalised before encoding).
pub trait Codec: Send + Sync {
    /// A query in the form this codec scores against (e.g. PQ's lookup tables).
    type Query: Send + Sync;

    fn dim(&self) -> usize;

    fn metric(&self) -> Metric;

    /// Bytes of one code.
    fn code_size(&self) -> usize;

    /// Writes the code of `vector` (`dim` values) into `code` (`code_size` bytes).
    fn encode(&self, vector: &[f32], code: &mut [u8]);

    /// The vector a code stands for (exact for f16/bf16, the cell centre for SQ, centroids for
    /// PQ, ± the per-dimension mean deviation for binary).
    fn decode(&self, code: &[u8], out: &mut [f32]);

    /// Prepares `query` (`dim` values) for scoring many codes.
    fn prepare(&self, query: &[f32]) -> Self::Query;

    /// Distance estimate between a prepared query and a code.
    fn score(&self, query: &Self::Query, code: &[u8]) -> f32;

    /// [`Codec::score`] of each of the consecutive codes in `codes` (`out.len()` of them),
    /// into `out`. Scans call this on runs of codes so that a codec can choose its kernel once
    /// per run rather than once per code (a call through a pointer per score costs more than
    /// a short code's score).
    fn score_run(&self, query: &Self::Query, codes: &[u8], out: &mut [f32]) {
        let size = self.code_size();
        debug_assert_eq!(codes.len(), out.len() * size);
        for (code, score) in codes.chunks_exact(size).zip(out.iter_mut()) {
            *score = self.score(query, code);
        }
    }
}

/// Checks a training sample: whole rows, at least `min_rows`, finite values.
pub(crate) fn check_sample(
    sample: &[f32],
    dim: usize,
    min_rows: usize,
    codec: &str,
) -> Result<usize, QuantError> {
    if dim == 0 {
        return Err(QuantError::new(format!(
            "{codec}: dimensions must be at least 1"
        )));
    }
    if !sample.len().is_multiple_of(dim) {
        return Err(QuantError::new(format!(
            "{codec}: the training sample has {} values, not a whole number of {dim}-dimensional rows",
            sample.len()
        )));
    }
    let rows = sample.len() / dim;
    if rows < min_rows {
        return Err(QuantError::new(format!(
            "{codec}: training needs at least {min_rows} vectors, got {rows}"
        )));
    }
    if let Some(i) = sample.iter().position(|x| !x.is_finite()) {
        return Err(QuantError::new(format!(
            "{codec}: the training sample has a non-finite value at row {}, dimension {}",
            i / dim,
            i % dim
        )));
    }
    Ok(rows)
}

/// `1 − ⟨q, x⟩` or `Σ (q − x)²` of two decoded f32 vectors: the reference every codec's score
/// approximates.
pub fn metric_distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Metric::L2sq => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum(),
        _ => 1.0 - a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>(),
    }
}

/// Checks that a codec can score under `metric` (spatial metrics only).
pub(crate) fn check_metric(metric: Metric, codec: &str) -> Result<(), QuantError> {
    if metric.is_spatial() {
        Ok(())
    } else {
        Err(QuantError::new(format!(
            "{codec} encodes f32 vectors: use cosine, dot or l2sq"
        )))
    }
}
