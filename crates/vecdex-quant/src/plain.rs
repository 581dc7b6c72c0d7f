//! f32 storage: the codes of a reduction without quantization (a Matryoshka prefix or a PCA
//! projection kept at full precision), padded to whole SIMD rows so the row kernels score them
//! in place.

use vecdex_distance::{padded_len, Metric, RowKernel};

use crate::codec::Codec;

/// Stores each value as a little-endian f32, zero-padded to `padded_len(dim)` values; nothing
/// to train. Scoring reads a code in place when it is 4-byte aligned (as in an index's 64-byte
/// aligned code storage), and through a copy otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct PlainCodec {
    dim: usize,
    stride: usize,
    metric: Metric,
    kernel: RowKernel,
}

impl PlainCodec {
    pub fn new(dim: usize, metric: Metric) -> Self {
        PlainCodec {
            dim,
            stride: padded_len(dim),
            metric,
            kernel: RowKernel::default(),
        }
    }

    /// The values of `code` in place, when it is aligned for f32.
    #[inline]
    fn values(code: &[u8]) -> Option<&[f32]> {
        if !code.as_ptr().cast::<f32>().is_aligned() {
            return None;
        }
        // SAFETY: `code` is 4-aligned (checked above), and `len / 4` values lie inside it; any
        // bit pattern is a valid f32.
        Some(unsafe { std::slice::from_raw_parts(code.as_ptr().cast::<f32>(), code.len() / 4) })
    }

    /// The values of a code that cannot be read in place.
    fn copied(code: &[u8]) -> Vec<f32> {
        code.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    /// [`Codec::score`] of a code that cannot be read in place: out of line, so the in-place
    /// path stays one alignment test in front of the row kernel.
    #[cold]
    #[inline(never)]
    fn score_copied(&self, query: &[f32], code: &[u8]) -> f32 {
        self.distance(query, &Self::copied(code))
    }

    #[inline]
    fn distance(&self, query: &[f32], row: &[f32]) -> f32 {
        match self.metric {
            Metric::L2sq => self.kernel.l2sq(query, row),
            _ => 1.0 - self.kernel.dot(query, row),
        }
    }
}

impl Codec for PlainCodec {
    type Query = Vec<f32>;

    fn dim(&self) -> usize {
        self.dim
    }

    fn metric(&self) -> Metric {
        self.metric
    }

    fn code_size(&self) -> usize {
        self.stride * 4
    }

    fn encode(&self, vector: &[f32], code: &mut [u8]) {
        code.fill(0);
        for (bytes, x) in code.chunks_exact_mut(4).zip(vector) {
            bytes.copy_from_slice(&x.to_le_bytes());
        }
    }

    fn decode(&self, code: &[u8], out: &mut [f32]) {
        match Self::values(code) {
            Some(values) => out.copy_from_slice(&values[..self.dim]),
            None => out.copy_from_slice(&Self::copied(code)[..self.dim]),
        }
    }

    fn prepare(&self, query: &[f32]) -> Vec<f32> {
        let mut padded = vec![0f32; self.stride];
        padded[..self.dim].copy_from_slice(query);
        padded
    }

    #[inline]
    fn score(&self, query: &Vec<f32>, code: &[u8]) -> f32 {
        match Self::values(code) {
            Some(row) => self.distance(query, row),
            None => self.score_copied(query, code),
        }
    }
}
