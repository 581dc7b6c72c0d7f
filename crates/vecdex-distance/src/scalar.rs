//! Plain scalar kernels: the test oracle for every SIMD path, and the fallback where a CPU
//! offers no SIMD. Accumulation is in f64 so the oracle is more precise than what it checks.

use crate::metric::Metric;

/// Anything the oracle can read as a real number.
pub trait AsF64: Copy {
    fn as_f64(self) -> f64;
}

impl AsF64 for f32 {
    fn as_f64(self) -> f64 {
        f64::from(self)
    }
}

impl AsF64 for i8 {
    fn as_f64(self) -> f64 {
        f64::from(self)
    }
}

impl AsF64 for simsimd::f16 {
    fn as_f64(self) -> f64 {
        f64::from(f16_bits_to_f32(self.0))
    }
}

impl AsF64 for simsimd::bf16 {
    fn as_f64(self) -> f64 {
        f64::from(bf16_bits_to_f32(self.0))
    }
}

/// IEEE binary16 bits to f32, written out so the oracle does not share code with the kernels.
pub fn f16_bits_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exponent = u32::from((bits >> 10) & 0x1f);
    let mantissa = u32::from(bits & 0x3ff);
    let magnitude = match (exponent, mantissa) {
        (0, 0) => 0,
        (0, m) => {
            // Subnormal: m · 2^-24, exact in f32.
            let value = m as f32 * 2f32.powi(-24);
            return if sign != 0 { -value } else { value };
        }
        (0x1f, 0) => 0xff << 23,
        (0x1f, m) => (0xff << 23) | (m << 13),
        (e, m) => ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(sign | magnitude)
}

/// bfloat16 bits to f32: the bits are the top half of an f32.
pub fn bf16_bits_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

fn dot<T: AsF64>(a: &[T], b: &[T]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x.as_f64() * y.as_f64()).sum()
}

fn norm_sq<T: AsF64>(a: &[T]) -> f64 {
    a.iter().map(|x| x.as_f64() * x.as_f64()).sum()
}

/// The spatial distance of `a` and `b` under `metric` (not hamming), or `None` for cosine with a
/// zero vector. Panics on unequal lengths: callers check them.
pub fn spatial<T: AsF64>(metric: Metric, a: &[T], b: &[T]) -> Option<f64> {
    assert_eq!(a.len(), b.len(), "oracle called with unequal lengths");
    match metric {
        Metric::Cosine => {
            let (na, nb) = (norm_sq(a), norm_sq(b));
            if na == 0.0 || nb == 0.0 {
                return None;
            }
            Some(1.0 - dot(a, b) / (na.sqrt() * nb.sqrt()))
        }
        Metric::Dot => Some(1.0 - dot(a, b)),
        Metric::L2sq => Some(
            a.iter()
                .zip(b)
                .map(|(x, y)| {
                    let d = x.as_f64() - y.as_f64();
                    d * d
                })
                .sum(),
        ),
        Metric::Hamming => None,
    }
}

/// Number of differing bits of two packed bit strings.
pub fn hamming(a: &[u8], b: &[u8]) -> u64 {
    assert_eq!(a.len(), b.len(), "oracle called with unequal lengths");
    a.iter()
        .zip(b)
        .map(|(x, y)| u64::from((x ^ y).count_ones()))
        .sum()
}
