//! `NativeCollection`: the JS handle of a [`vecdex::Collection`] (lifecycle and locking in
//! [`crate::handle`]). Ids cross as strings or numbers, vectors as one row-major Float32Array,
//! metadata and filters as JSON text (parsed and checked natively).

use napi::bindgen_prelude::{Either, Float32Array, Float32ArraySlice, Object};
use napi::Env;
use napi_derive::napi;
use vecdex::collection::{FieldType, HitContents, ItemRecord};
use vecdex::{
    Collection, CollectionConfig, FlatConfig, HnswConfig, IndexSettings, ItemBatch, ItemId,
    StopFlag,
};

use crate::abort::NativeAbortHandle;
use crate::compression::{compression, rescore_params, NativeCompressionOptions};
use crate::convert;
use crate::error::{guarded, invalid, Result};
use crate::handle::{check_result_cells, copied, Handle, Shared};
use crate::hnsw_index::GraphOptions;

/// A declared metadata field.
#[napi(object)]
pub struct NativeField {
    pub name: String,
    /// 'string' | 'number' | 'boolean' | 'string[]'.
    pub field_type: String,
}

/// Construction options (validated again by the core).
#[napi(object)]
pub struct NativeCollectionOptions {
    /// 'hnsw' (default) or 'flat'.
    pub index: Option<String>,
    pub m: Option<u32>,
    pub ef_construction: Option<u32>,
    pub ef_search: Option<u32>,
    /// Seed of node levels and of the random insertion order (below 2^53).
    pub seed: Option<f64>,
    pub insertion_order: Option<String>,
    pub compression: Option<NativeCompressionOptions>,
    pub fields: Option<Vec<NativeField>>,
    /// The file holding the full vectors (`fullVectors: { path }`); absent: in memory.
    pub full_vectors_path: Option<String>,
}

/// A stored item or a search hit: the id, and what was asked for.
#[napi(object)]
pub struct NativeItem {
    pub id: Either<String, f64>,
    /// Search hits only.
    pub distance: Option<f64>,
    pub text: Option<String>,
    /// The metadata object's JSON text.
    pub metadata: Option<String>,
    pub vector: Option<Float32Array>,
}

/// Sizes of a collection's parts, in bytes.
#[napi(object)]
pub struct NativeCollectionStats {
    pub size: f64,
    pub memory_bytes: f64,
    pub index_bytes: f64,
    /// `index_bytes` by part.
    pub index: crate::compression::NativeMemoryParts,
    pub id_bytes: f64,
    pub text_bytes: f64,
    pub metadata_bytes: f64,
    pub column_bytes: f64,
    /// Where the index's full vectors are: 'memory' or 'disk'.
    pub full_vectors: String,
}



/// An id from JS: a non-empty string, or a whole number in 0 ..= 2^53 − 1.
fn item_id(id: Either<String, f64>) -> vecdex::Result<ItemId> {
    match id {
        Either::A(s) => ItemId::string(s),
        Either::B(n) => {
            if n.fract() == 0.0 && (0.0..=vecdex::options::MAX_SAFE_INTEGER as f64).contains(&n) {
                Ok(ItemId::Int(n as u64))
            } else {
                Err(vecdex::Error::invalid(format!(
                    "an id is a string or a whole number from 0 to 2^53 - 1, got {n}"
                )))
            }
        }
    }
}

fn item_ids(ids: Vec<Either<String, f64>>) -> vecdex::Result<Vec<ItemId>> {
    ids.into_iter()
        .enumerate()
        .map(|(i, id)| {
            item_id(id).map_err(|e| vecdex::Error::invalid(format!("ids[{i}]: {e}")))
        })
        .collect()
}

fn js_id(id: ItemId) -> Either<String, f64> {
    match id {
        ItemId::Int(n) => Either::B(n as f64),
        ItemId::Str(s) => Either::A(s.into()),
    }
}

fn record_to_js(record: ItemRecord) -> NativeItem {
    NativeItem {
        id: js_id(record.id),
        distance: None,
        text: record.text,
        metadata: record.metadata,
        vector: record.vector.map(Float32Array::new),
    }
}

fn hits_to_js(hits: Vec<Vec<vecdex::collection::CollectionHit>>) -> Vec<Vec<NativeItem>> {
    hits.into_iter()
        .map(|row| {
            row.into_iter()
                .map(|hit| NativeItem {
                    id: js_id(hit.id),
                    distance: Some(f64::from(hit.distance)),
                    text: hit.text,
                    metadata: hit.metadata,
                    vector: hit.vector.map(Float32Array::new),
                })
                .collect()
        })
        .collect()
}

fn config_of(dim: u32, metric: &str, options: Option<NativeCollectionOptions>) -> Result<CollectionConfig> {
    let metric = convert::metric(metric)?;
    let dim = dim as usize;
    let Some(options) = options else {
        return Ok(CollectionConfig {
            index: IndexSettings::Hnsw(HnswConfig::new(dim, metric)),
            compression: vecdex::Compression::default(),
            fields: Vec::new(),
            full_vectors: vecdex::FullVectors::Memory,
        });
    };
    let compression = match &options.compression {
        Some(c) => compression(c, dim)?,
        None => vecdex::Compression::default(),
    };
    let graph = GraphOptions {
        m: options.m,
        ef_construction: options.ef_construction,
        ef_search: options.ef_search,
        seed: options.seed,
        insertion_order: options.insertion_order.as_deref(),
    };
    let kind = match options.index.as_deref() {
        Some(name) => guarded(|| {
            vecdex::options::choice("index", name, vecdex::options::COLLECTION_INDEXES)
        })?,
        None => vecdex::options::DEFAULT_COLLECTION_INDEX,
    };
    let index = match kind {
        "hnsw" => {
            let mut config = HnswConfig::new(dim, metric);
            graph.apply(&mut config, "CollectionOptions")?;
            IndexSettings::Hnsw(config)
        }
        "flat" if graph.given() => {
            return Err(invalid(
                "m, efConstruction, efSearch, seed and insertionOrder are HNSW settings: not for index 'flat'",
            ))
        }
        _ => IndexSettings::Flat(FlatConfig { dim, metric }),
    };
    let mut fields = Vec::new();
    for field in options.fields.unwrap_or_default() {
        let field_type = guarded(|| FieldType::parse(&field.field_type))?;
        fields.push((field.name, field_type));
    }
    let full_vectors = match options.full_vectors_path {
        Some(path) => vecdex::FullVectors::Disk(path.into()),
        None => vecdex::FullVectors::Memory,
    };
    Ok(CollectionConfig {
        index,
        compression,
        fields,
        full_vectors,
    })
}

/// A filter's JSON text, or none for an absent or empty one.
fn filter_text(filter: Option<String>) -> Option<String> {
    filter.filter(|f| !f.is_empty())
}

/// Upserts an HNSW collection's batch in the index's three phases, so searches go on while it
/// is linked: rows and vectors are written under the write lock (brief), the batch is linked
/// under a read lock (the long part), and it becomes visible with its ids, texts and metadata
/// under the write lock. A flat collection's upsert (a copy) runs under the write lock whole.
/// On error or abort the collection stays as it was.
fn upsert_phased(shared: &Shared<Collection>, batch: ItemBatch, stop: &StopFlag) -> vecdex::Result<()> {
    stop.check()?;
    if matches!(
        shared.index.read().index(),
        vecdex::collection::CollectionIndex::Flat(_)
    ) {
        return shared.write(|c| c.upsert(batch, stop));
    }
    if shared.index.read().should_compact() {
        let relinked = shared.index.read().relink_removed(stop)?;
        shared.write(|c| {
            c.release_removed(relinked);
            Ok(())
        })?;
    }
    // A batch that makes a compressed collection train: the model is learnt under the read lock.
    let model = shared.index.read().fit_for_upsert(&batch)?;
    let pending = shared.write(|c| c.prepare_upsert(batch, model))?;
    let linked = shared.index.read().link_upsert(&pending, stop);
    let result = shared.write(|c| match linked {
        Ok(()) => {
            c.commit_upsert(pending);
            Ok(())
        }
        Err(error) => {
            c.abandon_upsert(pending);
            Err(error)
        }
    });
    // The batch was linked on pool threads and is freed here: outside every lock, hand the
    // freed memory back (a server upserting all day would otherwise keep growing, see memory.rs).
    vecdex::memory::release_freed_memory_now_and_then();
    result
}

#[napi(custom_finalize)]
pub struct NativeCollection {
    handle: Handle<Collection>,
    dim: u32,
    metric: String,
    index_kind: &'static str,
    fields: Vec<(String, &'static str)>,
}

#[napi]
impl NativeCollection {
    #[napi(constructor)]
    pub fn new(
        env: Env,
        dim: u32,
        metric: String,
        options: Option<NativeCollectionOptions>,
    ) -> Result<Self> {
        let config = config_of(dim, &metric, options)?;
        let collection = guarded(|| Collection::new(config))?;
        Self::wrap(&env, collection)
    }

    /// A read-only view of a saved collection: its HNSW index is searched in place in the
    /// memory-mapped file, after the same checks as `loadSync`; writes throw ERR_READ_ONLY.
    #[napi(factory)]
    pub fn view_sync(env: Env, path: String) -> Result<Self> {
        let collection = guarded(|| Collection::view(std::path::Path::new(&path)))?;
        Self::wrap(&env, collection)
    }

    /// Async twin of `viewSync`: resolves with a handle for `adoptLoaded`.
    #[napi(ts_return_type = "Promise<ExternalObject<'LoadedCollection'>>")]
    pub fn view_loaded<'env>(env: &'env Env, path: String) -> Result<Object<'env>> {
        crate::handle::spawn_load(env, move || Collection::view(std::path::Path::new(&path)))
    }

    /// Whether this collection is a read-only view of a file.
    #[napi(getter)]
    pub fn read_only(&self) -> Result<bool> {
        Ok(self.handle.shared()?.index.read_recursive().is_read_only())
    }

    fn wrap(env: &Env, collection: Collection) -> Result<Self> {
        Ok(NativeCollection {
            dim: collection.dim() as u32,
            metric: collection.metric().name().to_string(),
            index_kind: match collection.index() {
                vecdex::collection::CollectionIndex::Flat(_) => "flat",
                vecdex::collection::CollectionIndex::Hnsw(_) => "hnsw",
            },
            fields: collection
                .fields()
                .iter()
                .map(|(name, t)| (name.clone(), t.name()))
                .collect(),
            handle: Handle::new(env, collection)?,
        })
    }

    #[napi(getter)]
    pub fn dim(&self) -> u32 {
        self.dim
    }

    #[napi(getter)]
    pub fn metric(&self) -> String {
        self.metric.clone()
    }

    /// 'hnsw' or 'flat'.
    #[napi(getter)]
    pub fn index_kind(&self) -> String {
        self.index_kind.to_string()
    }

    /// Declared fields as [name, type] pairs.
    #[napi(getter)]
    pub fn fields(&self) -> Vec<Vec<String>> {
        self.fields
            .iter()
            .map(|(name, t)| vec![name.clone(), (*t).to_string()])
            .collect()
    }

    #[napi(getter)]
    pub fn size(&self) -> Result<f64> {
        self.handle.size()
    }

    #[napi(getter)]
    pub fn memory_bytes(&self) -> Result<f64> {
        self.handle.memory_bytes()
    }

    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Releases the collection. Idempotent; in-flight tasks finish on their own reference.
    #[napi]
    pub fn close(&mut self, env: Env) -> Result<()> {
        self.handle.close(&env)
    }

    #[napi]
    pub fn stats(&self) -> Result<NativeCollectionStats> {
        let shared = self.handle.shared()?;
        guarded(|| {
            let stats = shared.index.read_recursive().stats();
            Ok(NativeCollectionStats {
                size: stats.len as f64,
                memory_bytes: stats.memory_bytes as f64,
                index_bytes: stats.index_bytes as f64,
                index: stats.index.into(),
                id_bytes: stats.id_bytes as f64,
                text_bytes: stats.text_bytes as f64,
                metadata_bytes: stats.metadata_bytes as f64,
                column_bytes: stats.column_bytes as f64,
                full_vectors: stats.compression.full_vectors.to_string(),
            })
        })
    }

    /// Inserts or replaces items: `vectors` holds `ids.length × dim` values, row-major;
    /// `texts` and `metadata` (JSON text of objects) are per item, or absent.
    #[napi]
    pub fn upsert_sync(
        &self,
        env: Env,
        ids: Vec<Either<String, f64>>,
        vectors: Float32ArraySlice,
        texts: Option<Vec<Option<String>>>,
        metadata: Option<Vec<Option<String>>>,
    ) -> Result<()> {
        let batch = guarded(|| {
            Ok(ItemBatch {
                ids: item_ids(ids)?,
                vectors: vectors.to_vec(),
                texts: texts.unwrap_or_default(),
                metadata: metadata.unwrap_or_default(),
            })
        })?;
        self.handle.write_sync(&env, move |shared| {
            shared.write(|c| c.upsert(batch, &StopFlag::never()))
        })
    }

    /// Async twin of `upsertSync` (inputs copied first); stops with ERR_ABORTED, nothing written.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn upsert<'env>(
        &self,
        env: &'env Env,
        ids: Vec<Either<String, f64>>,
        vectors: Float32ArraySlice,
        texts: Option<Vec<Option<String>>>,
        metadata: Option<Vec<Option<String>>>,
        abort: Option<&NativeAbortHandle>,
    ) -> Result<Object<'env>> {
        let batch = guarded(|| {
            Ok(ItemBatch {
                ids: item_ids(ids)?,
                vectors: Vec::new(),
                texts: texts.unwrap_or_default(),
                metadata: metadata.unwrap_or_default(),
            })
        })?;
        let batch = ItemBatch {
            vectors: copied(&vectors, "vectors")?,
            ..batch
        };
        let stop = crate::abort::flag(abort);
        self.handle
            .spawn_write(env, move |shared| upsert_phased(shared, batch, &stop))
    }

    /// Removes items by id; returns how many were present.
    #[napi]
    pub fn delete_sync(&self, env: Env, ids: Vec<Either<String, f64>>) -> Result<u32> {
        let ids = guarded(|| item_ids(ids))?;
        self.handle
            .write_sync(&env, move |shared| shared.write(|c| c.delete(&ids).map(|n| n as u32)))
    }

    /// Async twin of `deleteSync`.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn delete<'env>(&self, env: &'env Env, ids: Vec<Either<String, f64>>) -> Result<Object<'env>> {
        let ids = guarded(|| item_ids(ids))?;
        self.handle
            .spawn_write(env, move |shared| shared.write(|c| c.delete(&ids).map(|n| n as u32)))
    }

    /// Removes every item a filter (JSON text) admits; returns how many.
    #[napi]
    pub fn delete_where_sync(&self, env: Env, filter: String) -> Result<u32> {
        guarded(|| Collection::check_filter(&filter))?;
        self.handle.write_sync(&env, move |shared| {
            shared.write(|c| c.delete_where(&filter).map(|n| n as u32))
        })
    }

    /// Async twin of `deleteWhereSync`.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn delete_where<'env>(&self, env: &'env Env, filter: String) -> Result<Object<'env>> {
        guarded(|| Collection::check_filter(&filter))?;
        self.handle.spawn_write(env, move |shared| {
            shared.write(|c| c.delete_where(&filter).map(|n| n as u32))
        })
    }

    /// The stored items of these ids, in order (null for an absent id).
    #[napi]
    pub fn get_sync(&self, ids: Vec<Either<String, f64>>, vectors: bool) -> Result<Vec<Option<NativeItem>>> {
        let ids = guarded(|| item_ids(ids))?;
        let shared = self.handle.shared()?;
        let records = guarded(|| shared.index.read_recursive().get(&ids, vectors))?;
        Ok(records.into_iter().map(|r| r.map(record_to_js)).collect())
    }

    /// Async twin of `getSync`.
    #[napi(ts_return_type = "Promise<Array<NativeItem | undefined | null>>")]
    pub fn get<'env>(&self, env: &'env Env, ids: Vec<Either<String, f64>>, vectors: bool) -> Result<Object<'env>> {
        let ids = guarded(|| item_ids(ids))?;
        self.handle.spawn_read(
            env,
            move |c| c.get(&ids, vectors),
            |_, records| Ok(records.into_iter().map(|r| r.map(record_to_js)).collect::<Vec<_>>()),
        )
    }

    /// Every id, in storage order.
    #[napi]
    pub fn ids(&self) -> Result<Vec<Either<String, f64>>> {
        let shared = self.handle.shared()?;
        let ids = guarded(|| Ok(shared.index.read_recursive().ids()))?;
        Ok(ids.into_iter().map(js_id).collect())
    }

    /// Whether an item with this id is stored.
    #[napi]
    pub fn contains(&self, id: Either<String, f64>) -> Result<bool> {
        let id = guarded(|| item_id(id))?;
        let shared = self.handle.shared()?;
        guarded(|| Ok(shared.index.read_recursive().contains(&id)))
    }

    /// Items a filter (JSON text) admits; every item when absent.
    #[napi]
    pub fn count_sync(&self, filter: Option<String>) -> Result<u32> {
        let shared = self.handle.shared()?;
        let filter = filter_text(filter);
        guarded(|| {
            shared
                .index
                .read_recursive()
                .count(filter.as_deref())
                .map(|n| n as u32)
        })
    }

    /// Async twin of `countSync`.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn count<'env>(&self, env: &'env Env, filter: Option<String>) -> Result<Object<'env>> {
        let filter = filter_text(filter);
        self.handle.spawn_read(
            env,
            move |c| c.count(filter.as_deref()).map(|n| n as u32),
            |_, n| Ok(n),
        )
    }

    /// The `k` nearest items of each query (row-major), per query; `ef` 0 means the default.
    #[napi]
    #[allow(clippy::too_many_arguments)] // mirrors the JS call
    pub fn search_sync(
        &self,
        queries: Float32ArraySlice,
        k: u32,
        ef: u32,
        oversample: u32,
        rescore: bool,
        filter: Option<String>,
        include_metadata: bool,
        include_vectors: bool,
    ) -> Result<Vec<Vec<NativeItem>>> {
        let shared = self.handle.shared()?;
        let filter = filter_text(filter);
        let contents = HitContents {
            metadata: include_metadata,
            vectors: include_vectors,
        };
        let hits = guarded(|| {
            let collection = shared.index.read_recursive();
            check_result_cells(queries.len(), collection.dim(), k as usize, collection.len())?;
            collection.search(
                &queries,
                k as usize,
                (ef > 0).then_some(ef as usize),
                rescore_params(oversample, rescore),
                filter.as_deref(),
                contents,
                &StopFlag::never(),
            )
        })?;
        Ok(hits_to_js(hits))
    }

    /// Async twin of `searchSync` (queries copied first; parallel over queries on the pool).
    #[napi(ts_return_type = "Promise<Array<Array<NativeItem>>>")]
    #[allow(clippy::too_many_arguments)] // mirrors the JS call
    pub fn search<'env>(
        &self,
        env: &'env Env,
        queries: Float32ArraySlice,
        k: u32,
        ef: u32,
        oversample: u32,
        rescore: bool,
        filter: Option<String>,
        include_metadata: bool,
        include_vectors: bool,
        abort: Option<&NativeAbortHandle>,
    ) -> Result<Object<'env>> {
        let queries = copied(&queries, "queries")?;
        let filter = filter_text(filter);
        let params = rescore_params(oversample, rescore);
        let contents = HitContents {
            metadata: include_metadata,
            vectors: include_vectors,
        };
        let stop = crate::abort::flag(abort);
        self.handle.spawn_read(
            env,
            move |c| {
                stop.check()?;
                check_result_cells(queries.len(), c.dim(), k as usize, c.len())?;
                c.search(
                    &queries,
                    k as usize,
                    (ef > 0).then_some(ef as usize),
                    params,
                    filter.as_deref(),
                    contents,
                    &stop,
                )
            },
            |_, hits| Ok(hits_to_js(hits)),
        )
    }
}

impl napi::bindgen_prelude::ObjectFinalize for NativeCollection {
    fn finalize(self, env: Env) -> napi::Result<()> {
        self.handle.release_memory(&env)
    }
}

crate::handle::save_methods!(NativeCollection, snapshot);
crate::handle::loader_methods!(
    NativeCollection,
    Collection,
    "Promise<ExternalObject<'LoadedCollection'>>",
    "loaded: ExternalObject<'LoadedCollection'>"
);
