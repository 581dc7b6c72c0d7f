//! Scalar quantization: each dimension's range `[lo, hi]`, learnt from a sample, is cut into
//! `2^bits − 1` equal steps; a value is stored as its nearest step (8 bits: one byte; 4 bits: two
//! codes per byte, low nibble first). The error per component is at most half a step:
//! `(hi − lo) / 510` for 8 bits, `(hi − lo) / 30` for 4 bits, for values inside the range.
//!
//! Scoring is asymmetric (the query stays f32): with `x_i = lo_i + c_i·s_i`,
//! `⟨q, x⟩ = Σ q_i·lo_i + Σ (q_i·s_i)·c_i`, so a prepared query holds `q ⊙ s` and one constant,
//! and a score is one multiply-add per dimension on the small integer codes. For `l2sq` the
//! prepared query holds `q − lo` and `s`.

use vecdex_distance::{Metric, RowKernel};

use crate::codec::{check_metric, check_sample, Codec, QuantError};

/// Training options of a scalar quantizer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SqConfig {
    /// Clip each dimension's range to these quantiles of the sample instead of its min and max
    /// (e.g. 0.001 keeps 99.8% of values inside the range and spends the steps on them). 0 uses
    /// the exact min and max.
    pub clip_quantile: f64,
}

impl Default for SqConfig {
    fn default() -> Self {
        SqConfig { clip_quantile: 0.0 }
    }
}

/// Per-dimension ranges shared by the 8- and 4-bit codecs.
#[derive(Debug, Clone, PartialEq)]
struct Ranges {
    metric: Metric,
    lo: Vec<f32>,
    /// Step per level: `(hi − lo) / levels` (1 where a dimension is constant, so codes are 0).
    step: Vec<f32>,
    levels: u32,
}

impl Ranges {
    fn train(
        sample: &[f32],
        dim: usize,
        metric: Metric,
        config: SqConfig,
        levels: u32,
        codec: &str,
    ) -> Result<Self, QuantError> {
        check_metric(metric, codec)?;
        let rows = check_sample(sample, dim, 1, codec)?;
        if !(0.0..0.5).contains(&config.clip_quantile) {
            return Err(QuantError(format!(
                "{codec}: clip quantile must be in [0, 0.5), got {}",
                config.clip_quantile
            )));
        }
        let mut lo = vec![0f32; dim];
        let mut step = vec![1f32; dim];
        let mut column = Vec::with_capacity(rows);
        for d in 0..dim {
            column.clear();
            column.extend(sample.iter().skip(d).step_by(dim).copied());
            let (min, max) = if config.clip_quantile > 0.0 {
                column.sort_unstable_by(f32::total_cmp);
                let at = |q: f64| column[((rows - 1) as f64 * q).round() as usize];
                (at(config.clip_quantile), at(1.0 - config.clip_quantile))
            } else {
                column
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
                        (a.min(x), b.max(x))
                    })
            };
            lo[d] = min;
            let span = max - min;
            step[d] = if span > 0.0 {
                span / levels as f32
            } else {
                1.0
            };
        }
        Ok(Ranges {
            metric,
            lo,
            step,
            levels,
        })
    }

    #[inline]
    fn level(&self, d: usize, x: f32) -> u8 {
        ((x - self.lo[d]) / self.step[d])
            .round()
            .clamp(0.0, self.levels as f32) as u8
    }

    #[inline]
    fn value(&self, d: usize, level: u8) -> f32 {
        self.lo[d] + f32::from(level) * self.step[d]
    }

    fn prepare(&self, query: &[f32]) -> SqQuery {
        match self.metric {
            Metric::L2sq => SqQuery {
                weights: query.iter().zip(&self.lo).map(|(q, lo)| q - lo).collect(),
                constant: 0.0,
            },
            _ => SqQuery {
                weights: query.iter().zip(&self.step).map(|(q, s)| q * s).collect(),
                constant: query.iter().zip(&self.lo).map(|(q, lo)| q * lo).sum(),
            },
        }
    }

    /// Score from the level of each dimension, in order.
    #[inline]
    fn score(&self, query: &SqQuery, levels: impl Iterator<Item = u8>) -> f32 {
        match self.metric {
            Metric::L2sq => {
                let mut acc = 0f32;
                for ((w, s), c) in query.weights.iter().zip(&self.step).zip(levels) {
                    let d = w - f32::from(c) * s;
                    acc += d * d;
                }
                acc
            }
            _ => {
                let mut acc = query.constant;
                for (w, c) in query.weights.iter().zip(levels) {
                    acc += w * f32::from(c);
                }
                1.0 - acc
            }
        }
    }
}

/// A query prepared for a scalar codec (see the module docs).
#[derive(Debug, Clone)]
pub struct SqQuery {
    weights: Vec<f32>,
    constant: f32,
}

/// Scalar quantization with `BITS` bits per dimension: 8 (one byte per dimension) or 4 (two
/// dimensions per byte, dimension `2i` in the low nibble). Use [`Sq8Codec`] or [`Sq4Codec`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarCodec<const BITS: u32> {
    ranges: Ranges,
    /// SIMD scoring of byte codes (the level chosen for this process).
    kernel: RowKernel,
}

/// 8-bit scalar quantization: one byte per dimension, scored by SIMD kernels.
pub type Sq8Codec = ScalarCodec<8>;
/// 4-bit scalar quantization: two dimensions per byte.
pub type Sq4Codec = ScalarCodec<4>;

impl<const BITS: u32> ScalarCodec<BITS> {
    const NAME: &'static str = if BITS == 8 { "SQ8" } else { "SQ4" };

    /// Learns the per-dimension ranges from `sample` (row-major, `dim` values per row).
    pub fn train(
        sample: &[f32],
        dim: usize,
        metric: Metric,
        config: SqConfig,
    ) -> Result<Self, QuantError> {
        const { assert!(BITS == 8 || BITS == 4, "scalar codes have 8 or 4 bits") };
        Ok(ScalarCodec {
            ranges: Ranges::train(sample, dim, metric, config, (1 << BITS) - 1, Self::NAME)?,
            kernel: RowKernel::default(),
        })
    }

    /// Width of one step of dimension `d` (the error bound is half of it).
    pub fn step(&self, d: usize) -> f32 {
        self.ranges.step[d]
    }

    /// Lower end and step of every dimension: value = `lower[d] + code·step[d]`.
    pub fn ranges(&self) -> (&[f32], &[f32]) {
        (&self.ranges.lo, &self.ranges.step)
    }

    /// The level of each dimension, in order.
    fn levels<'c>(&self, code: &'c [u8]) -> impl Iterator<Item = u8> + 'c {
        let per_byte = 8 / BITS as usize;
        let mask = ((1u16 << BITS) - 1) as u8;
        (0..self.dim())
            .map(move |d| (code[d / per_byte] >> (BITS as usize * (d % per_byte))) & mask)
    }
}

impl<const BITS: u32> Codec for ScalarCodec<BITS> {
    type Query = SqQuery;

    fn dim(&self) -> usize {
        self.ranges.lo.len()
    }

    fn metric(&self) -> Metric {
        self.ranges.metric
    }

    fn code_size(&self) -> usize {
        (self.dim() * BITS as usize).div_ceil(8)
    }

    fn encode(&self, vector: &[f32], code: &mut [u8]) {
        code.fill(0);
        let per_byte = 8 / BITS as usize;
        for (d, x) in vector.iter().enumerate() {
            code[d / per_byte] |= self.ranges.level(d, *x) << (BITS as usize * (d % per_byte));
        }
    }

    fn decode(&self, code: &[u8], out: &mut [f32]) {
        for (d, (x, c)) in out.iter_mut().zip(self.levels(code)).enumerate() {
            *x = self.ranges.value(d, c);
        }
    }

    fn prepare(&self, query: &[f32]) -> SqQuery {
        self.ranges.prepare(query)
    }

    fn score(&self, query: &SqQuery, code: &[u8]) -> f32 {
        if BITS == 4 {
            return self.ranges.score(query, self.levels(code));
        }
        match self.ranges.metric {
            Metric::L2sq => self.kernel.l2_u8(&query.weights, &self.ranges.step, code),
            _ => 1.0 - query.constant - self.kernel.dot_u8(&query.weights, code),
        }
    }
}
