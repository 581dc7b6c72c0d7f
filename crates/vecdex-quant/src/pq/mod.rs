//! Product quantization (Jégou, Douze & Schmid, "Product Quantization for Nearest Neighbor
//! Search", TPAMI 2011): the dimensions are split into `m` subspaces, each with its own
//! codebook of up to 256 centroids learnt by k-means, and a vector is stored as one centroid
//! index per subspace (`m` bytes).
//!
//! Scoring is asymmetric (ADC): a prepared query holds a table `m × 256` of the query's
//! distance (l2sq) or inner product (dot, cosine) to every centroid of every subspace, and the
//! score of a code is the sum of `m` table entries — exactly the distance to the decoded vector,
//! as both metrics add up over disjoint subspaces.
//!
//! Layout: subspace `j` covers dimensions `starts[j] .. starts[j + 1]`; when `m` does not divide
//! `dim`, the first `dim mod m` subspaces are one dimension wider. Codebook `j` is row-major,
//! `centroids(j) × width(j)`, stored one after another in `codebooks`.

use rayon::prelude::*;
use vecdex_distance::Metric;

use crate::codec::{check_metric, check_sample, Codec, QuantError};
use crate::kmeans::{kmeans, nearest};
use crate::model::{check_len, model_len, put_f32s, Reader};

/// Centroids per subspace: one byte per code.
pub const CENTROIDS: usize = 256;

/// Lloyd iterations per subspace by default: k-means on 256 centroids has mostly settled by
/// then (the `quant` benchmark's recall stops moving).
pub const DEFAULT_PQ_ITERATIONS: usize = 25;
/// Largest accepted iteration count.
pub const MAX_PQ_ITERATIONS: usize = 1000;

/// Training options of a product quantizer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PqConfig {
    /// Subspaces (`m`, bytes per code), 1 ..= dim.
    pub subspaces: usize,
    /// Lloyd iterations per codebook.
    pub iterations: usize,
    /// Seed of the k-means++ initialisation: training is deterministic for a given seed.
    pub seed: u64,
}

impl PqConfig {
    pub fn new(subspaces: usize) -> Self {
        PqConfig {
            subspaces,
            iterations: DEFAULT_PQ_ITERATIONS,
            seed: 0x5EED,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PqCodec {
    metric: Metric,
    dim: usize,
    /// First dimension of each subspace, then `dim`.
    starts: Vec<usize>,
    /// Centroids per subspace (256, or fewer when trained on fewer rows).
    sizes: Vec<usize>,
    /// Offset of each codebook in `codebooks`.
    offsets: Vec<usize>,
    codebooks: Vec<f32>,
}

impl PqCodec {
    /// Learns a codebook per subspace from `sample` (row-major, `dim` values per row).
    pub fn train(
        sample: &[f32],
        dim: usize,
        metric: Metric,
        config: PqConfig,
    ) -> Result<Self, QuantError> {
        check_metric(metric, "PQ")?;
        let rows = check_sample(sample, dim, 1, "PQ")?;
        check_config(dim, metric, config)?;
        let m = config.subspaces;
        let starts = starts(dim, m);
        let k = CENTROIDS.min(rows);
        let books: Vec<Vec<f32>> = (0..m)
            .into_par_iter()
            .map(|j| {
                let (from, to) = (starts[j], starts[j + 1]);
                let sub: Vec<f32> = sample
                    .chunks_exact(dim)
                    .flat_map(|row| row[from..to].iter().copied())
                    .collect();
                kmeans(
                    &sub,
                    to - from,
                    k,
                    config.iterations,
                    config.seed ^ (j as u64).wrapping_mul(0x9E37_79B9),
                )
            })
            .collect();
        Ok(Self::from_codebooks(metric, starts, k, books.concat()))
    }

    /// The trained state, little-endian: the centroids per subspace `k` (u32, 1 ..= 256: 256, or
    /// the training rows when fewer), then the codebooks (f32) of subspaces `0 .. m` in order,
    /// codebook `j` row-major `k × width(j)` (centroid by centroid); `4 + 4·k·dim` bytes. The
    /// subspace widths follow from `dim` and `m` (see the module docs), so they are not stored;
    /// nor are the metric and [`PqConfig`]: [`PqCodec::from_model_bytes`] takes them.
    pub fn model_bytes(&self) -> Vec<u8> {
        let k = self.sizes.first().copied().unwrap_or(0);
        let mut out = Vec::with_capacity(4 + 4 * self.codebooks.len());
        out.extend_from_slice(&(k as u32).to_le_bytes());
        put_f32s(&mut out, &self.codebooks);
        out
    }

    /// The codec whose [`PqCodec::model_bytes`] are `bytes`, with the `dim`, `metric` and
    /// `config` it was trained with (only `config.subspaces` matters): it encodes and scores bit
    /// for bit as the trained one did. Errors when `train` would refuse `dim`, `metric` or the
    /// subspace count, `k` is not in `1 ..= 256`, the length is not exactly `4 + 4·k·dim`, or a
    /// centroid value is not finite.
    pub fn from_model_bytes(
        bytes: &[u8],
        dim: usize,
        metric: Metric,
        config: PqConfig,
    ) -> Result<Self, QuantError> {
        check_config(dim, metric, config)?;
        let mut reader = Reader::new(bytes, "PQ");
        let k = reader.u32("the centroid count")?;
        let k = usize::try_from(k)
            .ok()
            .filter(|k| (1..=CENTROIDS).contains(k))
            .ok_or_else(|| {
                QuantError::new(format!(
                    "PQ model: centroids per subspace must be between 1 and {CENTROIDS}, got {k}"
                ))
            })?;
        let len = model_len(&[&[4], &[k, dim, 4]], "PQ")?;
        check_len(
            bytes,
            len,
            &format!("{k} centroids of {dim} dimensions"),
            "PQ",
        )?;
        let codebooks = reader.f32s(k * dim, "the codebooks")?;
        reader.finish()?;
        Ok(Self::from_codebooks(
            metric,
            starts(dim, config.subspaces),
            k,
            codebooks,
        ))
    }

    /// The codec of learnt (or loaded) codebooks, `k` centroids per subspace, subspace `j`
    /// covering `starts[j] .. starts[j + 1]`: every derived field is computed here only.
    fn from_codebooks(metric: Metric, starts: Vec<usize>, k: usize, codebooks: Vec<f32>) -> Self {
        let m = starts.len() - 1;
        let mut offsets = Vec::with_capacity(m);
        let mut offset = 0;
        for j in 0..m {
            offsets.push(offset);
            offset += k * (starts[j + 1] - starts[j]);
        }
        PqCodec {
            metric,
            dim: starts[m],
            starts,
            sizes: vec![k; m],
            offsets,
            codebooks,
        }
    }

    pub fn subspaces(&self) -> usize {
        self.sizes.len()
    }

    fn codebook(&self, j: usize) -> &[f32] {
        let width = self.starts[j + 1] - self.starts[j];
        &self.codebooks[self.offsets[j]..self.offsets[j] + self.sizes[j] * width]
    }
}

/// Errors unless `train` accepts `dim`, `metric` and `config`.
fn check_config(dim: usize, metric: Metric, config: PqConfig) -> Result<(), QuantError> {
    check_metric(metric, "PQ")?;
    let m = config.subspaces;
    if m == 0 || m > dim {
        return Err(QuantError::new(format!(
            "PQ: subspaces must be between 1 and the dimensions ({dim}), got {m}"
        )));
    }
    Ok(())
}

/// First dimension of each of the `m` subspaces, then `dim` (`1 ≤ m ≤ dim`): the first
/// `dim mod m` subspaces are one dimension wider.
fn starts(dim: usize, m: usize) -> Vec<usize> {
    let (base, extra) = (dim / m, dim % m);
    let mut starts = vec![0usize];
    for j in 0..m {
        starts.push(starts[j] + base + usize::from(j < extra));
    }
    starts
}

/// A query prepared for PQ: `m × 256` table entries (unused entries of smaller codebooks are 0).
#[derive(Debug, Clone)]
pub struct PqQuery {
    table: Vec<f32>,
}

impl Codec for PqCodec {
    type Query = PqQuery;

    fn dim(&self) -> usize {
        self.dim
    }

    fn metric(&self) -> Metric {
        self.metric
    }

    fn code_size(&self) -> usize {
        self.subspaces()
    }

    fn encode(&self, vector: &[f32], code: &mut [u8]) {
        for (j, c) in code.iter_mut().enumerate().take(self.subspaces()) {
            let (from, to) = (self.starts[j], self.starts[j + 1]);
            let (nearest_centroid, _) = nearest(&vector[from..to], self.codebook(j), to - from);
            *c = nearest_centroid as u8;
        }
    }

    fn decode(&self, code: &[u8], out: &mut [f32]) {
        for (j, &c) in code.iter().enumerate().take(self.subspaces()) {
            let (from, to) = (self.starts[j], self.starts[j + 1]);
            let width = to - from;
            out[from..to].copy_from_slice(
                &self.codebook(j)[usize::from(c) * width..(usize::from(c) + 1) * width],
            );
        }
    }

    fn prepare(&self, query: &[f32]) -> PqQuery {
        let mut table = vec![0f32; self.subspaces() * CENTROIDS];
        for j in 0..self.subspaces() {
            let (from, to) = (self.starts[j], self.starts[j + 1]);
            let q = &query[from..to];
            for (entry, centroid) in table[j * CENTROIDS..]
                .iter_mut()
                .zip(self.codebook(j).chunks_exact(to - from))
            {
                *entry = match self.metric {
                    Metric::L2sq => q.iter().zip(centroid).map(|(a, b)| (a - b) * (a - b)).sum(),
                    _ => q.iter().zip(centroid).map(|(a, b)| a * b).sum(),
                };
            }
        }
        PqQuery { table }
    }

    fn score(&self, query: &PqQuery, code: &[u8]) -> f32 {
        let sum: f32 = code
            .iter()
            .enumerate()
            .map(|(j, &c)| query.table[j * CENTROIDS + usize::from(c)])
            .sum();
        match self.metric {
            Metric::L2sq => sum,
            _ => 1.0 - sum,
        }
    }
}
