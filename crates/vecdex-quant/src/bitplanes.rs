//! A query quantized to 4 bits per dimension and held as bit planes, so that its sum over the
//! set bits of a code (one bit per dimension) costs five popcounts per 64 dimensions:
//! `Σ_{b_i = 1} v_i ≈ lower·popcount(b) + step·Σ_j 2^j·popcount(b ∧ plane_j)`. RaBitQ
//! quantizes its rotated query this way (Gao & Long, SIGMOD 2024, §3.3); the binary codec its
//! per-dimension weights. The rounding is randomised (unbiased) with a fixed seed, so a query
//! scores the same on every call.

use crate::kmeans::SeededRng;

/// Bits per dimension: the paper's `B_q = 4`. Measured on GloVe 100k with RaBitQ (one thread,
/// oversample 10), against the query kept in f32: flat recall@10 0.783 against 0.795 at 8–12×
/// the QPS. Six bits gave 0.793 at 0.82× the QPS of four in a flat scan, and the same QPS in an
/// HNSW walk (recall 0.802 against 0.788): raising `oversample` buys recall more cheaply.
pub(crate) const PLANES: usize = 4;

/// Largest level, `2^PLANES − 1`.
const TOP_LEVEL: f32 = ((1 << PLANES) - 1) as f32;

/// Seed of the randomised rounding.
const ROUNDING_SEED: u64 = 0x5EED_0F0B_1750_0DE5;

#[derive(Debug, Clone)]
pub(crate) struct BitPlanes {
    /// `PLANES` words per 64 dimensions, word-major: `planes[w·4 + j]` holds bit `j` of the
    /// levels of dimensions `64w .. 64w + 63` (zero past the last dimension).
    planes: Vec<u64>,
    /// The value of level 0, and the width of one level (`Δ`).
    lower: f32,
    step: f32,
    /// `Σ_i v̄_i`: the sum of the quantized values over every dimension.
    total: f32,
    /// The bits of the last word that are dimensions.
    last_word_mask: u64,
}

impl BitPlanes {
    /// `values` quantized to `lower + step·level`, `level` in `0..=15`.
    pub(crate) fn quantize(values: &[f32]) -> Self {
        let (lower, step) = if values.is_empty() {
            (0.0, 0.0)
        } else {
            let lower = values.iter().copied().fold(f32::INFINITY, f32::min);
            let upper = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            (lower, (upper - lower) / TOP_LEVEL)
        };
        let mut planes = vec![0u64; values.len().div_ceil(64) * PLANES];
        let mut rounding = SeededRng::new(ROUNDING_SEED);
        let mut level_sum = 0u64;
        for (i, v) in values.iter().enumerate() {
            let level = if step > 0.0 {
                ((v - lower) / step + rounding.unit() as f32)
                    .floor()
                    .clamp(0.0, TOP_LEVEL) as u32
            } else {
                0
            };
            level_sum += u64::from(level);
            for (j, plane) in planes[(i / 64) * PLANES..][..PLANES].iter_mut().enumerate() {
                *plane |= u64::from((level >> j) & 1) << (i % 64);
            }
        }
        BitPlanes {
            planes,
            lower,
            step,
            total: values.len() as f32 * lower + step * level_sum as f32,
            last_word_mask: match values.len() % 64 {
                0 => u64::MAX,
                tail => (1u64 << tail) - 1,
            },
        }
    }

    /// The quantized values, one per dimension (for tests of the callers' formulas).
    #[cfg(test)]
    pub(crate) fn quantized(&self) -> Vec<f32> {
        let words = self.planes.len() / PLANES;
        let dimensions = match words {
            0 => 0,
            _ => (words - 1) * 64 + self.last_word_mask.count_ones() as usize,
        };
        (0..dimensions)
            .map(|i| {
                let word = &self.planes[(i / 64) * PLANES..][..PLANES];
                let level: u32 = (0..PLANES)
                    .map(|j| (((word[j] >> (i % 64)) & 1) as u32) << j)
                    .sum();
                self.lower + self.step * level as f32
            })
            .collect()
    }

    /// Width of one level: the rounding error of each value is below it (and its variance at
    /// most `step²/4`).
    pub(crate) fn step(&self) -> f32 {
        self.step
    }

    /// `Σ_i v̄_i` over every dimension.
    pub(crate) fn total(&self) -> f32 {
        self.total
    }

    /// `Σ_{b_i = 1} v̄_i` for the bits `bits` (`⌈dim/8⌉` bytes, zero past the last dimension).
    /// Inlined into each caller, so the popcounts compile to whatever instruction the
    /// caller's target features allow.
    #[inline(always)]
    pub(crate) fn selected_sum(&self, bits: &[u8]) -> f32 {
        let (mut weighted, mut count) = (0u32, 0u32);
        let words = self.planes.len() / PLANES;
        for (w, planes) in self.planes.chunks_exact(PLANES).enumerate() {
            let mut word = word_at(bits, w);
            if w + 1 == words {
                // Bits past the last dimension are zero in a well-formed code; a damaged one
                // must not count them.
                word &= self.last_word_mask;
            }
            count += word.count_ones();
            for (j, plane) in planes.iter().enumerate() {
                weighted += (word & plane).count_ones() << j;
            }
        }
        self.lower * count as f32 + self.step * weighted as f32
    }
}

/// Bytes `8w .. 8w + 8` of `bits` as a little-endian word, zero past its end.
#[inline(always)]
fn word_at(bits: &[u8], w: usize) -> u64 {
    let start = 8 * w;
    if let Some(bytes) = bits.get(start..start + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes);
        return u64::from_le_bytes(word);
    }
    let len = bits.len();
    if len >= 8 {
        // The last 8 bytes, shifted down so the word starts at byte `start`.
        let mut word = [0u8; 8];
        word.copy_from_slice(&bits[len - 8..]);
        u64::from_le_bytes(word) >> (8 * (start + 8 - len))
    } else {
        bits.iter()
            .skip(start)
            .enumerate()
            .fold(0u64, |word, (i, b)| word | (u64::from(*b) << (8 * i)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selected_sums_match_a_per_dimension_evaluation() {
        let mut rng = SeededRng::new(3);
        for dim in [1usize, 7, 8, 9, 63, 64, 65, 100, 129, 513] {
            let values: Vec<f32> = (0..dim).map(|_| (rng.unit() * 4.0 - 1.0) as f32).collect();
            let planes = BitPlanes::quantize(&values);
            let level = |i: usize| -> f32 {
                let word = &planes.planes[(i / 64) * PLANES..][..PLANES];
                (0..PLANES)
                    .map(|j| (((word[j] >> (i % 64)) & 1) << j) as f32)
                    .sum()
            };
            let quantized: Vec<f32> = (0..dim)
                .map(|i| planes.lower + planes.step * level(i))
                .collect();
            for (v, q) in values.iter().zip(&quantized) {
                assert!((v - q).abs() <= planes.step * 1.0001, "d {dim}: {v} as {q}");
            }
            let total: f32 = quantized.iter().sum();
            assert!(
                (planes.total() - total).abs() <= 1e-4 * (1.0 + total.abs()),
                "d {dim}"
            );
            for pattern in 0..5u64 {
                let mut bits = vec![0u8; dim.div_ceil(8)];
                let mut selected = 0f32;
                for (i, q) in quantized.iter().enumerate() {
                    if (i as u64 * 7 + pattern * 13) % 5 < 2 {
                        bits[i / 8] |= 1 << (i % 8);
                        selected += q;
                    }
                }
                let got = planes.selected_sum(&bits);
                assert!(
                    (got - selected).abs() <= 1e-4 * (1.0 + selected.abs()),
                    "d {dim}, pattern {pattern}: {got} vs {selected}"
                );
            }
        }
    }

    #[test]
    fn rounding_is_unbiased() {
        // The same value in every dimension, 3.3 levels up: rounding to the nearest level
        // would give 0.3 for every one; randomised rounding's mean converges to 0.33.
        let mut values = vec![0.33f32; 4096];
        values[0] = 0.0;
        values[1] = 1.5;
        let planes = BitPlanes::quantize(&values);
        let mean = (planes.total() - 1.5 - 0.33) / 4094.0;
        assert!((mean - 0.33).abs() < 0.003, "mean {mean}");
    }

    #[test]
    fn constant_and_empty_values_quantize_exactly() {
        let planes = BitPlanes::quantize(&[2.5; 70]);
        assert_eq!(planes.step(), 0.0);
        assert_eq!(planes.total(), 2.5 * 70.0);
        let mut all = [0xFF; 9];
        assert_eq!(
            planes.selected_sum(&all),
            2.5 * 70.0,
            "bits past the last dimension"
        );
        all[8] = 0x3F; // dimensions 64..70
        assert_eq!(planes.selected_sum(&all), 2.5 * 70.0);
        let empty = BitPlanes::quantize(&[]);
        assert_eq!((empty.total(), empty.selected_sum(&[])), (0.0, 0.0));
    }
}
