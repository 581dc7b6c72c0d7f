//! RaBitQ 1-bit codes (Gao & Long, "RaBitQ: Quantizing High-Dimensional Vectors with a
//! Theoretical Error Bound for Approximate Nearest Neighbor Search", SIGMOD 2024).
//!
//! A vector `v` is taken relative to the training sample's centroid `c`: its residual norm
//! `r = ‖v − c‖` and unit direction `o = (v − c) / r`. A random orthogonal rotation `P` (seeded)
//! turns `o` into `y = Pᵀo`; the code keeps one bit per dimension, `b_i = [y_i > 0]`, which
//! stands for the unit vector `x̄ = (2b − 1) / √D` in rotated space, and three f32 factors: `r`,
//! `⟨ō, o⟩ = Σ|y_i| / √D` (how well the bits point along `o`), and `⟨v, c⟩`.
//!
//! A query `q` is rotated the same way (`q' = Pᵀ(q − c) / ‖q − c‖`) and quantized to 4 bits
//! per coordinate, `q̄` (see [`RabitqQuery`]), so a code scores with AND-popcounts. The paper's
//! estimator of `⟨o, q⟩` is `⟨ō, q⟩ / ⟨ō, o⟩` with `⟨ō, q⟩ = ⟨x̄, q'⟩ ≈ ⟨x̄, q̄⟩`: unbiased
//! over the random rotation (the paper's Theorem 3.2) and the randomised rounding, with an
//! error that is, with high probability, within `√((1 − ⟨ō, o⟩²) / ⟨ō, o⟩²) · ε₀ / √(D − 1)`
//! (plus the rounding's share, see [`RabitqCodec::score_bound`]); the paper uses `ε₀ = 1.9`
//! ([`DEFAULT_EPSILON0`]). Distances follow from the inner product of the residuals:
//! `‖v − q‖² = r² + r_q² − 2 r r_q ⟨o, q⟩` and `⟨v, q⟩ = r r_q ⟨o, q⟩ + ⟨v, c⟩ + ⟨q, c⟩ − ‖c‖²`.
//!
//! Indexes offer it as `quantization: 'rabitq'`, rescoring a fixed `k × oversample` candidates;
//! [`RabitqCodec::score_bound`] is the bound, for callers that decide by it. (Rescoring
//! the candidates in order of their lower bound and stopping once it passes the k-th exact
//! distance was measured on GloVe 100k and was not faster: at ε₀ = 1.9 the bounds are too wide
//! to stop early often, and computing them costs a division and a square root per candidate.)

use vecdex_distance::Metric;
#[cfg(target_arch = "x86_64")]
use vecdex_distance::{popcount_path, KernelPath};

use crate::bitplanes::BitPlanes;
use crate::codec::{check_metric, check_sample, Codec, QuantError};
use crate::kmeans::SeededRng;
use crate::model::{check_len, model_len, put_f32s, Reader};

mod extended;
pub use extended::{ExtendedRabitqCodec, ExtendedRabitqQuery, EXTENDED_BITS};

/// The paper's confidence multiplier of the error bound (§3.2: `ε₀ = 1.9` in its experiments).
/// The estimator's error is close to normal with the bound's `ε₀ = 1` width as its standard
/// deviation, so 1.9 covers about 94% of estimates.
pub const DEFAULT_EPSILON0: f32 = 1.9;

/// Bytes of the three f32 factors after the bits: `r`, `⟨ō, o⟩`, `⟨v, c⟩`.
const FACTOR_BYTES: usize = 12;

#[derive(Debug, Clone, PartialEq)]
pub struct RabitqCodec {
    metric: Metric,
    dim: usize,
    centroid: Vec<f32>,
    centroid_norm_sq: f32,
    /// `Pᵀ`, row-major `dim × dim`: row `i` gives coordinate `i` of a rotated vector.
    rotation: Vec<f32>,
}

/// A query prepared for scoring codes: its rotated unit residual `q'` quantized to 4 bits per
/// coordinate (`q̄`, see [`BitPlanes`]), so that `⟨x̄, q̄⟩ = (2·Σ_{b_i=1} q̄_i − Σ_i q̄_i) / √D`
/// for a code's bits `b`, and the factors the distance formulas need.
#[derive(Debug, Clone)]
pub struct RabitqQuery {
    planes: BitPlanes,
    residual_norm: f32,
    dot_centroid: f32,
}

impl RabitqCodec {
    /// Learns the centroid from `sample` (at least one row) and draws the rotation from `seed`.
    pub fn train(
        sample: &[f32],
        dim: usize,
        metric: Metric,
        seed: u64,
    ) -> Result<Self, QuantError> {
        check_metric(metric, "rabitq")?;
        let rows = check_sample(sample, dim, 1, "rabitq")?;
        let mut mean = vec![0f64; dim];
        for row in sample.chunks_exact(dim) {
            for (m, x) in mean.iter_mut().zip(row) {
                *m += f64::from(*x);
            }
        }
        let centroid = mean.iter().map(|m| (m / rows as f64) as f32).collect();
        Ok(Self::from_parts(
            metric,
            centroid,
            random_rotation(dim, seed),
        ))
    }

    fn from_parts(metric: Metric, centroid: Vec<f32>, rotation: Vec<f32>) -> Self {
        RabitqCodec {
            metric,
            dim: centroid.len(),
            centroid_norm_sq: centroid.iter().map(|x| x * x).sum(),
            centroid,
            rotation,
        }
    }

    /// The trained state, little-endian: the centroid (`dim` f32), then the rotation `Pᵀ`
    /// (`dim × dim` f32, row-major); `4·dim·(dim + 1)` bytes. The metric is not included:
    /// [`RabitqCodec::from_model_bytes`] takes it. The rotation is stored rather than drawn
    /// again from its seed, so a file scores the same on every platform's `ln` and `cos`.
    pub fn model_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 * self.dim * (self.dim + 1));
        put_f32s(&mut out, &self.centroid);
        put_f32s(&mut out, &self.rotation);
        out
    }

    /// The codec whose [`RabitqCodec::model_bytes`] are `bytes`, with the `dim` and `metric` it
    /// was trained with. Errors when `train` would refuse `dim` or `metric`, the length is not
    /// exactly `4·dim·(dim + 1)`, a value is not finite, or a rotation row is not of unit length.
    pub fn from_model_bytes(bytes: &[u8], dim: usize, metric: Metric) -> Result<Self, QuantError> {
        check_metric(metric, "rabitq")?;
        if dim == 0 {
            return Err(QuantError::new(
                "rabitq: dimensions must be at least 1".to_string(),
            ));
        }
        let len = model_len(&[&[dim, 4], &[dim, dim, 4]], "rabitq")?;
        check_len(bytes, len, &format!("{dim} dimensions"), "rabitq")?;
        let mut reader = Reader::new(bytes, "rabitq");
        let centroid = reader.f32s(dim, "centroid")?;
        let rotation = reader.f32s(dim * dim, "rotation")?;
        reader.finish()?;
        if let Some(row) = rotation.chunks_exact(dim).position(|row| {
            let length: f32 = row.iter().map(|x| x * x).sum();
            (length - 1.0).abs() > 1e-3
        }) {
            return Err(QuantError::new(format!(
                "rabitq model: rotation row {row} is not of unit length"
            )));
        }
        Ok(Self::from_parts(metric, centroid, rotation))
    }

    /// Bytes of the bits alone (the rest of a code is its factors).
    fn bit_bytes(&self) -> usize {
        self.dim.div_ceil(8)
    }

    /// `Pᵀ x` into `out`: one SIMD inner product per row. (A plain sum is one dependent add
    /// per element: at 784 dimensions it took 0.7 ms per query, most of a search's time.)
    fn rotate(&self, x: &[f32], out: &mut [f32]) {
        for (o, row) in out.iter_mut().zip(self.rotation.chunks_exact(self.dim)) {
            *o = vecdex_distance::dot(row, x);
        }
    }

    /// The unit residual of `x` relative to the centroid, and its norm (0 and a zero vector
    /// when `x` is the centroid).
    fn unit_residual(&self, x: &[f32]) -> (Vec<f32>, f32) {
        let mut residual: Vec<f32> = x.iter().zip(&self.centroid).map(|(a, c)| a - c).collect();
        let norm = residual.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            residual.iter_mut().for_each(|v| *v /= norm);
        }
        (residual, norm)
    }

    fn factors(&self, code: &[u8]) -> (f32, f32, f32) {
        let at = self.bit_bytes();
        let f = |i: usize| {
            let mut bytes = [0u8; 4];
            bytes.copy_from_slice(&code[at + 4 * i..at + 4 * i + 4]);
            f32::from_le_bytes(bytes)
        };
        (f(0), f(1), f(2))
    }

    /// The estimate of `⟨o, q⟩` (unit residuals of the stored vector and the query) and
    /// `⟨ō, o⟩`, the code's alignment factor.
    pub fn estimate_unit_inner(&self, query: &RabitqQuery, code: &[u8]) -> (f32, f32) {
        let (_, alignment, _) = self.factors(code);
        (self.projected(query, code) / alignment, alignment)
    }

    /// `⟨x̄, q̄⟩`.
    #[inline(always)]
    fn projected(&self, query: &RabitqQuery, code: &[u8]) -> f32 {
        let selected = query.planes.selected_sum(&code[..self.bit_bytes()]);
        (2.0 * selected - query.planes.total()) / (self.dim as f32).sqrt()
    }

    /// The distance estimate of a code.
    #[inline(always)]
    fn score_inline(&self, query: &RabitqQuery, code: &[u8]) -> f32 {
        let (norm, alignment, dot_centroid) = self.factors(code);
        let unit_inner = self.projected(query, code) / alignment;
        self.distance(
            unit_inner,
            (norm, dot_centroid),
            (query.residual_norm, query.dot_centroid),
        )
    }

    /// The distance under the metric, from the estimate of `⟨o, q⟩` and the residual norm and
    /// inner product with the centroid of the stored vector and of the query.
    #[inline(always)]
    fn distance(&self, unit_inner: f32, stored: (f32, f32), query: (f32, f32)) -> f32 {
        let ((norm, dot_centroid), (query_norm, query_dot_centroid)) = (stored, query);
        let residual_inner = norm * query_norm * unit_inner;
        match self.metric {
            Metric::L2sq => norm * norm + query_norm * query_norm - 2.0 * residual_inner,
            _ => 1.0 - (residual_inner + dot_centroid + query_dot_centroid - self.centroid_norm_sq),
        }
    }

    /// Scores of consecutive codes.
    #[inline(always)]
    fn run_inline(&self, query: &RabitqQuery, codes: &[u8], out: &mut [f32]) {
        for (code, score) in codes.chunks_exact(self.code_size()).zip(out.iter_mut()) {
            *score = self.score_inline(query, code);
        }
    }

    /// [`Self::run_inline`] with the POPCNT instruction.
    ///
    /// # Safety
    /// The CPU must have POPCNT ([`vecdex_distance::popcount_path`] says so).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    unsafe fn run_popcnt(&self, query: &RabitqQuery, codes: &[u8], out: &mut [f32]) {
        self.run_inline(query, codes, out);
    }

    /// [`Codec::score`] with the POPCNT instruction.
    ///
    /// # Safety
    /// As for [`Self::run_popcnt`].
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    unsafe fn score_popcnt(&self, query: &RabitqQuery, code: &[u8]) -> f32 {
        self.score_inline(query, code)
    }

    /// Half-width of the interval around [`Codec::score`] that holds the true distance with
    /// the confidence `epsilon0` stands for ([`DEFAULT_EPSILON0`]: about 94%).
    #[inline(always)]
    pub fn score_bound(&self, query: &RabitqQuery, code: &[u8], epsilon0: f32) -> f32 {
        if self.dim < 2 {
            return 0.0;
        }
        let (norm, alignment, _) = self.factors(code);
        // The query's randomised rounding adds an independent error to `⟨x̄, q̄⟩` whose variance
        // is at most `(Δ/2)²` (each coordinate's is at most `Δ²/4` and `‖x̄‖ = 1`), divided by
        // `⟨ō, o⟩` like the rest; the two spreads add in quadrature.
        let rounding_spread = (query.planes.step() / (2.0 * alignment)).powi(2);
        self.bound(alignment, rounding_spread, norm * query.residual_norm, epsilon0)
    }

    /// The bound's half-width in distance units, for a code of alignment `⟨ō, o⟩`, an extra
    /// variance of the unit inner product (the query's rounding), and `scale = r · r_q`.
    #[inline(always)]
    fn bound(&self, alignment: f32, extra_spread: f32, scale: f32, epsilon0: f32) -> f32 {
        let rotation_spread = (1.0 - alignment * alignment).max(0.0)
            / (alignment * alignment)
            / (self.dim - 1) as f32;
        let inner = epsilon0 * (rotation_spread + extra_spread).sqrt();
        match self.metric {
            Metric::L2sq => 2.0 * scale * inner,
            _ => scale * inner,
        }
    }
}

impl Codec for RabitqCodec {
    type Query = RabitqQuery;

    fn dim(&self) -> usize {
        self.dim
    }

    fn metric(&self) -> Metric {
        self.metric
    }

    fn code_size(&self) -> usize {
        self.bit_bytes() + FACTOR_BYTES
    }

    fn encode(&self, vector: &[f32], code: &mut [u8]) {
        code.fill(0);
        let (unit, norm) = self.unit_residual(vector);
        let mut rotated = vec![0f32; self.dim];
        self.rotate(&unit, &mut rotated);
        let mut absolute_sum = 0f32;
        for (i, y) in rotated.iter().enumerate() {
            if *y > 0.0 {
                code[i / 8] |= 1 << (i % 8);
            }
            absolute_sum += y.abs();
        }
        // A zero residual has no direction: any bits, alignment 1, and `r = 0` cancels them.
        let alignment = if norm > 0.0 {
            absolute_sum / (self.dim as f32).sqrt()
        } else {
            1.0
        };
        let dot_centroid: f32 = vector.iter().zip(&self.centroid).map(|(a, b)| a * b).sum();
        let at = self.bit_bytes();
        for (i, value) in [norm, alignment, dot_centroid].into_iter().enumerate() {
            code[at + 4 * i..at + 4 * i + 4].copy_from_slice(&value.to_le_bytes());
        }
    }

    /// `c + r · P x̄`: the centroid plus the residual norm along the bits' unit vector.
    fn decode(&self, code: &[u8], out: &mut [f32]) {
        let (norm, _, _) = self.factors(code);
        let unit = 1.0 / (self.dim as f32).sqrt();
        out.copy_from_slice(&self.centroid);
        for (i, row) in self.rotation.chunks_exact(self.dim).enumerate() {
            let sign = if code[i / 8] >> (i % 8) & 1 == 1 {
                unit
            } else {
                -unit
            };
            for (o, p) in out.iter_mut().zip(row) {
                *o += norm * sign * p;
            }
        }
    }

    fn prepare(&self, query: &[f32]) -> RabitqQuery {
        let (unit, residual_norm) = self.unit_residual(query);
        let mut rotated = vec![0f32; self.dim];
        self.rotate(&unit, &mut rotated);
        RabitqQuery {
            planes: BitPlanes::quantize(&rotated),
            residual_norm,
            dot_centroid: query.iter().zip(&self.centroid).map(|(a, b)| a * b).sum(),
        }
    }

    /// One code at a time, as the graph walk scores: five popcounts per word make a call to the
    /// POPCNT function pay (measured: 1.6× the QPS of the inline baseline bit count in an HNSW
    /// walk over GloVe 100k).
    fn score(&self, query: &RabitqQuery, code: &[u8]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if popcount_path() == KernelPath::Popcnt {
            // SAFETY: the popcount path is chosen only on a CPU with POPCNT.
            return unsafe { self.score_popcnt(query, code) };
        }
        self.score_inline(query, code)
    }

    fn score_run(&self, query: &RabitqQuery, codes: &[u8], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if popcount_path() == KernelPath::Popcnt {
            // SAFETY: the popcount path is chosen only on a CPU with POPCNT.
            unsafe { self.run_popcnt(query, codes, out) };
            return;
        }
        self.run_inline(query, codes, out);
    }
}

/// A random orthogonal `dim × dim` matrix (row-major), uniform over rotations: Gram–Schmidt
/// (twice, for orthogonality to rounding) on rows of independent standard normal values,
/// which is the Q factor of their QR decomposition with a positive diagonal (Mezzadri, "How to
/// generate random matrices from the classical compact groups", Notices AMS 54(5), 2007).
fn random_rotation(dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = SeededRng::new(seed);
    let mut normal = || {
        // Box–Muller; `1 − u` keeps the logarithm finite.
        let u = 1.0 - rng.unit();
        let v = rng.unit();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    };
    let mut rows: Vec<f64> = (0..dim * dim).map(|_| normal()).collect();
    for i in 0..dim {
        for _pass in 0..2 {
            for j in 0..i {
                let (done, rest) = rows.split_at_mut(i * dim);
                let basis = &done[j * dim..(j + 1) * dim];
                let row = &mut rest[..dim];
                let projection: f64 = row.iter().zip(basis).map(|(a, b)| a * b).sum();
                row.iter_mut()
                    .zip(basis)
                    .for_each(|(a, b)| *a -= projection * b);
            }
        }
        let row = &mut rows[i * dim..(i + 1) * dim];
        let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt();
        row.iter_mut().for_each(|x| *x /= norm);
    }
    rows.into_iter().map(|x| x as f32).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Rows of values uniform in [−1, 1).
    pub(super) fn rows(count: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = SeededRng::new(seed);
        (0..count * dim)
            .map(|_| (rng.unit() * 2.0 - 1.0) as f32)
            .collect()
    }

    #[test]
    fn every_path_scores_alike() {
        for dim in [1usize, 7, 8, 63, 64, 65, 100, 513] {
            let data = rows(40, dim, dim as u64);
            let codec = RabitqCodec::train(&data, dim, Metric::L2sq, 3).unwrap();
            let size = codec.code_size();
            let mut codes = vec![0u8; 40 * size];
            for (row, code) in data.chunks_exact(dim).zip(codes.chunks_exact_mut(size)) {
                codec.encode(row, code);
            }
            let query = codec.prepare(&rows(1, dim, 999)[..]);
            let mut portable = vec![0f32; 40];
            codec.run_inline(&query, &codes, &mut portable);
            let mut dispatched = vec![0f32; 40];
            codec.score_run(&query, &codes, &mut dispatched);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("popcnt") {
                let mut popcnt = vec![0f32; 40];
                // SAFETY: the CPU has POPCNT (checked above).
                unsafe { codec.run_popcnt(&query, &codes, &mut popcnt) };
                assert_eq!(popcnt, portable, "d {dim}: popcnt path");
            }
            assert_eq!(dispatched, portable, "d {dim}: dispatched run");
            for (code, score) in codes.chunks_exact(size).zip(&portable) {
                assert_eq!(codec.score(&query, code), *score, "d {dim}: single score");
            }
        }
    }

    #[test]
    fn the_quantized_query_is_within_its_rounding_error_of_the_exact_rotation() {
        let dim = 100;
        let data = rows(500, dim, 5);
        let codec = RabitqCodec::train(&data, dim, Metric::L2sq, 8).unwrap();
        let raw = rows(1, dim, 77);
        let query = codec.prepare(&raw);
        let (unit, _) = codec.unit_residual(&raw);
        let mut rotated = vec![0f32; dim];
        codec.rotate(&unit, &mut rotated);
        let mut code = vec![0u8; codec.code_size()];
        let mut errors = Vec::new();
        for row in data.chunks_exact(dim) {
            codec.encode(row, &mut code);
            let quantized = codec.projected(&query, &code);
            let exact: f32 = (0..dim)
                .map(|i| {
                    let sign = if code[i / 8] >> (i % 8) & 1 == 1 {
                        1.0
                    } else {
                        -1.0
                    };
                    sign * rotated[i]
                })
                .sum::<f32>()
                / (dim as f32).sqrt();
            errors.push(f64::from(quantized - exact));
        }
        // Each error has a standard deviation of at most Δ/2; their mean is near zero
        // (randomised rounding is unbiased).
        let half_step = f64::from(query.planes.step()) / 2.0;
        let mean = errors.iter().sum::<f64>() / errors.len() as f64;
        let largest = errors.iter().fold(0f64, |m, e| m.max(e.abs()));
        assert!(
            largest < 5.0 * half_step,
            "largest error {largest} vs Δ/2 {half_step}"
        );
        assert!(
            mean.abs() < 0.2 * half_step,
            "mean error {mean} vs Δ/2 {half_step}"
        );
    }
}
