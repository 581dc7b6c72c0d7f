//! Chamfer / MaxSim similarity (ColBERT's late interaction; MUVERA §1):
//! `Chamfer(Q, P) = Σ_{q∈Q} max_{p∈P} ⟨q, p⟩`, and exact multi-vector search by it.
//!
//! [`TokenStore`] keeps every document's tokens row-major, one document after another. A query is
//! prepared once: its tokens transposed into groups of [`LANES`] (value `k` of query tokens
//! `16g … 16g+15` side by side), so one SIMD register holds one query token per lane. Scoring a
//! document then broadcasts each of its token's values against those registers, accumulates 16
//! inner products per doc token without any horizontal sum, keeps a running per-lane max over
//! the document's tokens, and sums the lanes once at the end: the max and the sum of Chamfer
//! come out of the same registers as the products.

use std::ops::Range;

use rayon::prelude::*;
use vecdex_distance::{KernelPath, Neighbor, SimdLevel, TopK};

use crate::config::{try_filled, FdeError};

/// One query's `(document, similarity)` pairs, best first.
pub type Hits = Vec<(u32, f32)>;

/// Query tokens per register group (one AVX-512 register of f32).
pub const LANES: usize = 16;

/// Largest squared norm of a token that vecdex accepts (2⁶⁰: a norm of at most 2³⁰ ≈ 1.07e9),
/// chosen so that nothing computed from accepted tokens overflows f32 (max ≈ 2¹²⁸), in any
/// order of summation, for any cloud a u32 offset can address (n < 2³² tokens of d ≤ 2¹⁶
/// dimensions):
/// - an inner product, and each of its partial sums: |⟨q, p⟩| ≤ ‖q‖‖p‖ ≤ 2⁶⁰;
/// - Chamfer (one maximum per query token, summed): ≤ n · 2⁶⁰ < 2⁹²;
/// - an FDE value: a projected token's value is at most ‖t‖₁ ≤ √d‖t‖ ≤ 2³⁸, a query sums
///   fewer than 2³² of them (2⁷⁰), a final projection sums at most 2²⁴ raw values (2⁹⁴);
/// - a document FDE (cells are averages, so ‖cell‖² ≤ d‖t‖² ≤ 2⁷⁶, at most 2²⁴ cells, and a
///   final projection multiplies the squared norm by at most 2²⁴): ‖FDE‖² ≤ 2¹²⁴, inside the
///   single-vector bound (f32::MAX / 4) of the index that holds FDEs.
///
/// The single-vector bound alone (squared norm ≤ f32::MAX / 4) keeps one inner product finite
/// but not a sum of several, so Chamfer with a few large tokens reached ±∞ and tied.
pub const MAX_TOKEN_SQUARED_NORM: f64 = (1u64 << 60) as f64;

/// Plain Chamfer similarity of row-major token matrices (the test oracle: no blocking, sums in
/// order). Both must be non-empty with lengths multiple of `dim`.
pub fn chamfer(query: &[f32], document: &[f32], dim: usize) -> f32 {
    query
        .chunks_exact(dim)
        .map(|q| {
            document
                .chunks_exact(dim)
                .map(|p| q.iter().zip(p).map(|(a, b)| a * b).sum::<f32>())
                .fold(f32::NEG_INFINITY, f32::max)
        })
        .sum()
}

/// A query prepared for scoring: its tokens transposed in groups of [`LANES`], zero-padded.
/// Row `g · dim + k` holds value `k` of query tokens `16g … 16g + 15`.
#[derive(Debug, Clone)]
pub struct PreparedQuery {
    dim: usize,
    tokens: usize,
    rows: Vec<[f32; LANES]>,
}

impl PreparedQuery {
    /// `query`: row-major, non-empty, a whole number of `dim`-wide tokens. Up to 16 times the
    /// query's size (one-token queries are padded to a group of 16), so a batch of many short
    /// queries is allocated fallibly.
    pub fn new(query: &[f32], dim: usize) -> Result<Self, FdeError> {
        let tokens = query.len() / dim;
        let groups = tokens.div_ceil(LANES);
        let mut rows = try_filled(
            groups * dim,
            [0f32; LANES],
            "a prepared query (groups of 16 values)",
        )?;
        for (t, token) in query.chunks_exact(dim).enumerate() {
            let (g, lane) = (t / LANES, t % LANES);
            for (k, &v) in token.iter().enumerate() {
                rows[g * dim + k][lane] = v;
            }
        }
        Ok(PreparedQuery { dim, tokens, rows })
    }

    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// Lanes in use in group `g`.
    fn lanes(&self, g: usize) -> usize {
        (self.tokens - g * LANES).min(LANES)
    }
}

/// The Chamfer kernel [`chamfer_prepared`] runs at `level` on this CPU: hand-written AVX-512,
/// the lane loop compiled for AVX2 + FMA (x86-64 only), or that loop for the build's baseline —
/// the blocked scan's rule ([`vecdex_distance::panel::scan_path`]), so both report alike.
pub fn chamfer_path(level: SimdLevel) -> KernelPath {
    vecdex_distance::panel::scan_path(level)
}

/// Chamfer similarity of a prepared query with one document (row-major tokens).
pub fn chamfer_prepared(level: SimdLevel, query: &PreparedQuery, document: &[f32]) -> f32 {
    match chamfer_path(level) {
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => {
            // SAFETY: `chamfer_path` gives Avx512 only when the CPU supports AVX-512F.
            unsafe { x86::chamfer_avx512(query, document) }
        }
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2Fma => {
            // SAFETY: `chamfer_path` gives Avx2Fma only when the CPU supports AVX2 and FMA.
            unsafe { x86::chamfer_avx2(query, document) }
        }
        _ => chamfer_lanes(query, document),
    }
}

/// The portable kernel: lane arrays the compiler vectorises for whatever the build targets.
#[inline(always)]
fn chamfer_lanes(query: &PreparedQuery, document: &[f32]) -> f32 {
    let dim = query.dim;
    let mut total = 0f32;
    for g in 0..query.rows.len() / dim {
        let rows = &query.rows[g * dim..(g + 1) * dim];
        let mut best = [f32::NEG_INFINITY; LANES];
        for token in document.chunks_exact(dim) {
            let mut acc = [0f32; LANES];
            for (row, &x) in rows.iter().zip(token) {
                for (a, q) in acc.iter_mut().zip(row) {
                    *a += x * q;
                }
            }
            for (b, a) in best.iter_mut().zip(&acc) {
                *b = b.max(*a);
            }
        }
        total += best[..query.lanes(g)].iter().sum::<f32>();
    }
    total
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{PreparedQuery, LANES};
    use std::arch::x86_64::*;

    /// Doc tokens scored at once: four independent accumulators hide the FMA latency.
    const TOKENS: usize = 4;

    /// Doc tokens scored at once when a group's lanes fit one 8-wide register: eight independent
    /// accumulators hide the FMA latency (4 cycles, 2 a cycle) as in the AVX-512 kernel.
    const HALF_TOKENS: usize = 8;

    /// Sum of the first `lanes` of the 16 maxima in `lo` (lanes 0–7) and `hi` (lanes 8–15).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn lane_sum(lo: __m256, hi: __m256, lanes: usize) -> f32 {
        let mut best = [0f32; LANES];
        // SAFETY: `best` holds 16 f32: two unaligned 8-wide stores fit.
        unsafe {
            _mm256_storeu_ps(best.as_mut_ptr(), lo);
            _mm256_storeu_ps(best.as_mut_ptr().add(8), hi);
        }
        best[..lanes].iter().sum()
    }

    /// The AVX2 + FMA kernel: a query group's 16 lanes as two 8-wide halves, four doc tokens at
    /// once (8 accumulators); a group of at most 8 query tokens (most short queries) uses only
    /// the low half, eight doc tokens at once, and does half the work. On MiniLM tokens (384-d,
    /// 7.5 per query) it ran 2.15× the auto-vectorised lane loop it replaces (40.5 against
    /// 18.8 queries/s over 20,000 definitions, AMD EPYC Zen 3, 2 threads).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn chamfer_avx2(query: &PreparedQuery, document: &[f32]) -> f32 {
        let dim = query.dim;
        let n = document.len() / dim;
        let doc = document.as_ptr();
        let mut total = 0f32;
        for g in 0..query.rows.len() / dim {
            // SAFETY: rows g·dim .. (g+1)·dim exist (the loop bound); each is 16 f32.
            let rows = unsafe { query.rows.as_ptr().add(g * dim) }.cast::<f32>();
            let lanes = query.lanes(g);
            let mut best_lo = _mm256_set1_ps(f32::NEG_INFINITY);
            let mut best_hi = _mm256_set1_ps(f32::NEG_INFINITY);
            let mut t = 0;
            if lanes <= 8 {
                while t + HALF_TOKENS <= n {
                    let mut acc = [_mm256_setzero_ps(); HALF_TOKENS];
                    for k in 0..dim {
                        // SAFETY: k < dim rows of 16 values; tokens t..t+8 < n have dim values.
                        unsafe {
                            let q = _mm256_loadu_ps(rows.add(k * LANES));
                            for (j, a) in acc.iter_mut().enumerate() {
                                let x = _mm256_broadcast_ss(&*doc.add((t + j) * dim + k));
                                *a = _mm256_fmadd_ps(x, q, *a);
                            }
                        }
                    }
                    for a in acc {
                        best_lo = _mm256_max_ps(best_lo, a);
                    }
                    t += HALF_TOKENS;
                }
                while t < n {
                    let mut acc = _mm256_setzero_ps();
                    for k in 0..dim {
                        // SAFETY: as above, for one token t < n.
                        unsafe {
                            let q = _mm256_loadu_ps(rows.add(k * LANES));
                            acc = _mm256_fmadd_ps(
                                _mm256_broadcast_ss(&*doc.add(t * dim + k)),
                                q,
                                acc,
                            );
                        }
                    }
                    best_lo = _mm256_max_ps(best_lo, acc);
                    t += 1;
                }
            } else {
                while t + TOKENS <= n {
                    let mut lo = [_mm256_setzero_ps(); TOKENS];
                    let mut hi = [_mm256_setzero_ps(); TOKENS];
                    for k in 0..dim {
                        // SAFETY: k < dim rows of 16 values; tokens t..t+4 < n have dim values.
                        unsafe {
                            let q_lo = _mm256_loadu_ps(rows.add(k * LANES));
                            let q_hi = _mm256_loadu_ps(rows.add(k * LANES + 8));
                            for j in 0..TOKENS {
                                let x = _mm256_broadcast_ss(&*doc.add((t + j) * dim + k));
                                lo[j] = _mm256_fmadd_ps(x, q_lo, lo[j]);
                                hi[j] = _mm256_fmadd_ps(x, q_hi, hi[j]);
                            }
                        }
                    }
                    for j in 0..TOKENS {
                        best_lo = _mm256_max_ps(best_lo, lo[j]);
                        best_hi = _mm256_max_ps(best_hi, hi[j]);
                    }
                    t += TOKENS;
                }
                while t < n {
                    let mut lo = _mm256_setzero_ps();
                    let mut hi = _mm256_setzero_ps();
                    for k in 0..dim {
                        // SAFETY: as above, for one token t < n.
                        unsafe {
                            let x = _mm256_broadcast_ss(&*doc.add(t * dim + k));
                            lo = _mm256_fmadd_ps(x, _mm256_loadu_ps(rows.add(k * LANES)), lo);
                            hi = _mm256_fmadd_ps(x, _mm256_loadu_ps(rows.add(k * LANES + 8)), hi);
                        }
                    }
                    best_lo = _mm256_max_ps(best_lo, lo);
                    best_hi = _mm256_max_ps(best_hi, hi);
                    t += 1;
                }
            }
            // SAFETY: this function runs only where AVX2 is enabled (its own target feature).
            total += unsafe { lane_sum(best_lo, best_hi, lanes) };
        }
        total
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn chamfer_avx512(query: &PreparedQuery, document: &[f32]) -> f32 {
        let dim = query.dim;
        let n = document.len() / dim;
        let doc = document.as_ptr();
        let mut total = 0f32;
        for g in 0..query.rows.len() / dim {
            // SAFETY: rows g·dim .. (g+1)·dim exist (the loop bound); each is 16 f32.
            let rows = unsafe { query.rows.as_ptr().add(g * dim) }.cast::<f32>();
            let mut best = _mm512_set1_ps(f32::NEG_INFINITY);
            let mut t = 0;
            while t + TOKENS <= n {
                let mut acc = [_mm512_setzero_ps(); TOKENS];
                for k in 0..dim {
                    // SAFETY: k < dim rows of 16 values; tokens t..t+4 < n have dim values.
                    unsafe {
                        let q = _mm512_loadu_ps(rows.add(k * LANES));
                        for (j, a) in acc.iter_mut().enumerate() {
                            let x = _mm512_set1_ps(*doc.add((t + j) * dim + k));
                            *a = _mm512_fmadd_ps(x, q, *a);
                        }
                    }
                }
                best = _mm512_max_ps(
                    best,
                    _mm512_max_ps(_mm512_max_ps(acc[0], acc[1]), _mm512_max_ps(acc[2], acc[3])),
                );
                t += TOKENS;
            }
            while t < n {
                let mut acc = _mm512_setzero_ps();
                for k in 0..dim {
                    // SAFETY: as above, for one token t < n.
                    unsafe {
                        let q = _mm512_loadu_ps(rows.add(k * LANES));
                        acc = _mm512_fmadd_ps(_mm512_set1_ps(*doc.add(t * dim + k)), q, acc);
                    }
                }
                best = _mm512_max_ps(best, acc);
                t += 1;
            }
            let mask: __mmask16 = ((1u32 << query.lanes(g)) - 1) as __mmask16;
            total += _mm512_mask_reduce_add_ps(mask, best);
        }
        total
    }
}

/// Token vectors of many documents, row-major, one document after another.
#[derive(Debug, Clone)]
pub struct TokenStore {
    dim: usize,
    values: Vec<f32>,
    /// Document `d` owns tokens `starts[d]..starts[d + 1]` (`len() + 1` entries).
    starts: Vec<u32>,
}

/// Documents per parallel work item of an exact search (about 1 MiB of 100-d tokens at 10 per
/// document, so a chunk stays in L2 while every query of the batch scores it).
const CHUNK_DOCUMENTS: usize = 256;

impl TokenStore {
    pub fn new(dim: usize) -> Self {
        TokenStore {
            dim,
            values: Vec::new(),
            starts: vec![0],
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Documents stored.
    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tokens stored.
    pub fn tokens(&self) -> usize {
        self.values.len() / self.dim
    }

    pub fn memory_bytes(&self) -> usize {
        (self.values.capacity() + self.starts.capacity()) * 4
    }

    pub fn token_range(&self, document: u32) -> Range<usize> {
        let d = document as usize;
        self.starts[d] as usize..self.starts[d + 1] as usize
    }

    /// Makes room for `documents` more documents of `tokens` tokens in all, or fails (never
    /// aborts) when memory runs out; later pushes of that much then never allocate.
    pub fn try_reserve(&mut self, documents: usize, tokens: usize) -> Result<(), FdeError> {
        let values = tokens
            .checked_mul(self.dim)
            .ok_or_else(|| FdeError::out_of_memory("token store", usize::MAX))?;
        self.values
            .try_reserve(values)
            .map_err(|_| FdeError::out_of_memory("token store", self.values.len() + values))?;
        self.starts
            .try_reserve(documents)
            .map_err(|_| FdeError::out_of_memory("token store", self.starts.len() + documents))
    }

    /// Appends a document (row-major `tokens × dim`, non-empty) and returns its number. Panics if
    /// the store would exceed 2³² − 1 tokens (callers check first with [`TokenStore::fits`]).
    pub fn push(&mut self, tokens: &[f32]) -> u32 {
        let document = u32::try_from(self.len()).expect("document count checked by the caller");
        self.values.extend_from_slice(tokens);
        let end = u32::try_from(self.tokens()).expect("token count checked by the caller");
        self.starts.push(end);
        document
    }

    /// Whether `documents` more documents with `tokens` more tokens keep every id in a u32.
    pub fn fits(&self, documents: usize, tokens: usize) -> bool {
        self.len() + documents < u32::MAX as usize && self.tokens() + tokens <= u32::MAX as usize
    }

    /// The tokens of `document`, row-major.
    pub fn tokens_of(&self, document: u32) -> &[f32] {
        let range = self.token_range(document);
        &self.values[range.start * self.dim..range.end * self.dim]
    }

    /// The tokens of `document`, row-major, copied.
    pub fn document(&self, document: u32) -> Vec<f32> {
        self.tokens_of(document).to_vec()
    }

    /// Every token value, row-major (`tokens() × dim`), and the document starts (`len() + 1`
    /// token numbers): the saved form of the store.
    pub fn parts(&self) -> (&[f32], &[u32]) {
        (&self.values, &self.starts)
    }

    /// A store rebuilt from [`parts`](Self::parts), after checking them: starts begin at 0,
    /// never decrease, every document has at least one token, and the last start is the token
    /// count; every value is finite.
    pub fn from_parts(dim: usize, values: Vec<f32>, starts: Vec<u32>) -> Result<Self, String> {
        if dim == 0 || !values.len().is_multiple_of(dim) {
            return Err(format!(
                "{} token values are not whole {dim}-value tokens",
                values.len()
            ));
        }
        let tokens = values.len() / dim;
        if starts.first() != Some(&0) || starts.last().map(|&s| s as usize) != Some(tokens) {
            return Err(format!(
                "document starts must run from 0 to the {tokens} tokens stored"
            ));
        }
        if let Some(d) = starts.windows(2).position(|w| w[1] <= w[0]) {
            return Err(format!(
                "document {d} has no tokens or a negative token count"
            ));
        }
        if let Some(i) = values.iter().position(|x| !x.is_finite()) {
            return Err(format!("token {} holds a non-finite value", i / dim));
        }
        if let Some(t) = values.chunks_exact(dim).position(|token| {
            token
                .iter()
                .map(|&x| f64::from(x) * f64::from(x))
                .sum::<f64>()
                > MAX_TOKEN_SQUARED_NORM
        }) {
            return Err(format!(
                "token {t} has a squared norm above {MAX_TOKEN_SQUARED_NORM:e}, which no add accepts"
            ));
        }
        Ok(TokenStore {
            dim,
            values,
            starts,
        })
    }

    /// A store of the documents `keep` (in that order), numbered 0…; for compaction. Its room
    /// is reserved first (the pushes then never allocate), so a copy that does not fit is an
    /// error the caller can skip, not an abort.
    pub fn select(&self, keep: &[u32]) -> Result<TokenStore, FdeError> {
        let mut out = TokenStore::new(self.dim);
        let tokens = keep.iter().map(|&d| self.token_range(d).len()).sum();
        out.try_reserve(keep.len(), tokens)?;
        for &d in keep {
            out.push(self.tokens_of(d));
        }
        Ok(out)
    }

    /// Asks the CPU to start loading `document`'s tokens into cache (a hint; no effect off x86-64).
    #[inline]
    pub fn prefetch(&self, document: u32) {
        let tokens = self.tokens_of(document);
        #[cfg(target_arch = "x86_64")]
        for line in tokens.chunks(16) {
            // SAFETY: a prefetch never faults; the pointer is inside `tokens` anyway.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    line.as_ptr().cast(),
                )
            };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = tokens;
    }

    /// Chamfer similarity of a prepared query with `document`.
    pub fn chamfer(&self, level: SimdLevel, query: &PreparedQuery, document: u32) -> f32 {
        chamfer_prepared(level, query, self.tokens_of(document))
    }

    /// Chamfer similarity of `query` (row-major, non-empty, `dim` wide) with each document of
    /// `documents`, written to `scores`.
    pub fn score(
        &self,
        level: SimdLevel,
        query: &[f32],
        documents: &[u32],
        scores: &mut [f32],
    ) -> Result<(), FdeError> {
        let prepared = PreparedQuery::new(query, self.dim)?;
        for (&document, score) in documents.iter().zip(scores.iter_mut()) {
            *score = self.chamfer(level, &prepared, document);
        }
        Ok(())
    }

    /// Exact top-`k` documents by Chamfer similarity for each query of a batch (CSR: query `i`
    /// is tokens `offsets[i]..offsets[i+1]` of `queries`), among the documents `accept` admits.
    /// Returns, per query, `(document, similarity)` pairs best first. Runs in parallel on the
    /// current Rayon pool over chunks of documents, each scored by every query while it is in
    /// cache; `should_stop` is polled between chunks (`Ok(None)` when it fired). The prepared
    /// queries (up to 16 times the batch) and the top-k heaps (`k` is first capped at the
    /// documents stored) are the only buffers: one that cannot be allocated is an error.
    pub fn search(
        &self,
        level: SimdLevel,
        queries: &[f32],
        offsets: &[u32],
        k: usize,
        accept: &(dyn Fn(u32) -> bool + Sync),
        should_stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<Option<Vec<Hits>>, FdeError> {
        let query_count = offsets.len().saturating_sub(1);
        // A top-k keeps room for k hits per query and worker: never more than there are.
        let k = k.min(self.len());
        if query_count == 0 || self.is_empty() || k == 0 {
            return Ok(Some(vec![Vec::new(); query_count]));
        }
        let dim = self.dim;
        let prepared = (0..query_count)
            .map(|q| {
                PreparedQuery::new(
                    &queries[offsets[q] as usize * dim..offsets[q + 1] as usize * dim],
                    dim,
                )
            })
            .collect::<Result<Vec<PreparedQuery>, FdeError>>()?;
        let chunks = self.len().div_ceil(CHUNK_DOCUMENTS);
        let stopped = std::sync::atomic::AtomicBool::new(false);
        let fresh = || -> Vec<TopK> { (0..query_count).map(|_| TopK::new(k)).collect() };
        let tops = (0..chunks)
            .into_par_iter()
            .fold(fresh, |mut tops, chunk| {
                if stopped.load(std::sync::atomic::Ordering::Relaxed) || should_stop() {
                    stopped.store(true, std::sync::atomic::Ordering::Relaxed);
                    return tops;
                }
                let first = chunk * CHUNK_DOCUMENTS;
                let end = (first + CHUNK_DOCUMENTS).min(self.len());
                let admitted: Vec<u32> =
                    (first as u32..end as u32).filter(|&d| accept(d)).collect();
                for (query, top) in prepared.iter().zip(tops.iter_mut()) {
                    for &document in &admitted {
                        top.push(-self.chamfer(level, query, document), document);
                    }
                }
                tops
            })
            .reduce(fresh, |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    x.merge(y);
                }
                a
            });
        if stopped.into_inner() {
            return Ok(None);
        }
        Ok(Some(
            tops.into_iter()
                .map(|top| {
                    top.into_sorted()
                        .into_iter()
                        .map(|Neighbor { distance, index }| (index, -distance))
                        .collect()
                })
                .collect(),
        ))
    }
}
