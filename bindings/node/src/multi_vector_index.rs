//! `NativeFdeEncoder` and `NativeMultiVectorIndex`: the JS handles of [`vecdex::FdeEncoder`]
//! and [`vecdex::MultiVectorIndex`] (lifecycle and locking in [`crate::handle`]).
//!
//! Point clouds cross as CSR: one row-major Float32Array of every token and a Uint32Array of
//! offsets (cloud `i` is tokens `offsets[i]..offsets[i+1]`). An async add encodes under a read
//! lock, links the FDEs under a read lock, and takes the write lock only briefly to reserve
//! slots and to publish the batch, so searches go on meanwhile.

use std::sync::Arc;

use napi::bindgen_prelude::{
    BigUint64ArraySlice, Float32Array, Float32ArraySlice, Object, Uint32ArraySlice,
};
use napi::Env;
use napi_derive::napi;
use vecdex::{
    FdeConfig, FdeEncoder, HnswConfig, Metric, MultiVectorConfig, MultiVectorIndex,
    MultiVectorSearch, ProjectionType, Side, StopFlag, Strategy,
};

use crate::abort::{flag, NativeAbortHandle};
use crate::compression::{compression, NativeCompressionOptions};
use crate::convert;
use crate::error::{guarded, invalid, Result};
use crate::handle::{
    compact_methods, keyed_index_methods, loader_methods, save_methods, to_js_results, Handle,
    NativeKeyFilter, NativeSearchResults, Shared,
};

type MultiShared = Shared<MultiVectorIndex>;

/// FDE parameters (names of the MUVERA reference implementation); every field optional.
#[napi(object)]
#[derive(Default)]
pub struct NativeFdeOptions {
    pub num_repetitions: Option<u32>,
    pub num_simhash_projections: Option<u32>,
    /// Below 2^53.
    pub seed: Option<f64>,
    /// 'identity' | 'amsSketch'.
    pub projection_type: Option<String>,
    pub projection_dimension: Option<u32>,
    pub fill_empty_partitions: Option<bool>,
    pub final_projection_dimension: Option<u32>,
}

/// The resolved FDE configuration, as JS sees it.
#[napi(object)]
pub struct NativeFdeConfig {
    /// Dimensions of every token.
    pub dimensions: u32,
    pub num_repetitions: u32,
    pub num_simhash_projections: u32,
    pub seed: f64,
    pub projection_type: String,
    pub projection_dimension: u32,
    pub fill_empty_partitions: bool,
    pub final_projection_dimension: Option<u32>,
    /// Length of every encoding.
    pub output_dimension: u32,
    /// Version of the pinned random generator behind the encodings.
    pub rng_version: u32,
}

fn seed_of(seed: f64) -> Result<u64> {
    guarded(|| vecdex::options::integer("FdeEncoderOptions", "seed", seed))
}

/// `options` over `config`'s values.
fn fde_config_from(mut config: FdeConfig, options: &NativeFdeOptions) -> Result<FdeConfig> {
    let dim = config.dimension as u32;
    if let Some(r) = options.num_repetitions {
        config.num_repetitions = r as usize;
    }
    if let Some(k) = options.num_simhash_projections {
        config.num_simhash_projections = k;
    }
    if let Some(seed) = options.seed {
        config.seed = seed_of(seed)?;
    }
    if let Some(name) = options.projection_type.as_deref() {
        let name = guarded(|| {
            vecdex::options::choice("projectionType", name, vecdex::options::PROJECTION_TYPES)
        })?;
        if name == ProjectionType::Identity.name() {
            config.projection_type = ProjectionType::Identity;
            config.projection_dimension = dim as usize;
        } else if config.projection_type == ProjectionType::Identity {
            // The index's default is the identity: asking for the sketch takes its default size.
            config.projection_type = ProjectionType::AmsSketch;
            config.projection_dimension =
                vecdex::multi_vector_index::MULTI_VECTOR_FDE.projection_dimension;
        }
    }
    if let Some(d) = options.projection_dimension {
        // A sketch size with no projection named asks for the sketch (the index's default
        // projection is the identity, which has no size of its own).
        if options.projection_type.is_none() {
            config.projection_type = ProjectionType::AmsSketch;
        }
        config.projection_dimension = d as usize;
    }
    if let Some(fill) = options.fill_empty_partitions {
        config.fill_empty_partitions = fill;
    }
    config.final_projection_dimension = options.final_projection_dimension.map(|d| d as usize);
    Ok(config)
}

fn config_to_js(config: &FdeConfig) -> NativeFdeConfig {
    NativeFdeConfig {
        dimensions: config.dimension as u32,
        num_repetitions: config.num_repetitions as u32,
        num_simhash_projections: config.num_simhash_projections,
        seed: config.seed as f64,
        projection_type: config.projection_type.name().to_string(),
        projection_dimension: config.projection_dimension as u32,
        fill_empty_partitions: config.fill_empty_partitions,
        final_projection_dimension: config.final_projection_dimension.map(|d| d as u32),
        output_dimension: config.output_dimension() as u32,
        rng_version: vecdex::RNG_VERSION,
    }
}

fn side_of(side: &str) -> Result<Side> {
    match side {
        "query" => Ok(Side::Query),
        "document" => Ok(Side::Document),
        other => Err(invalid(format!(
            "side must be 'query' or 'document', got '{other}'"
        ))),
    }
}

/// A JS array copied before an async call is queued; a copy that does not fit in memory is
/// ERR_OUT_OF_MEMORY, thrown at the call.
fn copied<T: Copy>(values: &[T], what: &str) -> Result<Vec<T>> {
    guarded(|| vecdex::validate::try_copy(values, what))
}

/// MUVERA fixed-dimensional encoder of point clouds.
#[napi]
pub struct NativeFdeEncoder {
    /// `None` once closed; async encodes in flight hold their own `Arc`.
    encoder: Option<Arc<FdeEncoder>>,
}

#[napi]
impl NativeFdeEncoder {
    #[napi(constructor)]
    pub fn new(dim: u32, options: Option<NativeFdeOptions>) -> Result<Self> {
        let config = fde_config_from(FdeConfig::new(dim as usize), &options.unwrap_or_default())?;
        let encoder = guarded(|| FdeEncoder::new(config).map_err(vecdex::Error::from))?;
        Ok(NativeFdeEncoder {
            encoder: Some(Arc::new(encoder)),
        })
    }

    fn encoder(&self) -> Result<&Arc<FdeEncoder>> {
        self.encoder
            .as_ref()
            .ok_or_else(|| crate::error::NativeError::closed("encoder"))
    }

    #[napi(getter)]
    pub fn config(&self) -> Result<NativeFdeConfig> {
        Ok(config_to_js(self.encoder()?.config()))
    }

    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.encoder.is_none()
    }

    /// Frees the encoder (its projection matrices). Idempotent; encodes in flight finish.
    #[napi]
    pub fn close(&mut self) {
        self.encoder = None;
    }

    /// Encodes point clouds (CSR) for the `side` ('query' | 'document'); returns the
    /// encodings row-major.
    #[napi]
    pub fn encode_sync(
        &self,
        tokens: Float32ArraySlice,
        offsets: Uint32ArraySlice,
        side: String,
    ) -> Result<Float32Array> {
        let side = side_of(&side)?;
        let encoder = self.encoder()?;
        guarded(|| {
            vecdex::multi_vector_index::encode_point_clouds(
                encoder,
                &tokens,
                &offsets,
                side,
                &StopFlag::never(),
            )
        })
        .and_then(|out| crate::convert::fits_one_array(out, "the encodings"))
        .map(Float32Array::new)
    }

    /// Async twin of `encodeSync` (inputs copied first; runs on the pool).
    #[napi(ts_return_type = "Promise<Float32Array>")]
    pub fn encode<'env>(
        &self,
        env: &'env Env,
        tokens: Float32ArraySlice,
        offsets: Uint32ArraySlice,
        side: String,
        abort: Option<&NativeAbortHandle>,
    ) -> Result<Object<'env>> {
        let side = side_of(&side)?;
        let encoder = self.encoder()?.clone();
        let (tokens, offsets) = (copied(&tokens, "tokens")?, copied(&offsets, "offsets")?);
        let stop = flag(abort);
        crate::tasks::spawn(
            env,
            move || {
                vecdex::multi_vector_index::encode_point_clouds(
                    &encoder, &tokens, &offsets, side, &stop,
                )
            },
            |_, out| crate::convert::fits_one_array(out, "the encodings").map(Float32Array::new),
        )
    }
}

/// Exact Chamfer similarity Σ_q max_d ⟨q, d⟩ of two token matrices (row-major, `dim` wide).
#[napi]
pub fn chamfer_similarity(
    query: Float32ArraySlice,
    document: Float32ArraySlice,
    dim: u32,
) -> Result<f64> {
    guarded(|| vecdex::multi_vector_index::chamfer_similarity(&query, &document, dim as usize))
}

/// Construction options of a multi-vector index (validated again by the index).
#[napi(object)]
pub struct NativeMultiVectorOptions {
    pub fde: Option<NativeFdeOptions>,
    pub m: Option<u32>,
    pub ef_construction: Option<u32>,
    pub ef_search: Option<u32>,
    pub seed: Option<f64>,
    pub candidates: Option<u32>,
    pub ball_carving: Option<f64>,
    /// 'rerank' | 'walk' | 'tokens'.
    pub strategy: Option<String>,
    /// 'cosine' | 'dot': how the graph compares FDEs.
    pub fde_metric: Option<String>,
    pub compression: Option<NativeCompressionOptions>,
}

fn strategy_of(name: &str) -> Result<Strategy> {
    guarded(|| Strategy::from_name(name))
}

/// Figures about a multi-vector index.
#[napi(object)]
pub struct NativeMultiVectorStats {
    pub documents: f64,
    pub tokens: f64,
    pub dead_tokens: f64,
    pub fde_dimension: u32,
    pub token_bytes: f64,
    pub fde_bytes: f64,
    pub memory_bytes: f64,
}

/// Adds in phases (see the module docs); on error or abort nothing changes.
fn add_phased(
    shared: &MultiShared,
    keys: &[u64],
    tokens: &[f32],
    offsets: &[u32],
    stop: &StopFlag,
) -> vecdex::Result<()> {
    let encoded = shared
        .index
        .read()
        .encode_documents(keys, tokens, offsets, stop)?;
    shared.compact_if_due(stop)?;
    let pending = shared.index.write().prepare(encoded)?;
    let linked = shared.index.read().link(&pending, stop);
    shared.write(|index| match linked {
        Ok(()) => {
            index.commit(pending);
            Ok(())
        }
        Err(error) => {
            index.abandon(pending);
            Err(error)
        }
    })
}

/// Trains in phases: the model is learnt and the stored FDEs encoded under the read lock
/// (searches go on), then put in place under the write lock. The caller's write-order ticket
/// keeps other writes out in between.
fn train_phased(
    shared: &MultiShared,
    tokens: &[f32],
    offsets: &[u32],
    stop: &StopFlag,
) -> vecdex::Result<()> {
    let trained = shared.index.read_recursive().fit(tokens, offsets, stop)?;
    shared.write(|index| index.install_training(trained))
}

fn remove_keys(shared: &MultiShared, keys: &[u64]) -> vecdex::Result<u32> {
    shared.write(|index| index.remove(keys).map(|n| n as u32))
}

/// Search settings from JS (0 means "the index's default").
fn search_params(
    k: u32,
    candidates: u32,
    ef: u32,
    ball_carving: Option<f64>,
    strategy: Option<String>,
    token_neighbours: u32,
) -> Result<MultiVectorSearch> {
    Ok(MultiVectorSearch {
        k: k as usize,
        candidates: (candidates > 0).then_some(candidates as usize),
        ef_search: (ef > 0).then_some(ef as usize),
        ball_carving: ball_carving.map(|t| t as f32),
        strategy: strategy.as_deref().map(strategy_of).transpose()?,
        token_neighbours: (token_neighbours > 0).then_some(token_neighbours as usize),
    })
}

#[napi(custom_finalize)]
pub struct NativeMultiVectorIndex {
    handle: Handle<MultiVectorIndex>,
    config: MultiVectorConfig,
}

keyed_index_methods!(NativeMultiVectorIndex);
compact_methods!(NativeMultiVectorIndex);
save_methods!(NativeMultiVectorIndex);
loader_methods!(
    NativeMultiVectorIndex,
    MultiVectorIndex,
    "Promise<ExternalObject<'LoadedMultiVectorIndex'>>",
    "loaded: ExternalObject<'LoadedMultiVectorIndex'>"
);

#[napi]
impl NativeMultiVectorIndex {
    #[napi(constructor)]
    pub fn new(
        env: Env,
        dim: u32,
        metric: String,
        options: Option<NativeMultiVectorOptions>,
    ) -> Result<Self> {
        let metric = convert::metric(&metric)?;
        let options = options.unwrap_or(NativeMultiVectorOptions {
            fde: None,
            m: None,
            ef_construction: None,
            ef_search: None,
            seed: None,
            candidates: None,
            ball_carving: None,
            strategy: None,
            fde_metric: None,
            compression: None,
        });
        // The index's own FDE defaults (the documented 640 values), not the encoder's.
        let fde = fde_config_from(
            vecdex::multi_vector_index::default_fde(dim as usize),
            options.fde.as_ref().unwrap_or(&NativeFdeOptions::default()),
        )?;
        let mut config = MultiVectorConfig::new(fde, metric);
        let mut graph = HnswConfig::new(fde.output_dimension().max(1), Metric::Dot);
        if let Some(m) = options.m {
            graph.m = m as usize;
        }
        if let Some(ef) = options.ef_construction {
            graph.ef_construction = ef as usize;
        }
        if let Some(ef) = options.ef_search {
            graph.ef_search = ef as usize;
        }
        if let Some(seed) = options.seed {
            graph.seed = seed_of(seed)?;
        }
        config.graph = graph;
        if let Some(c) = options.candidates {
            config.candidates = c as usize;
        }
        config.ball_carving = options.ball_carving.map(|t| t as f32);
        if let Some(strategy) = &options.strategy {
            config.strategy = strategy_of(strategy)?;
        }
        if let Some(metric) = &options.fde_metric {
            config.fde_metric = convert::metric(metric)?;
        }
        if let Some(c) = &options.compression {
            config.compression = compression(c, fde.output_dimension())?;
        }
        let index = guarded(|| MultiVectorIndex::new(config.clone()))?;
        Self::wrap(&env, index)
    }

    fn wrap(env: &Env, index: MultiVectorIndex) -> Result<Self> {
        let config = index.config().clone();
        Ok(NativeMultiVectorIndex {
            handle: Handle::new(env, index)?,
            config,
        })
    }

    #[napi(getter)]
    pub fn dim(&self) -> Result<u32> {
        self.handle.shared()?;
        Ok(self.config.fde.dimension as u32)
    }

    #[napi(getter)]
    pub fn metric(&self) -> Result<String> {
        self.handle.shared()?;
        Ok(self.config.metric.name().to_string())
    }

    #[napi(getter)]
    pub fn fde(&self) -> NativeFdeConfig {
        config_to_js(&self.config.fde)
    }

    #[napi(getter)]
    pub fn fde_metric(&self) -> String {
        self.config.fde_metric.name().to_string()
    }

    #[napi(getter)]
    pub fn strategy(&self) -> String {
        self.config.strategy.name().to_string()
    }

    #[napi(getter)]
    pub fn candidates(&self) -> u32 {
        self.config.candidates as u32
    }

    #[napi(getter)]
    pub fn m(&self) -> u32 {
        self.config.graph.m as u32
    }

    #[napi(getter)]
    pub fn ef_construction(&self) -> u32 {
        self.config.graph.ef_construction as u32
    }

    #[napi(getter)]
    pub fn ef_search(&self) -> u32 {
        self.config.graph.ef_search as u32
    }

    /// Adds documents (CSR) under keys, replacing the documents of keys already present.
    #[napi]
    pub fn add_sync(
        &self,
        env: Env,
        keys: BigUint64ArraySlice,
        tokens: Float32ArraySlice,
        offsets: Uint32ArraySlice,
    ) -> Result<()> {
        self.handle.write_sync(&env, |shared| {
            add_phased(shared, &keys, &tokens, &offsets, &StopFlag::never())
        })
    }

    /// Async twin of `addSync`: inputs are copied first; searches go on meanwhile.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn add<'env>(
        &self,
        env: &'env Env,
        keys: BigUint64ArraySlice,
        tokens: Float32ArraySlice,
        offsets: Uint32ArraySlice,
        abort: Option<&NativeAbortHandle>,
    ) -> Result<Object<'env>> {
        let (keys, tokens, offsets) = (
            copied(&keys, "keys")?,
            copied(&tokens, "tokens")?,
            copied(&offsets, "offsets")?,
        );
        let stop = flag(abort);
        self.handle.spawn_write(env, move |shared| {
            add_phased(shared, &keys, &tokens, &offsets, &stop)
        })
    }

    /// Removes documents; returns how many were present.
    #[napi]
    pub fn remove_sync(&self, env: Env, keys: BigUint64ArraySlice) -> Result<u32> {
        self.handle
            .write_sync(&env, |shared| remove_keys(shared, &keys))
    }

    /// Async twin of `removeSync`.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn remove<'env>(&self, env: &'env Env, keys: BigUint64ArraySlice) -> Result<Object<'env>> {
        let keys = copied(&keys, "keys")?;
        self.handle
            .spawn_write(env, move |shared| remove_keys(shared, &keys))
    }

    /// Trains the compressed FDE form on sample documents (CSR).
    #[napi]
    pub fn train_sync(
        &self,
        env: Env,
        tokens: Float32ArraySlice,
        offsets: Uint32ArraySlice,
    ) -> Result<()> {
        self.handle.write_sync(&env, |shared| {
            train_phased(shared, &tokens, &offsets, &StopFlag::never())
        })
    }

    /// Async twin of `trainSync`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn train<'env>(
        &self,
        env: &'env Env,
        tokens: Float32ArraySlice,
        offsets: Uint32ArraySlice,
        abort: Option<&NativeAbortHandle>,
    ) -> Result<Object<'env>> {
        let (tokens, offsets) = (copied(&tokens, "tokens")?, copied(&offsets, "offsets")?);
        let stop = flag(abort);
        self.handle.spawn_write(env, move |shared| {
            train_phased(shared, &tokens, &offsets, &stop)
        })
    }

    #[napi(getter)]
    pub fn is_trained(&self) -> Result<bool> {
        Ok(self.handle.shared()?.index.read_recursive().is_trained())
    }

    #[napi]
    pub fn compression_stats(&self) -> Result<crate::compression::NativeCompressionStats> {
        let shared = self.handle.shared()?;
        guarded(|| Ok(shared.index.read_recursive().compression_stats().into()))
    }

    #[napi]
    pub fn stats(&self) -> Result<NativeMultiVectorStats> {
        let shared = self.handle.shared()?;
        guarded(|| {
            let index = shared.index.read_recursive();
            let s = index.stats();
            Ok(NativeMultiVectorStats {
                documents: s.documents as f64,
                tokens: s.tokens as f64,
                dead_tokens: s.dead_tokens as f64,
                fde_dimension: s.fde_dimension as u32,
                token_bytes: s.token_bytes as f64,
                fde_bytes: s.fde_bytes as f64,
                memory_bytes: index.memory_bytes() as f64,
            })
        })
    }

    /// Blocking search of queries (CSR): candidates (FDE graph or token retrieval), then exact
    /// Chamfer rerank. `candidates`, `ef` and `token_neighbours` 0 mean the defaults.
    #[napi]
    #[allow(clippy::too_many_arguments)] // mirrors the JS call
    pub fn search_sync(
        &self,
        tokens: Float32ArraySlice,
        offsets: Uint32ArraySlice,
        k: u32,
        candidates: u32,
        ef: u32,
        ball_carving: Option<f64>,
        strategy: Option<String>,
        token_neighbours: u32,
        filter: Option<BigUint64ArraySlice>,
        prepared: Option<&NativeKeyFilter>,
    ) -> Result<NativeSearchResults> {
        let shared = self.handle.shared()?;
        let filter = crate::handle::try_filter_of(filter.as_deref(), prepared)?;
        let params = search_params(k, candidates, ef, ball_carving, strategy, token_neighbours)?;
        guarded(|| {
            shared.index.read_recursive().search(
                &tokens,
                &offsets,
                params,
                filter.as_deref(),
                &StopFlag::never(),
            )
        })
        .map(to_js_results)
    }

    /// Async twin of `searchSync` (inputs copied first; queries run in parallel).
    #[napi(ts_return_type = "Promise<NativeSearchResults>")]
    #[allow(clippy::too_many_arguments)] // mirrors the JS call
    pub fn search<'env>(
        &self,
        env: &'env Env,
        tokens: Float32ArraySlice,
        offsets: Uint32ArraySlice,
        k: u32,
        candidates: u32,
        ef: u32,
        ball_carving: Option<f64>,
        strategy: Option<String>,
        token_neighbours: u32,
        filter: Option<BigUint64ArraySlice>,
        prepared: Option<&NativeKeyFilter>,
        abort: Option<&NativeAbortHandle>,
    ) -> Result<Object<'env>> {
        let (tokens, offsets) = (copied(&tokens, "tokens")?, copied(&offsets, "offsets")?);
        let params = search_params(k, candidates, ef, ball_carving, strategy, token_neighbours)?;
        self.handle.spawn_search(
            env,
            filter.as_deref(),
            prepared,
            abort,
            move |index, filter, stop| index.search(&tokens, &offsets, params, filter, stop),
        )
    }

    /// Blocking exact search: every document scored by Chamfer similarity.
    #[napi]
    pub fn search_exact_sync(
        &self,
        tokens: Float32ArraySlice,
        offsets: Uint32ArraySlice,
        k: u32,
        filter: Option<BigUint64ArraySlice>,
        prepared: Option<&NativeKeyFilter>,
    ) -> Result<NativeSearchResults> {
        let shared = self.handle.shared()?;
        let filter = crate::handle::try_filter_of(filter.as_deref(), prepared)?;
        guarded(|| {
            shared.index.read_recursive().search_exact(
                &tokens,
                &offsets,
                k as usize,
                filter.as_deref(),
                &StopFlag::never(),
            )
        })
        .map(to_js_results)
    }

    /// Async twin of `searchExactSync`.
    #[napi(ts_return_type = "Promise<NativeSearchResults>")]
    #[allow(clippy::too_many_arguments)] // mirrors the JS call
    pub fn search_exact<'env>(
        &self,
        env: &'env Env,
        tokens: Float32ArraySlice,
        offsets: Uint32ArraySlice,
        k: u32,
        filter: Option<BigUint64ArraySlice>,
        prepared: Option<&NativeKeyFilter>,
        abort: Option<&NativeAbortHandle>,
    ) -> Result<Object<'env>> {
        let (tokens, offsets) = (copied(&tokens, "tokens")?, copied(&offsets, "offsets")?);
        self.handle.spawn_search(
            env,
            filter.as_deref(),
            prepared,
            abort,
            move |index, filter, stop| {
                index.search_exact(&tokens, &offsets, k as usize, filter, stop)
            },
        )
    }
}
