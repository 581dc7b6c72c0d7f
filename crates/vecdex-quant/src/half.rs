//! f16 and bf16 storage: two bytes per dimension, the query stays f32 and each code is widened
//! to f32 in SIMD registers as it is scored (`RowKernel::dot_half` / `l2_half`).

use half::{bf16, f16};
use vecdex_distance::{HalfFloat, Metric, RowKernel};

use crate::codec::{check_metric, Codec, QuantError};

macro_rules! half_codec {
    ($name:ident, $half:ty, $format:expr, $what:literal) => {
        #[doc = concat!("Stores each value as ", $what, " (little-endian); nothing to train.")]
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            dim: usize,
            metric: Metric,
            kernel: RowKernel,
        }

        impl $name {
            pub fn new(dim: usize, metric: Metric) -> Result<Self, QuantError> {
                check_metric(metric, $what)?;
                if dim == 0 {
                    return Err(QuantError::new(concat!(
                        $what,
                        ": dimensions must be at least 1"
                    )));
                }
                Ok($name {
                    dim,
                    metric,
                    kernel: RowKernel::default(),
                })
            }

            #[inline]
            fn value(code: &[u8], i: usize) -> f32 {
                <$half>::from_bits(u16::from_le_bytes([code[2 * i], code[2 * i + 1]])).to_f32()
            }
        }

        impl Codec for $name {
            type Query = Vec<f32>;

            fn dim(&self) -> usize {
                self.dim
            }

            fn metric(&self) -> Metric {
                self.metric
            }

            fn code_size(&self) -> usize {
                2 * self.dim
            }

            fn encode(&self, vector: &[f32], code: &mut [u8]) {
                for (bytes, x) in code.chunks_exact_mut(2).zip(vector) {
                    bytes.copy_from_slice(&<$half>::from_f32(*x).to_bits().to_le_bytes());
                }
            }

            fn decode(&self, code: &[u8], out: &mut [f32]) {
                for (i, x) in out.iter_mut().enumerate().take(self.dim) {
                    *x = Self::value(code, i);
                }
            }

            fn prepare(&self, query: &[f32]) -> Vec<f32> {
                query.to_vec()
            }

            #[inline]
            fn score(&self, query: &Vec<f32>, code: &[u8]) -> f32 {
                match self.metric {
                    Metric::L2sq => self.kernel.l2_half($format, query, code),
                    _ => 1.0 - self.kernel.dot_half($format, query, code),
                }
            }
        }
    };
}

half_codec!(F16Codec, f16, HalfFloat::F16, "f16");
half_codec!(Bf16Codec, bf16, HalfFloat::Bf16, "bf16");
