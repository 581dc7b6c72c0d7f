//! Scoring a query against the codes of an index: what the graph walks and the flat scan
//! score before rescoring with the full vectors.

use vecdex_quant::Codec;

/// A prepared query scored against the code of each slot: what the graph walks and the flat
/// scan score.
pub(crate) struct CodeQuery<'a, C: Codec> {
    pub(crate) codec: &'a C,
    pub(crate) prepared: C::Query,
    pub(crate) codes: &'a [u8],
    pub(crate) size: usize,
}

impl<'a, C: Codec> CodeQuery<'a, C> {
    pub(crate) fn new(codec: &'a C, query: &[f32], codes: &'a [u8]) -> Self {
        CodeQuery {
            codec,
            prepared: codec.prepare(query),
            codes,
            size: codec.code_size(),
        }
    }

    /// Scores of the consecutive slots `slots` into `out` (`slots.len()` values): one kernel
    /// choice for the whole run (see [`Codec::score_run`]).
    #[inline]
    pub(crate) fn score_run(&self, slots: std::ops::Range<u32>, out: &mut [f32]) {
        let codes = &self.codes[slots.start as usize * self.size..slots.end as usize * self.size];
        self.codec.score_run(&self.prepared, codes, out);
    }

    #[inline]
    pub(crate) fn score(&self, slot: u32) -> f32 {
        let start = slot as usize * self.size;
        self.codec
            .score(&self.prepared, &self.codes[start..start + self.size])
    }
}

impl<C: Codec> vecdex_hnsw::QueryDistance for CodeQuery<'_, C> {
    #[inline]
    fn distance(&self, node: u32) -> f32 {
        self.score(node)
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        let start = node as usize * self.size;
        if let Some(code) = self.codes.get(start..start + self.size) {
            prefetch_bytes(code);
        }
    }
}

/// Hint that `bytes` will be read soon: its first and last cache lines (codes are at most a
/// few lines long; the hardware prefetcher follows the rest).
#[inline]
fn prefetch_bytes(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let first = bytes.as_ptr().cast::<i8>();
        // SAFETY: prefetching is a hint that never faults; both addresses are inside `bytes`.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(first);
            _mm_prefetch::<_MM_HINT_T0>(first.add(bytes.len().saturating_sub(1)));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}
