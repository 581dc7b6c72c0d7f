//! A collection: a vector store over an index (flat or HNSW, with any compression), holding for
//! each item the caller's id, its vector, an optional text and a JSON metadata object, with
//! metadata filters evaluated natively.
//!
//! Each item lives in a row (a dense `u32`, reused after a delete); the row number is the item's
//! key in the index, so a filter compiled to a bitmap of rows is directly a key bitmap the index
//! tests inside its graph walk (see [`KeyFilter::of_key_bits`]), with the index's own exact-scan
//! rule for narrow filters. Declared metadata fields are kept column-wise with per-value bitmaps
//! ([`columns`]); filters on other fields evaluate each item's metadata (slower, still exact).
//!
//! Everything an item is (id, vector, text, metadata) is written by one upsert, and saved by one
//! atomic save into one checksummed file ([`persist`]), so they can never disagree.

pub mod columns;
pub mod filter;
mod ids;
pub(crate) mod persist;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use roaring::RoaringBitmap;
use serde_json::{Map, Value};

pub use columns::{Columns, FieldType};
pub use filter::Filter;
pub use ids::{ItemId, MAX_ID_BYTES};
pub use persist::CollectionSnapshot;

use crate::cancel::StopFlag;
use crate::compression::{Compression, CompressionStats, RescoreParams};
use crate::error::{Error, Result};
use crate::filter::KeyFilter;
use crate::flat_index::{FlatConfig, FlatIndex, SearchResults};
use crate::compression::TrainedEncoder;
use crate::hnsw_index::{HnswConfig, HnswIndex, LinkMode, PendingBatch, RelinkedSlots};
use crate::index::{Index, Persistent};
use crate::Metric;

/// Names of the declared field types ([`FieldType::name`]), for the options table.
pub const FIELD_TYPES: &[&str] = &["string", "number", "boolean", "string[]"];
/// Items a collection holds, at most (rows are `u32`, and one value marks "no row").
pub const MAX_ITEMS: usize = u32::MAX as usize - 1;
/// Compiled filters a collection remembers until its next write (a service repeats a few).
const COMPILED_FILTER_CACHE: usize = 16;

/// The index under a collection.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per collection, never moved in a loop
pub enum CollectionIndex {
    Flat(FlatIndex),
    Hnsw(HnswIndex),
}

/// Which index a new collection builds, with its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IndexSettings {
    Flat(FlatConfig),
    Hnsw(HnswConfig),
}

/// Settings of a new [`Collection`].
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionConfig {
    pub index: IndexSettings,
    pub compression: Compression,
    /// Declared metadata fields (kept column-wise with bitmaps), by name.
    pub fields: Vec<(String, FieldType)>,
    /// Where the index keeps its full vectors (see [`HnswIndex::with_storage`]).
    pub full_vectors: crate::FullVectors,
}

/// A batch of items for [`Collection::upsert`]: item `i` is `ids[i]`, the `i`-th row of
/// `vectors` (`ids.len() × dimensions` values, row-major), `texts[i]` and `metadata[i]` (the
/// JSON text of an object). `texts` and `metadata` are empty when no item has one.
#[derive(Debug, Clone, Default)]
pub struct ItemBatch {
    pub ids: Vec<ItemId>,
    pub vectors: Vec<f32>,
    pub texts: Vec<Option<String>>,
    pub metadata: Vec<Option<String>>,
}

/// A checked upsert batch with its rows planned.
#[derive(Debug)]
struct PlannedUpsert {
    ids: Vec<ItemId>,
    /// Each item's row, as its index key.
    keys: Vec<u64>,
    vectors: Vec<f32>,
    texts: Vec<Option<String>>,
    metadata: Vec<Option<Map<String, Value>>>,
    /// Freed rows left once the batch took its own (the batch takes them from the end).
    free: usize,
    /// Rows in the table once the batch is in.
    next: usize,
}

/// An upsert between its phases (see [`Collection::upsert`]).
#[derive(Debug)]
#[must_use = "a prepared upsert must be linked and committed, or abandoned"]
pub struct PendingUpsert {
    plan: PlannedUpsert,
    /// The HNSW batch written but not yet linked (`None` for a flat collection, stored whole).
    index: Option<PendingBatch>,
}

/// A stored item, as [`Collection::get`] returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRecord {
    pub id: ItemId,
    pub text: Option<String>,
    /// The metadata object's JSON text.
    pub metadata: Option<String>,
    /// The stored vector (normalised for cosine), when asked for.
    pub vector: Option<Vec<f32>>,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionHit {
    pub id: ItemId,
    /// Lower is closer (the index's metric).
    pub distance: f32,
    pub text: Option<String>,
    pub metadata: Option<String>,
    pub vector: Option<Vec<f32>>,
}

/// What a search returns besides the hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HitContents {
    /// Each hit's text and metadata.
    pub metadata: bool,
    /// Each hit's stored vector.
    pub vectors: bool,
}

/// Sizes of a collection's parts, in bytes held in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionStats {
    /// Live items.
    pub len: usize,
    /// The whole collection: the index and everything below.
    pub memory_bytes: usize,
    /// The index (vectors, graph, codes).
    pub index_bytes: usize,
    /// `index_bytes` by part.
    pub index: crate::MemoryParts,
    /// Ids: the id-to-row map and the row-to-id table.
    pub id_bytes: usize,
    pub text_bytes: usize,
    /// Metadata as stored (JSON text per item).
    pub metadata_bytes: usize,
    /// Declared fields' columns (value bitmaps) and the live-row bitmap.
    pub column_bytes: usize,
    pub compression: CompressionStats,
}

/// A filter compiled against the collection's current state.
#[derive(Debug)]
struct CompiledFilter {
    /// Items admitted.
    count: usize,
    /// The rows as a key filter for the index; `None` admits every item.
    keys: Option<Arc<KeyFilter>>,
}

/// A vector store: see the module docs.
#[derive(Debug)]
pub struct Collection {
    index: CollectionIndex,
    columns: Columns,
    /// Id of each row; `None` for a free row.
    row_ids: Vec<Option<ItemId>>,
    rows: HashMap<ItemId, u32>,
    /// Rows freed by deletes, reused by later upserts.
    free_rows: Vec<u32>,
    texts: Vec<Option<Box<str>>>,
    /// Each row's metadata object as compact JSON text.
    metadata: Vec<Option<Box<str>>>,
    /// Rows holding an item.
    live: RoaringBitmap,
    /// Recently compiled filters by their JSON text, for this state (cleared by every write).
    compiled: Mutex<Vec<(Box<str>, Arc<CompiledFilter>)>>,
    /// A view of a mapped file ([`Collection::view`]): every write is an [`Error::ReadOnly`].
    read_only: bool,
    /// Heap bytes of the ids, texts and metadata, kept as rows change (for [`Collection::stats`]).
    heap: HeapBytes,
}

/// Bytes the strings of a collection's rows hold on the heap.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct HeapBytes {
    /// String ids, counted twice: the map's key and the row table's copy.
    ids: usize,
    texts: usize,
    metadata: usize,
}

impl HeapBytes {
    fn of_row(id: Option<&ItemId>, text: Option<&str>, metadata: Option<&str>) -> Self {
        HeapBytes {
            ids: id.map_or(0, |id| 2 * id.heap_bytes()),
            texts: text.map_or(0, str::len),
            metadata: metadata.map_or(0, str::len),
        }
    }

    fn add(&mut self, other: HeapBytes) {
        self.ids += other.ids;
        self.texts += other.texts;
        self.metadata += other.metadata;
    }

    fn subtract(&mut self, other: HeapBytes) {
        self.ids -= other.ids;
        self.texts -= other.texts;
        self.metadata -= other.metadata;
    }
}

impl CollectionIndex {
    fn dim(&self) -> usize {
        match self {
            CollectionIndex::Flat(i) => i.dim(),
            CollectionIndex::Hnsw(i) => i.dim(),
        }
    }

    fn metric(&self) -> Metric {
        match self {
            CollectionIndex::Flat(i) => i.metric(),
            CollectionIndex::Hnsw(i) => i.metric(),
        }
    }

    fn index(&self) -> &dyn IndexParts {
        match self {
            CollectionIndex::Flat(i) => i,
            CollectionIndex::Hnsw(i) => i,
        }
    }

    fn remove(&mut self, keys: &[u64]) -> Result<usize> {
        match self {
            CollectionIndex::Flat(i) => Ok(i.remove(keys)),
            CollectionIndex::Hnsw(i) => i.remove(keys),
        }
    }

    fn search(
        &self,
        queries: &[f32],
        k: usize,
        ef_search: Option<usize>,
        rescore: RescoreParams,
        filter: Option<&KeyFilter>,
        stop: &StopFlag,
    ) -> Result<SearchResults> {
        match self {
            CollectionIndex::Flat(i) => i.search_with(queries, k, rescore, filter, stop),
            CollectionIndex::Hnsw(i) => {
                i.search_with(queries, k, ef_search, rescore, filter, stop)
            }
        }
    }

    fn compression(&self) -> &Compression {
        match self {
            CollectionIndex::Flat(i) => i.compression(),
            CollectionIndex::Hnsw(i) => i.compression(),
        }
    }
}

/// The object-safe part of [`Index`] a collection reads through.
trait IndexParts {
    fn len(&self) -> usize;
    fn memory_bytes(&self) -> usize;
    fn memory_parts(&self) -> crate::MemoryParts;
    fn contains(&self, key: u64) -> bool;
    fn vector(&self, key: u64) -> Result<Option<Vec<f32>>>;
    fn is_trained(&self) -> bool;
    fn compression_stats(&self) -> CompressionStats;
}

impl<T: crate::VectorIndex> IndexParts for T {
    fn len(&self) -> usize {
        Persistent::len(self)
    }
    fn memory_bytes(&self) -> usize {
        Persistent::memory_bytes(self)
    }
    fn memory_parts(&self) -> crate::MemoryParts {
        crate::VectorIndex::memory_parts(self)
    }
    fn contains(&self, key: u64) -> bool {
        Index::contains(self, key)
    }
    fn vector(&self, key: u64) -> Result<Option<Vec<f32>>> {
        Index::vector(self, key)
    }
    fn is_trained(&self) -> bool {
        Index::is_trained(self)
    }
    fn compression_stats(&self) -> CompressionStats {
        Index::compression_stats(self)
    }
}

/// Parses an item's metadata JSON text: an object, or `null` for none.
fn parse_metadata(text: &str) -> Result<Option<Map<String, Value>>> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(Value::Null) => Ok(None),
        Ok(other) => Err(Error::invalid(format!(
            "metadata must be a JSON object, got {}",
            json_kind(&other)
        ))),
        Err(e) => Err(Error::invalid(format!("metadata is not valid JSON: {e}"))),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Collection {
    /// A new, empty collection.
    pub fn new(config: CollectionConfig) -> Result<Self> {
        let index = match config.index {
            IndexSettings::Flat(flat) => CollectionIndex::Flat(FlatIndex::with_storage(
                flat,
                config.compression,
                &config.full_vectors,
            )?),
            IndexSettings::Hnsw(hnsw) => CollectionIndex::Hnsw(HnswIndex::with_storage(
                hnsw,
                config.compression,
                &config.full_vectors,
            )?),
        };
        Ok(Self::empty(index, Columns::new(config.fields)?))
    }

    fn empty(index: CollectionIndex, columns: Columns) -> Self {
        Collection {
            index,
            columns,
            row_ids: Vec::new(),
            rows: HashMap::new(),
            free_rows: Vec::new(),
            texts: Vec::new(),
            metadata: Vec::new(),
            live: RoaringBitmap::new(),
            compiled: Mutex::new(Vec::new()),
            read_only: false,
            heap: HeapBytes::default(),
        }
    }

    pub fn dim(&self) -> usize {
        self.index.dim()
    }

    pub fn metric(&self) -> Metric {
        self.index.metric()
    }

    /// The index under the collection.
    pub fn index(&self) -> &CollectionIndex {
        &self.index
    }

    /// Declared metadata fields.
    pub fn fields(&self) -> &[(String, FieldType)] {
        self.columns.fields()
    }

    pub fn compression(&self) -> &Compression {
        self.index.compression()
    }

    /// Whether this is a read-only view of a file ([`Collection::view`]).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }

    /// Live items.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn contains(&self, id: &ItemId) -> bool {
        self.rows.contains_key(id)
    }

    /// Whether searches can run (a compressed index trains on its first adds).
    pub fn is_trained(&self) -> bool {
        self.index.index().is_trained()
    }

    /// Bytes held in memory by the whole collection (see [`stats`](Self::stats)).
    pub fn memory_bytes(&self) -> usize {
        self.stats().memory_bytes
    }

    pub fn stats(&self) -> CollectionStats {
        let index_bytes = self.index.index().memory_bytes();
        let id_bytes = self.rows.capacity() * (std::mem::size_of::<(ItemId, u32)>() + 1)
            + self.row_ids.capacity() * std::mem::size_of::<Option<ItemId>>()
            + self.free_rows.capacity() * 4
            + self.heap.ids;
        let table = |column: &Vec<Option<Box<str>>>| {
            column.capacity() * std::mem::size_of::<Option<Box<str>>>()
        };
        let text_bytes = table(&self.texts) + self.heap.texts;
        let metadata_bytes = table(&self.metadata) + self.heap.metadata;
        let column_bytes = self.columns.memory_bytes() + self.live.serialized_size();
        CollectionStats {
            len: self.len(),
            memory_bytes: index_bytes + id_bytes + text_bytes + metadata_bytes + column_bytes,
            index_bytes,
            index: self.index.index().memory_parts(),
            id_bytes,
            text_bytes,
            metadata_bytes,
            column_bytes,
            compression: self.index.index().compression_stats(),
        }
    }

    /// Inserts new items and replaces existing ones (vector, text and metadata together; an
    /// item given without text or metadata loses the old one). The whole batch is checked
    /// before anything changes, and an error or a stop leaves the collection as it was.
    ///
    /// Runs the three phases below in a row; a caller that lets searches go on while a batch
    /// is linked runs them itself, with exclusive access for `prepare_upsert` and
    /// `commit_upsert` / `abandon_upsert`, shared access for `link_upsert`.
    pub fn upsert(&mut self, batch: ItemBatch, stop: &StopFlag) -> Result<()> {
        stop.check()?;
        if self.should_compact() {
            let relinked = self.relink_removed(stop)?;
            self.release_removed(relinked);
        }
        let pending = self.prepare_upsert(batch, None)?;
        match self.link_upsert(&pending, stop) {
            Ok(()) => {
                self.commit_upsert(pending);
                Ok(())
            }
            Err(error) => {
                self.abandon_upsert(pending);
                Err(error)
            }
        }
    }

    /// Checks a batch and plans its rows, with shared access: an existing id keeps its row,
    /// new ids take freed rows, then new ones.
    fn plan_upsert(&self, batch: ItemBatch) -> Result<PlannedUpsert> {
        self.check_writable()?;
        let count = batch.ids.len();
        let dim = self.dim();
        if batch.vectors.len() != count.saturating_mul(dim) {
            return Err(Error::DimensionMismatch {
                expected: count.saturating_mul(dim),
                actual: batch.vectors.len(),
                what: format!("the vector values of {count} items"),
            });
        }
        for (what, len) in [("texts", batch.texts.len()), ("metadata", batch.metadata.len())] {
            if len != 0 && len != count {
                return Err(Error::invalid(format!(
                    "{count} items but {len} {what}"
                )));
            }
        }
        let mut first_at: HashMap<&ItemId, usize> = HashMap::with_capacity(count);
        for (i, id) in batch.ids.iter().enumerate() {
            if let Some(first) = first_at.insert(id, i) {
                return Err(Error::invalid(format!(
                    "items[{i}] repeats the id {id} of items[{first}]"
                )));
            }
        }
        drop(first_at);
        let mut metadata = Vec::with_capacity(count);
        let texts_of_metadata = batch.metadata.iter().map(Some).chain(std::iter::repeat(None));
        for (i, text) in texts_of_metadata.take(count).enumerate() {
            let parsed = match text.and_then(Option::as_deref) {
                Some(text) => parse_metadata(text)
                    .map_err(|e| Error::invalid(format!("items[{i}]: {}", e)))?,
                None => None,
            };
            self.columns
                .check(parsed.as_ref())
                .map_err(|e| Error::invalid(format!("items[{i}]: {}", e)))?;
            metadata.push(parsed);
        }
        let mut free = self.free_rows.len();
        let mut next = self.row_ids.len();
        let mut rows = Vec::with_capacity(count);
        for id in &batch.ids {
            let row = match self.rows.get(id) {
                Some(&row) => row,
                None if free > 0 => {
                    free -= 1;
                    self.free_rows[free]
                }
                None => {
                    if next >= MAX_ITEMS {
                        return Err(Error::invalid(format!(
                            "a collection holds at most {MAX_ITEMS} items"
                        )));
                    }
                    next += 1;
                    (next - 1) as u32
                }
            };
            rows.push(row);
        }
        let keys = rows.iter().map(|&r| u64::from(r)).collect();
        Ok(PlannedUpsert {
            ids: batch.ids,
            keys,
            vectors: batch.vectors,
            texts: batch.texts,
            metadata,
            free,
            next,
        })
    }

    /// The compression model upserting `batch` would make an HNSW collection train by itself
    /// (see [`HnswIndex::fit_for_batch`]), learnt with shared access; `None` when it would not.
    pub fn fit_for_upsert(&self, batch: &ItemBatch) -> Result<Option<TrainedEncoder>> {
        match &self.index {
            CollectionIndex::Hnsw(index) => {
                // Distinct stand-in keys: only the batch's shape matters here.
                let keys: Vec<u64> = (0..batch.ids.len() as u64).collect();
                index.fit_for_batch(&keys, &batch.vectors)
            }
            CollectionIndex::Flat(_) => Ok(None),
        }
    }

    /// Phase 1 of an upsert (exclusive access, brief for HNSW): checks the batch, plans its
    /// rows and writes the vectors into the index, not yet visible. A flat collection stores
    /// them here whole (a copy, no linking) and they are visible at once: keep exclusive
    /// access through all three phases of a flat collection's upsert.
    pub fn prepare_upsert(
        &mut self,
        batch: ItemBatch,
        model: Option<TrainedEncoder>,
    ) -> Result<PendingUpsert> {
        let plan = self.plan_upsert(batch)?;
        let index = match &mut self.index {
            CollectionIndex::Hnsw(index) => {
                Some(index.prepare_with(&plan.keys, &plan.vectors, model)?)
            }
            CollectionIndex::Flat(index) => {
                index.add(&plan.keys, &plan.vectors, &StopFlag::never())?;
                None
            }
        };
        Ok(PendingUpsert { plan, index })
    }

    /// Phase 2 (shared access: searches go on): links an HNSW batch into the graph.
    pub fn link_upsert(&self, pending: &PendingUpsert, stop: &StopFlag) -> Result<()> {
        match (&self.index, &pending.index) {
            (CollectionIndex::Hnsw(index), Some(batch)) => {
                index.link(batch, stop, LinkMode::auto())
            }
            _ => Ok(()),
        }
    }

    /// Phase 3 (exclusive access): the batch becomes visible, with its ids, texts and
    /// metadata, at once.
    pub fn commit_upsert(&mut self, pending: PendingUpsert) {
        let PendingUpsert { plan, index } = pending;
        if let (CollectionIndex::Hnsw(hnsw), Some(batch)) = (&mut self.index, index) {
            hnsw.commit(batch);
        }
        self.forget_compiled();
        self.free_rows.truncate(plan.free);
        self.row_ids.resize(plan.next, None);
        self.texts.resize(plan.next, None);
        self.metadata.resize(plan.next, None);
        let texts = plan.texts.into_iter().map(Some).chain(std::iter::repeat(None));
        for (((id, key), parsed), text) in plan.ids.into_iter().zip(plan.keys).zip(plan.metadata).zip(texts)
        {
            let row = key as u32;
            let r = row as usize;
            if self.row_ids[r].is_some() {
                let old = self.row_metadata(row);
                self.columns.remove(row, old.as_ref());
                self.heap.subtract(self.row_heap(r));
            }
            self.columns.insert(row, parsed.as_ref());
            self.metadata[r] = parsed.map(|m| Value::Object(m).to_string().into_boxed_str());
            self.texts[r] = text.flatten().map(String::into_boxed_str);
            self.rows.insert(id.clone(), row);
            self.row_ids[r] = Some(id);
            self.heap.add(self.row_heap(r));
            self.live.insert(row);
        }
    }

    /// Undoes phase 1 after a failed or stopped link: the collection is as it was.
    pub fn abandon_upsert(&mut self, pending: PendingUpsert) {
        if let (CollectionIndex::Hnsw(hnsw), Some(batch)) = (&mut self.index, pending.index) {
            hnsw.abandon(batch);
        }
    }

    /// Whether enough items were deleted for an upsert to compact the graph first.
    pub fn should_compact(&self) -> bool {
        match &self.index {
            CollectionIndex::Hnsw(index) => index.should_compact(),
            CollectionIndex::Flat(_) => false,
        }
    }

    /// Compaction phase 1, with shared access (see [`HnswIndex::relink_removed`]).
    pub fn relink_removed(&self, stop: &StopFlag) -> Result<Option<RelinkedSlots>> {
        match &self.index {
            CollectionIndex::Hnsw(index) => index.relink_removed(stop).map(Some),
            CollectionIndex::Flat(_) => Ok(None),
        }
    }

    /// Compaction phase 2, with exclusive access: frees the relinked slots.
    pub fn release_removed(&mut self, relinked: Option<RelinkedSlots>) {
        if let (CollectionIndex::Hnsw(index), Some(relinked)) = (&mut self.index, relinked) {
            index.release_removed(relinked);
        }
    }

    /// Removes the items with these ids (absent ones are skipped); returns how many went.
    pub fn delete(&mut self, ids: &[ItemId]) -> Result<usize> {
        let mut rows: Vec<u32> = ids.iter().filter_map(|id| self.rows.get(id).copied()).collect();
        rows.sort_unstable();
        rows.dedup();
        self.remove_rows(&rows)
    }

    /// Removes every item `filter` (JSON text) admits; returns how many went.
    pub fn delete_where(&mut self, filter: &str) -> Result<usize> {
        let filter = Filter::parse(&parse_filter_json(filter)?)?;
        let rows: Vec<u32> = self.filter_rows(&filter).iter().collect();
        self.remove_rows(&rows)
    }

    fn remove_rows(&mut self, rows: &[u32]) -> Result<usize> {
        self.check_writable()?;
        if rows.is_empty() {
            return Ok(0);
        }
        let keys: Vec<u64> = rows.iter().map(|&r| u64::from(r)).collect();
        self.index.remove(&keys)?;
        self.forget_compiled();
        for &row in rows {
            let old = self.row_metadata(row);
            self.columns.remove(row, old.as_ref());
            let r = row as usize;
            self.heap.subtract(self.row_heap(r));
            if let Some(id) = self.row_ids[r].take() {
                self.rows.remove(&id);
            }
            self.texts[r] = None;
            self.metadata[r] = None;
            self.live.remove(row);
            self.free_rows.push(row);
        }
        Ok(rows.len())
    }

    /// The stored items of these ids, in order (`None` for an absent id).
    pub fn get(&self, ids: &[ItemId], vectors: bool) -> Result<Vec<Option<ItemRecord>>> {
        ids.iter()
            .map(|id| {
                let Some(&row) = self.rows.get(id) else {
                    return Ok(None);
                };
                let r = row as usize;
                let vector = if vectors {
                    self.index.index().vector(u64::from(row))?
                } else {
                    None
                };
                Ok(Some(ItemRecord {
                    id: id.clone(),
                    text: self.texts[r].as_deref().map(str::to_owned),
                    metadata: self.metadata[r].as_deref().map(str::to_owned),
                    vector,
                }))
            })
            .collect()
    }

    /// Every id, in row order.
    pub fn ids(&self) -> Vec<ItemId> {
        self.row_ids.iter().flatten().cloned().collect()
    }

    /// Items `filter` (JSON text) admits; every item without one.
    pub fn count(&self, filter: Option<&str>) -> Result<usize> {
        match filter {
            None => Ok(self.len()),
            Some(text) => Ok(self.compiled(text)?.count),
        }
    }

    /// The `k` nearest items of each query (row-major `queries`) that `filter` (JSON text)
    /// admits, best first; `ef_search` for an HNSW collection (its default when `None`).
    #[allow(clippy::too_many_arguments)] // the search's settings, each distinct
    pub fn search(
        &self,
        queries: &[f32],
        k: usize,
        ef_search: Option<usize>,
        rescore: RescoreParams,
        filter: Option<&str>,
        contents: HitContents,
        stop: &StopFlag,
    ) -> Result<Vec<Vec<CollectionHit>>> {
        let compiled = filter.map(|text| self.compiled(text)).transpose()?;
        let keys = compiled.as_ref().and_then(|c| c.keys.as_deref());
        let results = self.index.search(queries, k, ef_search, rescore, keys, stop)?;
        let mut out = Vec::with_capacity(results.counts.len());
        for q in 0..results.counts.len() {
            let hits = results.counts[q] as usize;
            let at = q * results.k;
            let mut row_hits = Vec::with_capacity(hits);
            for (&key, &distance) in results.keys[at..at + hits]
                .iter()
                .zip(&results.distances[at..at + hits])
            {
                row_hits.push(self.hit(key, distance, contents)?);
            }
            out.push(row_hits);
        }
        Ok(out)
    }

    fn hit(&self, key: u64, distance: f32, contents: HitContents) -> Result<CollectionHit> {
        let r = key as usize;
        let id = self
            .row_ids
            .get(r)
            .cloned()
            .flatten()
            .ok_or_else(|| Error::Internal(format!("the index returned key {key}, which is no item")))?;
        let (text, metadata) = if contents.metadata {
            (
                self.texts[r].as_deref().map(str::to_owned),
                self.metadata[r].as_deref().map(str::to_owned),
            )
        } else {
            (None, None)
        };
        let vector = if contents.vectors {
            self.index.index().vector(key)?
        } else {
            None
        };
        Ok(CollectionHit {
            id,
            distance,
            text,
            metadata,
            vector,
        })
    }

    /// Checks a filter's JSON text without running it.
    pub fn check_filter(filter: &str) -> Result<()> {
        Filter::parse(&parse_filter_json(filter)?).map(|_| ())
    }

    /// The compiled form of a filter, from the cache when this state compiled it already.
    fn compiled(&self, text: &str) -> Result<Arc<CompiledFilter>> {
        let mut cache = self
            .compiled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, compiled)) = cache.iter().find(|(t, _)| &**t == text) {
            return Ok(compiled.clone());
        }
        drop(cache);
        let filter = Filter::parse(&parse_filter_json(text)?)?;
        let compiled = Arc::new(if filter.matches_all() {
            CompiledFilter {
                count: self.len(),
                keys: None,
            }
        } else {
            let rows = self.filter_rows(&filter);
            let mut words = vec![0u64; self.row_ids.len().div_ceil(64)];
            for row in &rows {
                words[row as usize / 64] |= 1 << (row % 64);
            }
            CompiledFilter {
                count: rows.len() as usize,
                keys: Some(Arc::new(KeyFilter::of_key_bits(words))),
            }
        });
        cache = self
            .compiled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.len() >= COMPILED_FILTER_CACHE {
            cache.remove(0);
        }
        cache.push((text.into(), compiled.clone()));
        Ok(compiled)
    }

    /// The live rows `filter` admits.
    fn filter_rows(&self, filter: &Filter) -> RoaringBitmap {
        self.columns
            .compile(filter, &self.live, &|row| self.row_metadata(row))
    }

    /// A row's metadata, parsed (it was checked when stored).
    fn row_metadata(&self, row: u32) -> Option<Map<String, Value>> {
        let text = self.metadata.get(row as usize)?.as_deref()?;
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        }
    }

    /// Heap bytes of row `r`'s id, text and metadata.
    fn row_heap(&self, r: usize) -> HeapBytes {
        HeapBytes::of_row(
            self.row_ids[r].as_ref(),
            self.texts[r].as_deref(),
            self.metadata[r].as_deref(),
        )
    }

    fn forget_compiled(&mut self) {
        self.compiled
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }
}

/// Parses a filter's JSON text (the binding hands filters over as text).
fn parse_filter_json(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::invalid(format!("filter is not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recount(c: &Collection) -> HeapBytes {
        let mut total = HeapBytes::default();
        for r in 0..c.row_ids.len() {
            total.add(c.row_heap(r));
        }
        total
    }

    #[test]
    fn heap_bytes_follow_upserts_replacements_deletes_and_loads() {
        let mut c = Collection::new(CollectionConfig {
            index: IndexSettings::Hnsw(HnswConfig::new(2, Metric::L2sq)),
            compression: Compression::default(),
            fields: vec![("k".into(), FieldType::String)],
            full_vectors: crate::FullVectors::Memory,
        })
        .expect("new");
        let batch = |ids: &[&str], text: &str, meta: &str| ItemBatch {
            ids: ids.iter().map(|s| ItemId::Str((*s).into())).collect(),
            vectors: vec![0.5; ids.len() * 2],
            texts: ids.iter().map(|_| Some(text.to_owned())).collect(),
            metadata: ids.iter().map(|_| Some(meta.to_owned())).collect(),
        };
        let never = StopFlag::never();
        c.upsert(batch(&["a", "bb", "ccc"], "text", r#"{"k":"v"}"#), &never).expect("upsert");
        assert_eq!(c.heap, recount(&c));
        assert_eq!(c.heap.ids, 2 * 6);
        c.upsert(batch(&["bb", "dddd"], "a longer text", r#"{"k":"value"}"#), &never).expect("replace");
        assert_eq!(c.heap, recount(&c));
        c.upsert(
            ItemBatch {
                ids: vec![ItemId::Int(7), ItemId::Str("a".into())],
                vectors: vec![0.25; 4],
                ..Default::default()
            },
            &never,
        )
        .expect("bare");
        assert_eq!(c.heap, recount(&c));
        c.delete(&[ItemId::Str("ccc".into()), ItemId::Int(7)]).expect("delete");
        c.delete_where(r#"{"k":"value"}"#).expect("delete where");
        assert_eq!(c.heap, recount(&c));
        assert_eq!(c.heap, HeapBytes { ids: 2, texts: 0, metadata: 0 });
        let back = Collection::from_bytes(&c.to_bytes().expect("image")).expect("load");
        assert_eq!(back.heap, c.heap);
    }
}
