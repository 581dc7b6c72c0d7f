//! `NativeHnswIndex`: the JS handle of a [`vecdex::HnswIndex`] (lifecycle and locking in
//! [`crate::handle`]).
//!
//! An async add runs in the index's three phases so searches go on while the graph is built:
//! slots and rows are written under the write lock (brief), the batch is linked in parallel
//! under a read lock (the long part), and it becomes visible under the write lock (brief).

use std::sync::{Arc, Weak};

use napi::bindgen_prelude::{
    BigUint64ArraySlice, External, Float32ArraySlice, Object, Uint8ArraySlice,
};
use napi::Env;
use napi_derive::napi;
use vecdex::{HnswConfig, HnswIndex, InsertionOrder, LinkMode, StopFlag};

use crate::abort::NativeAbortHandle;
use crate::compression::{compression, rescore_params, NativeCompressionOptions};
use crate::convert;
use crate::error::{guarded, Result};
use crate::handle::{
    check_result_cells, common_index_methods, compact_methods, loader_methods, search_weak_into,
    Handle, NativeKeyFilter, Shared,
};

type HnswShared = Shared<HnswIndex>;

/// Construction options (validated again by the index).
#[napi(object)]
pub struct NativeHnswOptions {
    pub m: Option<u32>,
    pub ef_construction: Option<u32>,
    pub ef_search: Option<u32>,
    /// Seed of node levels and of the random insertion order (below 2^53).
    pub seed: Option<f64>,
    /// 'given' | 'random' | 'lid'.
    pub insertion_order: Option<String>,
    /// Compressed search form (quantization, reduction, rescoring).
    pub compression: Option<NativeCompressionOptions>,
    /// The file holding the full vectors (`fullVectors: { path }`); absent: in memory.
    pub full_vectors_path: Option<String>,
}

/// Figures about the index.
#[napi(object)]
pub struct NativeHnswStats {
    pub size: f64,
    /// Removed vectors not yet compacted (still waypoints in the graph).
    pub tombstones: f64,
    /// Compacted slots waiting for reuse.
    pub free_slots: f64,
    /// Layers in use (highest level + 1).
    pub levels: u32,
    /// Nodes whose level is at least `i`, per layer `i`.
    pub nodes_per_level: Vec<f64>,
    /// Mean links per node on layer 0.
    pub mean_degree: f64,
    /// Live vectors no walk from the entry point reaches on layer 0 (no search can return them).
    pub unreachable: f64,
    /// Live vectors from which no walk on layer 0 leads back to the entry point.
    pub dead_ends: f64,
    pub memory_bytes: f64,
    /// `memory_bytes` by part, read under the same lock.
    pub memory: crate::compression::NativeMemoryParts,
}

/// `searchIntoSyncFast` for an HNSW handle; `ef` 0 means the index's default.
#[napi(
    ts_args_type = "handle: ExternalObject<'NativeHnswIndexHandle'>, queries: Float32Array, k: number, ef: number, oversample: number, rescore: boolean, filter: BigUint64Array | undefined | null, prepared: NativeKeyFilter | undefined | null, out: Uint8Array, offset: number, capacity: number"
)]
#[allow(clippy::too_many_arguments)] // one argument per JS value: no object to unpack on the hot path
pub fn hnsw_search_into_sync_fast(
    handle: &External<Weak<HnswShared>>,
    queries: Float32ArraySlice,
    k: u32,
    ef: u32,
    oversample: u32,
    rescore: bool,
    filter: Option<BigUint64ArraySlice>,
    prepared: Option<&NativeKeyFilter>,
    out: Uint8ArraySlice,
    offset: u32,
    capacity: u32,
) -> Result<u32> {
    let params = rescore_params(oversample, rescore);
    search_weak_into(
        handle,
        filter.as_deref(),
        prepared,
        out,
        offset,
        capacity,
        |index, filter| {
            let stop = StopFlag::never();
            check_result_cells(queries.len(), index.dim(), k as usize, index.len())?;
            index.search_with(&queries, k as usize, ef_of(ef), params, filter, &stop)
        },
    )
}

/// The graph settings an options object gives (of an `HnswIndex` or a `Collection`).
pub(crate) struct GraphOptions<'a> {
    pub m: Option<u32>,
    pub ef_construction: Option<u32>,
    pub ef_search: Option<u32>,
    pub seed: Option<f64>,
    pub insertion_order: Option<&'a str>,
}

impl GraphOptions<'_> {
    /// Sets the given ones on `config` (the core checks them when the index is made); `set` names
    /// the options object in messages.
    pub(crate) fn apply(&self, config: &mut HnswConfig, set: &str) -> Result<()> {
        if let Some(m) = self.m {
            config.m = m as usize;
        }
        if let Some(ef) = self.ef_construction {
            config.ef_construction = ef as usize;
        }
        if let Some(ef) = self.ef_search {
            config.ef_search = ef as usize;
        }
        if let Some(seed) = self.seed {
            config.seed = guarded(|| vecdex::options::integer(set, "seed", seed))?;
        }
        if let Some(order) = self.insertion_order {
            config.insertion_order = guarded(|| InsertionOrder::from_name(order))?;
        }
        Ok(())
    }

    /// Whether any graph setting was given.
    pub(crate) fn given(&self) -> bool {
        self.m.is_some()
            || self.ef_construction.is_some()
            || self.ef_search.is_some()
            || self.seed.is_some()
            || self.insertion_order.is_some()
    }
}

fn ef_of(ef: u32) -> Option<usize> {
    (ef > 0).then_some(ef as usize)
}

/// Adds a batch in the three phases (see the module docs). On error or abort the prepared
/// slots are given back and the keys stay as they were.
fn add_phased(
    shared: &HnswShared,
    keys: &[u64],
    vectors: &[f32],
    stop: &StopFlag,
) -> vecdex::Result<()> {
    stop.check()?;
    shared.compact_if_due(stop)?;
    // A batch that makes a compressed index train by itself: the model is learnt under the read
    // lock (PQ's k-means takes seconds), so searches go on; the write-order ticket the caller
    // holds keeps other writes out until it is installed.
    let model = shared.index.read().fit_for_batch(keys, vectors)?;
    let pending = {
        let mut index = shared.index.write();
        let pending = index.prepare_with(keys, vectors, model)?;
        shared.refresh_stats(&index);
        pending
    };
    let linked = {
        let index = shared.index.read();
        index.link(&pending, stop, LinkMode::auto())
    };
    let mut index = shared.index.write();
    let result = match linked {
        Ok(()) => {
            index.commit(pending);
            Ok(())
        }
        Err(error) => {
            index.abandon(pending);
            Err(error)
        }
    };
    shared.refresh_stats(&index);
    result
}

fn remove_keys(shared: &HnswShared, keys: &[u64]) -> vecdex::Result<u32> {
    shared.write(|index| index.remove(keys).map(|n| n as u32))
}

#[napi(custom_finalize)]
pub struct NativeHnswIndex {
    handle: Handle<HnswIndex>,
    config: HnswConfig,
}

#[napi]
impl NativeHnswIndex {
    #[napi(constructor)]
    pub fn new(
        env: Env,
        dim: u32,
        metric: String,
        options: Option<NativeHnswOptions>,
    ) -> Result<Self> {
        let metric = convert::metric(&metric)?;
        let mut config = HnswConfig::new(dim as usize, metric);
        let mut compressed = vecdex::Compression::default();
        let mut full_vectors = vecdex::FullVectors::Memory;
        if let Some(options) = options {
            if let Some(path) = &options.full_vectors_path {
                full_vectors = vecdex::FullVectors::Disk(path.into());
            }
            if let Some(c) = &options.compression {
                compressed = compression(c, dim as usize)?;
            }
            let graph = GraphOptions {
                m: options.m,
                ef_construction: options.ef_construction,
                ef_search: options.ef_search,
                seed: options.seed,
                insertion_order: options.insertion_order.as_deref(),
            };
            graph.apply(&mut config, "HnswIndexOptions")?;
        }
        let index = guarded(|| HnswIndex::with_storage(config, compressed, &full_vectors))?;
        Self::wrap(&env, index)
    }

    /// A read-only view of a saved index: the file is memory-mapped and searched in place,
    /// after the same checks as `loadSync`; writes throw ERR_READ_ONLY.
    #[napi(factory)]
    pub fn view_sync(env: Env, path: String) -> Result<Self> {
        let index = guarded(|| HnswIndex::view(std::path::Path::new(&path)))?;
        Self::wrap(&env, index)
    }

    /// Async twin of `viewSync`: resolves with a handle for `adoptLoaded`.
    #[napi(ts_return_type = "Promise<ExternalObject<'LoadedHnswIndex'>>")]
    pub fn view_loaded<'env>(env: &'env Env, path: String) -> Result<Object<'env>> {
        crate::handle::spawn_load(env, move || HnswIndex::view(std::path::Path::new(&path)))
    }

    /// Whether this index is a read-only view of a file.
    #[napi(getter)]
    pub fn read_only(&self) -> Result<bool> {
        Ok(self.handle.shared()?.index.read_recursive().is_read_only())
    }

    fn wrap(env: &Env, index: HnswIndex) -> Result<Self> {
        let config = index.config();
        Ok(NativeHnswIndex {
            handle: Handle::new(env, index)?,
            config,
        })
    }

    #[napi(getter)]
    pub fn m(&self) -> u32 {
        self.config.m as u32
    }

    #[napi(getter)]
    pub fn ef_construction(&self) -> u32 {
        self.config.ef_construction as u32
    }

    #[napi(getter)]
    pub fn ef_search(&self) -> u32 {
        self.config.ef_search as u32
    }

    #[napi]
    pub fn stats(&self) -> Result<NativeHnswStats> {
        let shared = self.handle.shared()?;
        guarded(|| {
            let index = shared.index.read_recursive();
            // A view reads its graph's links from the file: not once it changed in place.
            index.check_view()?;
            let stats = index.stats();
            Ok(NativeHnswStats {
                size: stats.len as f64,
                tombstones: stats.tombstones as f64,
                free_slots: stats.free_slots as f64,
                levels: stats.graph.levels as u32,
                nodes_per_level: stats
                    .graph
                    .nodes_per_level
                    .iter()
                    .map(|&n| n as f64)
                    .collect(),
                mean_degree: stats.graph.mean_degree,
                unreachable: stats.graph.connectivity.unreachable as f64,
                dead_ends: stats.graph.connectivity.dead_ends as f64,
                memory_bytes: stats.memory_bytes as f64,
                memory: stats.memory.into(),
            })
        })
    }

    /// A handle for [`hnsw_search_into_sync_fast`]; does not keep the index alive.
    #[napi(ts_return_type = "ExternalObject<'NativeHnswIndexHandle'>")]
    pub fn search_handle(&self) -> Result<External<Weak<HnswShared>>> {
        Ok(External::new(Arc::downgrade(self.handle.shared()?)))
    }

    /// Async batch search (parallel over queries on the pool); `ef` 0 means the default.
    #[napi(ts_return_type = "Promise<NativeSearchResults>")]
    #[allow(clippy::too_many_arguments)] // mirrors the JS call
    pub fn search<'env>(
        &self,
        env: &'env Env,
        queries: Float32ArraySlice,
        k: u32,
        ef: u32,
        oversample: u32,
        rescore: bool,
        filter: Option<BigUint64ArraySlice>,
        prepared: Option<&NativeKeyFilter>,
        abort: Option<&NativeAbortHandle>,
    ) -> Result<Object<'env>> {
        let queries = crate::handle::copied(&queries, "queries")?;
        let params = rescore_params(oversample, rescore);
        self.handle.spawn_search(
            env,
            filter.as_deref(),
            prepared,
            abort,
            move |index, filter, stop| {
                check_result_cells(queries.len(), index.dim(), k as usize, index.len())?;
                index.search_with(&queries, k as usize, ef_of(ef), params, filter, stop)
            },
        )
    }
}

common_index_methods!(NativeHnswIndex, add: add_phased, remove: remove_keys);
compact_methods!(NativeHnswIndex);
loader_methods!(
    NativeHnswIndex,
    HnswIndex,
    "Promise<ExternalObject<'LoadedHnswIndex'>>",
    "loaded: ExternalObject<'LoadedHnswIndex'>"
);
