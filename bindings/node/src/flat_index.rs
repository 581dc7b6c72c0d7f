//! `NativeFlatIndex`: the JS handle of a [`vecdex::FlatIndex`] (lifecycle and locking in
//! [`crate::handle`]). Async adds and removes take the write lock in chunks of [`WRITE_CHUNK`]
//! rows, so a read on the JS thread never waits long.

use std::sync::{Arc, Weak};

use napi::bindgen_prelude::{
    BigUint64ArraySlice, External, Float32ArraySlice, Object, Uint8ArraySlice,
};
use napi::Env;
use napi_derive::napi;
use parking_lot::RwLockUpgradableReadGuard;
use vecdex::{FlatConfig, FlatIndex, StopFlag};

use crate::abort::NativeAbortHandle;
use crate::compression::{compression, rescore_params, NativeCompressionOptions};
use crate::convert;
use crate::error::{guarded, Result};
use crate::handle::{
    check_result_cells, common_index_methods, loader_methods, search_weak_into, Handle,
    NativeKeyFilter, Shared,
};

/// Rows added or keys removed per hold of the write lock by async calls: bounds how long a
/// JS-thread read (get, contains, searchSync) can wait for a writer.
const WRITE_CHUNK: usize = 4_096;

type FlatShared = Shared<FlatIndex>;

/// Searches through a handle from `searchHandle()` and writes the results into `out` (layout in
/// [`write_results`]). The TS layer passes a pooled buffer and views the results in place:
/// nothing is allocated across the boundary, and no class method is called (napi-rs checks a
/// method's receiver on every call).
#[napi(
    ts_args_type = "handle: ExternalObject<'NativeFlatIndexHandle'>, queries: Float32Array, k: number, oversample: number, rescore: boolean, filter: BigUint64Array | undefined | null, prepared: NativeKeyFilter | undefined | null, out: Uint8Array, offset: number, capacity: number"
)]
#[allow(clippy::too_many_arguments)] // one argument per JS value: no object to unpack on the hot path
pub fn search_into_sync_fast(
    handle: &External<Weak<FlatShared>>,
    queries: Float32ArraySlice,
    k: u32,
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
            check_result_cells(queries.len(), index.dim(), k as usize, index.len())?;
            index.search_with(&queries, k as usize, params, filter, &StopFlag::never())
        },
    )
}

/// Adds a batch in chunks, each under its own hold of the write lock. The whole batch is
/// validated (and the stop flag checked) before the first chunk, so an error or an abort
/// leaves the index unchanged.
fn add_chunked(
    shared: &FlatShared,
    keys: &[u64],
    vectors: &[f32],
    stop: &StopFlag,
) -> vecdex::Result<()> {
    let config = shared.index.read_recursive().config();
    let batch = FlatIndex::check_batch(config, keys, vectors)?;
    stop.check()?;
    let mut start = 0;
    while start < batch.len() {
        let end = (start + WRITE_CHUNK).min(batch.len());
        // Growing copies the whole index: do that under an upgradable read, while searches and
        // JS-thread reads go on, then take the write lock only to swap storage and insert.
        // So is learning the model of a chunk that makes a compressed index train by itself.
        let reading = shared.index.upgradable_read();
        let grown = (!reading.has_room(batch.len() - start))
            .then(|| reading.grown_storage(batch.len() - start))
            .transpose()?;
        let model = reading.fit_for_rows(&batch, start..end)?;
        let mut index = RwLockUpgradableReadGuard::upgrade(reading);
        let retired = grown
            .map(|storage| index.install_storage(storage))
            .transpose()?;
        index.insert_with(&batch, start..end, model)?;
        shared.refresh_stats(&index);
        drop(index);
        drop(retired); // freed outside the lock
        start = end;
    }
    Ok(())
}

fn remove_chunked(shared: &FlatShared, keys: &[u64]) -> vecdex::Result<u32> {
    let mut removed = 0;
    for chunk in keys.chunks(WRITE_CHUNK) {
        let mut index = shared.index.write();
        removed += index.remove(chunk) as u32;
        shared.refresh_stats(&index);
    }
    Ok(removed)
}

#[napi(custom_finalize)]
pub struct NativeFlatIndex {
    handle: Handle<FlatIndex>,
    config: FlatConfig,
}

#[napi]
impl NativeFlatIndex {
    #[napi(constructor)]
    pub fn new(
        env: Env,
        dim: u32,
        metric: String,
        options: Option<NativeCompressionOptions>,
        full_vectors_path: Option<String>,
    ) -> Result<Self> {
        let metric = convert::metric(&metric)?;
        let config = FlatConfig {
            dim: dim as usize,
            metric,
        };
        let compression = compression(&options.unwrap_or_default(), dim as usize)?;
        let full_vectors = match full_vectors_path {
            Some(path) => vecdex::FullVectors::Disk(path.into()),
            None => vecdex::FullVectors::Memory,
        };
        let index = guarded(|| FlatIndex::with_storage(config, compression, &full_vectors))?;
        Self::wrap(&env, index)
    }

    fn wrap(env: &Env, index: FlatIndex) -> Result<Self> {
        let config = index.config();
        Ok(NativeFlatIndex {
            handle: Handle::new(env, index)?,
            config,
        })
    }

    /// A handle for [`search_into_sync_fast`]: the same index, reachable without a class method
    /// call (napi-rs checks a method's receiver on every call, about 0.3 µs). It does not keep
    /// the index alive: after `close()` it fails with ERR_CLOSED.
    #[napi(ts_return_type = "ExternalObject<'NativeFlatIndexHandle'>")]
    pub fn search_handle(&self) -> Result<External<Weak<FlatShared>>> {
        Ok(External::new(Arc::downgrade(self.handle.shared()?)))
    }

    /// Async batch search on the pool; queries and filter are copied before queueing.
    #[napi(ts_return_type = "Promise<NativeSearchResults>")]
    #[allow(clippy::too_many_arguments)] // mirrors the JS call
    pub fn search<'env>(
        &self,
        env: &'env Env,
        queries: Float32ArraySlice,
        k: u32,
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
                index.search_with(&queries, k as usize, params, filter, stop)
            },
        )
    }

    /// Time of `iterations` searches of one query done entirely in Rust, in nanoseconds per
    /// search: the baseline for measuring the binding's own overhead. For the `overhead`
    /// benchmark only, which calls it on a raw native index: no public class offers it.
    #[napi]
    pub fn measure_rust_search_nanos(
        &self,
        query: Float32ArraySlice,
        k: u32,
        iterations: u32,
    ) -> Result<f64> {
        let shared = self.handle.shared()?;
        let query = crate::handle::copied(&query, "query")?;
        guarded(|| {
            let index = shared.index.read_recursive();
            let start = std::time::Instant::now();
            for _ in 0..iterations.max(1) {
                let results = index.search(&query, k as usize, None, &StopFlag::never())?;
                std::hint::black_box(results);
            }
            Ok(start.elapsed().as_nanos() as f64 / f64::from(iterations.max(1)))
        })
    }
}

common_index_methods!(NativeFlatIndex, add: add_chunked, remove: remove_chunked);
loader_methods!(
    NativeFlatIndex,
    FlatIndex,
    "Promise<ExternalObject<'LoadedFlatIndex'>>",
    "loaded: ExternalObject<'LoadedFlatIndex'>"
);
