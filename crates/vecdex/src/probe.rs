//! Machine probes for benchmark reports: the memory read bandwidth that bounds a single-query
//! exact scan, measured in the same process and run as the search it is compared with.

use rayon::prelude::*;

use crate::error::Result;
use crate::threads;

/// Bytes per second read by summing `bytes` of memory split over `parallelism` pool threads,
/// best of `repeats` passes. The buffer is written first so every page is resident. Each thread
/// reads its part as several sequential streams at once (see `sum_avx512`).
pub fn read_bandwidth(bytes: usize, parallelism: usize, repeats: usize) -> Result<f64> {
    let words = (bytes / 8).max(1 << 16);
    let data: Vec<u64> = (0..words as u64).collect();
    let parts = parallelism.max(1);
    let chunk = words.div_ceil(parts);
    let mut best = 0f64;
    for _ in 0..repeats.max(1) {
        let start = std::time::Instant::now();
        let sum: u64 = threads::run(|| {
            Ok(data
                .par_chunks(chunk)
                .map(sum_words)
                .reduce(|| 0, u64::wrapping_add))
        })?;
        let seconds = start.elapsed().as_secs_f64();
        std::hint::black_box(sum);
        best = best.max((words * 8) as f64 / seconds);
    }
    Ok(best)
}

/// Sums with the widest loads this CPU has, so the probe is bound by memory, not by the adds
/// (a scalar loop would understate the bandwidth a SIMD scan can use).
fn sum_words(words: &[u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F is present (checked just above).
            return unsafe { x86::sum_avx512(words) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is present (checked just above).
            return unsafe { x86::sum_avx2(words) };
        }
    }
    sum_scalar(words)
}

fn sum_scalar(words: &[u64]) -> u64 {
    let mut acc = [0u64; 4];
    let mut quads = words.chunks_exact(4);
    for q in &mut quads {
        for (a, w) in acc.iter_mut().zip(q) {
            *a = a.wrapping_add(*w);
        }
    }
    let tail: u64 = quads.remainder().iter().fold(0, |s, w| s.wrapping_add(*w));
    acc.iter().fold(tail, |s, a| s.wrapping_add(*a))
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn sum_avx512(words: &[u64]) -> u64 {
        let mut acc = [_mm512_setzero_si512(); 4];
        let mut blocks = words.chunks_exact(32);
        for block in &mut blocks {
            for (i, a) in acc.iter_mut().enumerate() {
                // SAFETY: the block holds 32 words; lane group i reads words 8i..8i+8.
                let v = unsafe { _mm512_loadu_si512(block.as_ptr().add(8 * i).cast()) };
                *a = _mm512_add_epi64(*a, v);
            }
        }
        let total = _mm512_add_epi64(
            _mm512_add_epi64(acc[0], acc[1]),
            _mm512_add_epi64(acc[2], acc[3]),
        );
        let tail = super::sum_scalar(blocks.remainder());
        tail.wrapping_add(_mm512_reduce_add_epi64(total) as u64)
    }

    /// As `sum_avx512`, with 256-bit loads.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn sum_avx2(words: &[u64]) -> u64 {
        const STREAMS: usize = 8;
        let part = words.len() / STREAMS / 4 * 4;
        let mut acc = [_mm256_setzero_si256(); STREAMS];
        let base = words.as_ptr();
        let mut offset = 0;
        while offset < part {
            for (s, a) in acc.iter_mut().enumerate() {
                // SAFETY: s·part + offset + 4 ≤ STREAMS·part ≤ words.len().
                let v = unsafe { _mm256_loadu_si256(base.add(s * part + offset).cast()) };
                *a = _mm256_add_epi64(*a, v);
            }
            offset += 4;
        }
        let total = acc
            .iter()
            .fold(_mm256_setzero_si256(), |t, a| _mm256_add_epi64(t, *a));
        let mut lanes = [0u64; 4];
        // SAFETY: lanes holds 4 u64.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), total) };
        lanes
            .iter()
            .fold(super::sum_scalar(&words[STREAMS * part..]), |s, l| {
                s.wrapping_add(*l)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_reads_every_word_at_odd_lengths() {
        for len in [0usize, 1, 7, 31, 32, 33, 255, 1000, 4099] {
            let words: Vec<u64> = (0..len as u64)
                .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .collect();
            let want = words.iter().fold(0u64, |s, w| s.wrapping_add(*w));
            assert_eq!(sum_words(&words), want, "len {len}");
            assert_eq!(sum_scalar(&words), want, "len {len}");
        }
    }

    #[test]
    fn bandwidth_is_positive() {
        assert!(read_bandwidth(1 << 20, 2, 1).expect("probe") > 0.0);
    }
}
