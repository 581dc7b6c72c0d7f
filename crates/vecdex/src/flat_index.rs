//! Exact (brute-force) index over f32 vectors.
//!
//! Vectors live in a [`PanelMatrix`] (blocked, packed like the right operand of a GEMM), so a
//! batch search is a tiled matrix product whose tiles stay in cache, with top-k selection fused
//! into the kernel epilogue. Work is spread over vecdex's Rayon pool as a grid of
//! (query chunk × block range) jobs; small searches run in place to keep per-call latency low.
//!
//! Slots are dense: removing a key moves the last vector into its slot, so scans never skip holes.

pub(crate) mod persist;

use std::borrow::Cow;
use std::collections::HashMap;

use rayon::prelude::*;
use vecdex_distance::{
    panel, simd_level, Expansion, Metric, PanelMatrix, QueryRows, TileSink, TileTransform, TopK,
};

use std::sync::Arc;

use crate::cancel::StopFlag;
use crate::compression::{
    with_codec, CodeQuery, Codes, Compression, CompressionStats, RescoreParams, TrainedEncoder,
};
use crate::error::{Error, Result};
use crate::filter::{IndexVersion, KeyFilter, SlotSet};
use crate::threads;
use crate::validate::{
    check_f32_config, check_keyed_batch, check_matrix, normalize, out_of_memory, try_copy,
    try_filled,
};

/// Configuration of a [`FlatIndex`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlatConfig {
    /// Dimensions of every vector, 1 ..= 65,536.
    pub dim: usize,
    /// Distance metric: cosine, dot or l2sq (hamming needs binary vectors, not stored here).
    pub metric: Metric,
}

/// Results of a batch search: row `i` holds the hits of query `i`, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResults {
    /// Columns per row (the row stride): `min(k, size of the index)`.
    pub k: usize,
    /// `queries × k` keys; entries past `counts[i]` in row `i` are
    /// [`NO_KEY`](crate::validate::NO_KEY) (2⁶⁴ − 1, never a stored key).
    pub keys: Vec<u64>,
    /// `queries × k` distances; entries past `counts[i]` are +∞.
    pub distances: Vec<f32>,
    /// Hits found per query (less than `k` when a filter admits fewer vectors).
    pub counts: Vec<u32>,
}

impl SearchResults {
    /// `queries` rows of `columns` padding cells ([`NO_KEY`](crate::validate::NO_KEY), +∞)
    /// and no hits, for a search to fill; [`Error::OutOfMemory`] when they do not fit.
    pub fn padded(queries: usize, columns: usize) -> Result<Self> {
        let cells = queries.saturating_mul(columns);
        Ok(SearchResults {
            k: columns,
            keys: try_filled(cells, crate::validate::NO_KEY, "search results")?,
            distances: try_filled(cells, f32::INFINITY, "search results")?,
            counts: try_filled(queries, 0, "search results")?,
        })
    }
}

/// A batch of keys and row-major vectors that passed [`FlatIndex::check_batch`].
#[derive(Debug, Clone, Copy)]
pub struct CheckedBatch<'a> {
    config: FlatConfig,
    keys: &'a [u64],
    vectors: &'a [f32],
}

impl CheckedBatch<'_> {
    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Storage of a [`FlatIndex`] copied with room to grow; see [`FlatIndex::grown_storage`].
#[derive(Debug)]
pub struct GrownStorage {
    config: FlatConfig,
    len: usize,
    vectors: PanelMatrix,
    keys: Vec<u64>,
    slots: HashMap<u64, u32>,
}

/// When a filter admits fewer than one slot in this many, score just those slots (gathered
/// from the blocked layout) instead of scanning everything: a gathered vector costs about 16×
/// the memory traffic of a scanned one, as it touches one cache line per dimension.
const SPARSE_FILTER_RATIO: usize = 32;

/// Below this many multiply-adds a search runs on the calling thread: waking pool threads costs
/// microseconds, which would dominate a small search.
const INLINE_WORK: usize = 1 << 21;

/// Query rows per job, and the minimum blocks per job when a search is split along the vectors.
const MAX_ROWS_PER_JOB: usize = 64;
const MIN_BLOCKS_PER_JOB: usize = 256;

/// Blocks scanned between two checks of the stop flag (16k vectors).
const BLOCKS_PER_STOP_CHECK: usize = 1024;

/// An exact index of f32 vectors under unsigned 64-bit keys.
#[derive(Debug)]
pub struct FlatIndex {
    config: FlatConfig,
    vectors: PanelMatrix,
    keys: Vec<u64>,
    slots: HashMap<u64, u32>,
    /// Renewed whenever the key-to-slot mapping changes (see [`IndexVersion`]).
    version: IndexVersion,
    /// The compressed search form (disabled by default); see [`crate::compression`].
    codes: Codes,
    /// Full vectors in a file of their own (`fullVectors: { path }`); `vectors` is empty then.
    disk: Option<Box<FlatDiskRows>>,
}

/// Rows in a row file (see `row_file.rs`), one per slot: a replaced vector gets a new row at
/// the file's end, and a removal moves the last slot's row number, never a row.
#[derive(Debug)]
pub(crate) struct FlatDiskRows {
    pub(crate) file: crate::row_file::RowFile,
    /// Row of each slot, in slot order.
    pub(crate) slot_rows: Vec<u32>,
}

impl FlatDiskRows {
    /// Padded row length in the file.
    fn stride(&self) -> usize {
        self.file.row_bytes() / 4
    }

    fn read(&self, slot: usize, out: &mut [f32]) {
        let start = self.slot_rows[slot] as usize * self.stride();
        out.copy_from_slice(&self.file.floats()[start..start + out.len()]);
    }
}

/// Code slots scored per job (and between two checks of the stop flag) in a compressed scan.
const CODES_PER_JOB: usize = 16_384;

/// Codes scored per call of the codec's run kernel in an unfiltered compressed scan: long
/// enough to amortise its choice of kernel, short enough for the scores to stay in L1.
const CODES_PER_RUN: usize = 256;

/// Bytes of a `u64 → u32` hash map that holds `capacity` entries without growing: a hashbrown
/// table has `capacity × 8 / 7` buckets (load factor 7/8), each the pair plus a control byte.
pub(crate) fn key_map_bytes(capacity: usize) -> usize {
    capacity * (std::mem::size_of::<(u64, u32)>() + 1) * 8 / 7
}

impl FlatIndex {
    pub fn new(config: FlatConfig) -> Result<Self> {
        Self::with_compression(config, Compression::default())
    }

    /// An index that scans compressed codes and rescores the best candidates with the full
    /// vectors (see [`crate::compression`]).
    pub fn with_compression(config: FlatConfig, compression: Compression) -> Result<Self> {
        Self::with_storage(config, compression, &crate::FullVectors::Memory)
    }

    /// [`with_compression`](Self::with_compression) keeping the full vectors where
    /// `full_vectors` says (see [`crate::HnswIndex::with_storage`]: the same file and rules).
    pub fn with_storage(
        config: FlatConfig,
        compression: Compression,
        full_vectors: &crate::FullVectors,
    ) -> Result<Self> {
        check_f32_config(config.dim, config.metric, "FlatIndex")?;
        let codes = Codes::new(compression, config.dim, config.metric)?;
        let disk = match full_vectors {
            crate::FullVectors::Memory => None,
            crate::FullVectors::Disk(path) => Some(Box::new(FlatDiskRows {
                file: crate::row_file::create_for(path, &compression, config.dim)?,
                slot_rows: Vec::new(),
            })),
        };
        Ok(FlatIndex {
            config,
            vectors: PanelMatrix::new(config.dim),
            keys: Vec::new(),
            slots: HashMap::new(),
            version: IndexVersion::next(),
            codes,
            disk,
        })
    }

    /// Where the full vectors are kept.
    pub fn full_vectors(&self) -> crate::FullVectors {
        match &self.disk {
            Some(disk) => crate::FullVectors::Disk(disk.file.path().to_path_buf()),
            None => crate::FullVectors::Memory,
        }
    }

    /// Reads the stored vector of `slot` into `out` (`dim` values).
    fn read_row(&self, slot: usize, out: &mut [f32]) {
        match &self.disk {
            Some(disk) => disk.read(slot, out),
            None => self.vectors.read(slot, out),
        }
    }

    pub fn config(&self) -> FlatConfig {
        self.config
    }

    pub fn compression(&self) -> &Compression {
        self.codes.config()
    }

    /// Whether searches can run: always for an uncompressed index, after training otherwise.
    pub fn is_trained(&self) -> bool {
        !self.codes.is_enabled() || self.codes.is_trained()
    }

    /// Sizes of the compressed form and of the full vectors kept for rescoring.
    pub fn compression_stats(&self) -> CompressionStats {
        let mut figures =
            self.codes
                .figures(self.len(), self.len() * self.dim() * 4, self.memory_parts());
        if self.disk.is_some() {
            figures.full_vectors = "disk";
        }
        figures
    }

    /// Keys and vectors of `rows` of a checked batch, and how many of the keys are new; errors
    /// for a batch checked for another configuration or an index that would pass 2³² − 1.
    fn rows_of<'a>(
        &self,
        batch: &CheckedBatch<'a>,
        rows: std::ops::Range<usize>,
    ) -> Result<(&'a [u64], &'a [f32], usize)> {
        if batch.config != self.config {
            return Err(Error::Internal(
                "batch checked for another index configuration".into(),
            ));
        }
        let dim = self.dim();
        let keys = &batch.keys[rows.clone()];
        let vectors = &batch.vectors[rows.start * dim..rows.end * dim];
        let new_keys = keys.iter().filter(|k| !self.slots.contains_key(k)).count();
        if self.len() + new_keys > u32::MAX as usize {
            return Err(Error::invalid(
                "a FlatIndex holds at most 4,294,967,295 vectors",
            ));
        }
        Ok((keys, vectors, new_keys))
    }

    /// The model this index learns by itself from what it stores and the incoming `vectors`.
    fn fit_by_itself(&self, vectors: &[f32]) -> Result<TrainedEncoder> {
        let held: Vec<u32> = (0..self.len() as u32).collect();
        self.codes.fit_by_itself(
            &held,
            &row_reader(&self.vectors, self.disk.as_deref()),
            vectors,
        )
    }

    /// Trains the compressed form on `sample` (row-major vectors) and re-encodes every stored
    /// vector. Replaces an earlier training.
    pub fn train(&mut self, sample: &[f32]) -> Result<()> {
        let trained = self.fit(sample)?;
        self.install_training(trained)
    }

    /// The slow half of [`Self::train`]: learns the model from `sample` and encodes the stored
    /// vectors with it, with shared access only (searches go on meanwhile; the work runs on the
    /// background pool). The index is unchanged until [`Self::install_training`].
    pub fn fit(&self, sample: &[f32]) -> Result<TrainedEncoder> {
        self.fit_with_queries(sample, None)
    }

    /// [`Self::fit`] that also learns from a sample of the `queries` the index will answer:
    /// a `pcaDimensions` reduction then learns LeanVec-OOD's separate query and data
    /// projections instead of PCA (for queries unlike the stored vectors; dot and cosine).
    pub fn fit_with_queries(
        &self,
        sample: &[f32],
        queries: Option<&[f32]>,
    ) -> Result<TrainedEncoder> {
        let mut trained = self.codes.fit_sample(sample, queries)?;
        // The stored vectors' codes too: encoding a large index takes a while as well.
        let slots: Vec<u32> = (0..self.len() as u32).collect();
        let read = row_reader(&self.vectors, self.disk.as_deref());
        Codes::stage(&mut trained, &slots, &read, self.len(), self.version)?;
        Ok(trained)
    }

    /// The quick half of [`Self::train`]: puts a model from [`Self::fit`] in place, with the
    /// codes it encoded, or re-encodes every stored vector if the index changed since.
    pub fn install_training(&mut self, trained: TrainedEncoder) -> Result<()> {
        if self
            .codes
            .install(trained, self.len(), Some(self.version))?
        {
            return Ok(());
        }
        self.encode((0..self.len() as u32).collect())
    }

    /// Writes the codes of `slots` from the stored vectors (nothing before training).
    fn encode(&mut self, slots: Vec<u32>) -> Result<()> {
        self.codes
            .encode_slots(&slots, &row_reader(&self.vectors, self.disk.as_deref()))
    }

    pub fn dim(&self) -> usize {
        self.config.dim
    }

    pub fn metric(&self) -> Metric {
        self.config.metric
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn contains(&self, key: u64) -> bool {
        self.slots.contains_key(&key)
    }

    /// Bytes held by the index (vectors, keys, key map, norms), including spare capacity.
    pub fn memory_bytes(&self) -> usize {
        self.memory_parts().total()
    }

    /// [`memory_bytes`](Self::memory_bytes) by part.
    pub fn memory_parts(&self) -> crate::MemoryParts {
        crate::MemoryParts {
            vectors: self.vectors.allocated_bytes()
                + self.disk.as_ref().map_or(0, |d| d.slot_rows.capacity() * 4),
            codes: self.codes.memory_bytes(),
            graph: 0,
            ids: std::mem::size_of::<Self>()
                + self.keys.capacity() * 8
                + key_map_bytes(self.slots.capacity()),
        }
    }

    /// Adds `keys.len()` vectors (row-major in `vectors`). A key already present has its vector
    /// replaced (upsert). The batch is validated whole first: on error nothing changes.
    pub fn add(&mut self, keys: &[u64], vectors: &[f32], stop: &StopFlag) -> Result<()> {
        let batch = Self::check_batch(self.config, keys, vectors)?;
        stop.check()?;
        self.insert(&batch, 0..batch.len())
    }

    /// Validates a batch for an index of `config` without touching any index, so callers can
    /// check it before taking a lock and then [`insert`](Self::insert) it in chunks.
    pub fn check_batch<'a>(
        config: FlatConfig,
        keys: &'a [u64],
        vectors: &'a [f32],
    ) -> Result<CheckedBatch<'a>> {
        check_keyed_batch(keys, vectors, config.dim, config.metric == Metric::Cosine)?;
        Ok(CheckedBatch {
            config,
            keys,
            vectors,
        })
    }

    /// Makes room for `additional` more vectors, so inserting a batch in chunks allocates once;
    /// room that does not fit in memory is [`Error::OutOfMemory`].
    pub fn reserve(&mut self, additional: usize) -> Result<()> {
        self.try_reserve_keys(additional)?;
        if let Some(disk) = &mut self.disk {
            let wanted = self.keys.len().saturating_add(additional);
            return disk
                .slot_rows
                .try_reserve(additional)
                .map_err(|_| out_of_memory("FlatIndex slot rows", wanted));
        }
        self.vectors
            .try_reserve(additional)
            .map_err(|_| out_of_memory("FlatIndex vectors", self.len().saturating_add(additional)))
    }

    /// Room for `additional` more keys in the key list and the key → slot map, or
    /// [`Error::OutOfMemory`] with the index unchanged.
    fn try_reserve_keys(&mut self, additional: usize) -> Result<()> {
        let wanted = self.len().saturating_add(additional);
        self.keys
            .try_reserve(additional)
            .map_err(|_| out_of_memory("FlatIndex keys", wanted))?;
        self.slots
            .try_reserve(additional)
            .map_err(|_| out_of_memory("FlatIndex key map", wanted))
    }

    /// Whether `additional` more vectors fit without reallocating anything.
    pub fn has_room(&self, additional: usize) -> bool {
        let wanted = self.len() + additional;
        let rows = match &self.disk {
            Some(disk) => disk.slot_rows.capacity() >= wanted,
            None => self.vectors.capacity() >= wanted,
        };
        rows && self.keys.capacity() >= wanted && self.slots.capacity() >= wanted
    }

    /// Copies of the storage with room for `additional` more vectors (at least doubling, so
    /// growth stays amortised). This is the slow part of growing, and it needs only shared
    /// access: callers build it under a read lock and swap it in with
    /// [`install_storage`](Self::install_storage), which is O(1).
    pub fn grown_storage(&self, additional: usize) -> Result<GrownStorage> {
        let room = additional.max(self.len());
        let wanted = self.len().saturating_add(room);
        let mut keys = Vec::new();
        keys.try_reserve_exact(wanted)
            .map_err(|_| out_of_memory("FlatIndex keys", wanted))?;
        keys.extend_from_slice(&self.keys);
        let mut slots = HashMap::new();
        slots
            .try_reserve(wanted)
            .map_err(|_| out_of_memory("FlatIndex key map", wanted))?;
        slots.extend(self.slots.iter().map(|(k, v)| (*k, *v)));
        // Rows on disk: the panel stays empty, and the slot-row list grows under the write lock
        // (4 bytes a vector).
        let vectors = match &self.disk {
            Some(_) => PanelMatrix::new(self.dim()),
            None => self
                .vectors
                .copy_with_room(room)
                .map_err(|_| out_of_memory("FlatIndex vectors", wanted))?,
        };
        Ok(GrownStorage {
            config: self.config,
            len: self.len(),
            vectors,
            keys,
            slots,
        })
    }

    /// Swaps in storage from [`grown_storage`](Self::grown_storage) and returns the old one,
    /// for the caller to drop after releasing its lock (freeing a large allocation takes
    /// milliseconds). Refused if the index changed since the storage was built.
    pub fn install_storage(&mut self, storage: GrownStorage) -> Result<GrownStorage> {
        // Callers hold an upgradable lock from copy to swap, so no write can slip in between;
        // this O(1) check guards against misuse.
        if storage.config != self.config || storage.len != self.len() {
            return Err(Error::Internal(
                "grown storage is stale: the index changed meanwhile".into(),
            ));
        }
        self.version = IndexVersion::next();
        Ok(GrownStorage {
            config: self.config,
            len: self.len(),
            vectors: std::mem::replace(&mut self.vectors, storage.vectors),
            keys: std::mem::replace(&mut self.keys, storage.keys),
            slots: std::mem::replace(&mut self.slots, storage.slots),
        })
    }

    /// Inserts rows `rows` of a checked batch (upserting keys already present). Fails only if
    /// the batch was checked for another configuration, the index would pass 2³² − 1 vectors,
    /// or a compressed index reaching its training size fails to train by itself.
    pub fn insert(&mut self, batch: &CheckedBatch<'_>, rows: std::ops::Range<usize>) -> Result<()> {
        self.insert_with(batch, rows, None)
    }

    /// The model that inserting `rows` of `batch` would make the index train by itself (None
    /// when it would not), learnt with shared access only: searches go on meanwhile. Hand it to
    /// [`Self::insert_with`] before any other write.
    pub fn fit_for_rows(
        &self,
        batch: &CheckedBatch<'_>,
        rows: std::ops::Range<usize>,
    ) -> Result<Option<TrainedEncoder>> {
        let (_, vectors, new_keys) = self.rows_of(batch, rows)?;
        if !self.codes.wants_training(self.len() + new_keys) {
            return Ok(None);
        }
        self.fit_by_itself(vectors).map(Some)
    }

    /// [`Self::insert`] with the model from [`Self::fit_for_rows`], if one was learnt; without
    /// one, an index that reaches its training size learns it here, under exclusive access.
    pub fn insert_with(
        &mut self,
        batch: &CheckedBatch<'_>,
        rows: std::ops::Range<usize>,
        model: Option<TrainedEncoder>,
    ) -> Result<()> {
        let (keys, vectors, new_keys) = self.rows_of(batch, rows)?;
        let dim = self.dim();
        let newly_trained = self.codes.wants_training(self.len() + new_keys);
        if newly_trained {
            let model = match model {
                Some(model) => model,
                None => self.fit_by_itself(vectors)?,
            };
            self.codes.install(model, self.len() + new_keys, None)?;
        }
        self.try_reserve_keys(new_keys)?;
        let cosine = self.metric() == Metric::Cosine;
        // Rows on disk are appended before anything changes: a failed write leaves the index as
        // it was (and at most dead rows past the file's saved length).
        let first_row = match &mut self.disk {
            Some(disk) => {
                disk.slot_rows.try_reserve(new_keys).map_err(|_| {
                    out_of_memory("FlatIndex slot rows", self.keys.len() + new_keys)
                })?;
                let first = crate::row_file::append_rows(&mut disk.file, vectors, dim, cosine)?;
                Some(first)
            }
            None => {
                self.vectors.try_reserve(new_keys).map_err(|_| {
                    out_of_memory("FlatIndex vectors", self.len().saturating_add(new_keys))
                })?;
                None
            }
        };
        let mut written = Vec::new();
        written
            .try_reserve_exact(keys.len())
            .map_err(|_| out_of_memory("FlatIndex written slots", keys.len()))?;
        self.version = IndexVersion::next();
        let mut row = vec![0f32; dim];
        for (i, (key, vector)) in keys.iter().zip(vectors.chunks_exact(dim)).enumerate() {
            let slot = match (&mut self.disk, first_row) {
                (Some(disk), Some(first)) => {
                    let new_row = first + i as u32;
                    match self.slots.get(key) {
                        Some(&slot) => {
                            disk.slot_rows[slot as usize] = new_row;
                            slot
                        }
                        None => {
                            disk.slot_rows.push(new_row);
                            let slot = self.keys.len() as u32;
                            self.keys.push(*key);
                            self.slots.insert(*key, slot);
                            slot
                        }
                    }
                }
                _ => {
                    row.copy_from_slice(vector);
                    if cosine {
                        normalize(&mut row);
                    }
                    match self.slots.get(key) {
                        Some(&slot) => {
                            self.vectors.set(slot as usize, &row);
                            slot
                        }
                        None => {
                            let slot = self.vectors.push(&row) as u32;
                            self.keys.push(*key);
                            self.slots.insert(*key, slot);
                            slot
                        }
                    }
                }
            };
            written.push(slot);
        }
        if newly_trained {
            written = (0..self.len() as u32).collect();
        }
        self.encode(written)
    }

    /// Removes the given keys; unknown keys are ignored. Returns how many were removed.
    pub fn remove(&mut self, keys: &[u64]) -> usize {
        self.version = IndexVersion::next();
        let mut removed = 0;
        for key in keys {
            if let Some(slot) = self.slots.remove(key) {
                let slot = slot as usize;
                let moved = match &mut self.disk {
                    Some(disk) => {
                        disk.slot_rows.swap_remove(slot);
                        let last = disk.slot_rows.len();
                        (slot < last).then_some(last)
                    }
                    None => self.vectors.swap_remove(slot),
                };
                if let Some(moved_from) = moved {
                    self.codes.move_code(moved_from, slot);
                    let moved_key = self.keys[moved_from];
                    self.keys[slot] = moved_key;
                    self.slots.insert(moved_key, slot as u32);
                }
                self.keys.pop();
                removed += 1;
            }
        }
        removed
    }

    /// The stored vector of `key` (normalised, for cosine).
    pub fn get(&self, key: u64) -> Option<Vec<f32>> {
        self.slots.get(&key).map(|&slot| {
            let mut row = vec![0f32; self.dim()];
            self.read_row(slot as usize, &mut row);
            row
        })
    }

    /// Keys in slot order.
    pub fn keys(&self) -> &[u64] {
        &self.keys
    }

    /// The `k` nearest stored vectors of each query (row-major `queries`), best first.
    /// `k` larger than the index (or than the filter admits) returns what there is.
    pub fn search(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&KeyFilter>,
        stop: &StopFlag,
    ) -> Result<SearchResults> {
        self.search_with(queries, k, RescoreParams::default(), filter, stop)
    }

    /// [`search`](Self::search) with the rescoring settings of a compressed index (ignored
    /// when the index is not compressed). A compressed index scores every code, keeps the best
    /// `k × oversample` and rescores them with the full vectors; searching it before training
    /// is [`Error::NotTrained`].
    pub fn search_with(
        &self,
        queries: &[f32],
        k: usize,
        rescore: RescoreParams,
        filter: Option<&KeyFilter>,
        stop: &StopFlag,
    ) -> Result<SearchResults> {
        let dim = self.dim();
        check_matrix(queries, dim, "queries", self.metric() == Metric::Cosine)?;
        if k == 0 {
            return Err(Error::invalid("k must be at least 1"));
        }
        if self.codes.is_enabled() {
            self.codes.searchable()?;
        }
        let query_count = queries.len() / dim;
        let slot_filter = filter.map(|f| self.slot_filter(f));
        let columns = k.min(self.len());
        let mut results = SearchResults::padded(query_count, columns)?;
        if columns == 0 || slot_filter.as_ref().is_some_and(|f| f.is_empty()) {
            return Ok(results);
        }
        let prepared = self.prepare_queries(queries)?;
        let tops = match &slot_filter {
            _ if self.codes.is_enabled() => {
                let candidates = rescore.candidates(columns, self.codes.config())?;
                self.search_codes(
                    &prepared,
                    columns,
                    candidates,
                    rescore.rescore,
                    slot_filter.as_deref(),
                    stop,
                )?
            }
            Some(f) if f.len() * SPARSE_FILTER_RATIO < self.len() => {
                self.search_sparse(&prepared, columns, f, stop)?
            }
            _ => {
                let plan = ScanPlan {
                    k: columns,
                    filter: slot_filter.as_deref(),
                    transform: self.transform(),
                    stop,
                };
                self.search_scan(&prepared, &plan)?
            }
        };
        for (q, top) in tops.into_iter().enumerate() {
            let hits = top.into_sorted();
            results.counts[q] = hits.len() as u32;
            for (c, hit) in hits.iter().enumerate() {
                results.keys[q * columns + c] = self.keys[hit.index as usize];
                // 1 − ⟨q̂,x̂⟩ can dip a rounding error below zero for identical vectors.
                results.distances[q * columns + c] = match self.metric() {
                    Metric::Cosine => hit.distance.max(0.0),
                    _ => hit.distance,
                };
            }
        }
        Ok(results)
    }

    fn slot_filter(&self, filter: &KeyFilter) -> Arc<SlotSet> {
        filter.slot_set(self.version, &self.slots, self.len(), || {
            self.keys().iter().enumerate().map(|(s, &k)| (s as u32, k))
        })
    }

    /// Queries as the kernels want them: copied and normalised for cosine, borrowed otherwise,
    /// with the per-row bias of the expansion (1 for `1 − ⟨q,x⟩`; unused by direct L2).
    fn prepare_queries<'q>(&self, queries: &'q [f32]) -> Result<PreparedQueries<'q>> {
        let dim = self.dim();
        let data = if self.metric() == Metric::Cosine {
            let mut rows = try_copy(queries, "FlatIndex normalised queries")?;
            rows.chunks_exact_mut(dim).for_each(normalize);
            Cow::Owned(rows)
        } else {
            Cow::Borrowed(queries)
        };
        let row_bias = try_filled(queries.len() / dim, 1.0, "FlatIndex query biases")?;
        Ok(PreparedQueries { data, row_bias })
    }

    /// Squared L2 is computed from differences, not by the expansion ‖x‖² + ‖q‖² − 2⟨x,q⟩:
    /// the expansion cancels catastrophically when norms dwarf the gaps between vectors (data
    /// far from the origin), and then not even rescoring recovers the true neighbours.
    fn transform(&self) -> TileTransform<'_> {
        match self.metric() {
            Metric::L2sq => TileTransform::DirectL2,
            _ => TileTransform::Expansion(Expansion {
                column_bias: None,
                scale: 1.0,
            }),
        }
    }

    fn search_scan(&self, queries: &PreparedQueries, plan: &ScanPlan<'_>) -> Result<Vec<TopK>> {
        let k = plan.k;
        let query_count = queries.row_bias.len();
        let blocks = self.vectors.blocks();
        let threads = threads::thread_count();
        let work = query_count * self.len() * self.dim();
        if work < INLINE_WORK || threads == 1 {
            return self.scan_job(queries, 0..query_count, 0..blocks, plan);
        }
        // Rows per job: enough jobs to keep every thread busy, no more rows than stay in cache.
        let rows_per_job = query_count.div_ceil(threads * 4).clamp(8, MAX_ROWS_PER_JOB);
        let row_jobs = query_count.div_ceil(rows_per_job);
        // Few queries: split along the vectors as well, and merge the partial top-k lists.
        let block_splits = if row_jobs >= threads * 2 {
            1
        } else {
            (threads * 2 / row_jobs).clamp(1, (blocks / MIN_BLOCKS_PER_JOB).max(1))
        };
        let blocks_per_split = blocks.div_ceil(block_splits);
        let jobs: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> = (0..row_jobs)
            .flat_map(|r| {
                let rows = r * rows_per_job..((r + 1) * rows_per_job).min(query_count);
                (0..block_splits).map(move |s| {
                    (
                        rows.clone(),
                        s * blocks_per_split..((s + 1) * blocks_per_split).min(blocks),
                    )
                })
            })
            .filter(|(_, b)| !b.is_empty())
            .collect();
        let partials: Vec<(usize, Vec<TopK>)> = threads::run(|| {
            jobs.into_par_iter()
                .map(|(rows, block_range)| {
                    let first = rows.start;
                    self.scan_job(queries, rows, block_range, plan)
                        .map(|t| (first, t))
                })
                .collect::<Result<Vec<_>>>()
        })?;
        let mut tops: Vec<TopK> = (0..query_count).map(|_| TopK::new(k)).collect();
        for (first, partial) in partials {
            for (offset, top) in partial.into_iter().enumerate() {
                tops[first + offset].merge(top);
            }
        }
        Ok(tops)
    }

    fn scan_job(
        &self,
        queries: &PreparedQueries,
        rows: std::ops::Range<usize>,
        blocks: std::ops::Range<usize>,
        plan: &ScanPlan<'_>,
    ) -> Result<Vec<TopK>> {
        let mut sink = Selection {
            first_row: rows.start,
            tops: (0..rows.len()).map(|_| TopK::new(plan.k)).collect(),
            len: self.len(),
            filter: plan.filter,
        };
        let query_rows = QueryRows {
            data: &queries.data,
            row_bias: &queries.row_bias,
        };
        let mut start = blocks.start;
        while start < blocks.end {
            plan.stop.check()?;
            let end = (start + BLOCKS_PER_STOP_CHECK).min(blocks.end);
            panel::scan(
                simd_level(),
                &self.vectors,
                query_rows,
                rows.clone(),
                start..end,
                plan.transform,
                &mut sink,
            );
            start = end;
        }
        Ok(sink.tops)
    }

    /// Compressed search: scores the codes of the admitted slots, keeps the best `candidates`
    /// per query, and rescores them with the full vectors (unless `rescore` is off).
    fn search_codes(
        &self,
        queries: &PreparedQueries,
        k: usize,
        candidates: usize,
        rescore: bool,
        filter: Option<&SlotSet>,
        stop: &StopFlag,
    ) -> Result<Vec<TopK>> {
        let encoder = self.codes.searchable()?;
        let (dim, len) = (self.dim(), self.len());
        let query_count = queries.row_bias.len();
        let codes = self.codes.bytes();
        let chunks = len.div_ceil(CODES_PER_JOB);
        // One job per (query, chunk of slots): a single query still spreads over the pool.
        let scan = |q: usize, chunk: usize| -> Result<TopK> {
            stop.check()?;
            let mut scratch = Vec::new();
            let reduced = encoder.reduce_query(&queries.data[q * dim..(q + 1) * dim], &mut scratch);
            let slots =
                (chunk * CODES_PER_JOB) as u32..((chunk + 1) * CODES_PER_JOB).min(len) as u32;
            let mut top = TopK::new(candidates);
            with_codec!(&encoder.codec, |codec| {
                let code_query = CodeQuery::new(codec, reduced, codes);
                match filter {
                    None => {
                        let mut scores = [0f32; CODES_PER_RUN];
                        let mut start = slots.start;
                        while start < slots.end {
                            let end = start.saturating_add(CODES_PER_RUN as u32).min(slots.end);
                            let run = &mut scores[..(end - start) as usize];
                            code_query.score_run(start..end, run);
                            // Slots rise within a job, so a score equal to the threshold
                            // loses its tie: most codes are rejected by this one comparison.
                            // (Until the list is full everything goes in, +∞ included.)
                            let mut threshold = top.threshold();
                            for (slot, score) in (start..end).zip(run.iter()) {
                                if *score < threshold || top.len() < top.k() {
                                    top.push(*score, slot);
                                    threshold = top.threshold();
                                }
                            }
                            start = end;
                        }
                    }
                    Some(f) => {
                        for slot in slots.filter(|&s| f.admits(s as usize)) {
                            top.push(code_query.score(slot), slot);
                        }
                    }
                }
            });
            Ok(top)
        };
        let jobs: Vec<(usize, usize)> = (0..query_count)
            .flat_map(|q| (0..chunks).map(move |c| (q, c)))
            .collect();
        let partials: Vec<TopK> = if jobs.len() <= 1 || threads::thread_count() == 1 {
            jobs.iter()
                .map(|&(q, c)| scan(q, c))
                .collect::<Result<_>>()?
        } else {
            threads::run(|| {
                jobs.par_iter()
                    .map(|&(q, c)| scan(q, c))
                    .collect::<Result<_>>()
            })?
        };
        let mut merged: Vec<TopK> = (0..query_count).map(|_| TopK::new(candidates)).collect();
        for (&(q, _), partial) in jobs.iter().zip(partials) {
            merged[q].merge(partial);
        }
        let rescored = |row: &mut Vec<f32>, (q, top): (usize, TopK)| {
            let mut best = TopK::new(k);
            let query = &queries.data[q * dim..(q + 1) * dim];
            for hit in top.into_sorted() {
                let distance = if rescore {
                    row.resize(dim, 0.0);
                    self.read_row(hit.index as usize, row);
                    match self.metric() {
                        Metric::L2sq => exact_l2sq(query, row),
                        _ => 1.0 - vecdex_distance::dot(query, row),
                    }
                } else {
                    hit.distance
                };
                best.push(distance, hit.index);
            }
            best
        };
        if query_count == 1 {
            return Ok(merged
                .into_iter()
                .enumerate()
                .map(|job| rescored(&mut Vec::new(), job))
                .collect());
        }
        threads::run(|| {
            Ok(merged
                .into_par_iter()
                .enumerate()
                .map_init(Vec::new, rescored)
                .collect())
        })
    }

    /// Scores only the admitted slots (selective filters).
    fn search_sparse(
        &self,
        queries: &PreparedQueries,
        k: usize,
        filter: &SlotSet,
        stop: &StopFlag,
    ) -> Result<Vec<TopK>> {
        let dim = self.dim();
        // As large as the admitted vectors: a filter admitting most of a big index (just under
        // the sparse threshold) could ask for more than is free.
        let mut gathered = try_filled(
            filter.len().saturating_mul(dim),
            0f32,
            "FlatIndex filtered vectors",
        )?;
        for (row, slot) in gathered.chunks_exact_mut(dim).zip(filter.slots()) {
            self.read_row(*slot as usize, row);
        }
        stop.check()?;
        let score = |q: usize| {
            let query = &queries.data[q * dim..(q + 1) * dim];
            let mut top = TopK::new(k);
            for (vector, slot) in gathered.chunks_exact(dim).zip(filter.slots()) {
                let distance = match self.metric() {
                    Metric::L2sq => exact_l2sq(query, vector),
                    _ => 1.0 - vecdex_distance::dot(query, vector),
                };
                top.push(distance, *slot);
            }
            top
        };
        let query_count = queries.row_bias.len();
        if query_count * gathered.len() < INLINE_WORK {
            Ok((0..query_count).map(score).collect())
        } else {
            threads::run(|| Ok((0..query_count).into_par_iter().map(score).collect()))
        }
    }
}

/// What one scan selects and how: shared by every job of a search.
struct ScanPlan<'a> {
    k: usize,
    filter: Option<&'a SlotSet>,
    transform: TileTransform<'a>,
    stop: &'a StopFlag,
}

struct PreparedQueries<'q> {
    data: Cow<'q, [f32]>,
    row_bias: Vec<f32>,
}

struct Selection<'a> {
    first_row: usize,
    tops: Vec<TopK>,
    len: usize,
    filter: Option<&'a SlotSet>,
}

impl TileSink for Selection<'_> {
    #[inline]
    fn threshold(&self, row: usize) -> f32 {
        self.tops[row - self.first_row].threshold()
    }

    #[inline]
    fn offer(&mut self, row: usize, index: usize, distance: f32) {
        if index < self.len && self.filter.is_none_or(|f| f.admits(index)) {
            self.tops[row - self.first_row].push(distance, index as u32);
        }
    }
}

/// Reads stored vector `slot` into `out`, as the codes' encoders want it.
fn row_reader<'a>(
    vectors: &'a PanelMatrix,
    disk: Option<&'a FlatDiskRows>,
) -> impl Fn(u32, &mut [f32]) + Sync + 'a {
    move |slot, out| match disk {
        Some(disk) => disk.read(slot as usize, out),
        None => vectors.read(slot as usize, out),
    }
}

fn exact_l2sq(a: &[f32], b: &[f32]) -> f32 {
    vecdex_distance::distance(Metric::L2sq, a, b).map_or(f32::NAN, |d| d as f32)
}
