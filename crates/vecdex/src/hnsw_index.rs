//! Approximate index: an HNSW graph ([`vecdex_hnsw`]) over f32 rows owned here.
//!
//! Rows are stored one per slot, zero-padded to a multiple of 16 values and 64-byte aligned, so
//! the graph's one-to-one distances run without tail handling. A key maps to a slot; removing a
//! key leaves a tombstone: the node stays in the graph as a waypoint but is never returned.
//! Compaction relinks the graph around every tombstone and frees their slots for later
//! inserts; it runs by itself before an add once tombstones reach a tenth of the slots (see
//! [`AUTO_COMPACT_FRACTION`]), or when asked ([`HnswIndex::compact`]).
//!
//! Adding runs in three phases so searches can go on while a batch is linked: `prepare` (needs
//! `&mut`: assigns slots and writes rows), `link` (shared: builds the graph in parallel; new
//! nodes are walkable but not yet returned), and `commit` (`&mut`, O(batch): new nodes become
//! visible and the slots of replaced keys become tombstones, at once).
//!
//! Filtered search: an allow-list of keys becomes a bitmap of slots tested inside the walk.
//! When the filter admits few vectors the walk would have to visit many rejected nodes to find
//! `ef` admitted ones (about `2m·ef/s` distances at selectivity `s`), while an exact scan of the
//! admitted slots costs `s·n`; so the search scans exactly when `admitted² ≤ 2m·ef·n`, and also
//! when a walk returns fewer hits than the filter admits. That estimate holds when the admitted
//! vectors are spread through the graph; when they lie apart from the query (a filter on a
//! label that correlates with position: another class of images) the walk crosses rejected
//! regions for far longer, so a filtered walk also gives up and scans once it has scored as
//! many nodes as the scan would (`admitted`): at most twice the scan's work, where an unbounded
//! walk can score most of the graph.

pub(crate) mod persist;
pub mod trace;

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;
use vecdex_distance::{
    advise_huge_pages, padded_len, prefetch_row, Metric, RowKernel, TopK, ROW_LANES,
};
use vecdex_hnsw::{Graph, GraphStats, HnswParams, QueryDistance, Scored, Scorer};

use crate::cancel::StopFlag;
pub use crate::index::FullVectors;
use crate::compression::{
    with_codec, CodeQuery, Codes, Compression, CompressionStats, RescoreParams, TrainedEncoder,
};
use crate::error::{Error, Result};
use crate::filter::{IndexVersion, KeyFilter, SlotSet};
use crate::flat_index::SearchResults;
use crate::insertion_order::{insertion_order, InsertionOrder};
use crate::threads;
use crate::validate::{
    check_f32_config, check_keyed_batch, check_matrix, normalize, out_of_memory, try_copy,
};

/// Links per node by default (HNSW paper §4: 5–48 works well; 16 is hnswlib's and faiss's).
pub const DEFAULT_M: usize = 16;
/// Candidates kept while linking, by default.
pub const DEFAULT_EF_CONSTRUCTION: usize = 128;
/// Candidates kept by a search, by default.
pub const DEFAULT_EF_SEARCH: usize = 64;
/// Seed of node levels and insertion order, by default.
pub const DEFAULT_SEED: u64 = 0x5EED;


/// Configuration of an [`HnswIndex`], with the paper's parameter names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HnswConfig {
    /// Dimensions of every vector, 1 ..= 65,536.
    pub dim: usize,
    /// cosine (vectors normalised on insert), dot or l2sq.
    pub metric: Metric,
    /// Links per node above layer 0 (`2m` on layer 0). Default 16.
    pub m: usize,
    /// Candidates kept while linking a new node. Default 128.
    pub ef_construction: usize,
    /// Candidates kept by a search unless the call gives its own. Default 64.
    pub ef_search: usize,
    /// Seed of node levels and of the random insertion order.
    pub seed: u64,
    /// Order in which a batch is linked (see [`InsertionOrder`]).
    pub insertion_order: InsertionOrder,
}

impl HnswConfig {
    /// Defaults for `dim` and `metric`.
    pub fn new(dim: usize, metric: Metric) -> Self {
        HnswConfig {
            dim,
            metric,
            m: DEFAULT_M,
            ef_construction: DEFAULT_EF_CONSTRUCTION,
            ef_search: DEFAULT_EF_SEARCH,
            seed: DEFAULT_SEED,
            insertion_order: InsertionOrder::default(),
        }
    }
}

/// Shape and size figures of an [`HnswIndex`].
#[derive(Debug, Clone, PartialEq)]
pub struct HnswStats {
    /// Live vectors.
    pub len: usize,
    /// Removed vectors not yet compacted (still waypoints in the graph).
    pub tombstones: usize,
    /// Compacted slots waiting for reuse by later inserts.
    pub free_slots: usize,
    pub graph: GraphStats,
    pub memory_bytes: usize,
    /// `memory_bytes` by part.
    pub memory: crate::MemoryParts,
    pub compression: CompressionStats,
}

/// How a batch is linked: in order on the calling thread (deterministic), or over the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkMode {
    Sequential,
    Parallel,
}

impl LinkMode {
    /// Parallel when the pool has more than one thread.
    pub fn auto() -> Self {
        if threads::thread_count() > 1 {
            LinkMode::Parallel
        } else {
            LinkMode::Sequential
        }
    }
}

/// A batch whose rows are written but not yet linked or visible; see the module docs.
#[derive(Debug)]
#[must_use = "a prepared batch must be linked and committed, or abandoned"]
pub struct PendingBatch {
    keys: Vec<u64>,
    /// Slot of each key, in batch order.
    slots: Vec<u32>,
}

impl PendingBatch {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// An approximate nearest-neighbour index of f32 vectors under unsigned 64-bit keys.
#[derive(Debug)]
pub struct HnswIndex {
    config: HnswConfig,
    kernel: RowKernel,
    /// Padded row length (a multiple of 16).
    stride: usize,
    /// `capacity × stride` values; slot `s` is `rows[s·stride ..][.. stride]`.
    rows: AlignedRows,
    graph: Graph,
    /// Slots handed out so far (`0 .. used`).
    used: usize,
    /// Key of each slot below `used` (meaningful for live slots).
    slot_keys: Vec<u64>,
    slots: HashMap<u64, u32>,
    /// Bit `s` set when slot `s` holds a live, returnable vector.
    live: Vec<u64>,
    /// Removed slots still linked into the graph.
    tombstones: Vec<u32>,
    /// Compacted slots (no link leads to them), reused by later inserts.
    free: Vec<u32>,
    /// Renewed whenever the key-to-slot mapping changes (see [`IndexVersion`]).
    version: IndexVersion,
    /// The compressed search form (disabled by default); see [`crate::compression`].
    codes: Codes,
    /// A view of a mapped file ([`HnswIndex::view`]): every write is an [`Error::ReadOnly`].
    read_only: bool,
    /// Full vectors in a file of their own (`fullVectors: { path }`); `rows` is empty then.
    disk: Option<Box<DiskRows>>,
}

/// Rows kept in a row file (see `row_file.rs`): slots map to rows because a slot reused after
/// compaction gets a new row at the file's end (saved files may still refer to the old one).
#[derive(Debug)]
struct DiskRows {
    file: crate::row_file::RowFile,
    /// Row of each slot below the capacity (`u32::MAX`: none).
    slot_rows: Vec<u32>,
    /// A view's index file, to check before reading it (its rows are not in that file).
    view: Option<crate::mapped::MappedRange>,
}

impl DiskRows {
    fn bytes(&self) -> usize {
        self.slot_rows.capacity() * 4
    }
}

/// f32 storage aligned to 64 bytes: owned, or read in place from a mapped file (a view).
#[derive(Debug, Default)]
struct AlignedRows {
    lanes: Vec<Lane>,
    /// The rows of a view; `lanes` is empty then.
    shared: Option<crate::mapped::MappedRange>,
}

#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Lane([f32; ROW_LANES]);

impl AlignedRows {
    fn shared(range: crate::mapped::MappedRange) -> Self {
        AlignedRows {
            lanes: Vec::new(),
            shared: Some(range),
        }
    }

    fn values(&self) -> &[f32] {
        if let Some(shared) = &self.shared {
            return shared.floats();
        }
        // SAFETY: `Lane` is `repr(C)` around `[f32; 16]` with size 64 (no padding), so the lanes
        // are `16 × len` contiguous, initialised f32 values.
        unsafe {
            std::slice::from_raw_parts(
                self.lanes.as_ptr().cast::<f32>(),
                self.lanes.len() * ROW_LANES,
            )
        }
    }

    fn values_mut(&mut self) -> &mut [f32] {
        self.own();
        // SAFETY: as in `values`, with exclusive access.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.lanes.as_mut_ptr().cast::<f32>(),
                self.lanes.len() * ROW_LANES,
            )
        }
    }

    /// Storage for `values` values filled by `fill` (given the bytes to write, which it must
    /// write whole or fail), with no zeroing pass first: a load reads the file straight into
    /// fresh pages. The huge-page hint comes after the pages are first touched: the kernel then
    /// collapses them in the background (khugepaged), where a hint before the first touch would
    /// make the load itself wait for 2 MiB pages to be compacted and cleared (measured slower).
    fn filled(values: usize, fill: impl FnOnce(*mut u8, usize) -> Result<()>) -> Result<Self> {
        let lanes = values.div_ceil(ROW_LANES);
        if lanes == 0 {
            return Ok(AlignedRows::default());
        }
        let too_large = || Error::invalid("the index does not fit in memory");
        let layout = std::alloc::Layout::array::<Lane>(lanes).map_err(|_| too_large())?;
        // SAFETY: `layout` has a non-zero size.
        let pointer = unsafe { std::alloc::alloc(layout) };
        if pointer.is_null() {
            return Err(too_large());
        }
        let bytes = values * 4;
        // The tail of the last lane past `values` is not part of the section: zero it.
        // SAFETY: `bytes ≤ layout.size()`, inside the allocation.
        unsafe { std::ptr::write_bytes(pointer.add(bytes), 0, layout.size() - bytes) };
        if let Err(error) = fill(pointer, bytes) {
            // SAFETY: allocated above with `layout`; no `Vec` owns it yet.
            unsafe { std::alloc::dealloc(pointer, layout) };
            return Err(error);
        }
        // SAFETY: every byte is written now (by `fill`, and the tail above); any bits are a
        // valid `Lane`; the allocation is `lanes` lanes with `Lane`'s layout, as `Vec` requires.
        let lanes = unsafe { Vec::from_raw_parts(pointer.cast::<Lane>(), lanes, lanes) };
        advise_huge_pages(&lanes);
        Ok(AlignedRows {
            lanes,
            shared: None,
        })
    }

    /// Copies shared rows into owned storage: writes never reach a mapping.
    fn own(&mut self) {
        if let Some(shared) = self.shared.take() {
            let values = shared.floats();
            self.lanes = values
                .chunks(ROW_LANES)
                .map(|chunk| {
                    let mut lane = Lane::default();
                    lane.0[..chunk.len()].copy_from_slice(chunk);
                    lane
                })
                .collect();
        }
    }

    fn grow(&mut self, values: usize) -> Result<()> {
        self.own();
        let lanes = values / ROW_LANES;
        if lanes > self.lanes.len() {
            self.lanes
                .try_reserve_exact(lanes - self.lanes.len())
                .map_err(|_| Error::invalid("the index does not fit in memory"))?;
            advise_huge_pages(&self.lanes);
            self.lanes.resize(lanes, Lane::default());
        }
        Ok(())
    }

    fn bytes(&self) -> usize {
        self.lanes.capacity() * std::mem::size_of::<Lane>()
    }
}

/// Distances between stored rows, and from a query row to stored rows.
struct RowScorer<'a> {
    rows: &'a [f32],
    /// Row of each slot, when the rows are in a row file (else slot = row).
    rows_of: Option<&'a [u32]>,
    stride: usize,
    kernel: RowKernel,
    metric: Metric,
}

impl<'a> RowScorer<'a> {
    fn new(
        rows: &'a AlignedRows,
        disk: Option<&'a DiskRows>,
        stride: usize,
        kernel: RowKernel,
        metric: Metric,
    ) -> Self {
        let (rows, rows_of) = match disk {
            Some(disk) => (disk.file.floats(), Some(&disk.slot_rows[..])),
            None => (rows.values(), None),
        };
        RowScorer {
            rows,
            rows_of,
            stride,
            kernel,
            metric,
        }
    }

    #[inline]
    fn row(&self, node: u32) -> &[f32] {
        let row = match self.rows_of {
            Some(rows_of) => rows_of[node as usize],
            None => node,
        };
        let start = row as usize * self.stride;
        &self.rows[start..start + self.stride]
    }

    #[inline]
    fn score(&self, a: &[f32], b: &[f32]) -> f32 {
        match self.metric {
            Metric::L2sq => self.kernel.l2sq(a, b),
            _ => 1.0 - self.kernel.dot(a, b),
        }
    }
}

/// A query (padded like the rows) scored against stored rows.
struct RowQuery<'a> {
    scorer: &'a RowScorer<'a>,
    query: &'a [f32],
}

impl QueryDistance for RowQuery<'_> {
    #[inline]
    fn distance(&self, node: u32) -> f32 {
        self.scorer.score(self.query, self.scorer.row(node))
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        prefetch_row(self.scorer.row(node));
    }
}

impl<'a> Scorer for RowScorer<'a> {
    type NodeQuery<'s>
        = RowQuery<'s>
    where
        Self: 's;

    fn node_query(&self, node: u32) -> RowQuery<'_> {
        RowQuery {
            scorer: self,
            query: self.row(node),
        }
    }

    fn between(&self, a: u32, b: u32) -> f32 {
        self.score(self.row(a), self.row(b))
    }

    fn same_vector(&self, a: u32, b: u32) -> bool {
        self.row(a) == self.row(b)
    }
}

/// Tombstones, as a fraction of all slots, at which the next add compacts first: until then new
/// vectors take new slots (so memory grows by up to this fraction before it is reclaimed).
pub const AUTO_COMPACT_FRACTION: f64 = 0.1;

/// Tombstones relinked by [`HnswIndex::relink_removed`], to release with
/// [`HnswIndex::release_removed`].
#[derive(Debug)]
#[must_use = "relinked slots are freed only by release_removed"]
pub struct RelinkedSlots(Vec<u32>);

/// Queries between two checks of the stop flag in a batch search.
const QUERIES_PER_STOP_CHECK: usize = 64;

impl HnswIndex {
    pub fn new(config: HnswConfig) -> Result<Self> {
        Self::with_compression(config, Compression::default())
    }

    /// An index whose searches walk compressed codes and rescore with the full vectors (see
    /// [`crate::compression`]). The graph is built with full-precision distances.
    pub fn with_compression(config: HnswConfig, compression: Compression) -> Result<Self> {
        Self::with_storage(config, compression, &FullVectors::Memory)
    }

    /// [`with_compression`](Self::with_compression) keeping the full vectors where
    /// `full_vectors` says: on disk, they live in a file the index owns and appends to (see
    /// `row_file.rs`), and only the candidates' rows are read when a search rescores. Disk
    /// needs compression: an uncompressed index searches its full vectors.
    pub fn with_storage(
        config: HnswConfig,
        compression: Compression,
        full_vectors: &FullVectors,
    ) -> Result<Self> {
        check_f32_config(config.dim, config.metric, "HnswIndex")?;
        let codes = Codes::new(compression, config.dim, config.metric)?;
        let params = HnswParams::new(config.m, config.ef_construction, config.seed)
            .map_err(|e| Error::invalid(e.0))?;
        check_ef(config.ef_search)?;
        // Last: a setting refused above leaves no file behind.
        let disk = match full_vectors {
            FullVectors::Memory => None,
            FullVectors::Disk(path) => Some(Box::new(DiskRows {
                file: crate::row_file::create_for(path, &compression, config.dim)?,
                slot_rows: Vec::new(),
                view: None,
            })),
        };
        Ok(HnswIndex {
            config,
            kernel: RowKernel::default(),
            stride: padded_len(config.dim),
            rows: AlignedRows::default(),
            graph: Graph::new(params),
            used: 0,
            slot_keys: Vec::new(),
            slots: HashMap::new(),
            live: Vec::new(),
            tombstones: Vec::new(),
            free: Vec::new(),
            version: IndexVersion::next(),
            codes,
            read_only: false,
            disk,
        })
    }

    /// Where the full vectors are kept.
    pub fn full_vectors(&self) -> FullVectors {
        match &self.disk {
            Some(disk) => FullVectors::Disk(disk.file.path().to_path_buf()),
            None => FullVectors::Memory,
        }
    }

    pub fn config(&self) -> HnswConfig {
        self.config
    }

    pub fn compression(&self) -> &Compression {
        self.codes.config()
    }

    /// Whether searches can run: always for an uncompressed index, after training otherwise.
    pub fn is_trained(&self) -> bool {
        !self.codes.is_enabled() || self.codes.is_trained()
    }

    pub fn dim(&self) -> usize {
        self.config.dim
    }

    pub fn metric(&self) -> Metric {
        self.config.metric
    }

    /// Live vectors.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn contains(&self, key: u64) -> bool {
        self.slots.contains_key(&key)
    }

    fn scorer(&self) -> RowScorer<'_> {
        RowScorer::new(
            &self.rows,
            self.disk.as_deref(),
            self.stride,
            self.kernel,
            self.config.metric,
        )
    }

    #[inline]
    fn is_live(&self, slot: u32) -> bool {
        self.live
            .get(slot as usize / 64)
            .is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }

    fn set_live(&mut self, slot: u32, live: bool) {
        let word = &mut self.live[slot as usize / 64];
        let bit = 1u64 << (slot % 64);
        if live {
            *word |= bit;
        } else {
            *word &= !bit;
        }
    }

    /// Bytes held: rows, graph, keys, the key map and bitmaps.
    pub fn memory_bytes(&self) -> usize {
        self.memory_parts().total()
    }

    /// [`memory_bytes`](Self::memory_bytes) by part.
    pub fn memory_parts(&self) -> crate::MemoryParts {
        crate::MemoryParts {
            vectors: self.rows.bytes() + self.disk.as_ref().map_or(0, |d| d.bytes()),
            codes: self.codes.memory_bytes(),
            graph: self.graph.memory_bytes(),
            ids: std::mem::size_of::<Self>()
                + self.slot_keys.capacity() * 8
                + crate::flat_index::key_map_bytes(self.slots.capacity())
                + self.live.capacity() * 8
                + (self.free.capacity() + self.tombstones.capacity()) * 4,
        }
    }

    /// Sizes of the compressed form and of the full vectors kept for rescoring.
    pub fn compression_stats(&self) -> CompressionStats {
        let held = self.held_count();
        let mut figures = self
            .codes
            .figures(held, held * self.dim() * 4, self.memory_parts());
        if self.disk.is_some() {
            figures.full_vectors = "disk";
        }
        figures
    }

    /// Slots holding a row: live vectors and tombstones (not the compacted, reusable ones).
    fn held_count(&self) -> usize {
        self.used - self.free.len()
    }

    pub fn stats(&self) -> HnswStats {
        HnswStats {
            len: self.len(),
            tombstones: self.tombstones.len(),
            free_slots: self.free.len(),
            graph: self.graph.stats(self.used, &|slot| self.is_live(slot)),
            memory_bytes: self.memory_bytes(),
            memory: self.memory_parts(),
            compression: self.compression_stats(),
        }
    }

    /// Adds `keys.len()` vectors (row-major). A key already present has its vector replaced
    /// (upsert). The batch is validated whole first: on error or abort nothing changes.
    pub fn add(&mut self, keys: &[u64], vectors: &[f32], stop: &StopFlag) -> Result<()> {
        self.add_with(keys, vectors, stop, LinkMode::auto())
    }

    /// [`add`](Self::add) with an explicit link mode (`Sequential` builds deterministically).
    pub fn add_with(
        &mut self,
        keys: &[u64],
        vectors: &[f32],
        stop: &StopFlag,
        mode: LinkMode,
    ) -> Result<()> {
        stop.check()?;
        if self.should_compact() {
            self.compact(stop)?;
        }
        let pending = self.prepare(keys, vectors)?;
        match self.link(&pending, stop, mode) {
            Ok(()) => {
                self.commit(pending);
                Ok(())
            }
            Err(error) => {
                self.abandon(pending);
                Err(error)
            }
        }
    }

    /// Phase 1 of an add: validates the batch, assigns slots (reusing compacted ones first) and
    /// writes the rows. Nothing is visible to searches yet. A compressed index that reaches its
    /// training size trains by itself here; see [`Self::prepare_with`] to learn that model first.
    pub fn prepare(&mut self, keys: &[u64], vectors: &[f32]) -> Result<PendingBatch> {
        self.prepare_with(keys, vectors, None)
    }

    /// The model that adding this batch would make the index train by itself (None when it
    /// would not), learnt with shared access only: searches go on meanwhile. Validates the batch
    /// as [`Self::prepare`] does when it trains. Hand it to [`Self::prepare_with`] before any
    /// other write.
    pub fn fit_for_batch(&self, keys: &[u64], vectors: &[f32]) -> Result<Option<TrainedEncoder>> {
        self.check_writable()?;
        if !self.codes.wants_training(self.held_count() + keys.len()) {
            return Ok(None);
        }
        check_keyed_batch(keys, vectors, self.dim(), self.metric() == Metric::Cosine)?;
        let scorer = self.scorer();
        let read = row_reader(&scorer, self.dim());
        self.codes
            .fit_by_itself(&self.held_slots(), &read, vectors)
            .map(Some)
    }

    /// [`Self::prepare`] with the model from [`Self::fit_for_batch`], if one was learnt; without
    /// one, an index that reaches its training size learns it here, under exclusive access.
    pub fn prepare_with(
        &mut self,
        keys: &[u64],
        vectors: &[f32],
        model: Option<TrainedEncoder>,
    ) -> Result<PendingBatch> {
        self.check_writable()?;
        let dim = self.dim();
        check_keyed_batch(keys, vectors, dim, self.metric() == Metric::Cosine)?;
        let newly_trained = self.codes.wants_training(self.held_count() + keys.len());
        if newly_trained {
            let model = match model {
                Some(model) => model,
                None => {
                    let scorer = self.scorer();
                    let read = row_reader(&scorer, dim);
                    self.codes
                        .fit_by_itself(&self.held_slots(), &read, vectors)?
                }
            };
            self.codes.install(model, self.graph.capacity(), None)?;
        }
        let reused_count = self.free.len().min(keys.len());
        let fresh = keys.len() - reused_count;
        let wanted = self.used + fresh;
        if wanted > u32::MAX as usize {
            return Err(Error::invalid(
                "an HnswIndex holds at most 4,294,967,295 vectors",
            ));
        }
        self.reserve(wanted)?;
        let stride = self.stride;
        let cosine = self.metric() == Metric::Cosine;
        let fill = |row: &mut [f32], vector: &[f32]| {
            row[..dim].copy_from_slice(vector);
            row[dim..].fill(0.0);
            if cosine {
                normalize(&mut row[..dim]);
            }
        };
        // Rows on disk are appended before anything changes too: a failed write leaves the
        // index as it was (and at most dead rows past the file's saved length).
        let first_row = match &mut self.disk {
            Some(disk) => Some(crate::row_file::append_rows(
                &mut disk.file,
                vectors,
                dim,
                cosine,
            )?),
            None => None,
        };
        // Before anything changes, so a batch that does not fit leaves the index as it was.
        let mut slots = Vec::new();
        slots
            .try_reserve_exact(keys.len())
            .map_err(|_| out_of_memory("HnswIndex batch slots", keys.len()))?;
        let reused = self.free.split_off(self.free.len() - reused_count);
        let new_slots = (self.used..wanted).map(|s| s as u32);
        slots.extend(reused.into_iter().chain(new_slots));
        self.used = wanted;
        self.slot_keys.resize(wanted, 0);
        if let (Some(disk), Some(first)) = (&mut self.disk, first_row) {
            for (i, &slot) in slots.iter().enumerate() {
                disk.slot_rows[slot as usize] = first + i as u32;
            }
        } else {
            let values = self.rows.values_mut();
            for (&slot, vector) in slots.iter().zip(vectors.chunks_exact(dim)) {
                let start = slot as usize * stride;
                fill(&mut values[start..start + stride], vector);
            }
        }
        for (&slot, &key) in slots.iter().zip(keys) {
            self.slot_keys[slot as usize] = key;
        }
        let encode = if newly_trained {
            self.held_slots()
        } else {
            slots.clone()
        };
        self.encode(&encode)?;
        Ok(PendingBatch {
            keys: try_copy(keys, "HnswIndex batch keys")?,
            slots,
        })
    }

    /// Room for slots below `slots`, growing at least 1.5× so repeated adds stay amortised.
    fn reserve(&mut self, slots: usize) -> Result<()> {
        let capacity = self.graph.capacity();
        if slots <= capacity {
            return Ok(());
        }
        let target = slots.max(capacity + capacity / 2).max(64);
        match &mut self.disk {
            Some(disk) => {
                disk.slot_rows
                    .try_reserve_exact(target.saturating_sub(disk.slot_rows.len()))
                    .map_err(|_| out_of_memory("HnswIndex slot rows", target))?;
                disk.slot_rows.resize(target, u32::MAX);
            }
            None => self.rows.grow(target * self.stride)?,
        }
        self.codes.reserve(target)?;
        self.graph
            .try_reserve(target)
            .map_err(|_| out_of_memory("HnswIndex graph slots", target))?;
        let words = target.div_ceil(64);
        self.live
            .try_reserve_exact(words.saturating_sub(self.live.len()))
            .map_err(|_| out_of_memory("HnswIndex live-slot words", words))?;
        self.live.resize(words, 0);
        self.slot_keys
            .try_reserve_exact(target.saturating_sub(self.slot_keys.len()))
            .map_err(|_| out_of_memory("HnswIndex slot keys", target))?;
        Ok(())
    }

    /// Slots holding a vector (live, or removed but still linked), in slot order.
    fn held_slots(&self) -> Vec<u32> {
        let mut free = self.free.clone();
        free.sort_unstable();
        (0..self.used as u32)
            .filter(|s| free.binary_search(s).is_err())
            .collect()
    }

    /// Writes the codes of `slots` from their rows (nothing before training).
    fn encode(&mut self, slots: &[u32]) -> Result<()> {
        // Disjoint fields: the scorer borrows the rows, the encoding writes the codes.
        let scorer = RowScorer::new(
            &self.rows,
            self.disk.as_deref(),
            self.stride,
            self.kernel,
            self.config.metric,
        );
        let read = row_reader(&scorer, self.dim());
        self.codes.encode_slots(slots, &read)
    }

    /// Trains the compressed form on `sample` (row-major vectors, normalised for cosine like
    /// stored ones) and re-encodes every stored vector. Replaces an earlier training.
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
        self.check_writable()?;
        let mut trained = self.codes.fit_sample(sample, queries)?;
        // The stored vectors' codes too: encoding a large index takes a while as well.
        let scorer = self.scorer();
        let read = row_reader(&scorer, self.dim());
        Codes::stage(
            &mut trained,
            &self.held_slots(),
            &read,
            self.graph.capacity(),
            self.version,
        )?;
        Ok(trained)
    }

    /// The quick half of [`Self::train`]: puts a model from [`Self::fit`] in place, with the
    /// codes it encoded, or re-encodes every stored vector if the index changed since.
    pub fn install_training(&mut self, trained: TrainedEncoder) -> Result<()> {
        self.check_writable()?;
        if self
            .codes
            .install(trained, self.graph.capacity(), Some(self.version))?
        {
            return Ok(());
        }
        let held = self.held_slots();
        self.encode(&held)
    }

    /// Phase 2 of an add: links the batch's nodes into the graph in the configured insertion
    /// order. Needs only shared access; searches may run meanwhile.
    pub fn link(&self, pending: &PendingBatch, stop: &StopFlag, mode: LinkMode) -> Result<()> {
        let scorer = self.scorer();
        let is_stopped = || stop.is_stopped();
        threads::run(|| {
            stop.check()?;
            // The order reads the batch's rows: in a row file they sit at their own row numbers.
            let rows_of_batch: Vec<u32> = match scorer.rows_of {
                Some(rows_of) => pending.slots.iter().map(|&s| rows_of[s as usize]).collect(),
                None => pending.slots.clone(),
            };
            let order = insertion_order(
                self.config.insertion_order,
                scorer.rows,
                self.stride,
                self.dim(),
                &rows_of_batch,
                self.config.seed,
            )?;
            let nodes: Vec<u32> = order.iter().map(|&i| pending.slots[i]).collect();
            // Live slots and the batch's own; never removed ones, which compaction will unlink.
            let mut linkable = self.live.clone();
            for &slot in &nodes {
                linkable[slot as usize / 64] |= 1 << (slot % 64);
            }
            let linkable = |slot: u32| {
                linkable
                    .get(slot as usize / 64)
                    .is_some_and(|w| w & (1 << (slot % 64)) != 0)
            };
            let linked = self.graph.insert_batch(
                &nodes,
                &scorer,
                mode == LinkMode::Parallel,
                &linkable,
                &is_stopped,
            );
            if linked < nodes.len() {
                return Err(Error::Aborted);
            }
            Ok(())
        })
    }

    /// Phase 3 of an add: the batch becomes visible, replaced vectors become tombstones.
    pub fn commit(&mut self, pending: PendingBatch) {
        self.version = IndexVersion::next();
        for (&key, &slot) in pending.keys.iter().zip(&pending.slots) {
            if let Some(old) = self.slots.insert(key, slot) {
                self.set_live(old, false);
                self.tombstones.push(old);
            }
            self.set_live(slot, true);
        }
    }

    /// Gives up a prepared batch (after an error or abort): keys stay as they were, and its
    /// slots (perhaps partly linked) become tombstones.
    pub fn abandon(&mut self, pending: PendingBatch) {
        // Its rows were written: a model fitted before them must not bring codes without them.
        self.version = IndexVersion::next();
        self.tombstones.extend_from_slice(&pending.slots);
    }

    /// Removes the given keys (tombstones); unknown keys are ignored. Returns how many were
    /// removed.
    pub fn remove(&mut self, keys: &[u64]) -> Result<usize> {
        self.check_writable()?;
        self.version = IndexVersion::next();
        let mut removed = 0;
        for key in keys {
            if let Some(slot) = self.slots.remove(key) {
                self.set_live(slot, false);
                self.tombstones.push(slot);
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Whether this index is a read-only view of a file ([`HnswIndex::view`]).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn check_writable(&self) -> Result<()> {
        if self.read_only {
            Err(Error::ReadOnly)
        } else {
            Ok(())
        }
    }

    /// Whether tombstones have reached [`AUTO_COMPACT_FRACTION`] of the slots, so the next add
    /// compacts first.
    pub fn should_compact(&self) -> bool {
        !self.tombstones.is_empty()
            && self.tombstones.len() as f64 >= AUTO_COMPACT_FRACTION * self.used as f64
    }

    /// Relinks the graph around every removed vector so no link leads to one (recall recovers
    /// after many removals) and frees their slots for reuse. Returns the number of slots freed.
    pub fn compact(&mut self, stop: &StopFlag) -> Result<usize> {
        let relinked = self.relink_removed(stop)?;
        Ok(self.release_removed(relinked))
    }

    /// Phase 1 of [`compact`](Self::compact): relinks the graph around the current tombstones.
    /// Needs only shared access: searches may run meanwhile (they never return tombstones).
    pub fn relink_removed(&self, stop: &StopFlag) -> Result<RelinkedSlots> {
        self.check_writable()?;
        stop.check()?;
        let scorer = self.scorer();
        let removed = |slot: u32| !self.is_live(slot);
        let is_stopped = || stop.is_stopped();
        threads::run(|| {
            self.graph
                .compact(self.used, &removed, &scorer, &is_stopped)
                .ok_or(Error::Aborted)
        })?;
        let mut slots = self.tombstones.clone();
        slots.sort_unstable();
        Ok(RelinkedSlots(slots))
    }

    /// Phase 2 of [`compact`](Self::compact): the relinked tombstones become free slots.
    pub fn release_removed(&mut self, relinked: RelinkedSlots) -> usize {
        let RelinkedSlots(slots) = relinked;
        let before = self.tombstones.len();
        self.tombstones
            .retain(|slot| slots.binary_search(slot).is_err());
        let freed: Vec<u32> = slots
            .into_iter()
            .filter(|&slot| !self.is_live(slot))
            .collect();
        self.free.extend(freed);
        before - self.tombstones.len()
    }

    /// For a view, [`Error::Io`] when its file was changed in place since it was opened (see
    /// `mapped.rs`); nothing to check for a loaded or built index.
    pub fn check_view(&self) -> Result<()> {
        self.rows
            .shared
            .as_ref()
            .or(self.disk.as_ref().and_then(|d| d.view.as_ref()))
            .map_or(Ok(()), crate::mapped::MappedRange::check_unchanged)
    }

    /// [`get`](Self::get) that first checks a view's file ([`check_view`](Self::check_view)).
    pub fn try_get(&self, key: u64) -> Result<Option<Vec<f32>>> {
        self.check_view()?;
        Ok(self.get(key))
    }

    /// The stored vector of `key` (normalised, for cosine). On a view, see
    /// [`try_get`](Self::try_get).
    pub fn get(&self, key: u64) -> Option<Vec<f32>> {
        let slot = *self.slots.get(&key)?;
        Some(self.scorer().row(slot)[..self.dim()].to_vec())
    }

    /// Live keys in slot order.
    pub fn keys(&self) -> Vec<u64> {
        (0..self.used as u32)
            .filter(|&s| self.is_live(s))
            .map(|s| self.slot_keys[s as usize])
            .collect()
    }

    /// The `k` nearest stored vectors of each query (row-major `queries`), best first, keeping
    /// `ef_search` candidates (the configured default when `None`; at least `k`). Batches of
    /// more than one query run on the pool.
    pub fn search(
        &self,
        queries: &[f32],
        k: usize,
        ef_search: Option<usize>,
        filter: Option<&KeyFilter>,
        stop: &StopFlag,
    ) -> Result<SearchResults> {
        self.search_with(
            queries,
            k,
            ef_search,
            RescoreParams::default(),
            filter,
            stop,
        )
    }

    /// [`search`](Self::search) with the rescoring settings of a compressed index (ignored
    /// when the index is not compressed). A compressed index walks the graph on codes, keeping
    /// `max(ef, k × oversample)` candidates, and rescores the best `k × oversample` with the
    /// full vectors; searching it before training is [`Error::NotTrained`].
    pub fn search_with(
        &self,
        queries: &[f32],
        k: usize,
        ef_search: Option<usize>,
        rescore: RescoreParams,
        filter: Option<&KeyFilter>,
        stop: &StopFlag,
    ) -> Result<SearchResults> {
        self.check_view()?;
        let dim = self.dim();
        check_matrix(queries, dim, "queries", self.metric() == Metric::Cosine)?;
        if k == 0 {
            return Err(Error::invalid("k must be at least 1"));
        }
        let ef = ef_search.unwrap_or(self.config.ef_search);
        check_ef(ef)?;
        let compressed = if self.codes.is_enabled() {
            self.codes.searchable()?;
            Some(rescore)
        } else {
            None
        };
        let query_count = queries.len() / dim;
        let columns = k.min(self.len());
        let mut results = SearchResults::padded(query_count, columns)?;
        if columns == 0 {
            return Ok(results);
        }
        let mut plan = self.plan(filter, ef);
        if let Some(rescore) = compressed {
            plan.candidates = Some((rescore.candidates(k, self.codes.config())?, rescore.rescore));
        }
        if plan.admitted.as_ref().is_some_and(|a| a.is_empty()) {
            return Ok(results);
        }
        let rows = results
            .keys
            .chunks_mut(columns)
            .zip(results.distances.chunks_mut(columns))
            .zip(results.counts.iter_mut())
            .zip(queries.chunks_exact(dim));
        if query_count == 1 {
            let mut query = vec![0f32; self.stride];
            for (((keys, distances), count), q) in rows {
                *count = self.search_one(q, columns, &plan, &mut query, keys, distances);
            }
            return Ok(results);
        }
        let jobs: Vec<_> = rows.collect();
        threads::run(|| {
            jobs.into_par_iter()
                .with_min_len(QUERIES_PER_STOP_CHECK / 4)
                .try_for_each_init(
                    || (vec![0f32; self.stride], 0usize),
                    |(query, done), (((keys, distances), count), q)| {
                        *done += 1;
                        if (*done).is_multiple_of(QUERIES_PER_STOP_CHECK) {
                            stop.check()?;
                        }
                        *count = self.search_one(q, columns, &plan, query, keys, distances);
                        Ok::<(), Error>(())
                    },
                )
        })?;
        stop.check()?;
        Ok(results)
    }

    /// How a search treats its filter: the admitted slots, and whether to scan them exactly.
    fn plan(&self, filter: Option<&KeyFilter>, ef: usize) -> SearchPlan {
        let Some(filter) = filter else {
            return SearchPlan {
                ef,
                admitted: None,
                exact: false,
                candidates: None,
            };
        };
        let slots = filter.slot_set(self.version, &self.slots, self.graph.capacity(), || {
            (0..self.used as u32)
                .filter(|&s| self.is_live(s))
                .map(|s| (s, self.slot_keys[s as usize]))
        });
        let admitted = slots.len() as f64;
        let walk_cost = 2.0 * self.config.m as f64 * ef as f64 * self.len() as f64;
        SearchPlan {
            ef,
            exact: admitted * admitted <= walk_cost,
            admitted: Some(slots),
            candidates: None,
        }
    }

    /// Searches one query into its result row; returns the number of hits.
    fn search_one(
        &self,
        raw: &[f32],
        k: usize,
        plan: &SearchPlan,
        query: &mut [f32],
        keys: &mut [u64],
        distances: &mut [f32],
    ) -> u32 {
        let dim = self.dim();
        query[..dim].copy_from_slice(raw);
        query[dim..].fill(0.0);
        if self.metric() == Metric::Cosine {
            normalize(&mut query[..dim]);
        }
        let scorer = self.scorer();
        let row_query = RowQuery {
            scorer: &scorer,
            query,
        };
        let expected = plan
            .admitted
            .as_ref()
            .map_or(self.len(), |a| a.len())
            .min(k);
        let mut hits: Vec<Scored> = Vec::new();
        let exact = match &plan.admitted {
            Some(admitted) if plan.exact => Some(admitted.slots()),
            _ => None,
        };
        if exact.is_none() {
            match (plan.candidates, self.codes.searchable()) {
                (Some((candidates, rescore)), Ok(encoder)) => {
                    let mut scratch = Vec::new();
                    let reduced = encoder.reduce_query(&query[..dim], &mut scratch);
                    let wanted = candidates.max(k);
                    let codes = self.codes.bytes();
                    with_codec!(&encoder.codec, |codec| {
                        let code_query = CodeQuery::new(codec, reduced, codes);
                        self.walk(&code_query, wanted, plan, &mut hits);
                    });
                    if rescore {
                        for hit in &mut hits {
                            hit.distance = row_query.distance(hit.node);
                        }
                        hits.sort_unstable();
                    }
                    hits.truncate(k);
                }
                _ => self.walk(&row_query, k, plan, &mut hits),
            }
        }
        let scan = exact.is_some() || hits.len() < expected;
        trace::count(exact.is_none(), scan);
        if scan {
            // Too few hits from the walk (a narrow filter, or a region cut off by removals):
            // score the admitted vectors exactly.
            hits = self.scan_exact(&row_query, k, plan.admitted.as_deref());
        }
        let cosine = self.metric() == Metric::Cosine;
        for ((hit, key), distance) in hits.iter().zip(keys.iter_mut()).zip(distances.iter_mut()) {
            *key = self.slot_keys[hit.node as usize];
            // 1 − ⟨q̂,x̂⟩ can dip a rounding error below zero for identical vectors.
            *distance = if cosine {
                hit.distance.max(0.0)
            } else {
                hit.distance
            };
        }
        hits.len().min(k) as u32
    }
}

impl HnswIndex {
    /// The `k` best live vectors (admitted by `filter`) under a caller's distance of keys, found
    /// by walking the graph with `ef` candidates: the graph's links guide the walk, and every
    /// node it visits is scored by `distance(key)` instead of the stored vectors. For a metric
    /// the graph approximates (a multi-vector index walks its FDE graph with exact Chamfer).
    /// A filter that admits few vectors is scanned instead. Best first, as `(key, distance)`.
    pub fn walk_by_key(
        &self,
        distance: &(dyn Fn(u64) -> f32 + Sync),
        k: usize,
        ef: usize,
        filter: Option<&KeyFilter>,
    ) -> Result<Vec<(u64, f32)>> {
        self.check_view()?;
        check_ef(ef)?;
        if k == 0 || self.is_empty() {
            return Ok(Vec::new());
        }
        struct KeyDistance<'a> {
            keys: &'a [u64],
            distance: &'a (dyn Fn(u64) -> f32 + Sync),
        }
        impl QueryDistance for KeyDistance<'_> {
            fn distance(&self, node: u32) -> f32 {
                (self.distance)(self.keys[node as usize])
            }
        }
        let query = KeyDistance {
            keys: &self.slot_keys,
            distance,
        };
        let plan = self.plan(filter, ef.max(k));
        let expected = plan
            .admitted
            .as_ref()
            .map_or(self.len(), |a| a.len())
            .min(k);
        let mut hits = Vec::new();
        if !plan.exact {
            self.walk(&query, k, &plan, &mut hits);
        }
        let scan = plan.exact || hits.len() < expected;
        trace::count(!plan.exact, scan);
        if scan {
            // As in `search_one`: a narrow filter, or a walk that found too few.
            hits = self.scan_exact(&query, k, plan.admitted.as_deref());
        }
        Ok(hits
            .iter()
            .take(k)
            .map(|h| (self.slot_keys[h.node as usize], h.distance))
            .collect())
    }

    /// The `k` nearest of the admitted slots (every live slot when `None`), scoring each.
    fn scan_exact<Q: QueryDistance>(
        &self,
        query: &Q,
        k: usize,
        admitted: Option<&SlotSet>,
    ) -> Vec<Scored> {
        let mut top = TopK::new(k);
        let mut offer = |slot: u32| top.push(query.distance(slot), slot);
        match admitted {
            Some(admitted) => admitted.slots().iter().for_each(|&s| offer(s)),
            None => (0..self.used as u32)
                .filter(|&s| self.is_live(s))
                .for_each(offer),
        }
        top.into_sorted()
            .into_iter()
            .map(|n| Scored {
                distance: n.distance,
                node: n.index,
            })
            .collect()
    }

    /// The `k` nearest admitted nodes by `query`'s distances, from a graph walk.
    fn walk<Q: QueryDistance>(
        &self,
        query: &Q,
        k: usize,
        plan: &SearchPlan,
        hits: &mut Vec<Scored>,
    ) {
        self.graph.with_context(|ctx| match &plan.admitted {
            Some(admitted) => {
                let admit = |s: u32| admitted.admits(s as usize);
                // Gives up (no hits: the caller then scans) once the walk has scored as many
                // nodes as the exact scan of the admitted slots would.
                let budget = admitted.len();
                self.graph
                    .search_within(query, k, plan.ef, &admit, budget, ctx, hits);
            }
            None => {
                let admit = |s: u32| self.is_live(s);
                self.graph.search(query, k, plan.ef, &admit, ctx, hits);
            }
        });
    }
}

/// Reads the first `dim` values of a slot's row.
fn row_reader<'a>(scorer: &'a RowScorer<'a>, dim: usize) -> impl Fn(u32, &mut [f32]) + Sync + 'a {
    move |slot, out| out.copy_from_slice(&scorer.row(slot)[..dim])
}


fn check_ef(ef: usize) -> Result<()> {
    if !(1..=vecdex_hnsw::MAX_EF).contains(&ef) {
        return Err(Error::invalid(format!(
            "efSearch must be between 1 and {}, got {ef}",
            vecdex_hnsw::MAX_EF
        )));
    }
    Ok(())
}

struct SearchPlan {
    ef: usize,
    /// Live slots the filter admits (`None`: no filter, every live slot).
    admitted: Option<Arc<SlotSet>>,
    /// Scan the admitted slots instead of walking the graph.
    exact: bool,
    /// Compressed index: candidates taken from the codes, and whether to rescore them.
    candidates: Option<(usize, bool)>,
}
