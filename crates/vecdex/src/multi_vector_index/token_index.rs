//! Candidates by token retrieval, the `tokens` strategy: the end-to-end retrieval of ColBERT
//! (Khattab & Zaharia, SIGIR 2020, §3.6) with the missing-similarity imputation of XTR (Lee et
//! al., NeurIPS 2023, §3.2).
//!
//! The index holds each *distinct* document token vector once (token sets often share tokens:
//! the same word, the same sub-word embedding), in an HNSW graph keyed by a distinct-token id,
//! with a posting list per id: the documents that hold that token. A query token retrieves its
//! `n` nearest distinct tokens (similarities s₁ ≥ … ≥ sₙ); a document's estimate of that query
//! token's MaxSim is its best retrieved similarity, or sₙ (the imputed value) when none of its
//! tokens was retrieved. Summed over the query tokens, this ranks documents; the best
//! `candidates` are reranked by exact Chamfer. Since every document gets sₙ for free, only the
//! gains sᵢ − sₙ > 0 are accumulated, so the postings of the last retrieved token are not read.
//!
//! Documents are numbered as in the token store. Documents are only appended between
//! compactions of the store, so the index catches up by indexing the documents past the last one
//! it saw; a compaction renumbers documents and the postings are rebuilt (distinct tokens stay).
//! Removed documents stay in the postings and are skipped by the caller's `live` test.

use std::collections::HashMap;

use vecdex_distance::Metric;
use vecdex_fde::TokenStore;

use crate::error::Result;
use crate::hnsw_index::{HnswConfig, HnswIndex};
use crate::{LinkMode, StopFlag};

/// Distinct tokens of the documents indexed so far, their graph and posting lists.
pub(crate) struct TokenIndex {
    distinct: HnswIndex,
    /// Hash of a token's bits → distinct ids with that hash (almost always one).
    ids: HashMap<u64, Vec<u32>>,
    /// Per distinct id: the documents holding it, ascending.
    postings: Vec<Vec<u32>>,
    /// Documents of the store indexed (0 .. indexed).
    indexed: usize,
    /// The store's generation when indexed: a compaction makes a new one.
    generation: u64,
}

fn hash_bits(token: &[f32]) -> u64 {
    // FNV-1a over the bit patterns: equal vectors (bit for bit) hash equal.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in token {
        h ^= u64::from(x.to_bits());
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl TokenIndex {
    pub fn new(dim: usize, m: usize, ef_construction: usize, seed: u64) -> Result<Self> {
        let mut config = HnswConfig::new(dim, Metric::Dot);
        config.m = m;
        config.ef_construction = ef_construction;
        config.seed = seed;
        Ok(TokenIndex {
            distinct: HnswIndex::with_compression(config, Default::default())?,
            ids: HashMap::new(),
            postings: Vec::new(),
            indexed: 0,
            generation: 0,
        })
    }

    /// Whether documents were added or renumbered since the last [`update`](Self::update).
    pub fn is_stale(&self, store: &TokenStore, generation: u64) -> bool {
        self.generation != generation || self.indexed != store.len()
    }

    /// Indexes the documents of `store` not seen yet (all of them after a compaction).
    pub fn update(&mut self, store: &TokenStore, generation: u64, stop: &StopFlag) -> Result<()> {
        if self.generation != generation {
            self.postings.iter_mut().for_each(Vec::clear);
            self.indexed = 0;
            self.generation = generation;
        }
        let dim = store.dim();
        let mut new_keys = Vec::new();
        let mut new_rows: Vec<f32> = Vec::new();
        for document in self.indexed as u32..store.len() as u32 {
            for token in store.tokens_of(document).chunks_exact(dim) {
                let id = match self.find(token, &new_rows, dim) {
                    Some(id) => id,
                    None => {
                        let id = self.postings.len() as u32;
                        self.ids.entry(hash_bits(token)).or_default().push(id);
                        self.postings.push(Vec::new());
                        new_keys.push(u64::from(id));
                        new_rows.extend_from_slice(token);
                        id
                    }
                };
                let list = &mut self.postings[id as usize];
                // A document repeating a token posts once.
                if list.last() != Some(&document) {
                    list.push(document);
                }
            }
        }
        if !new_keys.is_empty() {
            self.distinct
                .add_with(&new_keys, &new_rows, stop, LinkMode::auto())?;
        }
        self.indexed = store.len();
        Ok(())
    }

    /// The distinct id of `token`, among those indexed or pending in `pending` (rows of ids
    /// from the graph's size on).
    fn find(&self, token: &[f32], pending: &[f32], dim: usize) -> Option<u32> {
        let first_pending = self.distinct.len();
        self.ids
            .get(&hash_bits(token))?
            .iter()
            .copied()
            .find(|&id| {
                let id = id as usize;
                let same = |row: &[f32]| {
                    row.iter()
                        .zip(token)
                        .all(|(a, b)| a.to_bits() == b.to_bits())
                };
                if id >= first_pending {
                    same(&pending[(id - first_pending) * dim..(id - first_pending + 1) * dim])
                } else {
                    self.distinct.get(id as u64).is_some_and(|row| same(&row))
                }
            })
    }

    pub fn memory_bytes(&self) -> usize {
        self.distinct.memory_bytes()
            + self
                .postings
                .iter()
                .map(|p| p.capacity() * 4 + 24)
                .sum::<usize>()
            + self.ids.len() * 48
    }

    /// The `candidates` documents (passing `live`) with the best estimated Chamfer for a query
    /// (`tokens`, row-major), each query token retrieving its `neighbours` nearest distinct
    /// tokens; `documents` is the store's document count.
    pub fn candidates(
        &self,
        tokens: &[f32],
        neighbours: usize,
        candidates: usize,
        documents: usize,
        live: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<u32>> {
        if self.postings.is_empty() || tokens.is_empty() {
            return Ok(Vec::new());
        }
        let found = self.distinct.search(
            tokens,
            neighbours,
            Some(neighbours.max(32)),
            None,
            &StopFlag::never(),
        )?;
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            scratch.prepare(documents);
            let mut touched = scratch.accumulate(&found, &self.postings, false);
            let mut admitted: Vec<u32> = touched.iter().copied().filter(|&d| live(d)).collect();
            if admitted.len() < candidates {
                // Too few documents beat the imputed values (e.g. every token retrieved is as
                // close as the last one): count the ties as well.
                scratch.clear(&touched);
                touched = scratch.accumulate(&found, &self.postings, true);
                admitted = touched.iter().copied().filter(|&d| live(d)).collect();
            }
            let chosen = best_by_estimate(admitted, &scratch, candidates);
            // Leaves `total` all zeros for the next query on this thread.
            scratch.clear(&touched);
            Ok(chosen)
        })
    }
}

/// The `candidates` documents of `admitted` with the highest `total` (ties by number).
fn best_by_estimate(mut admitted: Vec<u32>, scratch: &Scratch, candidates: usize) -> Vec<u32> {
    let by_estimate = |a: &u32, b: &u32| {
        scratch
            .total(*b)
            .total_cmp(&scratch.total(*a))
            .then(a.cmp(b))
    };
    if admitted.len() > candidates {
        admitted.select_nth_unstable_by(candidates, by_estimate);
        admitted.truncate(candidates);
    }
    admitted
}

thread_local! {
    /// Each worker thread's accumulators, reused across queries (sized to the largest store).
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Per-query accumulators over every document number, one 8-byte entry per document so that
/// crediting a posting touches one cache line. `total` is zero between queries (the documents a
/// query touched are cleared after it); `stamp` marks the documents already credited for the
/// current query token with a counter that never repeats, so it needs no clearing.
#[derive(Default)]
struct Scratch {
    entries: Vec<Entry>,
    counter: u32,
}

#[derive(Default, Clone, Copy)]
struct Entry {
    /// The last query token (by `counter`) that credited the document.
    stamp: u32,
    /// Σ over query tokens of the document's gain above the imputed similarity.
    total: f32,
}

impl Scratch {
    fn prepare(&mut self, documents: usize) {
        if self.entries.len() < documents {
            self.entries.resize(documents, Entry::default());
        }
    }

    fn total(&self, document: u32) -> f32 {
        self.entries[document as usize].total
    }

    fn clear(&mut self, documents: &[u32]) {
        for &d in documents {
            self.entries[d as usize].total = 0.0;
        }
    }

    /// A fresh stamp value for the next query token.
    fn next_stamp(&mut self) -> u32 {
        if self.counter == u32::MAX {
            self.entries.iter_mut().for_each(|e| e.stamp = 0);
            self.counter = 0;
        }
        self.counter += 1;
        self.counter
    }

    /// Adds every query token's gains to the totals; returns the documents that gained. The
    /// retrieved tokens come best first, so a document's first posting under a query token
    /// carries its best gain for it. With `include_floor`, the last retrieved token (gain 0)
    /// counts as a minimal gain.
    fn accumulate(
        &mut self,
        found: &crate::SearchResults,
        postings: &[Vec<u32>],
        include_floor: bool,
    ) -> Vec<u32> {
        let mut touched = Vec::new();
        for q in 0..found.counts.len() {
            let row = q * found.k;
            let n = found.counts[q] as usize;
            if n == 0 {
                continue;
            }
            let stamp = self.next_stamp();
            // Dot distance is 1 − ⟨a, b⟩.
            let floor = 1.0 - found.distances[row + n - 1];
            for j in 0..n {
                let mut gain = (1.0 - found.distances[row + j]) - floor;
                if include_floor {
                    gain = gain.max(f32::MIN_POSITIVE);
                }
                if gain <= 0.0 {
                    break; // the rest are ties with the floor
                }
                for &d in &postings[found.keys[row + j] as usize] {
                    let entry = &mut self.entries[d as usize];
                    if entry.stamp == stamp {
                        continue;
                    }
                    entry.stamp = stamp;
                    if entry.total == 0.0 {
                        touched.push(d);
                    }
                    entry.total += gain;
                }
            }
        }
        touched
    }
}
