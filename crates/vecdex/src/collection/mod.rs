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

use crate::cancel::StopFlag;
use crate::compression::{Compression, CompressionStats, RescoreParams};
use crate::error::{Error, Result};
use crate::filter::KeyFilter;
use crate::flat_index::{FlatConfig, FlatIndex, SearchResults};
use crate::hnsw_index::{HnswConfig, HnswIndex};
use crate::index::{Index, Persistent, VectorIndex};
use crate::Metric;

/// Names of the declared field types ([`FieldType::name`]), for the options table.
pub const FIELD_TYPES: &[&str] = &["string", "number", "boolean", "string[]"];
/// Items a collection holds, at most (rows are `u32`, and one value marks "no row").
pub const MAX_ITEMS: usize = u32::MAX as usize - 1;
/// Compiled filters a collection remembers until its next write (a service repeats a few).
const COMPILED_FILTER_CACHE: usize = 16;

/// The index under a collection.
#[derive(Debug)]
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

    fn add(&mut self, keys: &[u64], vectors: &[f32], stop: &StopFlag) -> Result<()> {
        match self {
            CollectionIndex::Flat(i) => i.add_rows(keys, vectors, stop),
            CollectionIndex::Hnsw(i) => i.add_rows(keys, vectors, stop),
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
    fn contains(&self, key: u64) -> bool;
    fn vector(&self, key: u64) -> Result<Option<Vec<f32>>>;
    fn is_trained(&self) -> bool;
    fn compression_stats(&self) -> CompressionStats;
}

impl<T: Index> IndexParts for T {
    fn len(&self) -> usize {
        Persistent::len(self)
    }
    fn memory_bytes(&self) -> usize {
        Persistent::memory_bytes(self)
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
            IndexSettings::Flat(flat) => {
                CollectionIndex::Flat(FlatIndex::with_compression(flat, config.compression)?)
            }
            IndexSettings::Hnsw(hnsw) => {
                CollectionIndex::Hnsw(HnswIndex::with_compression(hnsw, config.compression)?)
            }
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
        // A string id is held twice: as the map's key and in the row table.
        let id_heap: usize = self.rows.keys().map(|id| 2 * id.heap_bytes()).sum();
        let id_bytes = self.rows.capacity() * (std::mem::size_of::<(ItemId, u32)>() + 1)
            + self.row_ids.capacity() * std::mem::size_of::<Option<ItemId>>()
            + self.free_rows.capacity() * 4
            + id_heap;
        let strings = |column: &Vec<Option<Box<str>>>| {
            column.capacity() * std::mem::size_of::<Option<Box<str>>>()
                + column.iter().flatten().map(|s| s.len()).sum::<usize>()
        };
        let text_bytes = strings(&self.texts);
        let metadata_bytes = strings(&self.metadata);
        let column_bytes = self.columns.memory_bytes() + self.live.serialized_size();
        CollectionStats {
            len: self.len(),
            memory_bytes: index_bytes + id_bytes + text_bytes + metadata_bytes + column_bytes,
            index_bytes,
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
    pub fn upsert(&mut self, batch: ItemBatch, stop: &StopFlag) -> Result<()> {
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
        for (i, text) in batch.metadata.iter().enumerate() {
            let parsed = match text {
                Some(text) => parse_metadata(text)
                    .map_err(|e| Error::invalid(format!("items[{i}]: {}", e)))?,
                None => None,
            };
            self.columns
                .check(parsed.as_ref())
                .map_err(|e| Error::invalid(format!("items[{i}]: {}", e)))?;
            metadata.push(parsed);
        }
        // Rows: an existing id keeps its row; new ids take freed rows, then new ones.
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
        let keys: Vec<u64> = rows.iter().map(|&r| u64::from(r)).collect();
        self.index.add(&keys, &batch.vectors, stop)?;

        // The index holds the batch: nothing below can fail.
        self.forget_compiled();
        self.free_rows.truncate(free);
        self.row_ids.resize(next, None);
        self.texts.resize(next, None);
        self.metadata.resize(next, None);
        let texts = batch.texts.into_iter().map(Some).chain(std::iter::repeat(None));
        for (((id, row), parsed), text) in batch.ids.into_iter().zip(rows).zip(metadata).zip(texts)
        {
            let r = row as usize;
            if self.row_ids[r].is_some() {
                let old = self.row_metadata(row);
                self.columns.remove(row, old.as_ref());
            }
            self.columns.insert(row, parsed.as_ref());
            self.metadata[r] = parsed.map(|m| Value::Object(m).to_string().into_boxed_str());
            self.texts[r] = text.flatten().map(String::into_boxed_str);
            self.rows.insert(id.clone(), row);
            self.row_ids[r] = Some(id);
            self.live.insert(row);
        }
        Ok(())
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
