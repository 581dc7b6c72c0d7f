//! `NativeFlatIndex`: the JS handle of a [`vecdex::FlatIndex`]. Holds `Option<Arc<Shared>>` so
//! `close()` is idempotent and in-flight tasks keep their own `Arc` until they finish.
//!
//! Locking keeps the event loop free: calls on the JS thread read with `read_recursive` (they
//! wait only while a writer holds the lock, never behind a queued one), async adds and removes
//! take the write lock in chunks of [`WRITE_CHUNK`] rows, and size and memory are atomics that
//! need no lock at all.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use napi::bindgen_prelude::{
    BigInt, BigUint64Array, BigUint64ArraySlice, External, Float32Array, Float32ArraySlice, Object,
    ObjectFinalize, ToNapiValue, Uint32Array, Uint8ArraySlice,
};
use napi::Env;
use napi_derive::napi;
use parking_lot::{RwLock, RwLockUpgradableReadGuard};
use vecdex::{Error, FlatConfig, FlatIndex, KeyFilter, SearchResults, StopFlag};

use crate::abort::{flag, NativeAbortHandle};
use crate::convert;
use crate::error::{guarded, invalid, to_napi};
use crate::order::WriteOrder;
use crate::tasks;

/// Rows added or keys removed per hold of the write lock by async calls: bounds how long a
/// JS-thread read (get, contains, searchSync) can wait for a writer.
const WRITE_CHUNK: usize = 4_096;

pub struct Shared {
    index: RwLock<FlatIndex>,
    /// Call order of writes, and of async searches relative to them.
    order: Arc<WriteOrder>,
    config: FlatConfig,
    /// Vectors stored, updated under the write lock.
    len: AtomicU64,
    /// Bytes held, updated under the write lock.
    memory: AtomicU64,
}

impl Shared {
    fn refresh_stats(&self, index: &FlatIndex) {
        self.len.store(index.len() as u64, Ordering::Relaxed);
        self.memory
            .store(index.memory_bytes() as u64, Ordering::Relaxed);
    }
}

/// Results of a batch search, row-major: row `i` is query `i`, `k` columns, best first.
#[napi(object)]
pub struct NativeSearchResults {
    /// Columns per row: min(k, index size).
    pub k: u32,
    pub keys: BigUint64Array,
    pub distances: Float32Array,
    /// Valid hits per row (fewer than `k` when a filter admits fewer vectors).
    pub counts: Uint32Array,
}

fn to_js_results(results: SearchResults) -> NativeSearchResults {
    NativeSearchResults {
        k: results.k as u32,
        keys: BigUint64Array::new(results.keys),
        distances: Float32Array::new(results.distances),
        counts: Uint32Array::new(results.counts),
    }
}

#[napi(custom_finalize)]
pub struct NativeFlatIndex {
    inner: Option<Arc<Shared>>,
    /// Bytes currently reported to V8 as external memory.
    reported: Arc<AtomicI64>,
    /// Set by `close()`: async calls finishing later must not report memory again.
    closed: Arc<AtomicBool>,
}

/// Tells V8 how much native memory this index holds now (no lock: reads the atomic), unless
/// the handle was closed meanwhile (its memory was handed back then).
fn report_memory(
    env: &Env,
    shared: &Shared,
    reported: &AtomicI64,
    closed: &AtomicBool,
) -> napi::Result<()> {
    if closed.load(Ordering::Relaxed) {
        return Ok(());
    }
    let now = shared.memory.load(Ordering::Relaxed) as i64;
    let before = reported.swap(now, Ordering::Relaxed);
    if now != before {
        env.adjust_external_memory(now - before)?;
    }
    Ok(())
}

/// Searches through a handle from `searchHandle()` and writes the results into `out` at byte
/// `offset` (a multiple of 8), laid out as `capacity` u64 keys, then `capacity` f32 distances,
/// then one u32 count per query, in native byte order (what JS typed-array views of the same
/// buffer read). Rows have stride `min(k, size)`, which is returned. The TS layer passes a
/// pooled buffer and views the results in place: nothing is allocated across the boundary,
/// and no class method is called (napi-rs checks a method's receiver on every call).
#[napi(
    ts_args_type = "handle: ExternalObject<'NativeFlatIndexHandle'>, queries: Float32Array, k: number, filter: BigUint64Array | undefined | null, out: Uint8Array, offset: number, capacity: number"
)]
pub fn search_into_sync_fast(
    handle: &External<Weak<Shared>>,
    queries: Float32ArraySlice,
    k: u32,
    filter: Option<BigUint64ArraySlice>,
    out: Uint8ArraySlice,
    offset: u32,
    capacity: u32,
) -> napi::Result<u32> {
    let shared = handle.upgrade().ok_or_else(|| to_napi(Error::Closed))?;
    search_into(&shared, queries, k, filter, out, offset, capacity)
}

fn search_into(
    shared: &Shared,
    queries: Float32ArraySlice,
    k: u32,
    filter: Option<BigUint64ArraySlice>,
    mut out: Uint8ArraySlice,
    offset: u32,
    capacity: u32,
) -> napi::Result<u32> {
    let filter = filter_of(filter.as_deref());
    let results = guarded(|| {
        shared.index.read_recursive().search(
            &queries,
            k as usize,
            filter.as_ref(),
            &StopFlag::never(),
        )
    })?;
    let (offset, capacity) = (offset as usize, capacity as usize);
    let rows = results.counts.len();
    // SAFETY: this runs on the JS thread for the whole call, so no JS code can touch the
    // buffer while we write (the TS layer copies shared or aliasing inputs first); every write
    // below is bounds-checked by slice indexing.
    let out = unsafe { out.as_mut() };
    let needed = offset + capacity * 12 + rows * 4;
    if !offset.is_multiple_of(8) || results.keys.len() > capacity || out.len() < needed {
        return Err(invalid(
            "output buffer too small or misaligned for the results",
        ));
    }
    let (key_bytes, rest) = out[offset..needed].split_at_mut(capacity * 8);
    let (distance_bytes, count_bytes) = rest.split_at_mut(capacity * 4);
    for (chunk, key) in key_bytes.chunks_exact_mut(8).zip(&results.keys) {
        chunk.copy_from_slice(&key.to_ne_bytes());
    }
    for (chunk, d) in distance_bytes.chunks_exact_mut(4).zip(&results.distances) {
        chunk.copy_from_slice(&d.to_ne_bytes());
    }
    for (chunk, c) in count_bytes.chunks_exact_mut(4).zip(&results.counts) {
        chunk.copy_from_slice(&c.to_ne_bytes());
    }
    Ok(results.k as u32)
}

fn filter_of(filter: Option<&[u64]>) -> Option<KeyFilter> {
    filter.map(|keys| KeyFilter::new(keys.to_vec()))
}

/// Adds a batch in chunks, each under its own hold of the write lock. The whole batch is
/// validated (and the stop flag checked) before the first chunk, so an error or an abort
/// leaves the index unchanged.
fn add_chunked(
    shared: &Shared,
    keys: &[u64],
    vectors: &[f32],
    stop: &StopFlag,
) -> vecdex::Result<()> {
    let batch = FlatIndex::check_batch(shared.config, keys, vectors)?;
    stop.check()?;
    let mut start = 0;
    while start < batch.len() {
        let end = (start + WRITE_CHUNK).min(batch.len());
        // Growing copies the whole index: do that under an upgradable read, while searches and
        // JS-thread reads go on, then take the write lock only to swap storage and insert.
        let reading = shared.index.upgradable_read();
        let grown = (!reading.has_room(batch.len() - start))
            .then(|| reading.grown_storage(batch.len() - start));
        let mut index = RwLockUpgradableReadGuard::upgrade(reading);
        let retired = grown
            .map(|storage| index.install_storage(storage))
            .transpose()?;
        index.insert(&batch, start..end)?;
        shared.refresh_stats(&index);
        drop(index);
        drop(retired); // freed outside the lock
        start = end;
    }
    Ok(())
}

fn remove_chunked(shared: &Shared, keys: &[u64]) -> u32 {
    let mut removed = 0;
    for chunk in keys.chunks(WRITE_CHUNK) {
        let mut index = shared.index.write();
        removed += index.remove(chunk) as u32;
        shared.refresh_stats(&index);
    }
    removed
}

#[napi]
impl NativeFlatIndex {
    #[napi(constructor)]
    pub fn new(env: Env, dim: u32, metric: String) -> napi::Result<Self> {
        let metric = convert::metric(&metric)?;
        let config = FlatConfig {
            dim: dim as usize,
            metric,
        };
        let index = guarded(|| FlatIndex::new(config))?;
        let shared = Shared {
            order: Arc::new(WriteOrder::default()),
            len: AtomicU64::new(0),
            memory: AtomicU64::new(index.memory_bytes() as u64),
            index: RwLock::new(index),
            config,
        };
        let reported = Arc::new(AtomicI64::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        report_memory(&env, &shared, &reported, &closed)?;
        Ok(NativeFlatIndex {
            inner: Some(Arc::new(shared)),
            reported,
            closed,
        })
    }

    fn shared(&self) -> napi::Result<&Arc<Shared>> {
        self.inner.as_ref().ok_or_else(|| to_napi(Error::Closed))
    }

    #[napi(getter)]
    pub fn dim(&self) -> napi::Result<u32> {
        Ok(self.shared()?.config.dim as u32)
    }

    #[napi(getter)]
    pub fn metric(&self) -> napi::Result<String> {
        Ok(self.shared()?.config.metric.name().to_string())
    }

    #[napi(getter)]
    pub fn size(&self) -> napi::Result<f64> {
        Ok(self.shared()?.len.load(Ordering::Relaxed) as f64)
    }

    #[napi(getter)]
    pub fn memory_bytes(&self) -> napi::Result<f64> {
        Ok(self.shared()?.memory.load(Ordering::Relaxed) as f64)
    }

    /// Bytes this index has reported to V8 as external memory (0 once closed).
    #[napi(getter)]
    pub fn reported_external_bytes(&self) -> f64 {
        self.reported.load(Ordering::Relaxed) as f64
    }

    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.inner.is_none()
    }

    /// Adds vectors (row-major) under keys, replacing the vectors of keys already present.
    #[napi]
    pub fn add_sync(
        &self,
        env: Env,
        keys: BigUint64ArraySlice,
        vectors: Float32ArraySlice,
    ) -> napi::Result<()> {
        let shared = self.shared()?;
        // A blocking write still comes after the async writes called before it.
        let ticket = shared.order.ticket();
        ticket.wait_turn();
        guarded(|| {
            let mut index = shared.index.write();
            let result = index.add(&keys, &vectors, &StopFlag::never());
            shared.refresh_stats(&index);
            result
        })?;
        report_memory(&env, shared, &self.reported, &self.closed)
    }

    /// Async twin of `addSync`: inputs are copied before the work is queued; the write lock is
    /// taken in chunks so reads on the JS thread never wait long.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn add<'env>(
        &self,
        env: &'env Env,
        keys: BigUint64ArraySlice,
        vectors: Float32ArraySlice,
        abort: Option<&NativeAbortHandle>,
    ) -> napi::Result<Object<'env>> {
        let (keys, vectors, stop) = (keys.to_vec(), vectors.to_vec(), flag(abort));
        self.spawn_write(env, move |shared| {
            add_chunked(shared, &keys, &vectors, &stop)
        })
    }

    /// Removes keys; returns how many were present.
    #[napi]
    pub fn remove_sync(&self, env: Env, keys: BigUint64ArraySlice) -> napi::Result<u32> {
        let shared = self.shared()?;
        let ticket = shared.order.ticket();
        ticket.wait_turn();
        let removed = guarded(|| Ok(remove_chunked(shared, &keys)))?;
        drop(ticket);
        report_memory(&env, shared, &self.reported, &self.closed)?;
        Ok(removed)
    }

    /// Async twin of `removeSync`.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn remove<'env>(
        &self,
        env: &'env Env,
        keys: BigUint64ArraySlice,
    ) -> napi::Result<Object<'env>> {
        let keys = keys.to_vec();
        self.spawn_write(env, move |shared| Ok(remove_chunked(shared, &keys)))
    }

    /// Runs an async write on the task threads in call order (its ticket is taken now, on the
    /// JS thread), then reports the index's memory to V8 and resolves with the write's value.
    fn spawn_write<'env, T>(
        &self,
        env: &'env Env,
        write: impl FnOnce(&Shared) -> vecdex::Result<T> + Send + 'static,
    ) -> napi::Result<Object<'env>>
    where
        T: ToNapiValue + Send + 'static,
    {
        let shared = self.shared()?.clone();
        let (reported, closed) = (self.reported.clone(), self.closed.clone());
        let for_report = shared.clone();
        let ticket = shared.order.ticket();
        tasks::spawn(
            env,
            move || {
                ticket.wait_turn();
                write(&shared)
            },
            move |env, value| report_memory(&env, &for_report, &reported, &closed).map(|()| value),
        )
    }

    #[napi]
    pub fn contains(&self, key: BigInt) -> napi::Result<bool> {
        let key = convert::key(&key)?;
        let shared = self.shared()?;
        guarded(|| Ok(shared.index.read_recursive().contains(key)))
    }

    /// The stored vector of a key (normalised, for cosine), or null.
    #[napi]
    pub fn get(&self, key: BigInt) -> napi::Result<Option<Float32Array>> {
        let key = convert::key(&key)?;
        let shared = self.shared()?;
        guarded(|| {
            Ok(shared
                .index
                .read_recursive()
                .get(key)
                .map(Float32Array::new))
        })
    }

    /// Every key, in storage order.
    #[napi]
    pub fn keys(&self) -> napi::Result<BigUint64Array> {
        let shared = self.shared()?;
        guarded(|| {
            Ok(BigUint64Array::new(
                shared.index.read_recursive().keys().to_vec(),
            ))
        })
    }

    /// A handle for [`search_into_sync_fast`]: the same index, reachable without a class method
    /// call (napi-rs checks a method's receiver on every call, about 0.3 µs). It does not keep
    /// the index alive: after `close()` it fails with ERR_CLOSED.
    #[napi(ts_return_type = "ExternalObject<'NativeFlatIndexHandle'>")]
    pub fn search_handle(&self) -> napi::Result<External<Weak<Shared>>> {
        Ok(External::new(Arc::downgrade(self.shared()?)))
    }

    /// Async batch search on the pool; queries and filter are copied before queueing.
    #[napi(ts_return_type = "Promise<NativeSearchResults>")]
    pub fn search<'env>(
        &self,
        env: &'env Env,
        queries: Float32ArraySlice,
        k: u32,
        filter: Option<BigUint64ArraySlice>,
        abort: Option<&NativeAbortHandle>,
    ) -> napi::Result<Object<'env>> {
        let shared = self.shared()?.clone();
        let queries = queries.to_vec();
        let filter = filter_of(filter.as_deref());
        let stop = flag(abort);
        // Sees every write called before it, as awaiting them would.
        let after_writes = shared.order.mark();
        tasks::spawn(
            env,
            move || {
                shared.order.wait_for(after_writes);
                shared
                    .index
                    .read()
                    .search(&queries, k as usize, filter.as_ref(), &stop)
            },
            |_, results| Ok(to_js_results(results)),
        )
    }

    /// Releases the index. Idempotent; in-flight tasks finish on their own reference.
    #[napi]
    pub fn close(&mut self, env: Env) -> napi::Result<()> {
        if self.inner.take().is_some() {
            self.closed.store(true, Ordering::Relaxed);
            let before = self.reported.swap(0, Ordering::Relaxed);
            if before != 0 {
                env.adjust_external_memory(-before)?;
            }
        }
        Ok(())
    }

    /// Time of `iterations` searches of one query done entirely in Rust, in nanoseconds per
    /// search: the baseline for measuring the binding's own overhead.
    #[napi]
    pub fn measure_rust_search_nanos(
        &self,
        query: Float32ArraySlice,
        k: u32,
        iterations: u32,
    ) -> napi::Result<f64> {
        let shared = self.shared()?;
        let index = shared.index.read_recursive();
        let query = query.to_vec();
        let start = std::time::Instant::now();
        for _ in 0..iterations.max(1) {
            let results = index
                .search(&query, k as usize, None, &StopFlag::never())
                .map_err(to_napi)?;
            std::hint::black_box(results);
        }
        Ok(start.elapsed().as_nanos() as f64 / f64::from(iterations.max(1)))
    }
}

impl ObjectFinalize for NativeFlatIndex {
    fn finalize(self, env: Env) -> napi::Result<()> {
        let before = self.reported.swap(0, Ordering::Relaxed);
        if before != 0 {
            env.adjust_external_memory(-before)?;
        }
        Ok(())
    }
}
