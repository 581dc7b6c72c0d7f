//! One-to-one f32 kernels over zero-padded rows, for graph search.
//!
//! A graph walk scores one query against scattered single vectors, so the blocked kernels of
//! [`crate::panel`] do not apply, and simsimd's general kernels spend part of each call on
//! length handling and an f64 result. Here every row is padded with zeros to a multiple of
//! [`ROW_LANES`] (padding changes neither inner products nor squared distances), so the loops
//! have no tail, and rows start on 64-byte boundaries when the storage is aligned.
//!
//! The same walk over scalar-quantized codes uses the code kernels below: f32 weights against u8
//! codes or 4-bit codes, and i8 weights against u8 codes (symmetric SQ8, AVX-512 VNNI or AVX2).
//! Codes are not padded (padding would cost memory per vector), so these take any length: the
//! AVX-512 paths read the last partial group with masked loads, the AVX2 one ends with a plain
//! loop.

use crate::dispatch::{simd_level, KernelPath, SimdLevel};

/// Rows are padded to a multiple of this many f32 (one AVX-512 register, one cache line).
pub const ROW_LANES: usize = 16;

/// Length of a `dim`-dimensional row once padded.
pub fn padded_len(dim: usize) -> usize {
    dim.div_ceil(ROW_LANES) * ROW_LANES
}

/// Inner product and squared L2 of padded rows, and the code kernels of the scalar quantizers,
/// at the level chosen for this process.
///
/// The code kernels (`*_u8`, `*_u4`, [`RowKernel::dot_i8_u8`]) take any length: their AVX-512
/// path reads the last partial group with masked loads (AVX-512 BW and VL), so there is no
/// scalar tail; [`RowKernel::dot_i8_u8`] uses AVX-512 VNNI (`vpdpbusd`) where the CPU has it,
/// and an AVX2 path (with a plain tail) below AVX-512.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowKernel {
    level: SimdLevel,
    /// AVX-512 BW and VL (masked byte loads): the code kernels' AVX-512 path needs them.
    bytes: bool,
    /// AVX-512 VNNI (`vpdpbusd`), for [`RowKernel::dot_i8_u8`].
    vnni: bool,
    /// AVX2 (the level is at least [`SimdLevel::Avx2`]), for [`RowKernel::dot_i8_u8`].
    avx2: bool,
    /// `avx2` and F16C (half-float conversions), for [`RowKernel::dot_half`].
    f16c: bool,
}

impl Default for RowKernel {
    fn default() -> Self {
        RowKernel::new(simd_level())
    }
}

impl RowKernel {
    /// A kernel at `level`, lowered to what this CPU supports.
    pub fn new(level: SimdLevel) -> Self {
        let level = level.min(SimdLevel::detect());
        #[cfg(target_arch = "x86_64")]
        let (bytes, vnni) = {
            let bytes = level == SimdLevel::Avx512
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vl");
            (
                bytes,
                bytes && std::arch::is_x86_feature_detected!("avx512vnni"),
            )
        };
        #[cfg(not(target_arch = "x86_64"))]
        let (bytes, vnni) = (false, false);
        let avx2 = cfg!(target_arch = "x86_64") && level >= SimdLevel::Avx2;
        #[cfg(target_arch = "x86_64")]
        let f16c = avx2 && std::arch::is_x86_feature_detected!("f16c");
        #[cfg(not(target_arch = "x86_64"))]
        let f16c = false;
        RowKernel {
            level,
            bytes,
            vnni,
            avx2,
            f16c,
        }
    }

    /// The same kernel without AVX-512 VNNI: [`RowKernel::dot_i8_u8`] widens to 16 bits
    /// instead (the path of AVX-512 CPUs before Ice Lake; for tests and measurements).
    /// At the AVX2 level, the same kernel.
    pub fn without_vnni(self) -> Self {
        RowKernel {
            vnni: false,
            ..self
        }
    }

    pub fn level(self) -> SimdLevel {
        self.level
    }

    /// Whether [`RowKernel::dot_i8_u8`] runs on AVX-512 VNNI.
    pub fn has_vnni(self) -> bool {
        self.vnni
    }

    /// The path of [`RowKernel::dot`] and [`RowKernel::l2sq`] (the `level` they match on).
    pub fn row_path(self) -> KernelPath {
        match self.level {
            SimdLevel::Avx512 => KernelPath::Avx512,
            SimdLevel::Avx2 => KernelPath::Avx2Fma,
            SimdLevel::Scalar => KernelPath::Portable,
        }
    }

    /// The path of the f32-weight code kernels ([`RowKernel::dot_u8`], `l2_u8`, `dot_u4`,
    /// `l2_u4`): AVX-512 BW where `bytes` is set, AVX2 + FMA at the AVX2 level, plain loops
    /// otherwise.
    pub fn code_path(self) -> KernelPath {
        if self.bytes {
            KernelPath::Avx512Bw
        } else if self.avx2 {
            KernelPath::Avx2Fma
        } else {
            KernelPath::Portable
        }
    }

    /// The path of [`RowKernel::dot_half`] and `l2_half`: AVX-512 BW where `bytes` is set,
    /// AVX2 + FMA with F16C at the AVX2 level, plain loops otherwise.
    pub fn half_path(self) -> KernelPath {
        if self.bytes {
            KernelPath::Avx512Bw
        } else if self.f16c {
            KernelPath::Avx2Fma
        } else {
            KernelPath::Portable
        }
    }

    /// The path of [`RowKernel::dot_i8_u8`], in the order it tests its flags.
    pub fn i8_code_path(self) -> KernelPath {
        if self.vnni {
            KernelPath::Avx512Vnni
        } else if self.bytes {
            KernelPath::Avx512Bw
        } else if self.avx2 {
            KernelPath::Avx2
        } else {
            KernelPath::Portable
        }
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

/// Storage formats of 2-byte floats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HalfFloat {
    /// IEEE 754 binary16.
    F16,
    /// bfloat16: the high half of an f32.
    Bf16,
}

impl HalfFloat {
    /// The f32 value of the 2-byte float `bits`.
    #[inline]
    pub fn to_f32(self, bits: u16) -> f32 {
        match self {
            HalfFloat::F16 => half::f16::from_bits(bits).to_f32(),
            HalfFloat::Bf16 => f32::from_bits(u32::from(bits) << 16),
        }
    }
}

/// Cache lines of a row requested by [`prefetch_row`].
const PREFETCH_LINES: usize = 8;

/// Dimensions per block of the nibble-split order of 4-bit codes (16 code bytes); see
/// [`nibble_split`].
pub const NIBBLE_BLOCK: usize = 32;

/// Per-dimension `values` in the order the 4-bit code kernels ([`RowKernel::dot_u4`],
/// [`RowKernel::l2_u4`]) read them. 4-bit codes hold dimension `2i` in the low nibble of byte
/// `i` and `2i + 1` in its high nibble; for each block of 16 code bytes (32 dimensions
/// `32b..32b + 32`) the result holds the 16 even dimensions (the low nibbles), then the 16 odd
/// ones (the high nibbles). The length is `values.len()` rounded up to a multiple of
/// [`NIBBLE_BLOCK`], padded with zeros.
pub fn nibble_split(values: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; values.len().div_ceil(NIBBLE_BLOCK) * NIBBLE_BLOCK];
    for (d, v) in values.iter().enumerate() {
        let within = d % NIBBLE_BLOCK;
        out[d - within + (within % 2) * (NIBBLE_BLOCK / 2) + within / 2] = *v;
    }
    out
}

impl RowKernel {
    /// `Σ wᵢ·cᵢ` over u8 codes (scalar-quantized rows), over the common length of `weights`
    /// and `codes` (any length).
    #[inline]
    pub fn dot_u8(self, weights: &[f32], codes: &[u8]) -> f32 {
        let len = weights.len().min(codes.len());
        let (weights, codes) = (&weights[..len], &codes[..len]);
        #[cfg(target_arch = "x86_64")]
        if self.bytes {
            // SAFETY: `bytes` is set only when the CPU has AVX-512 F, BW and VL; equal lengths.
            return unsafe { x86::dot_u8_avx512(weights, codes) };
        }
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is set only at the AVX2 level (AVX2 and FMA) or above; equal lengths.
            return unsafe { x86::dot_u8_avx2(weights, codes) };
        }
        plain::dot_u8(weights, codes)
    }

    /// `Σ (rᵢ − sᵢ·cᵢ)²` over u8 codes: the squared distance of a query (as `r = q − lo`) to a
    /// scalar-quantized row with steps `s`, over the common length of the three slices.
    #[inline]
    pub fn l2_u8(self, residual: &[f32], steps: &[f32], codes: &[u8]) -> f32 {
        let len = residual.len().min(steps.len()).min(codes.len());
        let (residual, steps, codes) = (&residual[..len], &steps[..len], &codes[..len]);
        #[cfg(target_arch = "x86_64")]
        if self.bytes {
            // SAFETY: as in `dot_u8`.
            return unsafe { x86::l2_u8_avx512(residual, steps, codes) };
        }
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: as in `dot_u8`.
            return unsafe { x86::l2_u8_avx2(residual, steps, codes) };
        }
        plain::l2_u8(residual, steps, codes)
    }

    /// `Σ qᵢ·xᵢ` of an f32 query and a row stored as 2-byte floats (`format`, little-endian),
    /// over `min(query.len(), code.len() / 2)` dimensions (any length).
    #[inline]
    pub fn dot_half(self, format: HalfFloat, query: &[f32], code: &[u8]) -> f32 {
        let len = query.len().min(code.len() / 2);
        let (query, code) = (&query[..len], &code[..2 * len]);
        #[cfg(target_arch = "x86_64")]
        if self.bytes {
            // SAFETY: `bytes` is set only when the CPU has AVX-512 F, BW and VL; `code` holds
            // `2 × query.len()` bytes.
            return unsafe { x86::half_avx512::<false>(format, query, code) };
        }
        #[cfg(target_arch = "x86_64")]
        if self.f16c {
            // SAFETY: `f16c` is set only with AVX2 + FMA and the CPU's F16C; `code` holds
            // `2 × query.len()` bytes.
            return unsafe { x86::half_avx2::<false>(format, query, code) };
        }
        plain::half(format, query, code, |q, x| q * x)
    }

    /// `Σ (qᵢ − xᵢ)²` of an f32 query and a row of 2-byte floats; as [`RowKernel::dot_half`].
    #[inline]
    pub fn l2_half(self, format: HalfFloat, query: &[f32], code: &[u8]) -> f32 {
        let len = query.len().min(code.len() / 2);
        let (query, code) = (&query[..len], &code[..2 * len]);
        #[cfg(target_arch = "x86_64")]
        if self.bytes {
            // SAFETY: as in `dot_half`.
            return unsafe { x86::half_avx512::<true>(format, query, code) };
        }
        #[cfg(target_arch = "x86_64")]
        if self.f16c {
            // SAFETY: as in `dot_half`.
            return unsafe { x86::half_avx2::<true>(format, query, code) };
        }
        plain::half(format, query, code, |q, x| (q - x) * (q - x))
    }

    /// `Σ bᵢ·cᵢ` of i8 weights and u8 codes over their common length, exact in i32 (the form of
    /// AVX-512 VNNI `vpdpbusd`). Exact up to 65,536 terms (|bᵢ·cᵢ| ≤ 128·255); beyond that the
    /// sum wraps on every path alike.
    #[inline]
    pub fn dot_i8_u8(self, weights: &[i8], codes: &[u8]) -> i32 {
        let len = weights.len().min(codes.len());
        let (weights, codes) = (&weights[..len], &codes[..len]);
        #[cfg(target_arch = "x86_64")]
        if self.vnni {
            // SAFETY: `vnni` is set only with `bytes` and the CPU's AVX-512 VNNI.
            return unsafe { x86::dot_i8_u8_vnni(weights, codes) };
        }
        #[cfg(target_arch = "x86_64")]
        if self.bytes {
            // SAFETY: as in `dot_u8`.
            return unsafe { x86::dot_i8_u8_avx512bw(weights, codes) };
        }
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is set only at the AVX2 level or above, which the CPU supports.
            return unsafe { x86::dot_i8_u8_avx2(weights, codes) };
        }
        plain::dot_i8_u8(weights, codes)
    }

    /// `Σ wᵢ·cᵢ` over 4-bit codes (two per byte, dimension `2i` in the low nibble of byte `i`),
    /// with `weights` in the order of [`nibble_split`]. Reads `codes` up to
    /// `weights.len() / 32 · 16` bytes; the weights of dimensions past the last one must be 0.
    #[inline]
    pub fn dot_u4(self, weights: &[f32], codes: &[u8]) -> f32 {
        let bytes = codes
            .len()
            .min(weights.len() / NIBBLE_BLOCK * (NIBBLE_BLOCK / 2));
        let codes = &codes[..bytes];
        #[cfg(target_arch = "x86_64")]
        if self.bytes {
            // SAFETY: as in `dot_u8`; `weights` has 32 values for every 16 bytes of `codes`.
            return unsafe { x86::dot_u4_avx512(weights, codes) };
        }
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: as in `dot_u8`; `weights` has 32 values for every 16 bytes of `codes`.
            return unsafe { x86::dot_u4_avx2(weights, codes) };
        }
        plain::dot_u4(weights, codes)
    }

    /// `Σ (rᵢ − sᵢ·cᵢ)²` over 4-bit codes, with `residual` and `steps` in the order of
    /// [`nibble_split`] (as [`RowKernel::dot_u4`]; zero past the last dimension).
    #[inline]
    pub fn l2_u4(self, residual: &[f32], steps: &[f32], codes: &[u8]) -> f32 {
        let bytes = codes
            .len()
            .min(residual.len().min(steps.len()) / NIBBLE_BLOCK * (NIBBLE_BLOCK / 2));
        let codes = &codes[..bytes];
        #[cfg(target_arch = "x86_64")]
        if self.bytes {
            // SAFETY: as in `dot_u4`, for both `residual` and `steps`.
            return unsafe { x86::l2_u4_avx512(residual, steps, codes) };
        }
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: as in `dot_u4`, for both `residual` and `steps`.
            return unsafe { x86::l2_u4_avx2(residual, steps, codes) };
        }
        plain::l2_u4(residual, steps, codes)
    }
}

/// Plain loops of the code kernels: the fallback and the reference of their SIMD paths. They
/// keep independent sums per lane (as `dot_scalar`) so the compiler can use the target's
/// baseline SIMD.
mod plain {
    use super::{HalfFloat, NIBBLE_BLOCK};

    /// `Σ f(qᵢ, xᵢ)` of a query and a row of 2-byte floats, in eight interleaved sums.
    pub fn half(format: HalfFloat, query: &[f32], code: &[u8], f: impl Fn(f32, f32) -> f32) -> f32 {
        let mut acc = [0f32; LANES];
        for (i, (q, x)) in query.iter().zip(code.chunks_exact(2)).enumerate() {
            acc[i % LANES] += f(*q, format.to_f32(u16::from_le_bytes([x[0], x[1]])));
        }
        acc.iter().sum()
    }

    const LANES: usize = 8;
    const HALF: usize = NIBBLE_BLOCK / 2;

    /// `Σ f(aᵢ, cᵢ)` over equal-length slices, in eight interleaved sums.
    #[inline(always)]
    fn sum<A: Copy>(a: &[A], codes: &[u8], f: impl Fn(A, f32) -> f32) -> f32 {
        let mut acc = [0f32; LANES];
        let (a_chunks, c_chunks) = (a.chunks_exact(LANES), codes.chunks_exact(LANES));
        let (a_rest, c_rest) = (a_chunks.remainder(), c_chunks.remainder());
        for (a, c) in a_chunks.zip(c_chunks) {
            for lane in 0..LANES {
                acc[lane] += f(a[lane], f32::from(c[lane]));
            }
        }
        for ((acc, a), c) in acc.iter_mut().zip(a_rest).zip(c_rest) {
            *acc += f(*a, f32::from(*c));
        }
        acc.iter().sum()
    }

    pub fn dot_u8(weights: &[f32], codes: &[u8]) -> f32 {
        let n = weights.len().min(codes.len());
        sum(&weights[..n], &codes[..n], |w, c| w * c)
    }

    pub fn l2_u8(residual: &[f32], steps: &[f32], codes: &[u8]) -> f32 {
        let n = residual.len().min(steps.len()).min(codes.len());
        let (residual, steps, codes) = (&residual[..n], &steps[..n], &codes[..n]);
        let mut acc = [0f32; LANES];
        let chunks = residual
            .chunks_exact(LANES)
            .zip(steps.chunks_exact(LANES))
            .zip(codes.chunks_exact(LANES));
        for ((r, s), c) in chunks {
            for lane in 0..LANES {
                let d = r[lane] - s[lane] * f32::from(c[lane]);
                acc[lane] += d * d;
            }
        }
        let whole = n / LANES * LANES;
        for (lane, i) in (whole..n).enumerate() {
            let d = residual[i] - steps[i] * f32::from(codes[i]);
            acc[lane] += d * d;
        }
        acc.iter().sum()
    }

    pub fn dot_i8_u8(weights: &[i8], codes: &[u8]) -> i32 {
        weights.iter().zip(codes).fold(0i32, |acc, (w, c)| {
            acc.wrapping_add(i32::from(*w) * i32::from(*c))
        })
    }

    /// Calls `f(position, level)` for the low nibbles of `block` (positions `0..16`), then its
    /// high nibbles (positions `16..32`) in the nibble-split order.
    #[inline(always)]
    fn nibbles(block: &[u8], mut f: impl FnMut(usize, f32)) {
        for (j, c) in block.iter().enumerate() {
            f(j, f32::from(c & 0x0F));
            f(HALF + j, f32::from(c >> 4));
        }
    }

    pub fn dot_u4(weights: &[f32], codes: &[u8]) -> f32 {
        let mut acc = [0f32; NIBBLE_BLOCK];
        for (w, block) in weights.chunks_exact(NIBBLE_BLOCK).zip(codes.chunks(HALF)) {
            nibbles(block, |at, c| acc[at] += w[at] * c);
        }
        acc.iter().sum()
    }

    pub fn l2_u4(residual: &[f32], steps: &[f32], codes: &[u8]) -> f32 {
        let mut acc = [0f32; NIBBLE_BLOCK];
        for ((r, s), block) in residual
            .chunks_exact(NIBBLE_BLOCK)
            .zip(steps.chunks_exact(NIBBLE_BLOCK))
            .zip(codes.chunks(HALF))
        {
            nibbles(block, |at, c| {
                let d = r[at] - s[at] * c;
                acc[at] += d * d;
            });
        }
        acc.iter().sum()
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

    /// Mask of the first `n` of 16 lanes (`n < 16`).
    #[inline(always)]
    fn mask16(n: usize) -> __mmask16 {
        ((1u32 << n) - 1) as __mmask16
    }

    /// 16 u8 codes at `p` as f32, the lanes of `mask` only (the others 0, never read).
    ///
    /// # Safety
    /// The CPU supports AVX-512 F, BW and VL; the lanes of `mask` are inside one allocation.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn codes16(p: *const u8, mask: __mmask16) -> __m512 {
        // SAFETY: masked-off lanes are not accessed (no fault); the caller bounds the others.
        _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(unsafe {
            _mm_maskz_loadu_epi8(mask, p.cast())
        }))
    }

    /// 16 two-byte floats at `p` as f32, the lanes of `mask` only (the others 0, never read).
    ///
    /// # Safety
    /// The CPU supports AVX-512 F, BW and VL; the lanes of `mask` are inside one allocation.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn halves16(format: super::HalfFloat, p: *const u8, mask: __mmask16) -> __m512 {
        // SAFETY: masked-off lanes are not accessed (no fault); the caller bounds the others.
        let bits = unsafe { _mm256_maskz_loadu_epi16(mask, p.cast()) };
        match format {
            super::HalfFloat::F16 => _mm512_cvtph_ps(bits),
            super::HalfFloat::Bf16 => {
                _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(bits)))
            }
        }
    }

    /// `Σ qᵢ·xᵢ` (or `Σ (qᵢ − xᵢ)²` when `L2`) of an f32 query and a row of 2-byte floats.
    ///
    /// # Safety
    /// The CPU supports AVX-512 F, BW and VL; `code.len() == 2 × query.len()`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub unsafe fn half_avx512<const L2: bool>(
        format: super::HalfFloat,
        query: &[f32],
        code: &[u8],
    ) -> f32 {
        let n = query.len().min(code.len() / 2);
        let (pq, pc) = (query.as_ptr(), code.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let step = |acc: __m512, q: __m512, x: __m512| {
            if L2 {
                let d = _mm512_sub_ps(q, x);
                _mm512_fmadd_ps(d, d, acc)
            } else {
                _mm512_fmadd_ps(q, x, acc)
            }
        };
        let mut i = 0;
        // SAFETY: full steps read 16 values at `i + 16 <= n`; the last step reads the `n − i`
        // values of its mask; all inside both slices.
        unsafe {
            while i + 32 <= n {
                acc0 = step(
                    acc0,
                    _mm512_loadu_ps(pq.add(i)),
                    halves16(format, pc.add(2 * i), !0),
                );
                acc1 = step(
                    acc1,
                    _mm512_loadu_ps(pq.add(i + 16)),
                    halves16(format, pc.add(2 * i + 32), !0),
                );
                i += 32;
            }
            if i + 16 <= n {
                acc0 = step(
                    acc0,
                    _mm512_loadu_ps(pq.add(i)),
                    halves16(format, pc.add(2 * i), !0),
                );
                i += 16;
            }
            if i < n {
                let m = mask16(n - i);
                let q = _mm512_maskz_loadu_ps(m, pq.add(i));
                acc1 = step(acc1, q, halves16(format, pc.add(2 * i), m));
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }

    /// # Safety
    /// The CPU supports AVX-512 F, BW and VL; `weights.len() == codes.len()`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub unsafe fn dot_u8_avx512(weights: &[f32], codes: &[u8]) -> f32 {
        let n = weights.len().min(codes.len());
        let (pw, pc) = (weights.as_ptr(), codes.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        // SAFETY: full steps read 16 lanes at `i + 16 <= n`; the last step reads the `n − i`
        // lanes of its mask; all inside both slices.
        unsafe {
            while i + 32 <= n {
                acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(pw.add(i)), codes16(pc.add(i), !0), acc0);
                acc1 = _mm512_fmadd_ps(
                    _mm512_loadu_ps(pw.add(i + 16)),
                    codes16(pc.add(i + 16), !0),
                    acc1,
                );
                i += 32;
            }
            if i + 16 <= n {
                acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(pw.add(i)), codes16(pc.add(i), !0), acc0);
                i += 16;
            }
            if i < n {
                let m = mask16(n - i);
                let w = _mm512_maskz_loadu_ps(m, pw.add(i));
                acc1 = _mm512_fmadd_ps(w, codes16(pc.add(i), m), acc1);
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }

    /// # Safety
    /// As [`dot_u8_avx512`], for three slices of one length.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub unsafe fn l2_u8_avx512(residual: &[f32], steps: &[f32], codes: &[u8]) -> f32 {
        let n = residual.len().min(steps.len()).min(codes.len());
        let (pr, ps, pc) = (residual.as_ptr(), steps.as_ptr(), codes.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        // SAFETY: as in `dot_u8_avx512`.
        unsafe {
            while i + 32 <= n {
                let d0 = _mm512_fnmadd_ps(
                    _mm512_loadu_ps(ps.add(i)),
                    codes16(pc.add(i), !0),
                    _mm512_loadu_ps(pr.add(i)),
                );
                let d1 = _mm512_fnmadd_ps(
                    _mm512_loadu_ps(ps.add(i + 16)),
                    codes16(pc.add(i + 16), !0),
                    _mm512_loadu_ps(pr.add(i + 16)),
                );
                acc0 = _mm512_fmadd_ps(d0, d0, acc0);
                acc1 = _mm512_fmadd_ps(d1, d1, acc1);
                i += 32;
            }
            if i + 16 <= n {
                let d = _mm512_fnmadd_ps(
                    _mm512_loadu_ps(ps.add(i)),
                    codes16(pc.add(i), !0),
                    _mm512_loadu_ps(pr.add(i)),
                );
                acc0 = _mm512_fmadd_ps(d, d, acc0);
                i += 16;
            }
            if i < n {
                let m = mask16(n - i);
                let d = _mm512_fnmadd_ps(
                    _mm512_maskz_loadu_ps(m, ps.add(i)),
                    codes16(pc.add(i), m),
                    _mm512_maskz_loadu_ps(m, pr.add(i)),
                );
                acc1 = _mm512_fmadd_ps(d, d, acc1);
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }

    /// # Safety
    /// The CPU supports AVX-512 F, BW, VL and VNNI; `weights.len() == codes.len()`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    pub unsafe fn dot_i8_u8_vnni(weights: &[i8], codes: &[u8]) -> i32 {
        let n = weights.len().min(codes.len());
        let (pw, pc) = (weights.as_ptr(), codes.as_ptr());
        let mut acc0 = _mm512_setzero_si512();
        let mut acc1 = _mm512_setzero_si512();
        let mut i = 0;
        // SAFETY: full steps read 64 bytes at `i + 64 <= n`; the last reads the `n − i` bytes
        // of its mask (masked-off bytes are not accessed); all inside both slices.
        unsafe {
            while i + 128 <= n {
                let c0 = _mm512_loadu_si512(pc.add(i).cast());
                let c1 = _mm512_loadu_si512(pc.add(i + 64).cast());
                acc0 = _mm512_dpbusd_epi32(acc0, c0, _mm512_loadu_si512(pw.add(i).cast()));
                acc1 = _mm512_dpbusd_epi32(acc1, c1, _mm512_loadu_si512(pw.add(i + 64).cast()));
                i += 128;
            }
            if i + 64 <= n {
                let c = _mm512_loadu_si512(pc.add(i).cast());
                acc0 = _mm512_dpbusd_epi32(acc0, c, _mm512_loadu_si512(pw.add(i).cast()));
                i += 64;
            }
            if i < n {
                let m: __mmask64 = (1u64 << (n - i)) - 1;
                let c = _mm512_maskz_loadu_epi8(m, pc.add(i).cast());
                let w = _mm512_maskz_loadu_epi8(m, pw.add(i));
                acc1 = _mm512_dpbusd_epi32(acc1, c, w);
            }
        }
        _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1))
    }

    /// AVX-512 BW without VNNI: widen both to i16, multiply and add pairs (`vpmaddwd`).
    ///
    /// # Safety
    /// The CPU supports AVX-512 F, BW and VL; `weights.len() == codes.len()`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub unsafe fn dot_i8_u8_avx512bw(weights: &[i8], codes: &[u8]) -> i32 {
        let n = weights.len().min(codes.len());
        let (pw, pc) = (weights.as_ptr(), codes.as_ptr());
        let mut acc = _mm512_setzero_si512();
        let mut i = 0;
        // SAFETY: full steps read 32 bytes at `i + 32 <= n`; the last reads the `n − i` bytes
        // of its mask; all inside both slices.
        unsafe {
            while i + 32 <= n {
                let c = _mm512_cvtepu8_epi16(_mm256_loadu_si256(pc.add(i).cast()));
                let w = _mm512_cvtepi8_epi16(_mm256_loadu_si256(pw.add(i).cast()));
                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(c, w));
                i += 32;
            }
            if i < n {
                let m: __mmask32 = (1u32 << (n - i)) - 1;
                let c = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, pc.add(i).cast()));
                let w = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, pw.add(i)));
                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(c, w));
            }
        }
        _mm512_reduce_add_epi32(acc)
    }

    /// AVX2: widen both to i16 and multiply-add pairs into i32 (`vpmaddwd`), 32 bytes a step;
    /// a plain loop for the last `n mod 16`. (`vpmaddubsw` would take the bytes as they are,
    /// but its i16 pair sums saturate: 2·255·127 > 32,767.)
    ///
    /// # Safety
    /// The CPU supports AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn dot_i8_u8_avx2(weights: &[i8], codes: &[u8]) -> i32 {
        let n = weights.len().min(codes.len());
        let (pw, pc) = (weights.as_ptr(), codes.as_ptr());
        let mut acc0 = _mm256_setzero_si256();
        let mut acc1 = _mm256_setzero_si256();
        let mut i = 0;
        // SAFETY: each step reads 32 (then 16) bytes at `i + 32 <= n` (`i + 16 <= n`): inside
        // both slices.
        unsafe {
            while i + 32 <= n {
                let c = _mm256_loadu_si256(pc.add(i).cast());
                let w = _mm256_loadu_si256(pw.add(i).cast());
                let c_low = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(c));
                let c_high = _mm256_cvtepu8_epi16(_mm256_extracti128_si256::<1>(c));
                let w_low = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(w));
                let w_high = _mm256_cvtepi8_epi16(_mm256_extracti128_si256::<1>(w));
                acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(c_low, w_low));
                acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(c_high, w_high));
                i += 32;
            }
            if i + 16 <= n {
                let c = _mm256_cvtepu8_epi16(_mm_loadu_si128(pc.add(i).cast()));
                let w = _mm256_cvtepi8_epi16(_mm_loadu_si128(pw.add(i).cast()));
                acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(c, w));
                i += 16;
            }
        }
        let acc = _mm256_add_epi32(acc0, acc1);
        let mut sum = _mm_add_epi32(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256::<1>(acc),
        );
        sum = _mm_add_epi32(sum, _mm_shuffle_epi32::<0b01_00_11_10>(sum));
        sum = _mm_add_epi32(sum, _mm_shuffle_epi32::<0b10_11_00_01>(sum));
        _mm_cvtsi128_si32(sum).wrapping_add(super::plain::dot_i8_u8(&weights[i..], &codes[i..]))
    }

    /// The low and high nibbles of 16 code bytes at `p` as f32 (the bytes of `mask` only).
    ///
    /// # Safety
    /// As [`codes16`].
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn nibbles16(p: *const u8, mask: __mmask16) -> (__m512, __m512) {
        // SAFETY: as in `codes16`.
        let bytes = _mm512_cvtepu8_epi32(unsafe { _mm_maskz_loadu_epi8(mask, p.cast()) });
        (
            _mm512_cvtepi32_ps(_mm512_and_si512(bytes, _mm512_set1_epi32(0x0F))),
            _mm512_cvtepi32_ps(_mm512_srli_epi32::<4>(bytes)),
        )
    }

    /// # Safety
    /// The CPU supports AVX-512 F, BW and VL; `weights` holds 32 values for every 16 bytes of
    /// `codes` (a partial last group included).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub unsafe fn dot_u4_avx512(weights: &[f32], codes: &[u8]) -> f32 {
        let n = codes.len();
        let (pw, pc) = (weights.as_ptr(), codes.as_ptr());
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: a block at byte `i` (a multiple of 16) reads 16 code bytes (or the `n − i` of
        // its mask) and the 32 weights at `2i`, inside both slices by the contract.
        unsafe {
            let block = |i: usize, mask: __mmask16, acc: &mut [__m512]| {
                let (lo, hi) = nibbles16(pc.add(i), mask);
                acc[0] = _mm512_fmadd_ps(_mm512_loadu_ps(pw.add(2 * i)), lo, acc[0]);
                acc[1] = _mm512_fmadd_ps(_mm512_loadu_ps(pw.add(2 * i + 16)), hi, acc[1]);
            };
            while i + 32 <= n {
                block(i, !0, &mut acc[..2]);
                block(i + 16, !0, &mut acc[2..]);
                i += 32;
            }
            if i + 16 <= n {
                block(i, !0, &mut acc[..2]);
                i += 16;
            }
            if i < n {
                block(i, mask16(n - i), &mut acc[2..]);
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(
            _mm512_add_ps(acc[0], acc[1]),
            _mm512_add_ps(acc[2], acc[3]),
        ))
    }

    /// # Safety
    /// As [`dot_u4_avx512`], for `residual` and `steps`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub unsafe fn l2_u4_avx512(residual: &[f32], steps: &[f32], codes: &[u8]) -> f32 {
        let n = codes.len();
        let (pr, ps, pc) = (residual.as_ptr(), steps.as_ptr(), codes.as_ptr());
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: as in `dot_u4_avx512`.
        unsafe {
            let block = |i: usize, mask: __mmask16, acc: &mut [__m512]| {
                let (lo, hi) = nibbles16(pc.add(i), mask);
                let d0 = _mm512_fnmadd_ps(
                    _mm512_loadu_ps(ps.add(2 * i)),
                    lo,
                    _mm512_loadu_ps(pr.add(2 * i)),
                );
                let d1 = _mm512_fnmadd_ps(
                    _mm512_loadu_ps(ps.add(2 * i + 16)),
                    hi,
                    _mm512_loadu_ps(pr.add(2 * i + 16)),
                );
                acc[0] = _mm512_fmadd_ps(d0, d0, acc[0]);
                acc[1] = _mm512_fmadd_ps(d1, d1, acc[1]);
            };
            while i + 32 <= n {
                block(i, !0, &mut acc[..2]);
                block(i + 16, !0, &mut acc[2..]);
                i += 32;
            }
            if i + 16 <= n {
                block(i, !0, &mut acc[..2]);
                i += 16;
            }
            if i < n {
                block(i, mask16(n - i), &mut acc[2..]);
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(
            _mm512_add_ps(acc[0], acc[1]),
            _mm512_add_ps(acc[2], acc[3]),
        ))
    }

    /// 8 two-byte floats at `p` as f32.
    ///
    /// # Safety
    /// The CPU supports AVX2 and F16C; `p` points at 16 readable bytes.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn halves8(format: super::HalfFloat, p: *const u8) -> __m256 {
        // SAFETY: the caller's.
        let bits = unsafe { _mm_loadu_si128(p.cast()) };
        match format {
            super::HalfFloat::F16 => _mm256_cvtph_ps(bits),
            super::HalfFloat::Bf16 => {
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(bits)))
            }
        }
    }

    /// `Σ qᵢ·xᵢ` (or `Σ (qᵢ − xᵢ)²` when `L2`) of an f32 query and a row of 2-byte floats,
    /// 8 values a step with two accumulators; a plain loop for the last `n mod 8`.
    ///
    /// # Safety
    /// The CPU supports AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn half_avx2<const L2: bool>(
        format: super::HalfFloat,
        query: &[f32],
        code: &[u8],
    ) -> f32 {
        let n = query.len().min(code.len() / 2);
        let (pq, pc) = (query.as_ptr(), code.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 2];
        let step = |acc: __m256, q: __m256, x: __m256| {
            if L2 {
                let d = _mm256_sub_ps(q, x);
                _mm256_fmadd_ps(d, d, acc)
            } else {
                _mm256_fmadd_ps(q, x, acc)
            }
        };
        let mut i = 0;
        // SAFETY: a step at `i + 8 <= n` reads 8 query values and 16 code bytes at `2i`,
        // inside both slices.
        unsafe {
            while i + 8 <= n {
                let lane = (i / 8) % 2;
                acc[lane] = step(acc[lane], _mm256_loadu_ps(pq.add(i)), halves8(format, pc.add(2 * i)));
                i += 8;
            }
            let tail = if L2 {
                super::plain::half(format, &query[i..n], &code[2 * i..2 * n], |q, x| (q - x) * (q - x))
            } else {
                super::plain::half(format, &query[i..n], &code[2 * i..2 * n], |q, x| q * x)
            };
            hsum256(_mm256_add_ps(acc[0], acc[1])) + tail
        }
    }

    /// 8 code bytes at `p` as f32.
    ///
    /// # Safety
    /// The CPU supports AVX2; `p` points at 8 readable bytes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn codes8(p: *const u8) -> __m256 {
        // SAFETY: the caller's.
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(unsafe { _mm_loadl_epi64(p.cast()) }))
    }

    /// AVX2 + FMA: 8 codes a step, two accumulators; a plain loop for the last `n mod 8`.
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_u8_avx2(weights: &[f32], codes: &[u8]) -> f32 {
        let n = weights.len().min(codes.len());
        let (pw, pc) = (weights.as_ptr(), codes.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: each step reads 8 values at `i + 8 <= n` (16 at `i + 16 <= n`) of both slices.
        unsafe {
            while i + 16 <= n {
                acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(i)), codes8(pc.add(i)), acc0);
                acc1 =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(i + 8)), codes8(pc.add(i + 8)), acc1);
                i += 16;
            }
            if i + 8 <= n {
                acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(i)), codes8(pc.add(i)), acc0);
                i += 8;
            }
            hsum256(_mm256_add_ps(acc0, acc1))
                + super::plain::dot_u8(&weights[i..n], &codes[i..n])
        }
    }

    /// # Safety
    /// As [`dot_u8_avx2`], for three slices of one length.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn l2_u8_avx2(residual: &[f32], steps: &[f32], codes: &[u8]) -> f32 {
        let n = residual.len().min(steps.len()).min(codes.len());
        let (pr, ps, pc) = (residual.as_ptr(), steps.as_ptr(), codes.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: as in `dot_u8_avx2`.
        unsafe {
            let diff = |i: usize| {
                _mm256_fnmadd_ps(
                    _mm256_loadu_ps(ps.add(i)),
                    codes8(pc.add(i)),
                    _mm256_loadu_ps(pr.add(i)),
                )
            };
            while i + 16 <= n {
                let (d0, d1) = (diff(i), diff(i + 8));
                acc0 = _mm256_fmadd_ps(d0, d0, acc0);
                acc1 = _mm256_fmadd_ps(d1, d1, acc1);
                i += 16;
            }
            if i + 8 <= n {
                let d = diff(i);
                acc0 = _mm256_fmadd_ps(d, d, acc0);
                i += 8;
            }
            hsum256(_mm256_add_ps(acc0, acc1))
                + super::plain::l2_u8(&residual[i..n], &steps[i..n], &codes[i..n])
        }
    }

    /// The low and high nibbles of the 16 code bytes at `p`, as four vectors of 8 f32: low
    /// nibbles of bytes 0–7, 8–15, then high nibbles of bytes 0–7, 8–15 (the nibble-split order).
    ///
    /// # Safety
    /// The CPU supports AVX2; `p` points at 16 readable bytes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn nibbles32(p: *const u8) -> [__m256; 4] {
        // SAFETY: the caller's.
        let bytes = unsafe { _mm_loadu_si128(p.cast()) };
        let low = _mm_and_si128(bytes, _mm_set1_epi8(0x0F));
        let high = _mm_and_si128(_mm_srli_epi16::<4>(bytes), _mm_set1_epi8(0x0F));
        let floats = |v: __m128i| _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
        [
            floats(low),
            floats(_mm_srli_si128::<8>(low)),
            floats(high),
            floats(_mm_srli_si128::<8>(high)),
        ]
    }

    /// 16 code bytes from `codes` at `i`: a zero-padded copy when fewer remain.
    ///
    /// # Safety
    /// The CPU supports AVX2; `i < codes.len()`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn nibble_block(codes: &[u8], i: usize) -> [__m256; 4] {
        if i + 16 <= codes.len() {
            // SAFETY: 16 bytes at `i` are inside `codes`.
            unsafe { nibbles32(codes.as_ptr().add(i)) }
        } else {
            let mut padded = [0u8; 16];
            padded[..codes.len() - i].copy_from_slice(&codes[i..]);
            // SAFETY: `padded` holds 16 bytes.
            unsafe { nibbles32(padded.as_ptr()) }
        }
    }

    /// AVX2 + FMA: a block of 16 code bytes (32 dimensions) a step; a partial last block is
    /// read through a zero-padded copy (its weights are there, zero past the last dimension).
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA; `weights` holds 32 values for every 16 bytes of `codes`
    /// (a partial last group included).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_u4_avx2(weights: &[f32], codes: &[u8]) -> f32 {
        let pw = weights.as_ptr();
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: the block at byte `i` reads the 32 weights at `2i`, inside `weights` by the
        // contract, and its code bytes through `nibble_block`.
        unsafe {
            while i < codes.len() {
                let nibbles = nibble_block(codes, i);
                for (lane, (a, x)) in acc.iter_mut().zip(nibbles).enumerate() {
                    *a = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(2 * i + 8 * lane)), x, *a);
                }
                i += 16;
            }
            hsum256(_mm256_add_ps(
                _mm256_add_ps(acc[0], acc[1]),
                _mm256_add_ps(acc[2], acc[3]),
            ))
        }
    }

    /// # Safety
    /// As [`dot_u4_avx2`], for `residual` and `steps`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn l2_u4_avx2(residual: &[f32], steps: &[f32], codes: &[u8]) -> f32 {
        let (pr, ps) = (residual.as_ptr(), steps.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: as in `dot_u4_avx2`, for both `residual` and `steps`.
        unsafe {
            while i < codes.len() {
                let nibbles = nibble_block(codes, i);
                for (lane, (a, x)) in acc.iter_mut().zip(nibbles).enumerate() {
                    let at = 2 * i + 8 * lane;
                    let d = _mm256_fnmadd_ps(_mm256_loadu_ps(ps.add(at)), x, _mm256_loadu_ps(pr.add(at)));
                    *a = _mm256_fmadd_ps(d, d, *a);
                }
                i += 16;
            }
            hsum256(_mm256_add_ps(
                _mm256_add_ps(acc[0], acc[1]),
                _mm256_add_ps(acc[2], acc[3]),
            ))
        }
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

    #[test]
    fn integer_dot_products_are_exact_at_every_level() {
        for level in SimdLevel::available() {
            for kernel in [RowKernel::new(level), RowKernel::new(level).without_vnni()] {
                for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 47, 64, 100, 129, 784] {
                    // The extremes (255 × −128) and a spread of values in between.
                    let codes: Vec<u8> = (0..len).map(|i| (i * 97 % 256) as u8).collect();
                    let weights: Vec<i8> =
                        (0..len).map(|i| (i * 61 % 256) as u8 as i8).collect();
                    let exact: i64 = codes
                        .iter()
                        .zip(&weights)
                        .map(|(c, w)| i64::from(*c) * i64::from(*w))
                        .sum();
                    assert_eq!(
                        i64::from(kernel.dot_i8_u8(&weights, &codes)),
                        exact,
                        "{kernel:?} ({:?}), {len} terms",
                        kernel.i8_code_path()
                    );
                    let (top, low) = (vec![255u8; len], vec![-128i8; len]);
                    assert_eq!(
                        i64::from(kernel.dot_i8_u8(&low, &top)),
                        -255 * 128 * len as i64,
                        "{kernel:?}, {len} extreme terms"
                    );
                }
            }
        }
    }

    #[test]
    fn half_float_kernels_match_plain_loops() {
        let fast = RowKernel::default();
        let mut seed = 0x9E37_79B9u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed as f32 / u32::MAX as f32) * 4.0 - 2.0
        };
        for len in [1usize, 15, 16, 17, 31, 32, 33, 100, 129, 784] {
            let query: Vec<f32> = (0..len).map(|_| next()).collect();
            for format in [HalfFloat::F16, HalfFloat::Bf16] {
                let code: Vec<u8> = (0..len)
                    .flat_map(|_| {
                        let x = next();
                        let bits = match format {
                            HalfFloat::F16 => half::f16::from_f32(x).to_bits(),
                            HalfFloat::Bf16 => half::bf16::from_f32(x).to_bits(),
                        };
                        bits.to_le_bytes()
                    })
                    .collect();
                let values: Vec<f64> = code
                    .chunks_exact(2)
                    .map(|b| f64::from(format.to_f32(u16::from_le_bytes([b[0], b[1]]))))
                    .collect();
                let dot: f64 = query
                    .iter()
                    .zip(&values)
                    .map(|(q, x)| f64::from(*q) * x)
                    .sum();
                let l2: f64 = query
                    .iter()
                    .zip(&values)
                    .map(|(q, x)| (f64::from(*q) - x).powi(2))
                    .sum();
                for kernel in SimdLevel::available()
                    .into_iter()
                    .map(RowKernel::new)
                    .chain([fast])
                {
                    let got_dot = f64::from(kernel.dot_half(format, &query, &code));
                    let got_l2 = f64::from(kernel.l2_half(format, &query, &code));
                    assert!(
                        (got_dot - dot).abs() <= 1e-4 * (len as f64),
                        "{format:?} {len} dot"
                    );
                    assert!(
                        (got_l2 - l2).abs() <= 1e-4 * l2.max(1.0),
                        "{format:?} {len} l2"
                    );
                }
            }
        }
    }
    use crate::Metric;

    /// Every kernel this CPU can run: each level, and AVX-512 with and without VNNI.
    fn kernels() -> Vec<RowKernel> {
        SimdLevel::available()
            .into_iter()
            .flat_map(|level| [RowKernel::new(level), RowKernel::new(level).without_vnni()])
            .collect()
    }

    #[test]
    fn u8_code_kernels_match_plain_loops() {
        for len in [
            1, 15, 16, 17, 31, 33, 48, 63, 64, 65, 100, 112, 127, 129, 784, 785,
        ] {
            let weights: Vec<f32> = (0..len)
                .map(|i| ((i * 37) % 11) as f32 * 0.25 - 1.0)
                .collect();
            let steps: Vec<f32> = (0..len).map(|i| 0.01 + (i % 5) as f32 * 0.003).collect();
            let codes: Vec<u8> = (0..len).map(|i| (i * 97 % 256) as u8).collect();
            let small: Vec<i8> = (0..len).map(|i| (i * 53 % 256) as u8 as i8).collect();
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
            let exact: i64 = small
                .iter()
                .zip(&codes)
                .map(|(w, c)| i64::from(*w) * i64::from(*c))
                .sum();
            for kernel in kernels() {
                assert!(
                    (f64::from(kernel.dot_u8(&weights, &codes)) - dot).abs()
                        <= 1e-4 * dot.abs().max(1.0),
                    "{kernel:?} dot {len}"
                );
                assert!(
                    (f64::from(kernel.l2_u8(&weights, &steps, &codes)) - l2).abs()
                        <= 1e-4 * l2.max(1.0),
                    "{kernel:?} l2 {len}"
                );
                assert_eq!(
                    i64::from(kernel.dot_i8_u8(&small, &codes)),
                    exact,
                    "{kernel:?} i8·u8 {len}"
                );
            }
        }
    }

    #[test]
    fn i8_u8_dot_is_exact_at_the_extremes() {
        for len in [1, 63, 64, 65, 100, 1000] {
            let codes = vec![255u8; len];
            for w in [-128i8, 127] {
                let weights = vec![w; len];
                for kernel in kernels() {
                    assert_eq!(
                        kernel.dot_i8_u8(&weights, &codes),
                        i32::from(w) * 255 * len as i32,
                        "{kernel:?} {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn nibble_split_orders_even_then_odd_dimensions_per_block() {
        let values: Vec<f32> = (0..35).map(|d| d as f32).collect();
        let split = nibble_split(&values);
        assert_eq!(split.len(), 64);
        assert_eq!(&split[..3], &[0.0, 2.0, 4.0]);
        assert_eq!(&split[16..19], &[1.0, 3.0, 5.0]);
        assert_eq!(&split[32..35], &[32.0, 34.0, 0.0]);
        assert_eq!(split[48], 33.0);
        assert!(split[49..].iter().all(|x| *x == 0.0));
    }

    #[test]
    fn u4_code_kernels_match_plain_loops() {
        for dim in [1usize, 2, 15, 17, 31, 32, 33, 65, 100, 129, 784] {
            let weights: Vec<f32> = (0..dim)
                .map(|i| ((i * 37) % 11) as f32 * 0.25 - 1.0)
                .collect();
            let steps: Vec<f32> = (0..dim).map(|i| 0.05 + (i % 5) as f32 * 0.01).collect();
            let levels: Vec<u8> = (0..dim).map(|i| (i * 7 % 16) as u8).collect();
            let mut codes = vec![0u8; dim.div_ceil(2)];
            for (d, c) in levels.iter().enumerate() {
                codes[d / 2] |= c << (4 * (d % 2));
            }
            let dot: f64 = weights
                .iter()
                .zip(&levels)
                .map(|(w, c)| f64::from(*w) * f64::from(*c))
                .sum();
            let l2: f64 = weights
                .iter()
                .zip(&steps)
                .zip(&levels)
                .map(|((r, s), c)| (f64::from(*r) - f64::from(*s) * f64::from(*c)).powi(2))
                .sum();
            let (w, s) = (nibble_split(&weights), nibble_split(&steps));
            for kernel in kernels() {
                assert!(
                    (f64::from(kernel.dot_u4(&w, &codes)) - dot).abs() <= 1e-4 * dot.abs().max(1.0),
                    "{kernel:?} dot {dim}"
                );
                assert!(
                    (f64::from(kernel.l2_u4(&w, &s, &codes)) - l2).abs() <= 1e-4 * l2.max(1.0),
                    "{kernel:?} l2 {dim}"
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
