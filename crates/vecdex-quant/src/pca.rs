//! PCA reduction in the spirit of LeanVec (Tepper et al., "LeanVec: Searching vectors faster by
//! making them fit", TMLR 2024; the in-distribution variant): a linear map from `dim` to
//! `out_dim < dim` dimensions learnt from a training sample, so that an index searches the
//! reduced vectors and the facade rescores the few best with the full ones.
//!
//! The map keeps the top `out_dim` eigenvectors of a `dim × dim` matrix of the sample, and
//! which matrix depends on the distance it must preserve:
//!
//! - `centered: true`, for L2: the covariance `Σ (x − μ)(x − μ)ᵀ / n`. Squared distances are
//!   translation invariant, so subtracting the mean costs nothing and spends no component on the
//!   offset of the data; `‖P(x − μ) − P(y − μ)‖² = ‖P(x − y)‖²` is what is kept.
//! - `centered: false`, for dot and cosine: the second moment `Σ x xᵀ / n`, with `μ = 0`. Inner
//!   products are not translation invariant: `⟨x − μ, y − μ⟩` differs from `⟨x, y⟩` by
//!   `⟨x + y, μ⟩ − ‖μ‖²`, a per-vector term a reduced index does not store. The top eigenvectors
//!   of the second moment give the rank-`out_dim` projection with the least mean squared error
//!   `E ‖x − PᵀPx‖²`, so `⟨Px, Py⟩` stays as close to `⟨x, y⟩` as a projection allows.
//!
//! Training, all in f64:
//! 1. The matrix is accumulated over fixed chunks of rows (each chunk centred, packed in panels
//!    of 8 dimensions and multiplied in register tiles); each thread owns whole rows of the
//!    matrix and adds the chunks in order, so the bits do not depend on the thread count. The
//!    kernels are plain loops over fixed lanes, compiled per SIMD level and chosen at run time;
//!    with no FMA and a fixed summation order, every level gives the same bits too.
//! 2. Householder reduction to tridiagonal form (Golub & Van Loan, "Matrix Computations", 4th
//!    ed., §8.3.1), the reflectors kept.
//! 3. Implicit QL with Wilkinson shifts on the tridiagonal matrix (the `tql2` procedure of
//!    Wilkinson & Reinsch, "Handbook for Automatic Computation II", 1971), eigenvalues only, the
//!    Givens rotations recorded; then the rotations are replayed backwards on just the
//!    `out_dim` wanted unit vectors, and the reflectors applied to them. This costs
//!    `O(out_dim · dim²)` instead of `O(dim³)` for the full set of eigenvectors.
//! 4. Components sorted by eigenvalue (descending, ties by position), each signed so that its
//!    largest-magnitude entry (the first of equal ones) is positive.

use rayon::prelude::*;
use vecdex_distance::{simd_level, KernelPath, SimdLevel};

use crate::codec::{check_sample, try_filled, QuantError};
use crate::model::{check_len, model_len, put_f32s, put_f64s, Reader};

/// Training options of a [`Pca`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcaConfig {
    /// Dimensions of a projected vector, `1 ..= dim`.
    pub out_dim: usize,
    /// Subtract the sample mean and use the covariance (for L2), or keep the origin and use the
    /// second moment (for dot and cosine). See the module documentation.
    pub centered: bool,
}

/// A learnt linear projection `x ↦ C (x − μ)` from `dim` to `out_dim` dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    dim: usize,
    out_dim: usize,
    centered: bool,
    /// `μ`, `dim` values; zeros when not centered.
    mean: Vec<f32>,
    /// `C`, `out_dim × dim` row-major; orthonormal rows, by eigenvalue descending.
    components: Vec<f32>,
    /// Eigenvalue of each component (variance or second moment along it), `out_dim` values.
    eigenvalues: Vec<f64>,
    /// Trace of the matrix: the sample's total variance or second moment.
    total: f64,
}

/// Rows of the sample per chunk of the matrix accumulation; fixed so that sums do not depend on
/// the thread count.
const CHUNK: usize = 256;
/// Partial sums per dot product: four AVX-512 registers of f64, so that adds do not wait on
/// each other.
const LANES: usize = 32;
/// Dimensions per packed panel of the accumulation (one cache line of f64).
const PANEL: usize = 8;
/// Eigenvectors carried together through the recorded rotations and reflectors (each rotation
/// of a sweep waits on the one before, so wide groups hide the latency).
const GROUP: usize = 16;
/// Below this many rows, a Householder step runs on one thread.
const PARALLEL_ROWS: usize = 128;
/// Implicit QL iterations allowed per eigenvalue (convergence takes 1 to 3 in practice).
const MAX_ITERATIONS: usize = 64;

impl Pca {
    /// Learns the projection from `sample` (row-major, `dim` values per row).
    ///
    /// Errors when `dim` is 0, `out_dim` is 0 or above `dim`, the sample is not whole rows,
    /// has fewer than 2 rows, or holds a non-finite value.
    pub fn train(sample: &[f32], dim: usize, config: PcaConfig) -> Result<Self, QuantError> {
        let rows = check_sample(sample, dim, 2, "PCA")?;
        check_config(dim, config)?;
        let out_dim = config.out_dim;
        let level = simd_level();
        let center = if config.centered {
            mean(sample, dim)
        } else {
            vec![0.0; dim]
        };
        let mut matrix = second_moment(level, sample, dim, &center)?;
        let scale = 1.0 / rows as f64;
        matrix.iter_mut().for_each(|x| *x *= scale);
        let total = (0..dim).map(|i| matrix[i * dim + i]).sum();
        let (values, vectors) = top_eigenvectors(level, matrix, dim, out_dim)?;
        Ok(Pca {
            dim,
            out_dim,
            centered: config.centered,
            mean: center.iter().map(|&m| m as f32).collect(),
            components: vectors.iter().map(|&c| c as f32).collect(),
            eigenvalues: values,
            total,
        })
    }

    /// The trained state, little-endian, in this order:
    ///
    /// | field         | type | count            |
    /// |---------------|------|------------------|
    /// | `total`       | f64  | 1                |
    /// | `eigenvalues` | f64  | `out_dim`        |
    /// | `mean` (`μ`)  | f32  | `dim`            |
    /// | `components`  | f32  | `out_dim × dim`  |
    ///
    /// `8 + 8·out_dim + 4·dim + 4·out_dim·dim` bytes (the f64 first, so every value is aligned to
    /// its size). `components` is row-major, one component per row, by eigenvalue descending;
    /// `mean` is all zeros when not centered. `dim` and [`PcaConfig`] (`out_dim`, `centered`)
    /// are not included: [`Pca::from_model_bytes`] takes them.
    pub fn model_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(8 + 8 * self.out_dim + 4 * self.dim + 4 * self.components.len());
        put_f64s(&mut out, &[self.total]);
        put_f64s(&mut out, &self.eigenvalues);
        put_f32s(&mut out, &self.mean);
        put_f32s(&mut out, &self.components);
        out
    }

    /// The projection whose [`Pca::model_bytes`] are `bytes`, with the `dim` and `config` it
    /// was trained with: it projects bit for bit as the trained one did. Errors when `train`
    /// would refuse `dim` or `config`, the length is not exactly as [`Pca::model_bytes`]
    /// documents, a value is not finite, `total` is negative, the eigenvalues are not in
    /// descending order, or the mean of an uncentered projection is not all zeros.
    pub fn from_model_bytes(
        bytes: &[u8],
        dim: usize,
        config: PcaConfig,
    ) -> Result<Self, QuantError> {
        if dim == 0 {
            return Err(QuantError::new(
                "PCA: dimensions must be at least 1".to_string(),
            ));
        }
        check_config(dim, config)?;
        let out_dim = config.out_dim;
        let len = model_len(&[&[8], &[out_dim, 8], &[dim, 4], &[out_dim, dim, 4]], "PCA")?;
        check_len(
            bytes,
            len,
            &format!("{out_dim} components of {dim} dimensions"),
            "PCA",
        )?;
        let mut reader = Reader::new(bytes, "PCA");
        let total = reader.f64s(1, "the total")?;
        let eigenvalues = reader.f64s(out_dim, "the eigenvalues")?;
        let mean = reader.f32s(dim, "the mean")?;
        let components = reader.f32s(out_dim * dim, "the components")?;
        reader.finish()?;
        let total = total.first().copied().unwrap_or(0.0);
        if total < 0.0 {
            return Err(QuantError::new(format!(
                "PCA model: the total variance is negative ({total})"
            )));
        }
        if let Some(i) = eigenvalues
            .windows(2)
            .position(|w| w[0].total_cmp(&w[1]).is_lt())
        {
            return Err(QuantError::new(format!(
                "PCA model: eigenvalue {} is larger than eigenvalue {i}",
                i + 1
            )));
        }
        if !config.centered && mean.iter().any(|&m| m.to_bits() != 0) {
            return Err(QuantError::new(
                "PCA model: the mean of an uncentered projection must be zeros".to_string(),
            ));
        }
        Ok(Pca {
            dim,
            out_dim,
            centered: config.centered,
            mean,
            components,
            eigenvalues,
            total,
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    pub fn centered(&self) -> bool {
        self.centered
    }

    /// `μ`, `dim` values (zeros when not centered).
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// `C`, `out_dim × dim` row-major: orthonormal rows, by eigenvalue descending.
    pub fn components(&self) -> &[f32] {
        &self.components
    }

    /// Eigenvalue of each component, descending (`out_dim` values): the sample's variance (or
    /// second moment when not centered) along it, with the `1/n` normalisation.
    pub fn eigenvalues(&self) -> &[f64] {
        &self.eigenvalues
    }

    /// `out = C (x − μ)`: `x` has `dim` values, `out` has `out_dim`.
    pub fn project(&self, x: &[f32], out: &mut [f32]) {
        assert!(
            x.len() == self.dim && out.len() == self.out_dim,
            "PCA: project takes {} values into {}",
            self.dim,
            self.out_dim
        );
        let centered: Vec<f32>;
        let x = if self.centered {
            centered = x.iter().zip(&self.mean).map(|(v, m)| v - m).collect();
            &centered
        } else {
            x
        };
        for (o, c) in out.iter_mut().zip(self.components.chunks_exact(self.dim)) {
            *o = vecdex_distance::dot(c, x);
        }
    }

    /// Fraction of the sample's total variance (or second moment when not centered) kept by the
    /// components, in `[0, 1]`; 1 when the sample has none (all rows equal, or all zero).
    pub fn explained(&self) -> f64 {
        if self.total > 0.0 {
            (self.eigenvalues.iter().sum::<f64>() / self.total).clamp(0.0, 1.0)
        } else {
            1.0
        }
    }
}

/// Errors unless `train` accepts `config` for `dim` dimensions.
fn check_config(dim: usize, config: PcaConfig) -> Result<(), QuantError> {
    let out_dim = config.out_dim;
    if out_dim == 0 || out_dim > dim {
        return Err(QuantError::new(format!(
            "PCA: output dimensions must be between 1 and {dim}, got {out_dim}"
        )));
    }
    Ok(())
}

/// Mean of the rows, in f64 (per-chunk sums in parallel, added in chunk order).
fn mean(sample: &[f32], dim: usize) -> Vec<f64> {
    let rows = sample.len() / dim;
    let partial: Vec<Vec<f64>> = sample
        .par_chunks(CHUNK * dim)
        .map(|chunk| {
            let mut sum = vec![0f64; dim];
            for row in chunk.chunks_exact(dim) {
                sum.iter_mut()
                    .zip(row)
                    .for_each(|(s, &x)| *s += f64::from(x));
            }
            sum
        })
        .collect();
    let mut mean = vec![0f64; dim];
    for sum in partial {
        mean.iter_mut().zip(&sum).for_each(|(m, s)| *m += s);
    }
    mean.iter_mut().for_each(|m| *m /= rows as f64);
    mean
}

/// `Σ (x − mean)(x − mean)ᵀ` over the rows (`dim × dim`, row-major, symmetric), unscaled.
pub(crate) fn second_moment(
    level: SimdLevel,
    sample: &[f32],
    dim: usize,
    mean: &[f64],
) -> Result<Vec<f64>, QuantError> {
    let padded = dim.div_ceil(PANEL) * PANEL;
    // dim² values (32 GiB at 65,536 dimensions): fallible, as every buffer sized by the input.
    let mut gram = try_filled(padded * padded, 0f64, "PCA: the second-moment matrix")?;
    // One chunk of rows packed in panels of `PANEL` dimensions: panel `p` is `CHUNK × PANEL`,
    // row `r` holding dimensions `p·PANEL ..` of row `r` of the chunk, zero past the chunk's
    // last row and past `dim`.
    let mut packed = try_filled(padded * CHUNK, 0f64, "PCA: a chunk of the sample")?;
    for chunk in sample.chunks(CHUNK * dim) {
        packed
            .par_chunks_mut(CHUNK * PANEL)
            .enumerate()
            .for_each(|(p, panel)| {
                panel.fill(0.0);
                let columns = p * PANEL..((p + 1) * PANEL).min(dim);
                for (out, row) in panel.chunks_exact_mut(PANEL).zip(chunk.chunks_exact(dim)) {
                    for ((o, x), m) in out
                        .iter_mut()
                        .zip(&row[columns.clone()])
                        .zip(&mean[columns.clone()])
                    {
                        *o = f64::from(*x) - m;
                    }
                }
            });
        // Each task owns `PANEL` whole rows of the matrix: the same sums in the same order
        // whatever the thread count.
        gram.par_chunks_mut(PANEL * padded)
            .enumerate()
            .for_each(|(block, rows)| gram_rows(level, &packed, block, rows));
    }
    // The tiles filled the upper triangle (and the diagonal blocks): mirror it, drop the padding.
    let mut matrix = try_filled(dim * dim, 0f64, "PCA: the second-moment matrix")?;
    for i in 0..dim {
        for j in 0..dim {
            matrix[i * dim + j] = gram[i.min(j) * padded + i.max(j)];
        }
    }
    Ok(matrix)
}

/// Calls the body compiled for the SIMD level (the same source: plain loops over fixed-size
/// lanes that the compiler vectorises for whatever the level enables). Helpers the body calls
/// are `#[inline(always)]` so that they are compiled at the level too.
macro_rules! at_level {
    ($level:expr, fn($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {{
        #[inline(always)]
        fn body($($arg: $ty),*) $(-> $ret)? $body
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        fn avx512($($arg: $ty),*) $(-> $ret)? {
            body($($arg),*)
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        fn avx2($($arg: $ty),*) $(-> $ret)? {
            body($($arg),*)
        }
        match kernel_path($level) {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `simd_level` never selects a level above what this CPU supports.
            KernelPath::Avx512 => unsafe { avx512($($arg),*) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            KernelPath::Avx2 => unsafe { avx2($($arg),*) },
            _ => body($($arg),*),
        }
    }};
}

/// The path PCA's kernels take at `level` (a level `simd_level` chose): the same loops compiled
/// for AVX-512 or AVX2 (x86-64 only; no FMA, so every path gives the same bits), or for the
/// build's baseline. [`at_level`] dispatches on this.
pub fn kernel_path(level: SimdLevel) -> KernelPath {
    match level {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => KernelPath::Avx512,
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => KernelPath::Avx2,
        _ => KernelPath::Portable,
    }
}

/// Adds `Σ_r x_r[i] x_r[j]` over the packed chunk to `rows[i − b·PANEL][j]` for the `PANEL`
/// rows `i` of block `b` and every panel of columns `j` from the diagonal one on (`rows` is
/// `PANEL × padded`). Each entry is a plain running sum over `r`, so the tile shape (chosen per
/// level to fit the registers) does not change the bits.
fn gram_rows(level: SimdLevel, packed: &[f64], block: usize, rows: &mut [f64]) {
    if level == SimdLevel::Avx512 {
        at_level!(level, fn(packed: &[f64], block: usize, rows: &mut [f64]) {
            gram_tiles::<8>(packed, block, rows)
        })
    } else {
        at_level!(level, fn(packed: &[f64], block: usize, rows: &mut [f64]) {
            gram_tiles::<4>(packed, block, rows)
        })
    }
}

/// [`gram_rows`] by tiles of `TILE` rows × one panel: `TILE` panel-wide accumulators.
#[inline(always)]
fn gram_tiles<const TILE: usize>(packed: &[f64], block: usize, rows: &mut [f64]) {
    let padded = rows.len() / PANEL;
    let panel = |p: usize| {
        packed[p * CHUNK * PANEL..(p + 1) * CHUNK * PANEL]
            .as_chunks::<PANEL>()
            .0
    };
    let own = panel(block);
    for first in (0..PANEL).step_by(TILE) {
        for p in block..padded / PANEL {
            let other = panel(p);
            let mut acc = [[0f64; PANEL]; TILE];
            for (a, b) in own.iter().zip(other) {
                for (acc, x) in acc.iter_mut().zip(&a[first..first + TILE]) {
                    for l in 0..PANEL {
                        acc[l] += x * b[l];
                    }
                }
            }
            for (t, acc) in acc.iter().enumerate() {
                let row = &mut rows[(first + t) * padded + p * PANEL..][..PANEL];
                for (g, a) in row.iter_mut().zip(acc) {
                    *g += a;
                }
            }
        }
    }
}

/// Sum of partial sums in a fixed order (a balanced tree).
#[inline(always)]
fn sum_lanes(acc: &[f64; LANES]) -> f64 {
    let mut half = *acc;
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            half[l] += half[l + width];
        }
    }
    half[0]
}

/// `a · b` with [`LANES`] partial sums (same length).
#[inline(always)]
fn dot_lanes(a: &[f64], b: &[f64]) -> f64 {
    let (ac, at) = a.as_chunks::<LANES>();
    let (bc, bt) = b.as_chunks::<LANES>();
    let mut acc = [0f64; LANES];
    for (x, y) in ac.iter().zip(bc) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = 0.0;
    for (x, y) in at.iter().zip(bt) {
        tail += x * y;
    }
    sum_lanes(&acc) + tail
}

fn dot(level: SimdLevel, a: &[f64], b: &[f64]) -> f64 {
    at_level!(level, fn(a: &[f64], b: &[f64]) -> f64 { dot_lanes(a, b) })
}

/// `row −= vr·w + wr·v`: one row of the symmetric rank-2 update of a Householder step.
fn rank2_row(level: SimdLevel, row: &mut [f64], v: &[f64], w: &[f64], vr: f64, wr: f64) {
    at_level!(level, fn(row: &mut [f64], v: &[f64], w: &[f64], vr: f64, wr: f64) {
        for ((x, v), w) in row.iter_mut().zip(v).zip(w) {
            *x -= vr * w + wr * v;
        }
    })
}

/// The Householder reduction `A = Q T Qᵀ` of a symmetric matrix (`n × n`, row-major, both
/// triangles). Returns the diagonal and the subdiagonal of `T` (`n` and `n − 1` values, at
/// least one of the latter) and the `β` of each reflector; the reflector `H_j = I − β_j v_j v_jᵀ`
/// (acting on indices `j + 1 ..`) keeps `v_j` in row `j` of `a`, columns `j + 1 ..`, and
/// `Q = H_0 H_1 ⋯ H_{n−3}`.
///
/// Step `j` updates the trailing block `B = A[j + 1 .., j + 1 ..]` by `B −= v wᵀ + w vᵀ` with
/// `p = β B v`, `w = p − (β pᵀv / 2) v`. Its first row is updated first, which gives the next
/// reflector; then one pass over the other rows both updates each row and multiplies it by the
/// next reflector, so the block is read once per step, not twice.
fn tridiagonalize(level: SimdLevel, a: &mut [f64], n: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut diagonal = vec![0f64; n];
    let mut sub = vec![0f64; n.max(2) - 1];
    let mut betas = vec![0f64; n.saturating_sub(2)];
    if n >= 3 {
        // p = β B v of step 0, alone.
        let (beta, mu) = householder(&mut a[1..n]);
        (betas[0], sub[0]) = (beta, mu);
        let (head, tail) = a.split_at_mut(n);
        let v = &head[1..];
        let mut p: Vec<f64> = tail
            .par_chunks(n)
            .map(|row| beta * dot(level, &row[1..], v))
            .collect();
        let mut next_p = vec![0f64; n];
        let mut w = vec![0f64; n];
        for j in 0..n - 2 {
            diagonal[j] = a[j * n + j];
            let m = n - j - 1;
            let (head, tail) = a.split_at_mut((j + 1) * n);
            let v = &head[j * n + j + 1..];
            let beta = betas[j];
            let (first, rest) = tail.split_at_mut(n);
            let w = &mut w[..m];
            if beta != 0.0 {
                let k = beta * dot_lanes(&p[..m], v) / 2.0;
                w.iter_mut()
                    .zip(&p[..m])
                    .zip(v)
                    .for_each(|((w, p), v)| *w = p - k * v);
                rank2_row(level, &mut first[j + 1..], v, w, v[0], w[0]);
            }
            let next_beta = if j + 3 < n {
                let (next_beta, mu) = householder(&mut first[j + 2..]);
                (betas[j + 1], sub[j + 1]) = (next_beta, mu);
                next_beta
            } else {
                0.0
            };
            let next_v = &first[j + 2..];
            let w = &*w;
            rest.par_chunks_mut(n)
                .zip(next_p[..m - 1].par_iter_mut())
                .enumerate()
                .with_min_len(if m >= PARALLEL_ROWS { 16 } else { m })
                .for_each(|(r, (row, next_p))| {
                    if beta != 0.0 {
                        rank2_row(level, &mut row[j + 1..], v, w, v[r + 1], w[r + 1]);
                    }
                    *next_p = if next_beta != 0.0 {
                        next_beta * dot(level, &row[j + 2..], next_v)
                    } else {
                        0.0
                    };
                });
            std::mem::swap(&mut p, &mut next_p);
        }
    }
    if n >= 2 {
        diagonal[n - 2] = a[(n - 2) * n + n - 2];
        sub[n - 2] = a[(n - 2) * n + n - 1];
    }
    diagonal[n - 1] = a[n * n - 1];
    (diagonal, sub, betas)
}

/// Turns `x` into the vector `v` (`v₀ = 1`) of the reflector `I − β v vᵀ` that maps `x` to
/// `μ e₁`, `μ = ‖x‖` (GVL Algorithm 5.1.1), and returns `(β, μ)`; `x` already along `e₁` needs
/// none (`β = 0`, `v = 0`, `μ = x₀`).
fn householder(x: &mut [f64]) -> (f64, f64) {
    let sigma: f64 = x[1..].iter().map(|x| x * x).sum();
    let x0 = x[0];
    if sigma == 0.0 {
        x.fill(0.0);
        return (0.0, x0);
    }
    let mu = (x0 * x0 + sigma).sqrt();
    let v0 = if x0 <= 0.0 {
        x0 - mu
    } else {
        -sigma / (x0 + mu)
    };
    let beta = 2.0 * v0 * v0 / (sigma + v0 * v0);
    x.iter_mut().for_each(|x| *x /= v0);
    x[0] = 1.0;
    (beta, mu)
}

/// The Givens rotations of one QL sweep: rotation `t` acts on indices `top − t` and `top − t + 1`.
struct Sweep {
    top: usize,
    start: usize,
    count: usize,
}

/// Eigenvalues of the symmetric tridiagonal matrix (`diagonal`, `sub`), in place in `diagonal`,
/// by implicit QL with shifts (tql2). The rotations that would accumulate the eigenvectors
/// `Z = G₁ G₂ ⋯ G_M` (`Z ← Z G` with `z_i ← c z_i − s z_{i+1}`, `z_{i+1} ← s z_i + c z_{i+1}`)
/// are recorded instead: `(c, s)` in `rotations`, grouped by sweep.
fn tridiagonal_ql(
    diagonal: &mut [f64],
    sub: &[f64],
) -> Result<(Vec<Sweep>, Vec<[f64; 2]>), QuantError> {
    let n = diagonal.len();
    let d = diagonal;
    // e[i] couples i and i + 1; e[n − 1] = 0.
    let mut e = vec![0f64; n];
    e[..n - 1].copy_from_slice(&sub[..n - 1]);
    let mut sweeps = Vec::new();
    let mut rotations = Vec::new();
    // A coupling is dropped once it is rounding-sized next to the whole matrix (which moves
    // each eigenvalue by at most that much: backward stable). A test relative to the two
    // entries it couples alone never drops one between two zero eigenvalues of a low-rank
    // sample, whose rounding leaves both entries and the coupling near 1e-17 × the norm.
    let norm = (0..n).map(|i| d[i].abs() + e[i].abs()).fold(0f64, f64::max);
    let negligible = f64::EPSILON * norm;
    for l in 0..n {
        let mut iterations = 0;
        loop {
            let mut m = l;
            while m + 1 < n {
                if e[m].abs() <= negligible {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            iterations += 1;
            if iterations > MAX_ITERATIONS {
                return Err(QuantError::new(
                    "PCA: the eigenvalue iteration did not converge".to_string(),
                ));
            }
            // Wilkinson shift from the leading 2 × 2 block.
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let r = g.hypot(1.0);
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0f64, 1.0f64, 0.0f64);
            // A sweep records at most m − l rotations; there are O(n²) in all (tens of GiB at
            // the largest dimensions), so growth must fail as an error, not an abort.
            rotations.try_reserve(m - l).map_err(|_| {
                QuantError::out_of_memory("PCA: the recorded rotations", rotations.len() + m - l)
            })?;
            sweeps.try_reserve(1).map_err(|_| {
                QuantError::out_of_memory("PCA: the recorded sweeps", sweeps.len() + 1)
            })?;
            let start = rotations.len();
            let mut underflow = false;
            for i in (l..m).rev() {
                let f = s * e[i];
                let b = c * e[i];
                let r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    // Deflation by underflow: split the matrix here and start again.
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    underflow = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                let r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
                rotations.push([c, s]);
            }
            let count = rotations.len() - start;
            if count > 0 {
                sweeps.push(Sweep {
                    top: m - 1,
                    start,
                    count,
                });
            }
            if !underflow {
                d[l] -= p;
                e[l] = g;
                e[m] = 0.0;
            }
        }
    }
    Ok((sweeps, rotations))
}

/// Column `wanted[g]` of `Z = G₁ ⋯ G_M` for each `g`: `Z e_j`, the rotations applied to the unit
/// vector last one first. `group` is `n × GROUP` (row `i` holds entry `i` of each vector).
fn replay(level: SimdLevel, sweeps: &[Sweep], rotations: &[[f64; 2]], group: &mut [f64]) {
    at_level!(level, fn(sweeps: &[Sweep], rotations: &[[f64; 2]], group: &mut [f64]) {
        let (rows, _) = group.as_chunks_mut::<GROUP>();
        for sweep in sweeps.iter().rev() {
            // Rotation t of the sweep acts on (top − t, top − t + 1); backwards, the pair index
            // ascends, and the updated upper entry of one pair is the lower entry of the next.
            let cs = &rotations[sweep.start..sweep.start + sweep.count];
            let bottom = sweep.top + 1 - sweep.count;
            let mut carry = rows[bottom];
            for (i, &[c, s]) in (bottom..).zip(cs.iter().rev()) {
                let next = rows[i + 1];
                let row = &mut rows[i];
                for g in 0..GROUP {
                    row[g] = c * carry[g] + s * next[g];
                    carry[g] = c * next[g] - s * carry[g];
                }
            }
            rows[sweep.top + 1] = carry;
        }
    })
}

/// `y ← H_0 ⋯ H_{n−3} y` for each vector of `group` (`n × GROUP`, as in [`replay`]), the
/// reflectors as [`tridiagonalize`] left them in `a`.
fn reflect(level: SimdLevel, a: &[f64], betas: &[f64], group: &mut [f64]) {
    at_level!(level, fn(a: &[f64], betas: &[f64], group: &mut [f64]) {
        let (rows, _) = group.as_chunks_mut::<GROUP>();
        let n = rows.len();
        for (j, &beta) in betas.iter().enumerate().rev() {
            if beta == 0.0 {
                continue;
            }
            let v = &a[j * n + j + 1..(j + 1) * n];
            let rows = &mut rows[j + 1..];
            // Two partial sums (even and odd rows), for the same reason as `LANES`.
            let mut s = [[0f64; GROUP]; 2];
            let (pairs, last) = rows.as_chunks::<2>();
            for (pair, v) in pairs.iter().zip(v.as_chunks::<2>().0) {
                for (s, (row, v)) in s.iter_mut().zip(pair.iter().zip(v)) {
                    for g in 0..GROUP {
                        s[g] += v * row[g];
                    }
                }
            }
            if let (Some(row), Some(v)) = (last.first(), v.get(rows.len() - 1)) {
                for g in 0..GROUP {
                    s[0][g] += v * row[g];
                }
            }
            let s: [f64; GROUP] = std::array::from_fn(|g| beta * (s[0][g] + s[1][g]));
            for (row, v) in rows.iter_mut().zip(v) {
                for g in 0..GROUP {
                    row[g] -= s[g] * v;
                }
            }
        }
    })
}

/// The `k` largest eigenvalues of the symmetric matrix `a` (`n × n`) and their eigenvectors
/// (`k × n`, row-major, unit length, signed so that the largest-magnitude entry is positive).
pub(crate) fn top_eigenvectors(
    level: SimdLevel,
    mut a: Vec<f64>,
    n: usize,
    k: usize,
) -> Result<(Vec<f64>, Vec<f64>), QuantError> {
    let (mut values, sub, betas) = tridiagonalize(level, &mut a, n);
    let (sweeps, rotations) = tridiagonal_ql(&mut values, &sub)?;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&x, &y| values[y].total_cmp(&values[x]).then(x.cmp(&y)));
    order.truncate(k);
    let mut vectors = try_filled(k * n, 0f64, "PCA: the eigenvectors")?;
    vectors
        .par_chunks_mut(GROUP * n)
        .zip(order.par_chunks(GROUP))
        .for_each(|(vectors, wanted)| {
            // Eigenvectors of T, then through the reflectors: H_0 ⋯ H_{n−3} y.
            let mut group = vec![0f64; n * GROUP];
            for (g, &j) in wanted.iter().enumerate() {
                group[j * GROUP + g] = 1.0;
            }
            replay(level, &sweeps, &rotations, &mut group);
            reflect(level, &a, &betas, &mut group);
            for (g, y) in vectors.chunks_exact_mut(n).enumerate() {
                for (i, y) in y.iter_mut().enumerate() {
                    *y = group[i * GROUP + g];
                }
                normalize_sign(y);
            }
        });
    let values = order.iter().map(|&j| values[j]).collect();
    Ok((values, vectors))
}

/// Flips `y` so that its largest-magnitude entry (the first of equal ones) is positive.
fn normalize_sign(y: &mut [f64]) {
    let mut largest = 0.0f64;
    for &x in y.iter() {
        if x.abs() > largest.abs() {
            largest = x;
        }
    }
    if largest < 0.0 {
        y.iter_mut().for_each(|x| *x = -*x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rows: usize, dim: usize) -> Vec<f32> {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        (0..rows * dim)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let u = (state >> 40) as f32 / (1u64 << 24) as f32;
                (u - 0.5) * (1.0 + (i % dim) as f32 / 8.0)
            })
            .collect()
    }

    /// Every SIMD level gives the same bits (no FMA, fixed lane order).
    #[test]
    fn levels_agree() {
        let dim = 45;
        let data = sample(300, dim);
        let mean = mean(&data, dim);
        let mut reference = None;
        for level in SimdLevel::available() {
            let matrix = second_moment(level, &data, dim, &mean).expect("fits");
            let result = top_eigenvectors(level, matrix.clone(), dim, 7).map(|r| (matrix, r));
            match &reference {
                None => reference = Some(result),
                Some(first) => assert_eq!(first, &result, "level {}", level.name()),
            }
        }
    }

    /// Tridiagonal matrices of size 1 and 2, and a diagonal one, need no reflector.
    #[test]
    fn small_matrices() {
        let level = simd_level();
        let (values, vectors) = top_eigenvectors(level, vec![3.0], 1, 1).expect("solve");
        assert_eq!((values, vectors), (vec![3.0], vec![1.0]));
        let (values, vectors) =
            top_eigenvectors(level, vec![2.0, 1.0, 1.0, 2.0], 2, 2).expect("solve");
        assert!((values[0] - 3.0).abs() < 1e-12 && (values[1] - 1.0).abs() < 1e-12);
        let h = std::f64::consts::FRAC_1_SQRT_2;
        for (got, want) in vectors.iter().zip([h, h, h, -h]) {
            assert!((got - want).abs() < 1e-12, "{vectors:?}");
        }
        let diagonal = [1.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 3.0];
        let (values, vectors) = top_eigenvectors(level, diagonal.to_vec(), 3, 3).expect("solve");
        assert_eq!(values, vec![5.0, 3.0, 1.0]);
        assert_eq!(vectors, vec![0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    }
}
