//! Binary codes: one bit per dimension, set when the value is above the dimension's mean in the
//! training sample (centring first keeps the bits balanced on data that is not zero-mean). The
//! query is encoded the same way and codes are compared by Hamming distance (XOR + popcount),
//! a coarse proxy meant to be rescored with the full vectors.

use vecdex_distance::Metric;

use crate::codec::{check_metric, check_sample, Codec, QuantError};
use crate::model::{check_all, check_len, model_len, put_f32s, Reader};

#[derive(Debug, Clone, PartialEq)]
pub struct BinaryCodec {
    metric: Metric,
    mean: Vec<f32>,
    /// Mean absolute deviation from `mean`, per dimension: what `decode` puts back. Finite and
    /// not negative.
    spread: Vec<f32>,
}

impl BinaryCodec {
    /// Learns each dimension's mean (and spread, for decoding) from `sample`.
    pub fn train(sample: &[f32], dim: usize, metric: Metric) -> Result<Self, QuantError> {
        check_metric(metric, "binary")?;
        let rows = check_sample(sample, dim, 1, "binary")?;
        let mut mean = vec![0f64; dim];
        for row in sample.chunks_exact(dim) {
            for (m, x) in mean.iter_mut().zip(row) {
                *m += f64::from(*x);
            }
        }
        mean.iter_mut().for_each(|m| *m /= rows as f64);
        let mut spread = vec![0f64; dim];
        for row in sample.chunks_exact(dim) {
            for ((s, m), x) in spread.iter_mut().zip(&mean).zip(row) {
                *s += (f64::from(*x) - m).abs();
            }
        }
        // A mean absolute deviation is at most half the range (≤ f32::MAX): always finite.
        Ok(BinaryCodec {
            metric,
            mean: mean.iter().map(|m| *m as f32).collect(),
            spread: spread.iter().map(|s| (*s / rows as f64) as f32).collect(),
        })
    }

    /// The trained state, little-endian: the mean of each dimension (`dim` f32), then the
    /// spread of each dimension (`dim` f32), in dimension order; `8·dim` bytes. The metric is
    /// not included: [`BinaryCodec::from_model_bytes`] takes it.
    pub fn model_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 * self.dim());
        put_f32s(&mut out, &self.mean);
        put_f32s(&mut out, &self.spread);
        out
    }

    /// The codec whose [`BinaryCodec::model_bytes`] are `bytes`, with the `dim` and `metric` it
    /// was trained with: it encodes, decodes and scores bit for bit as the trained one did.
    /// Errors when `train` would refuse `dim` or `metric`, the length is not exactly `8·dim`, a
    /// mean is not finite, or a spread is not finite and non-negative.
    pub fn from_model_bytes(bytes: &[u8], dim: usize, metric: Metric) -> Result<Self, QuantError> {
        check_metric(metric, "binary")?;
        if dim == 0 {
            return Err(QuantError::new(
                "binary: dimensions must be at least 1".to_string(),
            ));
        }
        let len = model_len(&[&[dim, 4], &[dim, 4]], "binary")?;
        check_len(bytes, len, &format!("{dim} dimensions"), "binary")?;
        let mut reader = Reader::new(bytes, "binary");
        let mean = reader.f32s(dim, "means")?;
        let spread = reader.f32s(dim, "spreads")?;
        reader.finish()?;
        check_all(
            &spread,
            |s| s.is_finite() && s.is_sign_positive(),
            "spread of dimension",
            "is not finite and non-negative",
            "binary",
        )?;
        Ok(BinaryCodec {
            metric,
            mean,
            spread,
        })
    }
}

impl Codec for BinaryCodec {
    /// The query's own bits.
    type Query = Vec<u8>;

    fn dim(&self) -> usize {
        self.mean.len()
    }

    fn metric(&self) -> Metric {
        self.metric
    }

    fn code_size(&self) -> usize {
        self.dim().div_ceil(8)
    }

    fn encode(&self, vector: &[f32], code: &mut [u8]) {
        code.fill(0);
        for (d, (x, m)) in vector.iter().zip(&self.mean).enumerate() {
            if x > m {
                code[d / 8] |= 1 << (d % 8);
            }
        }
    }

    fn decode(&self, code: &[u8], out: &mut [f32]) {
        for (d, x) in out.iter_mut().enumerate().take(self.dim()) {
            let above = code[d / 8] & (1 << (d % 8)) != 0;
            *x = if above {
                self.mean[d] + self.spread[d]
            } else {
                self.mean[d] - self.spread[d]
            };
        }
    }

    fn prepare(&self, query: &[f32]) -> Vec<u8> {
        let mut bits = vec![0u8; self.code_size()];
        self.encode(query, &mut bits);
        bits
    }

    /// Hamming distance between the query's bits and the code.
    /// The graph walk scores one code at a time: a call to a POPCNT function per score cost
    /// more than the baseline bit count it replaces (measured), so this stays inline.
    fn score(&self, query: &Vec<u8>, code: &[u8]) -> f32 {
        hamming_bytes(query, code)
    }

    fn score_run(&self, query: &Vec<u8>, codes: &[u8], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if vecdex_distance::popcount_path() == vecdex_distance::KernelPath::Popcnt {
            // SAFETY: the popcount path is chosen only on a CPU with POPCNT.
            unsafe { hamming_run_popcnt(query, codes, out) };
            return;
        }
        hamming_run(query, codes, out);
    }
}

/// Hamming distance between two byte strings of equal length.
#[inline(always)]
fn hamming_bytes(query: &[u8], code: &[u8]) -> f32 {
    let mut differing = 0u32;
    let mut words_q = query.chunks_exact(8);
    let mut words_c = code.chunks_exact(8);
    for (q, c) in (&mut words_q).zip(&mut words_c) {
        let q = u64::from_le_bytes([q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7]]);
        let c = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        differing += (q ^ c).count_ones();
    }
    let tail = words_q.remainder().len();
    if tail > 0 && query.len() >= 8 {
        // The last 8 bytes as one word, shifted to drop the bytes the loop counted.
        let last = |bytes: &[u8]| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[bytes.len() - 8..]);
            u64::from_le_bytes(word) >> (8 * (8 - tail))
        };
        differing += (last(query) ^ last(code)).count_ones();
    } else {
        for (q, c) in words_q.remainder().iter().zip(words_c.remainder()) {
            differing += (q ^ c).count_ones();
        }
    }
    differing as f32
}

/// [`hamming_bytes`] of `query` against each consecutive code of its length in `codes`.
#[inline(always)]
fn hamming_run(query: &[u8], codes: &[u8], out: &mut [f32]) {
    for (code, score) in codes.chunks_exact(query.len()).zip(out.iter_mut()) {
        *score = hamming_bytes(query, code);
    }
}

/// [`hamming_run`] with the POPCNT instruction.
///
/// # Safety
/// The CPU must have POPCNT.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn hamming_run_popcnt(query: &[u8], codes: &[u8], out: &mut [f32]) {
    hamming_run(query, codes, out);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn hamming_runs_match_a_bit_by_bit_count_on_every_path() {
        for bytes in [1usize, 7, 8, 9, 13, 16, 65] {
            let codes: Vec<u8> = (0..bytes * 5).map(|i| (i * 37 + 11) as u8).collect();
            let query: Vec<u8> = (0..bytes).map(|i| (i * 101 + 3) as u8).collect();
            let reference: Vec<f32> = codes
                .chunks_exact(bytes)
                .map(|c| {
                    let mut n = 0;
                    for (a, b) in c.iter().zip(&query) {
                        for bit in 0..8 {
                            n += u32::from((a >> bit) & 1 != (b >> bit) & 1);
                        }
                    }
                    n as f32
                })
                .collect();
            let mut portable = vec![0f32; 5];
            hamming_run(&query, &codes, &mut portable);
            assert_eq!(portable, reference, "{bytes} bytes");
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("popcnt") {
                let mut popcnt = vec![0f32; 5];
                // SAFETY: the CPU has POPCNT (checked above).
                unsafe { hamming_run_popcnt(&query, &codes, &mut popcnt) };
                assert_eq!(popcnt, reference, "{bytes} bytes, popcnt");
            }
        }
    }
}
