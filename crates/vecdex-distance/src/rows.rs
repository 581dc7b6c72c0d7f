//! One-to-one f32 kernels over zero-padded rows, for graph search.
//!
//! A graph walk scores one query against scattered single vectors, so the blocked kernels of
//! [`crate::panel`] do not apply, and simsimd's general kernels spend part of each call on
//! length handling and an f64 result. Here every row is padded with zeros to a multiple of
//! [`ROW_LANES`] (padding changes neither inner products nor squared distances), so the loops
//! have no tail, and rows start on 64-byte boundaries when the storage is aligned.

use crate::dispatch::{simd_level, SimdLevel};

/// Rows are padded to a multiple of this many f32 (one AVX-512 register, one cache line).
pub const ROW_LANES: usize = 16;

/// Length of a `dim`-dimensional row once padded.
pub fn padded_len(dim: usize) -> usize {
    dim.div_ceil(ROW_LANES) * ROW_LANES
}

/// Inner product and squared L2 of padded rows at the level chosen for this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowKernel {
    level: SimdLevel,
}

impl Default for RowKernel {
    fn default() -> Self {
        RowKernel::new(simd_level())
    }
}

impl RowKernel {
    /// A kernel at `level`, lowered to what this CPU supports.
    pub fn new(level: SimdLevel) -> Self {
        RowKernel {
            level: level.min(SimdLevel::detect()),
        }
    }

    pub fn level(self) -> SimdLevel {
        self.level
    }

    /// ⟨a, b⟩. `a` and `b` have the same length, a multiple of [`ROW_LANES`].
    #[inline]
    pub fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        debug_assert!(a.len() == b.len() && a.len().is_multiple_of(ROW_LANES));
        let len = a.len().min(b.len()) / ROW_LANES * ROW_LANES;
        let (a, b) = (&a[..len], &b[..len]);
        match self.level {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `new` never selects a level above what the CPU supports.
            SimdLevel::Avx512 => unsafe { x86::dot_avx512(a, b) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            SimdLevel::Avx2 => unsafe { x86::dot_avx2(a, b) },
            _ => dot_scalar(a, b),
        }
    }

    /// Σ (a − b)². Same requirements as [`RowKernel::dot`].
    #[inline]
    pub fn l2sq(self, a: &[f32], b: &[f32]) -> f32 {
        debug_assert!(a.len() == b.len() && a.len().is_multiple_of(ROW_LANES));
        let len = a.len().min(b.len()) / ROW_LANES * ROW_LANES;
        let (a, b) = (&a[..len], &b[..len]);
        match self.level {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `new` never selects a level above what the CPU supports.
            SimdLevel::Avx512 => unsafe { x86::l2sq_avx512(a, b) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            SimdLevel::Avx2 => unsafe { x86::l2sq_avx2(a, b) },
            _ => l2sq_scalar(a, b),
        }
    }
}

/// Cache lines of a row requested by [`prefetch_row`].
const PREFETCH_LINES: usize = 8;

impl RowKernel {
    /// `Σ wᵢ·cᵢ` over u8 codes (scalar-quantized rows), for any equal lengths: SIMD over the
    /// whole groups of 16, plain code for the rest.
    #[inline]
    pub fn dot_u8(self, weights: &[f32], codes: &[u8]) -> f32 {
        let len = weights.len().min(codes.len());
        let body = len / ROW_LANES * ROW_LANES;
        let tail: f32 = weights[body..len]
            .iter()
            .zip(&codes[body..len])
            .map(|(w, c)| w * f32::from(*c))
            .sum();
        let (weights, codes) = (&weights[..body], &codes[..body]);
        tail + match self.level {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `new` never selects a level above what the CPU supports.
            SimdLevel::Avx512 => unsafe { x86::dot_u8_avx512(weights, codes) },
            _ => weights
                .iter()
                .zip(codes)
                .map(|(w, c)| w * f32::from(*c))
                .sum(),
        }
    }

    /// `Σ (rᵢ − sᵢ·cᵢ)²` over u8 codes: the squared distance of a query (as `r = q − lo`) to a
    /// scalar-quantized row with steps `s`, for any equal lengths.
    #[inline]
    pub fn l2_u8(self, residual: &[f32], steps: &[f32], codes: &[u8]) -> f32 {
        let len = residual.len().min(steps.len()).min(codes.len());
        let body = len / ROW_LANES * ROW_LANES;
        let plain = |r: &[f32], s: &[f32], c: &[u8]| -> f32 {
            r.iter()
                .zip(s)
                .zip(c)
                .map(|((r, s), c)| {
                    let d = r - s * f32::from(*c);
                    d * d
                })
                .sum()
        };
        let tail = plain(&residual[body..len], &steps[body..len], &codes[body..len]);
        let (residual, steps, codes) = (&residual[..body], &steps[..body], &codes[..body]);
        tail + match self.level {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            SimdLevel::Avx512 => unsafe { x86::l2_u8_avx512(residual, steps, codes) },
            _ => plain(residual, steps, codes),
        }
    }
}

/// Hints the CPU to start loading the first cache lines of a row (no effect elsewhere).
#[inline(always)]
pub fn prefetch_row(row: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = row.as_ptr().cast::<i8>();
        let lines = (row.len() * 4).div_ceil(64).min(PREFETCH_LINES);
        for line in 0..lines {
            // SAFETY: prefetch never faults; the address is inside `row`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(line * 64)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

fn dot_scalar(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += ca[i] * cb[i];
        }
    }
    acc.iter().sum()
}

fn l2sq_scalar(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for i in 0..8 {
            let d = ca[i] - cb[i];
            acc[i] += d * d;
        }
    }
    acc.iter().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU supports AVX-512F; `a.len() == b.len()`, a multiple of 16.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        // SAFETY: every load reads 16 f32 at `i < n`, `n` a multiple of 16, inside both slices.
        unsafe {
            while i + 32 <= n {
                acc0 =
                    _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), acc0);
                acc1 = _mm512_fmadd_ps(
                    _mm512_loadu_ps(pa.add(i + 16)),
                    _mm512_loadu_ps(pb.add(i + 16)),
                    acc1,
                );
                i += 32;
            }
            if i < n {
                acc0 =
                    _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), acc0);
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }

    /// # Safety
    /// As [`dot_avx512`].
    #[target_feature(enable = "avx512f")]
    pub unsafe fn l2sq_avx512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        // SAFETY: as in `dot_avx512`.
        unsafe {
            while i + 32 <= n {
                let d0 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
                let d1 = _mm512_sub_ps(
                    _mm512_loadu_ps(pa.add(i + 16)),
                    _mm512_loadu_ps(pb.add(i + 16)),
                );
                acc0 = _mm512_fmadd_ps(d0, d0, acc0);
                acc1 = _mm512_fmadd_ps(d1, d1, acc1);
                i += 32;
            }
            if i < n {
                let d0 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
                acc0 = _mm512_fmadd_ps(d0, d0, acc0);
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }

    /// # Safety
    /// The CPU supports AVX-512F; equal lengths, a multiple of 16.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dot_u8_avx512(weights: &[f32], codes: &[u8]) -> f32 {
        let n = weights.len();
        let mut acc = _mm512_setzero_ps();
        let mut i = 0;
        // SAFETY: each step reads 16 f32 and 16 bytes at `i + 16 <= n`, inside both slices.
        unsafe {
            while i < n {
                let c = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(
                    codes.as_ptr().add(i).cast(),
                )));
                acc = _mm512_fmadd_ps(_mm512_loadu_ps(weights.as_ptr().add(i)), c, acc);
                i += 16;
            }
        }
        _mm512_reduce_add_ps(acc)
    }

    /// # Safety
    /// As [`dot_u8_avx512`], for three slices.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn l2_u8_avx512(residual: &[f32], steps: &[f32], codes: &[u8]) -> f32 {
        let n = residual.len();
        let mut acc = _mm512_setzero_ps();
        let mut i = 0;
        // SAFETY: as in `dot_u8_avx512`.
        unsafe {
            while i < n {
                let c = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(
                    codes.as_ptr().add(i).cast(),
                )));
                let d = _mm512_fnmadd_ps(
                    _mm512_loadu_ps(steps.as_ptr().add(i)),
                    c,
                    _mm512_loadu_ps(residual.as_ptr().add(i)),
                );
                acc = _mm512_fmadd_ps(d, d, acc);
                i += 16;
            }
        }
        _mm512_reduce_add_ps(acc)
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum256(v: __m256) -> f32 {
        let pair = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let quad = _mm_add_ps(pair, _mm_movehl_ps(pair, pair));
        _mm_cvtss_f32(_mm_add_ss(quad, _mm_shuffle_ps::<1>(quad, quad)))
    }

    /// # Safety
    /// The CPU supports AVX2 and FMA; `a.len() == b.len()`, a multiple of 16.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: every load reads 8 f32 at `i + 8 <= n`, inside both slices.
        unsafe {
            while i + 16 <= n {
                acc0 =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
                acc1 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                    acc1,
                );
                i += 16;
            }
            hsum256(_mm256_add_ps(acc0, acc1))
        }
    }

    /// # Safety
    /// As [`dot_avx2`].
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn l2sq_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: as in `dot_avx2`.
        unsafe {
            while i + 16 <= n {
                let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                let d1 = _mm256_sub_ps(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                );
                acc0 = _mm256_fmadd_ps(d0, d0, acc0);
                acc1 = _mm256_fmadd_ps(d1, d1, acc1);
                i += 16;
            }
            hsum256(_mm256_add_ps(acc0, acc1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scalar;
    use crate::Metric;

    #[test]
    fn u8_code_kernels_match_plain_loops() {
        for len in [1, 15, 16, 48, 100, 112, 784, 785] {
            let weights: Vec<f32> = (0..len)
                .map(|i| ((i * 37) % 11) as f32 * 0.25 - 1.0)
                .collect();
            let steps: Vec<f32> = (0..len).map(|i| 0.01 + (i % 5) as f32 * 0.003).collect();
            let codes: Vec<u8> = (0..len).map(|i| (i * 97 % 256) as u8).collect();
            let dot: f64 = weights
                .iter()
                .zip(&codes)
                .map(|(w, c)| f64::from(*w) * f64::from(*c))
                .sum();
            let l2: f64 = weights
                .iter()
                .zip(&steps)
                .zip(&codes)
                .map(|((r, s), c)| (f64::from(*r) - f64::from(*s) * f64::from(*c)).powi(2))
                .sum();
            for level in SimdLevel::available() {
                let kernel = RowKernel::new(level);
                assert!(
                    (f64::from(kernel.dot_u8(&weights, &codes)) - dot).abs()
                        <= 1e-4 * dot.abs().max(1.0),
                    "{level:?} dot {len}"
                );
                assert!(
                    (f64::from(kernel.l2_u8(&weights, &steps, &codes)) - l2).abs()
                        <= 1e-4 * l2.max(1.0),
                    "{level:?} l2 {len}"
                );
            }
        }
    }

    #[test]
    fn every_level_matches_the_oracle_on_padded_rows() {
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        for dim in [1, 15, 16, 17, 31, 32, 33, 100, 128, 784] {
            let len = padded_len(dim);
            let mut a = vec![0f32; len];
            let mut b = vec![0f32; len];
            for i in 0..dim {
                a[i] = next();
                b[i] = next();
            }
            let dot = 1.0 - scalar::spatial(Metric::Dot, &a[..dim], &b[..dim]).unwrap_or(f64::NAN);
            let l2 = scalar::spatial(Metric::L2sq, &a[..dim], &b[..dim]).unwrap_or(f64::NAN);
            for level in SimdLevel::available() {
                let kernel = RowKernel::new(level);
                let tol = 1e-4 * (dim as f64).sqrt();
                assert!(
                    (f64::from(kernel.dot(&a, &b)) - dot).abs() < tol,
                    "{level:?} dot dim {dim}"
                );
                assert!(
                    (f64::from(kernel.l2sq(&a, &b)) - l2).abs() < tol,
                    "{level:?} l2 dim {dim}"
                );
            }
        }
    }
}
