//! Scalar quantization: each dimension's range `[lo, hi]`, learnt from a sample, is cut into
//! `2^bits − 1` equal steps; a value is stored as its nearest step (8 bits: one byte; 4 bits: two
//! codes per byte, low nibble first). The error per component is at most half a step:
//! `(hi − lo) / 510` for 8 bits, `(hi − lo) / 30` for 4 bits, for values inside the range.
//!
//! Scoring is asymmetric by default (the query stays f32): with `x_i = lo_i + c_i·s_i`,
//! `⟨q, x⟩ = Σ q_i·lo_i + Σ (q_i·s_i)·c_i`, so a prepared query holds `w = q ⊙ s` and one
//! constant, and a score is one multiply-add per dimension on the small integer codes. For
//! `l2sq` the prepared query holds `r = q − lo` and the codec `s`. SQ4 keeps them in the
//! nibble-split order of its SIMD kernel (`vecdex_distance::nibble_split`).
//!
//! Symmetric SQ8 (`SqConfig::symmetric`) quantizes the prepared query too: `w` (`r ⊙ s` for
//! `l2sq`) becomes i8 weights `b_i = round(w_i / α)` with one scale `α = max|w_i| / 127`, and
//! `Σ w_i·c_i ≈ α·Σ b_i·c_i` is an exact integer dot product of i8 weights and u8 codes (AVX-512
//! VNNI `vpdpbusd`, 64 dimensions per instruction). With `δ_i = w_i − α·b_i` (`|δ_i| ≤ α/2`),
//! the sum is off by `Σ δ_i·c_i`; the prepared query adds back `127.5·Σ δ_i` (its value for codes
//! in the middle of the range), so a symmetric score differs from the asymmetric one by
//! `Σ δ_i·(c_i − 127.5)`:
//!
//! `|symmetric − asymmetric| ≤ (α/2)·Σ |c_i − 127.5| ≤ 63.75·α·dim` (twice that for `l2sq`).
//!
//! `l2sq` expands `Σ (r_i − s_i·c_i)² = Σ r_i² − 2·Σ (r_i·s_i)·c_i + Σ (s_i·c_i)²`; the last term
//! depends on the code only, so a symmetric `l2sq` code stores it after the `dim` level bytes as
//! a little-endian f32 (`dim + 4` bytes: 0.26× of f32 at 100 dimensions). Dot and cosine codes
//! stay `dim` bytes.

use vecdex_distance::{nibble_split, Metric, RowKernel};

use crate::codec::{check_metric, check_sample, Codec, QuantError};
use crate::model::{check_all, check_len, model_len, put_f32s, Reader};

/// Bound (exclusive) of `clip_quantile`: clipping half of each side would leave no range.
pub const MAX_CLIP_QUANTILE: f64 = 0.5;

/// Training options of a scalar quantizer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SqConfig {
    /// Clip each dimension's range to these quantiles of the sample instead of its min and max
    /// (e.g. 0.001 keeps 99.8% of values inside the range and spends the steps on them). 0 uses
    /// the exact min and max.
    pub clip_quantile: f64,
    /// Quantize prepared queries to i8 too and score with integer dot products (SQ8 only, at
    /// most 65,536 dimensions; see the module docs for the error bound). `l2sq` codes then
    /// carry 4 more bytes. Default `false`: the query stays f32.
    pub symmetric: bool,
}

impl SqConfig {
    /// The exact min and max of each dimension; the query stays f32.
    pub const DEFAULT: SqConfig = SqConfig {
        clip_quantile: 0.0,
        symmetric: false,
    };
}

impl Default for SqConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Per-dimension ranges shared by the 8- and 4-bit codecs.
#[derive(Debug, Clone, PartialEq)]
struct Ranges {
    metric: Metric,
    lo: Vec<f32>,
    /// Step per level: `(hi − lo) / levels`, always finite and positive (see [`step_of`]).
    step: Vec<f32>,
    levels: u32,
}

impl Ranges {
    /// The ranges of `sample`; the caller has checked `metric` and `config`.
    fn train(
        sample: &[f32],
        dim: usize,
        metric: Metric,
        config: SqConfig,
        levels: u32,
        codec: &str,
    ) -> Result<Self, QuantError> {
        let rows = check_sample(sample, dim, 1, codec)?;
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
            step[d] = step_of(min, max, levels);
        }
        Ok(Ranges {
            metric,
            lo,
            step,
            levels,
        })
    }

    /// Errors unless every lower end is finite and every step finite and positive, as
    /// [`Ranges::train`] guarantees.
    fn check(&self, codec: &str) -> Result<(), QuantError> {
        let finite = "is not finite";
        check_all(
            &self.lo,
            f32::is_finite,
            "lower end of dimension",
            finite,
            codec,
        )?;
        check_all(
            &self.step,
            |s| s.is_finite() && s > 0.0,
            "step of dimension",
            "is not finite and positive",
            codec,
        )
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
}

/// The step of a range `[min, max]` cut into `levels` steps: finite and positive. A constant
/// dimension gets 1 (its codes are all 0), and so does a range so narrow that the step would
/// underflow to 0 (every value of it rounds to level 0 anyway). A range wider than `f32::MAX`
/// is divided before the subtraction.
fn step_of(min: f32, max: f32, levels: u32) -> f32 {
    let levels = levels as f32;
    let span = max - min;
    let step = span / levels;
    if step > 0.0 && step.is_finite() {
        step
    } else if span == f32::INFINITY {
        max / levels - min / levels
    } else {
        1.0
    }
}

/// A query prepared for a scalar codec (see the module docs).
#[derive(Debug, Clone)]
pub struct SqQuery {
    weights: Weights,
    /// Dot and cosine: `Σ q_i·lo_i` (plus the centre correction when symmetric).
    /// Symmetric `l2sq`: `Σ r_i²` minus twice the centre correction. Otherwise 0.
    constant: f32,
}

#[derive(Debug, Clone)]
enum Weights {
    /// `q ⊙ s` or `q − lo`, per dimension (SQ8) or in nibble-split order (SQ4).
    F32(Vec<f32>),
    /// Symmetric SQ8: `w ≈ scale·b`.
    I8 { weights: Vec<i8>, scale: f32 },
}

/// Scalar quantization with `BITS` bits per dimension: 8 (one byte per dimension) or 4 (two
/// dimensions per byte, dimension `2i` in the low nibble). Use [`Sq8Codec`] or [`Sq4Codec`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarCodec<const BITS: u32> {
    ranges: Ranges,
    /// Steps in nibble-split order (SQ4 `l2sq` only; empty otherwise).
    split_step: Vec<f32>,
    /// Queries are quantized to i8 (SQ8 only).
    symmetric: bool,
    /// SIMD scoring of codes (the level chosen for this process).
    kernel: RowKernel,
}

/// 8-bit scalar quantization: one byte per dimension, scored by SIMD kernels.
pub type Sq8Codec = ScalarCodec<8>;
/// 4-bit scalar quantization: two dimensions per byte, scored by SIMD kernels.
pub type Sq4Codec = ScalarCodec<4>;

/// Largest dimension of symmetric SQ8: the i32 sum of `b_i·c_i` (|b_i·c_i| ≤ 127·255) is exact.
const SYMMETRIC_MAX_DIM: usize = 65_536;

/// Mid level of 8-bit codes: the centre correction of symmetric scoring assumes codes near it.
const MID_LEVEL: f64 = 127.5;

impl<const BITS: u32> ScalarCodec<BITS> {
    const NAME: &'static str = if BITS == 8 { "SQ8" } else { "SQ4" };
    /// Highest level: 255 or 15.
    const LEVELS: u32 = (1 << BITS) - 1;

    /// Learns the per-dimension ranges from `sample` (row-major, `dim` values per row).
    pub fn train(
        sample: &[f32],
        dim: usize,
        metric: Metric,
        config: SqConfig,
    ) -> Result<Self, QuantError> {
        Self::check_config(dim, metric, config)?;
        let ranges = Ranges::train(sample, dim, metric, config, Self::LEVELS, Self::NAME)?;
        Ok(Self::from_ranges(ranges, config.symmetric))
    }

    /// The trained state, little-endian: the lower end of each dimension (`dim` f32), then the
    /// step of each dimension (`dim` f32), in dimension order; `8·dim` bytes. The metric and
    /// [`SqConfig`] are not included: [`ScalarCodec::from_model_bytes`] takes them.
    pub fn model_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 * self.dim());
        put_f32s(&mut out, &self.ranges.lo);
        put_f32s(&mut out, &self.ranges.step);
        out
    }

    /// The codec whose [`ScalarCodec::model_bytes`] are `bytes`, with the `dim`, `metric` and
    /// `config` it was trained with: it encodes and scores bit for bit as the trained one did.
    /// Errors when the configuration is one [`ScalarCodec::train`] refuses, the length is not
    /// exactly `8·dim`, a lower end is not finite, or a step is not finite and positive.
    pub fn from_model_bytes(
        bytes: &[u8],
        dim: usize,
        metric: Metric,
        config: SqConfig,
    ) -> Result<Self, QuantError> {
        Self::check_config(dim, metric, config)?;
        let len = model_len(&[&[dim, 4], &[dim, 4]], Self::NAME)?;
        check_len(bytes, len, &format!("{dim} dimensions"), Self::NAME)?;
        let mut reader = Reader::new(bytes, Self::NAME);
        let lo = reader.f32s(dim, "lower ends")?;
        let step = reader.f32s(dim, "steps")?;
        reader.finish()?;
        let ranges = Ranges {
            metric,
            lo,
            step,
            levels: Self::LEVELS,
        };
        ranges.check(Self::NAME)?;
        Ok(Self::from_ranges(ranges, config.symmetric))
    }

    /// Errors unless `train` accepts `dim`, `metric` and `config`.
    fn check_config(dim: usize, metric: Metric, config: SqConfig) -> Result<(), QuantError> {
        const { assert!(BITS == 8 || BITS == 4, "scalar codes have 8 or 4 bits") };
        if config.symmetric && BITS != 8 {
            return Err(QuantError::new(format!(
                "{}: symmetric scoring is available for SQ8 only",
                Self::NAME
            )));
        }
        if config.symmetric && dim > SYMMETRIC_MAX_DIM {
            return Err(QuantError::new(format!(
                "{}: symmetric scoring supports at most {SYMMETRIC_MAX_DIM} dimensions, got {dim}",
                Self::NAME
            )));
        }
        check_metric(metric, Self::NAME)?;
        if dim == 0 {
            return Err(QuantError::new(format!(
                "{}: dimensions must be at least 1",
                Self::NAME
            )));
        }
        if !(0.0..MAX_CLIP_QUANTILE).contains(&config.clip_quantile) {
            return Err(QuantError::new(format!(
                "{}: clip quantile must be in [0, {MAX_CLIP_QUANTILE}), got {}",
                Self::NAME,
                config.clip_quantile
            )));
        }
        Ok(())
    }

    /// The codec of learnt (or loaded) ranges: every derived field is computed here only.
    fn from_ranges(ranges: Ranges, symmetric: bool) -> Self {
        let split_step = if BITS == 4 && ranges.metric == Metric::L2sq {
            nibble_split(&ranges.step)
        } else {
            Vec::new()
        };
        ScalarCodec {
            ranges,
            split_step,
            symmetric,
            kernel: RowKernel::default(),
        }
    }

    /// Width of one step of dimension `d` (the error bound is half of it).
    pub fn step(&self, d: usize) -> f32 {
        self.ranges.step[d]
    }

    /// Lower end and step of every dimension: value = `lower[d] + code·step[d]`.
    pub fn ranges(&self) -> (&[f32], &[f32]) {
        (&self.ranges.lo, &self.ranges.step)
    }

    /// Whether queries are quantized too (see [`SqConfig::symmetric`]).
    pub fn is_symmetric(&self) -> bool {
        self.symmetric
    }

    /// The same codec scoring with `kernel` (e.g. a lower SIMD level, to compare paths).
    pub fn with_kernel(mut self, kernel: RowKernel) -> Self {
        self.kernel = kernel;
        self
    }

    /// The level of each dimension, in order.
    fn levels<'c>(&self, code: &'c [u8]) -> impl Iterator<Item = u8> + 'c {
        let per_byte = 8 / BITS as usize;
        let mask = ((1u16 << BITS) - 1) as u8;
        (0..self.dim())
            .map(move |d| (code[d / per_byte] >> (BITS as usize * (d % per_byte))) & mask)
    }

    /// Whether codes carry `Σ (s_i·c_i)²` after the levels (symmetric `l2sq`).
    fn stores_norm(&self) -> bool {
        self.symmetric && self.ranges.metric == Metric::L2sq
    }

    /// `w` (`q ⊙ s`, or `(q − lo) ⊙ s` for `l2sq`) as i8 weights and a scale, with the constant
    /// of the score (see the module docs).
    fn prepare_symmetric(&self, query: &[f32]) -> SqQuery {
        let Ranges { lo, step, .. } = &self.ranges;
        let l2 = self.ranges.metric == Metric::L2sq;
        let residual = |d: usize| if l2 { query[d] - lo[d] } else { query[d] };
        let w: Vec<f32> = (0..self.dim()).map(|d| residual(d) * step[d]).collect();
        let max = w.iter().fold(0f32, |m, x| m.max(x.abs()));
        let scale = if max > 0.0 && max.is_finite() {
            max / 127.0
        } else {
            1.0
        };
        let weights: Vec<i8> = w
            .iter()
            .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8)
            .collect();
        let centre = MID_LEVEL
            * w.iter()
                .zip(&weights)
                .map(|(x, b)| f64::from(*x) - f64::from(scale) * f64::from(*b))
                .sum::<f64>();
        let constant = if l2 {
            (0..self.dim())
                .map(|d| f64::from(residual(d)).powi(2))
                .sum::<f64>()
                - 2.0 * centre
        } else {
            query
                .iter()
                .zip(lo)
                .map(|(q, lo)| f64::from(*q) * f64::from(*lo))
                .sum::<f64>()
                + centre
        };
        SqQuery {
            weights: Weights::I8 { weights, scale },
            constant: constant as f32,
        }
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
        (self.dim() * BITS as usize).div_ceil(8) + if self.stores_norm() { 4 } else { 0 }
    }

    fn encode(&self, vector: &[f32], code: &mut [u8]) {
        code.fill(0);
        let per_byte = 8 / BITS as usize;
        for (d, x) in vector.iter().enumerate() {
            code[d / per_byte] |= self.ranges.level(d, *x) << (BITS as usize * (d % per_byte));
        }
        if self.stores_norm() {
            let dim = self.dim();
            let norm: f64 = code[..dim]
                .iter()
                .zip(&self.ranges.step)
                .map(|(c, s)| (f64::from(*c) * f64::from(*s)).powi(2))
                .sum();
            code[dim..dim + 4].copy_from_slice(&(norm as f32).to_le_bytes());
        }
    }

    fn decode(&self, code: &[u8], out: &mut [f32]) {
        for (d, (x, c)) in out.iter_mut().zip(self.levels(code)).enumerate() {
            *x = self.ranges.value(d, c);
        }
    }

    fn prepare(&self, query: &[f32]) -> SqQuery {
        if self.symmetric {
            return self.prepare_symmetric(query);
        }
        let Ranges { lo, step, .. } = &self.ranges;
        let (weights, constant): (Vec<f32>, f32) = match self.ranges.metric {
            Metric::L2sq => (query.iter().zip(lo).map(|(q, lo)| q - lo).collect(), 0.0),
            _ => (
                query.iter().zip(step).map(|(q, s)| q * s).collect(),
                query.iter().zip(lo).map(|(q, lo)| q * lo).sum(),
            ),
        };
        let weights = if BITS == 4 {
            nibble_split(&weights)
        } else {
            weights
        };
        SqQuery {
            weights: Weights::F32(weights),
            constant,
        }
    }

    fn score(&self, query: &SqQuery, code: &[u8]) -> f32 {
        let l2 = self.ranges.metric == Metric::L2sq;
        match &query.weights {
            Weights::I8 { weights, scale } => {
                let dim = self.dim();
                let sum = scale * self.kernel.dot_i8_u8(weights, &code[..dim]) as f32;
                if l2 {
                    let mut norm = [0u8; 4];
                    norm.copy_from_slice(&code[dim..dim + 4]);
                    query.constant - 2.0 * sum + f32::from_le_bytes(norm)
                } else {
                    1.0 - query.constant - sum
                }
            }
            Weights::F32(weights) if BITS == 4 => {
                if l2 {
                    self.kernel.l2_u4(weights, &self.split_step, code)
                } else {
                    1.0 - query.constant - self.kernel.dot_u4(weights, code)
                }
            }
            Weights::F32(weights) => {
                if l2 {
                    self.kernel.l2_u8(weights, &self.ranges.step, code)
                } else {
                    1.0 - query.constant - self.kernel.dot_u8(weights, code)
                }
            }
        }
    }
}
